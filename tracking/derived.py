"""Work derived from committed positions, driven by the ingestion outbox (never by the ping path).

`outbox_process` claims due outbox rows with SKIP LOCKED (several workers can run it) and runs every
handler of settings.INGEST_HANDLERS on them as one merged batch, in a savepoint. When that fails the
failure is narrowed, each step in its own savepoint: the rows are halved until the failing row is
found, then that row's terminals until the failing terminal is; everything else is handled and
marked processed in the same transaction, so one bad terminal never holds back another's sighting
or SOS. A row keeps only its failing terminals, counts the attempt and waits (OUTBOX_RETRY_BASE_SECONDS,
doubling up to OUTBOX_RETRY_MAX_SECONDS); after OUTBOX_MAX_ATTEMPTS it is set aside as dead with its
error, shown in the admin, until `manage.py outbox_rerun` runs it again (`outbox_rerun`). A failure
that leaves the connection unusable (the database went away) is nobody's row: it rolls the whole run
back, as before. As the rows are written with the pings, derived work catches up after any Redis or
worker outage.
"""

import datetime
import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from accounts.audit import audit_record
from tracking.models import IngestOutbox, Terminal
from vehicles.models import Vehicle

logger = logging.getLogger(__name__)

ERROR_MAX_CHARS = 4000


@dataclass(frozen=True)
class Batch:
    outbox_ids: list[int]
    terminal_ids: list[int]
    first_device_time: datetime.datetime
    last_device_time: datetime.datetime


Handler = Callable[[Batch], None]


def handlers() -> list[tuple[str, Handler]]:
    return [(path, import_string(path)) for path in settings.INGEST_HANDLERS]


@dataclass
class Failure:
    """The terminals of one row whose handlers still fail, with the first error seen."""

    terminal_ids: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    detail: str = ""


def _batch(rows: Sequence[IngestOutbox], terminal_ids: list[int] | None = None) -> Batch:
    return Batch(
        outbox_ids=[row.pk for row in rows],
        terminal_ids=sorted({t for row in rows for t in row.terminal_ids}) if terminal_ids is None else terminal_ids,
        first_device_time=min(row.first_device_time for row in rows),
        last_device_time=max(row.last_device_time for row in rows),
    )


def _attempt(batch: Batch, steps: list[tuple[str, Handler]]) -> tuple[str, BaseException] | None:
    """Run every handler on `batch` in a savepoint: None, or (handler, exception) after a rollback
    to the savepoint. Re-raises when the connection did not survive (nobody's row is to blame)."""
    current = ""
    try:
        with transaction.atomic():
            for path, handler in steps:
                current = path
                handler(batch)
    except Exception as exc:
        if connection.needs_rollback or connection.closed_in_transaction or connection.connection is None:
            raise
        return current, exc
    return None


class _Run:
    """One claim's processing: the merged batch, then halves of the rows, then halves of a row's
    terminals, down to the failing ones (log2 steps per failure: 1,000 terminals, ~10 attempts)."""

    def __init__(self) -> None:
        self.steps = handlers()
        self.failures: dict[int, Failure] = {}
        self.attempts = 0

    def rows(self, rows: Sequence[IngestOutbox]) -> None:
        self.attempts += 1
        if _attempt(_batch(rows), self.steps) is None:
            return
        if len(rows) == 1:
            logger.warning("outbox row %s failed: narrowing to its terminals", rows[0].pk)
            self.terminals(rows[0], sorted(set(rows[0].terminal_ids)), failed=True)
            return
        middle = len(rows) // 2
        self.rows(rows[:middle])
        self.rows(rows[middle:])

    def terminals(self, row: IngestOutbox, terminal_ids: list[int], *, failed: bool = False) -> None:
        """`failed`: these terminals as a whole are known to fail (the row's own attempt)."""
        if len(terminal_ids) > 1 and failed:
            middle = len(terminal_ids) // 2
            self.terminals(row, terminal_ids[:middle])
            self.terminals(row, terminal_ids[middle:])
            return
        self.attempts += 1
        outcome = _attempt(_batch([row], terminal_ids), self.steps)
        if outcome is None:
            return
        if len(terminal_ids) > 1:
            self.terminals(row, terminal_ids, failed=True)
            return
        handler, exc = outcome
        who = f"terminal {terminal_ids[0]}" if terminal_ids else "batch without terminals"
        logger.error("outbox row %s, %s: %s failed", row.pk, who, handler, exc_info=exc)
        failure = self.failures.setdefault(row.pk, Failure())
        failure.terminal_ids.extend(terminal_ids)
        failure.errors.append(f"{who}: {handler}: {type(exc).__name__}: {exc}")
        if not failure.detail:
            failure.detail = "".join(traceback.format_exception(exc, limit=-8))


def retry_delay(attempts: int) -> datetime.timedelta:
    """The wait after failed attempt number `attempts` (1, 2, …): base, 2 × base, … capped."""
    seconds = settings.OUTBOX_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return datetime.timedelta(seconds=min(seconds, settings.OUTBOX_RETRY_MAX_SECONDS))


def _error_text(failure: Failure) -> str:
    lines = failure.errors[:10]
    if len(failure.errors) > 10:
        lines.append(f"… and {len(failure.errors) - 10} more terminals")
    return ("\n".join(lines) + "\n\n" + failure.detail)[:ERROR_MAX_CHARS]


def _record(rows: Sequence[IngestOutbox], failures: dict[int, Failure], *, dead_now: bool = False) -> None:
    """Mark the rows that went through processed; the others keep their failing terminals and wait,
    or are set aside as dead once out of attempts (at once with `dead_now`: a re-run by hand)."""
    now = timezone.now()
    done = [row.pk for row in rows if row.pk not in failures]
    if done:
        IngestOutbox.objects.filter(pk__in=done).update(processed_at=now)
    for row in rows:
        failure = failures.get(row.pk)
        if failure is None:
            continue
        attempts = row.attempts + 1
        dead = dead_now or attempts >= settings.OUTBOX_MAX_ATTEMPTS
        IngestOutbox.objects.filter(pk=row.pk).update(
            terminal_ids=sorted(set(failure.terminal_ids)),
            attempts=attempts,
            last_error=_error_text(failure),
            next_attempt_at=None if dead else now + retry_delay(attempts),
            dead_at=now if dead else None,
        )
        if dead:
            logger.error("outbox row %s set aside as dead after %s attempts", row.pk, attempts)


def outbox_process(*, limit: int = 500) -> int:
    """Process up to `limit` due batches; returns how many rows were claimed (handled, or narrowed
    to their failing terminals and put back to wait)."""
    with transaction.atomic():
        rows = list(
            IngestOutbox.objects.select_for_update(skip_locked=True)
            .filter(processed_at__isnull=True, dead_at__isnull=True)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now()))
            .order_by("id")[:limit]
        )
        if not rows:
            return 0
        outbox_rows_run(rows)
    return len(rows)


def outbox_rows_run(rows: Sequence[IngestOutbox]) -> int:
    """Handle claimed rows (the caller holds their locks, in its transaction) and record the
    outcome; returns how many handler runs it took (1 when nothing failed)."""
    run = _Run()
    run.rows(rows)
    _record(rows, run.failures)
    return run.attempts


def outbox_dead(ids: Sequence[int] | None = None) -> list[int]:
    """Dead rows, oldest first (only those among `ids` when given)."""
    rows = IngestOutbox.objects.filter(processed_at__isnull=True, dead_at__isnull=False)
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    return list(rows.order_by("id").values_list("pk", flat=True))


@dataclass(frozen=True)
class Rerun:
    outbox_id: int
    processed: bool
    error: str = ""


def outbox_rerun(*, outbox_id: int, by: str, reason: str) -> Rerun | None:
    """Run one dead row's handlers again, narrowed like `outbox_process`, in its own transaction:
    processed, or dead again with the new error (another attempt counted). None when the row is
    not dead (anymore). Audited with who ran it and why, in the same transaction. The caller
    (manage.py outbox_rerun) goes oldest first."""
    if not by.strip() or not reason.strip():
        raise ValidationError(_("Name who re-runs it and why; both are recorded."))
    with transaction.atomic():
        row = (
            IngestOutbox.objects.select_for_update(skip_locked=True)
            .filter(pk=outbox_id, processed_at__isnull=True, dead_at__isnull=False)
            .first()
        )
        if row is None:
            return None
        run = _Run()
        run.rows([row])
        _record([row], run.failures, dead_now=True)
        failure = run.failures.get(outbox_id)
        audit_record(
            user=None,
            action="outbox.rerun",
            object_type="outbox_batch",
            object_id=outbox_id,
            query={"by": by.strip()[:100], "result": "failed" if failure else "processed"},
            result_count=len(row.terminal_ids),
            reason=reason.strip(),
        )
    return Rerun(outbox_id, processed=failure is None, error=_error_text(failure) if failure else "")


def outbox_backlog() -> dict[str, Any]:
    """What an operator watches: rows waiting (due or backing off), dead rows, the oldest waiting row's age."""
    pending = IngestOutbox.objects.filter(processed_at__isnull=True)
    oldest = pending.filter(dead_at__isnull=True).order_by("id").values_list("created_at", flat=True).first()
    return {
        "pending": pending.filter(dead_at__isnull=True).count(),
        "retrying": pending.filter(dead_at__isnull=True, attempts__gt=0).count(),
        "dead": pending.filter(dead_at__isnull=False).count(),
        "oldest_pending_age_s": round((timezone.now() - oldest).total_seconds(), 1) if oldest else None,
    }


def stolen_bike_sightings(batch: Batch) -> None:
    """A position from a bike reported stolen raises a "stolen_sighting" alarm for officers, one
    open alarm per bike at a time (a new one once the previous was handled).
    """
    stolen = list(
        Terminal.objects.filter(pk__in=batch.terminal_ids, vehicle__status=Vehicle.Status.STOLEN).values_list(
            "pk", flat=True
        )
    )
    if not stolen:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO tracking_alarm (terminal_id, vehicle_id, kind, source, at, received_at, point, status, note)
            SELECT t.id, t.vehicle_id, 'stolen_sighting', 'derived', lp.device_time, now(), lp.point, 'new', ''
            FROM tracking_terminal t
            JOIN tracking_lastposition lp ON lp.terminal_id = t.id
            WHERE t.id = ANY(%s)
              AND NOT EXISTS (
                  SELECT 1 FROM tracking_alarm a
                  WHERE a.terminal_id = t.id AND a.kind = 'stolen_sighting' AND a.status = 'new')
            ON CONFLICT (terminal_id, kind, at) DO NOTHING
            """,
            [stolen],
        )


# The position an armed bike is compared with: where it was when armed, or when the last
# displacement call was closed (`since_floors`, the duty room's), so a call closed while the bike
# stays armed needs a new move. The derived alarm keeps the position's arrival time, so a batch
# processed late (workers down) still raises its call, while positions replayed late from a
# terminal's buffer do not.
DISPLACEMENT_SQL = """
INSERT INTO tracking_alarm (terminal_id, vehicle_id, kind, source, at, received_at, point, status, note)
SELECT DISTINCT ON (t.id) t.id, t.vehicle_id, 'displacement', 'derived', p.device_time, p.received_at, p.point,
       'new', ''
FROM unnest(%(ids)s::bigint[], %(floors)s::timestamptz[]) AS w(terminal_id, since_floor)
JOIN tracking_terminal t ON t.id = w.terminal_id
CROSS JOIN LATERAL (
    SELECT GREATEST(
        LEAST(CASE WHEN t.armed THEN t.armed_changed_at END,
              CASE WHEN t.device_armed THEN t.device_armed_changed_at END),
        w.since_floor
    ) AS since
) s
CROSS JOIN LATERAL (
    SELECT COALESCE(
        (SELECT b.point FROM tracking_ping b
         WHERE b.terminal_id = t.id AND b.valid AND NOT b.outlier
           AND b.device_time <= s.since AND b.device_time > s.since - interval '7 days'
         ORDER BY b.device_time DESC LIMIT 1),
        (SELECT f.point FROM tracking_ping f
         WHERE f.terminal_id = t.id AND f.valid AND NOT f.outlier AND f.device_time > s.since
         ORDER BY f.device_time LIMIT 1)
    ) AS point
) anchor
JOIN tracking_ping p ON p.terminal_id = t.id
WHERE t.vehicle_id IS NOT NULL AND (t.armed OR t.device_armed) AND s.since IS NOT NULL
  AND p.device_time BETWEEN %(first)s AND %(last)s AND p.device_time > s.since
  AND p.valid AND NOT p.outlier
  AND ST_Distance(p.point, anchor.point) >= %(metres)s
ORDER BY t.id, p.device_time
ON CONFLICT (terminal_id, kind, at) DO NOTHING
"""


def displacement_alarms_raise(
    batch: Batch, *, since_floors: Mapping[int, datetime.datetime | None], metres: float
) -> None:
    """A derived "displacement" alarm for each armed terminal of `since_floors` (terminal id -> the
    moment before which positions do not count, None: none) whose batch positions lie `metres` or
    more from where the bike was when armed (or at that moment, if later): the first such position."""
    if not since_floors:
        return
    params: dict[str, Any] = {
        "ids": list(since_floors),
        "floors": list(since_floors.values()),
        "first": batch.first_device_time,
        "last": batch.last_device_time,
        "metres": metres,
    }
    with connection.cursor() as cursor:
        cursor.execute(DISPLACEMENT_SQL, params)


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
