"""Pre-aggregated tables behind the dashboard, rebuilt from the source tables.

RegistrationDay (final once a day is over; later days read live), TheftMonth (rebuilt whole; months
changed since read live), PlatedCount (a snapshot rebuilt whole), and AlarmDay and RescueDay, which
outlive their source rows once retention removes them, so days past the kept period are final and
never recounted lower. `rollups_refresh()` is what the beat task runs; a bulk import of past events
is noticed by comparing totals, and `rollups_rebuild()` (`manage.py stats_rollups --rebuild`) starts
over at once. Each table's rule: docs/architecture.md#statistics-rollups.
"""

import datetime

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from cases.figures import RESCUE_DAYS_SQL, THEFT_MONTHS_SQL
from cases.models import DutyCall
from stats.models import RollupState
from tracking.models import Alarm
from tracking.retention import retention_days, retention_declared
from tracking.selectors.alarms import ALARM_DAYS_SQL
from vehicles.selectors import PLATED_COUNTS_SQL, REGISTRATION_DAYS_SQL, registration_events_before

REGISTRATIONS = "registrations"
PLATED = "plated"
THEFTS = "thefts"
# Reports received or moved this long before a rebuild may still have been uncommitted then:
# readers treat them as changed after it.
LATE_COMMIT_MARGIN = datetime.timedelta(minutes=5)

REDO_DAYS = 2


def day_start(day: datetime.date) -> datetime.datetime:
    """Midnight at the start of a county day, as an aware datetime."""
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time()))


FILL_SQL = "INSERT INTO stats_registrationday (day, station_id, kind, events)" + REGISTRATION_DAYS_SQL


def _registrations_fill(cursor, first: datetime.date | None, last: datetime.date) -> None:
    """(Re)compute RegistrationDay rows for the days first..last (first None: from the beginning)."""
    until = day_start(last + datetime.timedelta(days=1))
    if first is None:
        cursor.execute("DELETE FROM stats_registrationday")
        since = datetime.datetime(1900, 1, 1, tzinfo=datetime.UTC)
    else:
        cursor.execute("DELETE FROM stats_registrationday WHERE day BETWEEN %s AND %s", [first, last])
        since = day_start(first)
    cursor.execute(FILL_SQL, {"tz": settings.TIME_ZONE, "since": since, "until": until})


def _registrations_drifted(cursor, last: datetime.date) -> bool:
    """Do the rolled-up days hold every event up to `last`? Not after a bulk import of past events
    (seed_demo, a provincial import): then the caller rebuilds. One count over the events table
    (tens of milliseconds at a million) keeps the rollup from silently missing them."""
    events = registration_events_before(day_start(last + datetime.timedelta(days=1)))
    cursor.execute("SELECT coalesce(sum(events), 0) FROM stats_registrationday")
    return events != cursor.fetchone()[0]


def registrations_refresh(*, today: datetime.date | None = None, rebuild: bool = False) -> datetime.date:
    """Bring RegistrationDay up to yesterday; returns the last complete day."""
    today = today or timezone.localdate()
    last = today - datetime.timedelta(days=1)
    with transaction.atomic(), connection.cursor() as cursor:
        state, _ = RollupState.objects.select_for_update().get_or_create(name=REGISTRATIONS)
        if rebuild or state.complete_through is None:
            _registrations_fill(cursor, None, last)
        else:
            first = min(state.complete_through - datetime.timedelta(days=REDO_DAYS - 1), last)
            _registrations_fill(cursor, first, last)
            if _registrations_drifted(cursor, last):
                _registrations_fill(cursor, None, last)
        state.complete_through = last
        state.refreshed_at = timezone.now()
        state.save()
    return last


def plated_refresh() -> None:
    """Rebuild the PlatedCount snapshot in one transaction (readers see the old one until commit)."""
    with transaction.atomic(), connection.cursor() as cursor:
        state, _ = RollupState.objects.select_for_update().get_or_create(name=PLATED)
        cursor.execute("DELETE FROM stats_platedcount")
        cursor.execute("INSERT INTO stats_platedcount (township_id, station_id, plated)" + PLATED_COUNTS_SQL)
        state.refreshed_at = timezone.now()
        state.complete_through = timezone.localdate()
        state.save()


THEFT_MONTHS_INSERT = (
    "INSERT INTO stats_theftmonth (month, station_id, reported, filed, solved, recovered, recovery_days) "  # noqa: S608 (constants)
    f"SELECT * FROM ({THEFT_MONTHS_SQL}) AS m"
)


def thefts_refresh() -> None:
    """Rebuild TheftMonth from every report (a few hundred ms at 50,000 reports)."""
    with transaction.atomic(), connection.cursor() as cursor:
        state, _ = RollupState.objects.select_for_update().get_or_create(name=THEFTS)
        started = timezone.now()
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute("DELETE FROM stats_theftmonth")
        cursor.execute(THEFT_MONTHS_INSERT, {"tz": settings.TIME_ZONE, "ids": None})
        state.refreshed_at = started
        state.save()


# --- counts that outlive their rows (alarms, rescue calls) ---------------------------------------

ALARMS = "alarms"
RESCUES = "rescues"

ALARM_STATUSES = [s.value for s in Alarm.Status]
# Recounted days (from %(open_from)s) take the recount; final days only a larger one (rows of a
# final day can only have gone, by retention, or come, by an import). Rows the recount no longer
# has (a bike moved to another station) drop to zero: the runtime role may not delete here.
# Unchanged rows are not written again.
ALARM_DAYS_UPSERT = f"""
    WITH c AS MATERIALIZED ({ALARM_DAYS_SQL}),
    gone AS (
        UPDATE stats_alarmday s SET alarms = 0, handled = 0
        WHERE s.day >= %(open_from)s AND s.day <= %(last)s AND s.alarms > 0
          AND NOT EXISTS (SELECT 1 FROM c WHERE c.day = s.day AND c.kind = s.kind
                          AND c.station_id IS NOT DISTINCT FROM s.station_id)
    )
    INSERT INTO stats_alarmday AS s (day, station_id, kind, alarms, handled)
    SELECT day, station_id, kind, alarms, handled FROM c
    ON CONFLICT (day, station_id, kind) DO UPDATE SET alarms = excluded.alarms, handled = excluded.handled
    WHERE (s.alarms, s.handled) IS DISTINCT FROM (excluded.alarms, excluded.handled)
      AND (excluded.day >= %(open_from)s OR (excluded.alarms, excluded.handled) > (s.alarms, s.handled))
"""  # noqa: S608 (constants)
RESCUE_DAYS_UPSERT = f"""
    WITH c AS MATERIALIZED ({RESCUE_DAYS_SQL}),
    gone AS (
        UPDATE stats_rescueday s SET calls = 0, answered = 0, answer_minutes = '{{}}'
        WHERE s.day >= %(open_from)s AND s.day <= %(last)s AND s.calls > 0
          AND NOT EXISTS (SELECT 1 FROM c WHERE c.day = s.day AND c.station_id = s.station_id)
    )
    INSERT INTO stats_rescueday AS s (day, station_id, calls, answered, answer_minutes)
    SELECT day, station_id, calls, answered, answer_minutes FROM c
    ON CONFLICT (day, station_id) DO UPDATE
        SET calls = excluded.calls, answered = excluded.answered, answer_minutes = excluded.answer_minutes
    WHERE (s.calls, s.answered, s.answer_minutes)
          IS DISTINCT FROM (excluded.calls, excluded.answered, excluded.answer_minutes)
      AND (excluded.day >= %(open_from)s OR (excluded.calls, excluded.answered) > (s.calls, s.answered))
"""  # noqa: S608 (constants)
# Which rollup counts which table (its retention rule says how long the rows are kept).
DAILY_COUNTS: dict[str, tuple[str, type[models.Model]]] = {
    ALARMS: (ALARM_DAYS_UPSERT, Alarm),
    RESCUES: (RESCUE_DAYS_UPSERT, DutyCall),
}


def open_from(model: type[models.Model], *, now: datetime.datetime | None = None) -> datetime.date:
    """The first day whose rows of `model` are all surely still kept. Retention removes rows older
    than the table's period (as tracking.retention reads it), whose cutoff falls on some day; the
    day after it is whole, and the one after that stays whole should a retention run start while
    the recount is under way."""
    rule = next(rule for rule in retention_declared().rules if rule.model is model)
    cutoff = (now or timezone.now()) - datetime.timedelta(days=retention_days(rule))
    return timezone.localdate(cutoff) + datetime.timedelta(days=2)


def daily_counts_refresh(name: str, *, today: datetime.date | None = None, full: bool = False) -> datetime.date:
    """Recount AlarmDay (name ALARMS) or RescueDay (RESCUES) up to yesterday: the days still whole
    and the closed days not counted yet; `full` (and the first run: the backfill) counts every day
    there are rows for, final days taking only larger figures. Returns the last complete day."""
    upsert, model = DAILY_COUNTS[name]
    today = today or timezone.localdate()
    last = today - datetime.timedelta(days=1)
    with transaction.atomic(), connection.cursor() as cursor:
        state, _ = RollupState.objects.select_for_update().get_or_create(name=name)
        first_open = max(open_from(model), state.final_before or datetime.date.min)
        if full or state.complete_through is None:
            since = datetime.datetime(1900, 1, 1, tzinfo=datetime.UTC)
        else:
            since = day_start(min(first_open, state.complete_through + datetime.timedelta(days=1)))
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            upsert,
            {
                "tz": settings.TIME_ZONE,
                "since": since,
                "until": day_start(last + datetime.timedelta(days=1)),
                "station": None,
                "kinds": None,
                "statuses": ALARM_STATUSES,
                "open_from": first_open,
                "last": last,
            },
        )
        state.final_before = first_open
        state.complete_through = last
        state.refreshed_at = timezone.now()
        state.save()
    return last


def rollups_refresh(*, today: datetime.date | None = None) -> None:
    registrations_refresh(today=today)
    plated_refresh()
    thefts_refresh()
    daily_counts_refresh(ALARMS, today=today)
    daily_counts_refresh(RESCUES, today=today)


def rollups_rebuild(*, today: datetime.date | None = None) -> None:
    """Everything from the source tables, after an import or seed_demo_activity. The alarm and
    rescue days recount every day; final days only ever take larger figures."""
    registrations_refresh(today=today, rebuild=True)
    plated_refresh()
    thefts_refresh()
    daily_counts_refresh(ALARMS, today=today, full=True)
    daily_counts_refresh(RESCUES, today=today, full=True)
