"""Celery tasks: thin wrappers that call services; each is safe to run twice or concurrently."""

from celery import shared_task

from tracking.derived import offline_alarms_raise, outbox_process
from tracking.partitions import partitions_ensure
from tracking.retention import retention_apply
from tracking.services import last_positions_reconcile_missing


@shared_task(ignore_result=True)
def process_outbox() -> int:
    total = 0
    while processed := outbox_process():
        total += processed
    return total


@shared_task(ignore_result=True)
def maintain_partitions() -> list[str]:
    return partitions_ensure()


@shared_task(ignore_result=True)
def apply_retention() -> dict:
    result = retention_apply()
    return {"dropped": result.dropped, "trimmed": result.trimmed, "default_rows_deleted": result.default_rows_deleted}


@shared_task(ignore_result=True)
def raise_offline_alarms() -> int:
    return offline_alarms_raise()


@shared_task(ignore_result=True)
def reconcile_missing_flags() -> int:
    return last_positions_reconcile_missing()
