"""Celery tasks: thin wrappers that call services; each is safe to run twice or concurrently."""

import dataclasses

from celery import shared_task

from tracking.derived import offline_alarms_raise, outbox_process
from tracking.partitions import partitions_ensure
from tracking.retention import retention_apply
from tracking.services import last_positions_reconcile_missing


@shared_task(name="tracking.tasks.process_outbox", ignore_result=True)
def process_outbox() -> int:
    total = 0
    while processed := outbox_process():
        total += processed
    return total


@shared_task(name="tracking.tasks.maintain_partitions", ignore_result=True)
def maintain_partitions() -> list[str]:
    return partitions_ensure()


@shared_task(name="tracking.tasks.apply_retention", ignore_result=True)
def apply_retention() -> dict:
    """Runs on the maintenance queue, as the owner role: the runtime roles may not delete these rows."""
    return dataclasses.asdict(retention_apply())


@shared_task(name="tracking.tasks.raise_offline_alarms", ignore_result=True)
def raise_offline_alarms() -> int:
    return offline_alarms_raise()


@shared_task(name="tracking.tasks.reconcile_missing_flags", ignore_result=True)
def reconcile_missing_flags() -> int:
    return last_positions_reconcile_missing()
