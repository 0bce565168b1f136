"""Celery tasks for cases: thin wrappers over services; each is safe to run twice. Each pins its name:
queued messages and the beat schedule (settings.CELERY_BEAT_SCHEDULE) use it."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from cases.alerts import webhooks
from cases.claims.services import claims_make_eligible as make_eligible


@shared_task(name="cases.tasks.deliver_webhook", bind=True, ignore_result=True, max_retries=8, acks_late=True)
def deliver_webhook(self, delivery_id: int, db_retries: int = 0) -> bool:
    """POST a station webhook message; on a transient failure retry after 10 s, 20 s, 40 s …

    The database going away (a failover: the primary killed, the standby not yet promoted) is
    nobody's failure: the message is retried after 1 s, 2 s, 4 s … (at most 30 s) until the new
    primary answers, without counting against the receiver's `max_retries`. Without this a message
    whose task met the outage was neither sent nor given up: the beat sweep only re-sends messages
    never attempted, a minute later. A message POSTed just before the outage, whose outcome could
    not be written, is POSTed again with the same X-Webhook-Delivery id (receivers drop the repeat).
    """
    try:
        try:
            return webhooks.webhook_attempt(delivery_id)
        except webhooks.TransientFailure as exc:
            attempts = self.request.retries - db_retries  # the receiver's failures so far, less one
            if attempts >= self.max_retries:
                webhooks.webhook_give_up(delivery_id, f"gave up after {attempts + 1} attempts: {exc}")
                return False
            raise self.retry(exc=exc, countdown=webhooks.retry_countdown(attempts), max_retries=None) from exc
    except (OperationalError, InterfaceError) as exc:
        kwargs = {**self.request.kwargs, "db_retries": db_retries + 1}
        raise self.retry(exc=exc, countdown=min(2**db_retries, 30), max_retries=None, kwargs=kwargs) from exc


@shared_task(name="cases.tasks.requeue_webhooks", ignore_result=True)
def requeue_webhooks() -> int:
    return webhooks.webhooks_requeue()


@shared_task(name="cases.tasks.reviews_weekly_summary", ignore_result=True)
def reviews_weekly_summary() -> int:
    from cases.tracing import oversight

    return oversight.reviews_weekly_summary()


@shared_task(name="cases.tasks.lookup_volume_alerts", ignore_result=True)
def lookup_volume_alerts() -> int:
    from cases.tracing import oversight

    return len(oversight.lookup_volume_alerts())


# Named after the module it lived in before the claims' tasks joined this one.
@shared_task(name="cases.claim_tasks.claims_make_eligible", ignore_result=True)
def claims_make_eligible() -> int:
    """Claims whose waiting period is over become eligible: safe to run twice or on several workers at
    once (each report is locked with SKIP LOCKED and the partial unique constraints have the last word)."""
    return len(make_eligible())
