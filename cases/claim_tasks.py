"""Celery beat work for insurance claims: a thin wrapper over cases.claims.services, safe to run twice or on
several workers at once (each report is locked with SKIP LOCKED and the partial unique constraints
have the last word)."""

from celery import shared_task

from cases.claims.services import claims_make_eligible as make_eligible


@shared_task(ignore_result=True)
def claims_make_eligible() -> int:
    return len(make_eligible())
