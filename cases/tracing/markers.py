"""The officer map's markers: each bike missing now with its current terminal's last position and
its plate in use, lean enough for 10,000 markers (web.map_selectors shapes them for the page).

One statement, driven from the open theft reports (theftreport_status_idx), joining the fitted
positions of tracking (tracking.selectors.positions.FITTED_POSITIONS_SQL: a last position older than
the terminal's fitting belongs to the bike the terminal was on before and is left out, as
stolen_near does) and the plates of vehicles (vehicles.selectors.PLATES_IN_USE_SQL); PostgreSQL pulls
both subqueries up, so the plan is that of the join written out.
"""

import datetime
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from cases.models import MISSING_STATUSES
from tracking.selectors.positions import FITTED_POSITIONS_SQL
from vehicles.selectors import PLATES_IN_USE_SQL

MARKERS_FROM = f"""
FROM cases_theftreport r
JOIN ({FITTED_POSITIONS_SQL}) lp ON lp.vehicle_id = r.vehicle_id
LEFT JOIN ({PLATES_IN_USE_SQL}) p ON p.vehicle_id = r.vehicle_id
WHERE r.status = ANY(%(missing)s) AND r.vehicle_id IS NOT NULL {{where}}
"""
MARKERS_SQL = (
    "SELECT r.vehicle_id, ST_Y(lp.point::geometry), ST_X(lp.point::geometry), coalesce(p.number, ''), r.id, "
    "r.station_id, date_part('epoch', r.received_at)::bigint, date_part('epoch', lp.device_time)::bigint"
    + MARKERS_FROM
    + "ORDER BY r.vehicle_id"
)
# The same rows as one JSON array written by PostgreSQL and passed through as text: for 10,000
# markers this saves fetching 80,000 values into Python objects and encoding them again. Numbers
# are written by concat (integers need no escaping), the plate by to_json (which escapes it); the
# rows are not sorted (the browser does not care). Measured on the dev machine with 10,000
# markers: ~55 ms against ~115-150 ms for json_agg(json_build_array(...)) with rounded decimals.
MARKERS_JSON_SQL = (
    "SELECT count(*), '[' || coalesce(string_agg(concat('[', r.vehicle_id, ',', "
    "round(ST_Y(lp.point::geometry) * 1e6)::int, ',', round(ST_X(lp.point::geometry) * 1e6)::int, ',', "
    "to_json(coalesce(p.number, ''))::text, ',', r.id, ',', r.station_id, ',', "
    "date_part('epoch', r.received_at)::bigint, ',', date_part('epoch', lp.device_time)::bigint, ']'), ','), '') "
    "|| ']'" + MARKERS_FROM
)


@dataclass(frozen=True)
class MarkerFilter:
    station_id: int | None = None
    reported_from: datetime.date | None = None  # local dates, inclusive
    reported_to: datetime.date | None = None
    changed_since: datetime.datetime | None = None  # only positions received (or reports taken) since


def _day_start(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def _where(filters: "MarkerFilter") -> tuple[str, dict[str, Any]]:
    where: list[str] = []
    params: dict[str, Any] = {"missing": sorted(MISSING_STATUSES)}
    if filters.station_id is not None:
        where.append("AND r.station_id = %(station)s")
        params["station"] = filters.station_id
    if filters.reported_from is not None:
        where.append("AND r.received_at >= %(from)s")
        params["from"] = _day_start(filters.reported_from)
    if filters.reported_to is not None:
        where.append("AND r.received_at < %(to)s")
        params["to"] = _day_start(filters.reported_to + datetime.timedelta(days=1))
    if filters.changed_since is not None:
        where.append("AND (lp.received_at > %(since)s OR r.received_at > %(since)s)")
        params["since"] = filters.changed_since
    return " ".join(where), params


def marker_rows(filters: MarkerFilter) -> list[tuple[Any, ...]]:
    """One row per missing bike with a position, by vehicle: (vehicle id, latitude, longitude, plate,
    report id, station id, reported at and fix time in epoch seconds), in WGS-84."""
    where, params = _where(filters)
    with connection.cursor() as cursor:
        cursor.execute(MARKERS_SQL.format(where=where), params)
        return cursor.fetchall()


def markers_json(filters: MarkerFilter) -> tuple[int, str]:
    """(count, the rows of marker_rows as JSON text, coordinates in millionths of a degree), built by
    PostgreSQL."""
    where, params = _where(filters)
    with connection.cursor() as cursor:
        cursor.execute(MARKERS_JSON_SQL.format(where=where), params)
        count, text = cursor.fetchone()
    return count, text
