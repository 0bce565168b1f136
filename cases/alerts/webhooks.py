"""Station webhooks: sightings and duty-room calls POSTed as JSON to a station's own system.

A message is a WebhookDelivery row written in the transaction of the event that caused it, queued
after commit to `cases.tasks.deliver_webhook` (timeout, exponential backoff; a beat sweep requeues
what the broker lost); ingestion never waits for it. The body holds no personal data, and its
position is rounded to WEBHOOK_POSITION_DECIMALS before the row is stored: enough to route the alert
to a patrol area, not to find where a bike is parked. Every message is signed
(X-Webhook-Signature: sha256=HMAC of the body); https only unless WEBHOOK_ALLOW_HTTP. A message
given up keeps its error until `manage.py webhook_rerun`. See docs/architecture.md#webhooks.
"""

import datetime
import hashlib
import hmac
import json
import logging
import secrets
import urllib.error
import urllib.request
from enum import StrEnum
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Station
from cases.models import WebhookDelivery
from ebike_registry.keys import secret_file_create

logger = logging.getLogger(__name__)

USER_AGENT = "ebike-registry-webhook/1"


class TransientFailure(Exception):
    """The receiver could not take the message now (network error, timeout, HTTP 5xx or 429)."""


POSITION_KEYS = ("latitude", "longitude")


def position_minimise(data: dict[str, Any]) -> dict[str, Any]:
    """The message's position rounded to WEBHOOK_POSITION_DECIMALS places (see the module's docstring)."""
    places = settings.WEBHOOK_POSITION_DECIMALS
    out = dict(data)
    for key in POSITION_KEYS:
        if isinstance(out.get(key), float | int):
            out[key] = round(float(out[key]), places)
    return out


def webhook_queue(*, station: Station, event: str, data: dict[str, Any]) -> WebhookDelivery | None:
    """Store a message for the station's webhook (if it has one) and queue it after commit."""
    if not station.webhook_url:
        return None
    delivery = WebhookDelivery.objects.create(
        station=station,
        url=station.webhook_url,
        event=event,
        payload={"event": event, "data": position_minimise(data)},
    )
    transaction.on_commit(lambda: _enqueue(delivery.pk))
    return delivery


def _enqueue(delivery_id: int) -> None:
    from cases.tasks import deliver_webhook

    try:
        deliver_webhook.delay(delivery_id)
    except Exception:  # the broker is down: the resend sweep queues the row again later
        logger.warning("webhook delivery %s not queued; the resend sweep will retry", delivery_id, exc_info=True)


def body(delivery: WebhookDelivery) -> bytes:
    data = dict(delivery.payload.get("data", {}))
    if data.get("link", "").startswith("/") and settings.PUBLIC_BASE_URL:
        data["link"] = settings.PUBLIC_BASE_URL.rstrip("/") + data["link"]
    message = {
        "id": delivery.pk,
        "event": delivery.event,
        "station": delivery.station.code,
        "created_at": delivery.created_at.isoformat(),
        "data": data,
    }
    return json.dumps(message, ensure_ascii=False).encode()


def webhook_secret() -> str:
    """WEBHOOK_SECRET, or the secret in WEBHOOK_SECRET_KEY_FILE, created (0600) on first use.

    Safe when several workers start at once: the secret is written to a private temporary file and
    linked into place, which fails if another process linked its secret first.
    """
    if settings.WEBHOOK_SECRET:
        return settings.WEBHOOK_SECRET
    path = Path(settings.WEBHOOK_SECRET_KEY_FILE)
    secret_file_create(path, (secrets.token_hex(32) + "\n").encode())
    return path.read_text().strip()


def signature(payload: bytes) -> str:
    """HMAC-SHA256 of the body with the webhook secret, so a station's system can tell our calls apart."""
    return "sha256=" + hmac.new(webhook_secret().encode(), payload, hashlib.sha256).hexdigest()


def url_problem(url: str) -> str | None:
    """Why a webhook URL cannot be used, or None."""
    if url.startswith("https://"):
        return None
    if url.startswith("http://"):
        return None if settings.WEBHOOK_ALLOW_HTTP else "plain http refused (WEBHOOK_ALLOW_HTTP is off)"
    return "not an http(s) URL"


def webhook_attempt(delivery_id: int) -> bool:
    """POST one delivery once. True: delivered (or already was); False: refused for good (HTTP 4xx,
    or the station's URL changed away). Raises TransientFailure when a retry may succeed.
    """
    delivery = WebhookDelivery.objects.select_related("station").get(pk=delivery_id)
    if delivery.delivered_at is not None or delivery.gave_up_at is not None:
        return delivery.delivered_at is not None
    problem = url_problem(delivery.url)
    if problem is not None:
        _record(delivery, error=problem, gave_up=True)
        return False
    payload = body(delivery)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-Webhook-Event": delivery.event,
        "X-Webhook-Delivery": str(delivery.pk),  # receivers drop a repeat by this id
        "X-Webhook-Signature": signature(payload),
    }
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        delivery.url, data=payload, method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        _record(delivery, error=f"{type(exc).__name__}: {exc}")
        raise TransientFailure(str(exc)) from exc
    if 200 <= status < 300:
        _record(delivery, delivered=True)
        return True
    if status >= 500 or status in (408, 429):
        _record(delivery, error=f"HTTP {status}")
        raise TransientFailure(f"HTTP {status}")
    _record(delivery, error=f"HTTP {status}", gave_up=True)
    return False


def webhook_give_up(delivery_id: int, reason: str) -> None:
    WebhookDelivery.objects.filter(pk=delivery_id, delivered_at__isnull=True).update(
        gave_up_at=timezone.now(), last_error=reason[:300]
    )


def _record(delivery: WebhookDelivery, *, error: str = "", delivered: bool = False, gave_up: bool = False) -> None:
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_error = error[:300]
    if delivered:
        delivery.delivered_at = now
    if gave_up:
        delivery.gave_up_at = now
    delivery.save(update_fields=["attempts", "last_attempt_at", "last_error", "delivered_at", "gave_up_at"])


def retry_countdown(retries: int) -> int:
    """Seconds before retry number `retries` + 1: 10 s, 20 s, 40 s … capped at 15 minutes."""
    return min(10 * 2**retries, 900)


class Rerun(StrEnum):
    """What re-running a given-up delivery did (`webhook_rerun`)."""

    DELIVERED = "delivered"
    REFUSED = "refused"  # given up again at once (HTTP 4xx, a URL that may not be used)
    RETRYING = "retrying"  # a transient failure: the Celery task retries it with backoff
    NOT_QUEUED = "not_queued"  # a transient failure and the broker is down: given up again


def webhook_rerun(*, delivery_id: int, by: str, reason: str, current_url: bool = False) -> Rerun | None:
    """Send a delivery that was given up once more: reopened (audited with who and why) in one
    transaction, then attempted now; on a transient failure it goes back to the Celery task and its
    backoff. `current_url`: to the station's webhook URL of today (the station fixed it) instead of
    the one stored with the message. None when the delivery was not given up (or is delivered).
    """
    from cases.tasks import deliver_webhook

    if not by.strip() or not reason.strip():
        raise ValueError("name who re-sends it and why; both are recorded")
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("station")
            .filter(pk=delivery_id, delivered_at__isnull=True, gave_up_at__isnull=False)
            .first()
        )
        if delivery is None:
            return None
        url = delivery.station.webhook_url if current_url and delivery.station.webhook_url else delivery.url
        WebhookDelivery.objects.filter(pk=delivery_id).update(gave_up_at=None, url=url)
        audit_record(
            user=None,
            action="webhook.rerun",
            object_type="webhook_delivery",
            object_id=delivery_id,
            query={"by": by.strip()[:100], "url_changed": url != delivery.url},
            reason=reason.strip(),
        )
    try:
        return Rerun.DELIVERED if webhook_attempt(delivery_id) else Rerun.REFUSED
    except TransientFailure:
        pass
    try:
        deliver_webhook.apply_async((delivery_id,), countdown=retry_countdown(0))
    except Exception as exc:  # the broker is down: nothing would retry it, so it stays given up
        webhook_give_up(delivery_id, f"re-run: retry not queued (broker down: {type(exc).__name__})")
        return Rerun.NOT_QUEUED
    return Rerun.RETRYING


def webhooks_given_up(ids: list[int] | None = None) -> list[int]:
    """Given-up deliveries, oldest first (only those among `ids` when given)."""
    rows = WebhookDelivery.objects.filter(delivered_at__isnull=True, gave_up_at__isnull=False)
    if ids:
        rows = rows.filter(pk__in=ids)
    return list(rows.order_by("pk").values_list("pk", flat=True))


def webhooks_requeue(*, older_than: datetime.timedelta = datetime.timedelta(minutes=1)) -> int:
    """Queue again the deliveries never attempted (their queueing was lost to a broker outage)."""
    ids = list(
        WebhookDelivery.objects.filter(
            delivered_at__isnull=True,
            gave_up_at__isnull=True,
            attempts=0,
            created_at__lt=timezone.now() - older_than,
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:500]
    )
    for delivery_id in ids:
        _enqueue(delivery_id)
    return len(ids)
