"""Celery tasks of accounts: thin wrappers over the services.

seal_audit_trail runs on the maintenance queue (settings.CELERY_TASK_ROUTES): its worker connects
as the owner role, the only one that may write seals, and holds the bureau key and AUDIT_HEAD_DIR."""

from celery import shared_task

from accounts.audit_chain import audit_head_write, audit_heads_prune, audit_seal


@shared_task(name="accounts.tasks.seal_audit_trail", ignore_result=True)
def seal_audit_trail() -> int:
    sealed = audit_seal()
    audit_head_write()
    audit_heads_prune()
    return sealed
