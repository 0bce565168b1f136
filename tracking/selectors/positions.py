"""A bike's terminals over time and where they last were.

A vehicle's positions are read per terminal installation (TerminalInstallation), so a terminal
moved from one bike to another never lends its positions to the wrong bike, and a bike whose
terminal was replaced keeps its whole history. Each installation's time window becomes one
`terminal_id = … AND device_time >= … AND device_time < …` branch: the primary key
(terminal_id, device_time) serves it, and the constant time bounds prune the daily partitions
when the query is planned.
"""

import datetime
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from tracking.models import LastPosition, TerminalInstallation


@dataclass(frozen=True)
class Window:
    """One terminal's installation on the vehicle, cut to the period asked for."""

    terminal_id: int
    start: datetime.datetime
    end: datetime.datetime


def vehicle_terminal_windows(*, vehicle_id: int, since: datetime.datetime, until: datetime.datetime) -> list[Window]:
    rows = (
        TerminalInstallation.objects.filter(vehicle_id=vehicle_id, installed_at__lt=until)
        .filter(Q(removed_at__isnull=True) | Q(removed_at__gt=since))
        .order_by("installed_at")
        .values_list("terminal_id", "installed_at", "removed_at")
    )
    return [
        Window(terminal_id, max(since, installed), min(until, removed) if removed else until)
        for terminal_id, installed, removed in rows
    ]


# Each bike's current terminal with its last position, when that was taken since the terminal was
# fitted (an older one belongs to the bike the terminal was on before): (vehicle_id, terminal_id,
# point, device_time, received_at). A whole SELECT for another app's statement to join on
# vehicle_id: PostgreSQL pulls it up into that statement, so the plan is the one of the join written
# out there.
FITTED_POSITIONS_SQL = (
    "SELECT i.vehicle_id, lp.terminal_id, lp.point, lp.device_time, lp.received_at "
    "FROM tracking_terminalinstallation i "
    "JOIN tracking_lastposition lp ON lp.terminal_id = i.terminal_id AND lp.device_time >= i.installed_at "
    "WHERE i.removed_at IS NULL"
)


@dataclass(frozen=True)
class Position:
    vehicle_id: int
    terminal_id: int
    device_time: datetime.datetime
    received_at: datetime.datetime | None
    latitude: float
    longitude: float
    speed_kmh: float | None
    course: float | None
    age_seconds: int


def vehicle_position(*, vehicle_id: int) -> Position | None:
    """The newest plausible fix of the vehicle: the current terminal's LastPosition (one row), or,
    when the current terminal has not reported since it was fitted or the bike has none now, the
    newest valid fix of the earlier installations (newest first)."""
    now = timezone.now()
    installations = TerminalInstallation.objects.filter(vehicle_id=vehicle_id).order_by("-installed_at")
    for inst in installations.values_list("terminal_id", "installed_at", "removed_at")[:5]:
        terminal_id, installed_at, removed_at = inst
        if removed_at is None:
            last = LastPosition.objects.filter(terminal_id=terminal_id, device_time__gte=installed_at).first()
            if last is not None:
                return Position(
                    vehicle_id=vehicle_id,
                    terminal_id=terminal_id,
                    device_time=last.device_time,
                    received_at=last.received_at,
                    latitude=last.point.y,
                    longitude=last.point.x,
                    speed_kmh=last.speed_kmh,
                    course=last.course,
                    age_seconds=int((now - last.device_time).total_seconds()),
                )
            continue
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT device_time, received_at, ST_Y(point::geometry), ST_X(point::geometry), speed_kmh, course "
                "FROM tracking_ping WHERE terminal_id = %s AND device_time >= %s AND device_time < %s "
                "AND valid AND NOT outlier ORDER BY device_time DESC LIMIT 1",
                [terminal_id, installed_at, removed_at],
            )
            row = cursor.fetchone()
        if row is not None:
            return Position(
                vehicle_id=vehicle_id,
                terminal_id=terminal_id,
                device_time=row[0],
                received_at=row[1],
                latitude=row[2],
                longitude=row[3],
                speed_kmh=row[4],
                course=row[5],
                age_seconds=int((now - row[0]).total_seconds()),
            )
    return None


def terminal_vehicles(terminal_ids: list[int]) -> dict[int, int]:
    """terminal id -> the bike it is fitted to now, for those of `terminal_ids` on a bike (one
    array parameter: an ingestion batch names thousands of terminals)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, vehicle_id FROM tracking_terminal WHERE id = ANY(%s) AND vehicle_id IS NOT NULL",
            [list(terminal_ids)],
        )
        return dict(cursor.fetchall())


@dataclass(frozen=True, slots=True)
class Seen:
    """A moment a terminal was heard: a position, or an alarm sent without one."""

    at: datetime.datetime
    latitude: float
    longitude: float
    speed_kmh: float | None


# Valid, plausible positions, and alarms sent without a fix (placed at the last known position).
_SEEN_SQL = """
SELECT device_time, ST_Y(point::geometry), ST_X(point::geometry), speed_kmh
FROM tracking_ping
WHERE terminal_id = %(terminal)s AND device_time BETWEEN %(first)s AND %(last)s AND device_time > %(after)s
  AND valid AND NOT outlier
UNION ALL
SELECT a.at, ST_Y(lp.point::geometry), ST_X(lp.point::geometry), NULL
FROM tracking_alarm a JOIN tracking_lastposition lp ON lp.terminal_id = a.terminal_id
WHERE a.terminal_id = %(terminal)s AND a.source = 'terminal' AND a.point IS NULL
  AND a.at BETWEEN %(first)s AND %(last)s AND a.at > %(after)s
ORDER BY 1
"""


def terminal_seen(
    *, terminal_id: int, first: datetime.datetime, last: datetime.datetime, after: datetime.datetime
) -> list[Seen]:
    """The moments the terminal was heard in [first, last] after `after`, in time order: its plausible
    fixes and the alarms it sent without a fix (at its last known position)."""
    with connection.cursor() as cursor:
        cursor.execute(_SEEN_SQL, {"terminal": terminal_id, "first": first, "last": last, "after": after})
        return [Seen(*row) for row in cursor.fetchall()]
