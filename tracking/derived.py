"""Work derived from committed positions, driven by the ingestion outbox (never by the ping path).

`outbox_process` claims pending outbox rows with SKIP LOCKED (several workers can run it), calls
each handler in settings.INGEST_HANDLERS with the batch, and marks the rows processed in the same
transaction: a handler failure rolls the claim back and the batch is retried on the next run. As
the rows are written with the pings, derived work catches up after any Redis or worker outage.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from tracking.models import IngestOutbox

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batch:
    outbox_ids: list[int]
    terminal_ids: list[int]
    first_device_time: object
    last_device_time: object


Handler = Callable[[Batch], None]


def handlers() -> list[Handler]:
    return [import_string(path) for path in settings.INGEST_HANDLERS]


def outbox_process(*, limit: int = 500) -> int:
    """Process up to `limit` pending batches as one merged batch; returns how many were processed."""
    with transaction.atomic():
        rows = list(
            IngestOutbox.objects.select_for_update(skip_locked=True)
            .filter(processed_at__isnull=True)
            .order_by("id")[:limit]
        )
        if not rows:
            return 0
        batch = Batch(
            outbox_ids=[row.pk for row in rows],
            terminal_ids=sorted({tid for row in rows for tid in row.terminal_ids}),
            first_device_time=min(row.first_device_time for row in rows),
            last_device_time=max(row.last_device_time for row in rows),
        )
        for handler in handlers():
            handler(batch)
        IngestOutbox.objects.filter(pk__in=batch.outbox_ids).update(processed_at=timezone.now())
    return len(rows)


def stolen_bike_sightings(batch: Batch) -> None:
    """A position from a bike reported stolen raises a "stolen_sighting" alarm for officers, one
    open alarm per bike at a time (a new one once the previous was handled).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO tracking_alarm (terminal_id, vehicle_id, kind, source, at, received_at, point, status, note)
            SELECT t.id, t.vehicle_id, 'stolen_sighting', 'derived', lp.device_time, now(), lp.point, 'new', ''
            FROM tracking_terminal t
            JOIN vehicles_vehicle v ON v.id = t.vehicle_id AND v.status = 'stolen'
            JOIN tracking_lastposition lp ON lp.terminal_id = t.id
            WHERE t.id = ANY(%s)
              AND NOT EXISTS (
                  SELECT 1 FROM tracking_alarm a
                  WHERE a.terminal_id = t.id AND a.kind = 'stolen_sighting' AND a.status = 'new')
            ON CONFLICT (terminal_id, kind, at) DO NOTHING
            """,
            [batch.terminal_ids],
        )


def offline_alarms_raise() -> int:
    """An "offline" alarm for each bound terminal silent for three expected heartbeat intervals,
    once per silence (a terminal heard from again may raise a new one later).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO tracking_alarm (terminal_id, vehicle_id, kind, source, at, received_at, point, status, note)
            SELECT t.id, t.vehicle_id, 'offline', 'derived', now(), now(), lp.point, 'new', ''
            FROM tracking_terminal t
            LEFT JOIN tracking_lastposition lp ON lp.terminal_id = t.id
            WHERE t.active AND t.vehicle_id IS NOT NULL AND t.positioning_enabled
              AND t.last_seen_at < now() - make_interval(secs => 3 * t.heartbeat_interval_s)
              AND NOT EXISTS (
                  SELECT 1 FROM tracking_alarm a
                  WHERE a.terminal_id = t.id AND a.kind = 'offline' AND a.at >= t.last_seen_at)
            ON CONFLICT (terminal_id, kind, at) DO NOTHING
            """
        )
        return cursor.rowcount
