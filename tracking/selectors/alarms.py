"""Alarms and armed terminals, as the duty room (cases.alerts.duty_room) and the statistics read them."""

import datetime
from dataclasses import dataclass

from django.db import connection

from vehicles.selectors import VEHICLE_STATIONS_SQL


def armed_terminals(terminal_ids: list[int]) -> dict[int, int]:
    """terminal id -> its bike, for those of `terminal_ids` on a bike and armed, by the owner
    (Terminal.armed) or in the terminal's own defence mode (Terminal.device_armed)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, vehicle_id FROM tracking_terminal "
            "WHERE id = ANY(%s) AND vehicle_id IS NOT NULL AND (armed OR device_armed)",
            [list(terminal_ids)],
        )
        return dict(cursor.fetchall())


@dataclass(frozen=True)
class BatchAlarm:
    id: int
    vehicle_id: int
    kind: str
    source: str
    at: datetime.datetime
    received_at: datetime.datetime
    note: str
    # Where: the alarm's own point, else the terminal's last position (None: neither).
    longitude: float | None
    latitude: float | None
    # The terminal was armed (by the owner or in its defence mode) before the alarm (None: unknown).
    armed_before: bool | None


BATCH_ALARMS_SQL = """
SELECT a.id, a.vehicle_id, a.kind, a.source, a.at, a.received_at, a.note,
       ST_X(COALESCE(a.point, lp.point)::geometry), ST_Y(COALESCE(a.point, lp.point)::geometry),
       (t.armed AND a.at > t.armed_changed_at) OR (t.device_armed AND a.at > t.device_armed_changed_at)
FROM tracking_alarm a
JOIN tracking_terminal t ON t.id = a.terminal_id
LEFT JOIN tracking_lastposition lp ON lp.terminal_id = a.terminal_id
WHERE a.terminal_id = ANY(%(ids)s) AND a.at BETWEEN %(first)s AND %(last)s AND a.vehicle_id IS NOT NULL
ORDER BY a.id
"""


def batch_alarms(*, terminal_ids: list[int], first: datetime.datetime, last: datetime.datetime) -> list[BatchAlarm]:
    """The alarms of these terminals' bikes dated within [first, last] (an ingestion batch's span),
    terminal alarms and derived ones alike."""
    with connection.cursor() as cursor:
        cursor.execute(BATCH_ALARMS_SQL, {"ids": list(terminal_ids), "first": first, "last": last})
        return [BatchAlarm(*row) for row in cursor.fetchall()]


# Alarms per county day, registering station of the bike (NULL: no registered bike) and kind: what
# the statistics count (stats.rollups keeps the closed days, stats.selectors reads the later ones
# live with the same statement). Columns (day, station_id, kind, alarms, handled); parameters tz,
# since, until, station (NULL: all), kinds (NULL: all), statuses (every alarm status).
ALARM_DAYS_SQL = f"""
    SELECT (a.at AT TIME ZONE %(tz)s)::date AS day, v.station_id, a.kind,
           count(*) AS alarms, count(*) FILTER (WHERE a.status <> 'new') AS handled
    FROM tracking_alarm a LEFT JOIN ({VEHICLE_STATIONS_SQL}) v ON v.id = a.vehicle_id
    -- status = ANY (every status) lets alarm_status_at_idx serve a short time range, the live day
    -- of a dashboard request, instead of a scan of every alarm.
    WHERE a.status = ANY(%(statuses)s::text[]) AND a.at >= %(since)s AND a.at < %(until)s
      AND (%(station)s::bigint IS NULL OR v.station_id = %(station)s)
      AND (%(kinds)s::text[] IS NULL OR a.kind = ANY(%(kinds)s::text[]))
    GROUP BY 1, 2, 3
"""  # noqa: S608 (constants)
