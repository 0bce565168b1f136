"""What the officer map reads: stolen bikes' last positions, lean enough for 10,000 markers.

One statement, driven from the open theft reports (theftreport_status_idx): each missing bike's
current terminal installation, that terminal's LastPosition (one row per terminal, kept by
ingestion) and the bike's plate in use. A last position older than the terminal's fitting belongs
to the bike the terminal was on before and is left out, as cases.tracing.stolen_near does.

The rows go to the browser as compact arrays (see MARKER_FIELDS) rather than GeoJSON features: 10,000
markers are ~0.5 MB instead of ~2.5 MB, and the browser clusters them (Leaflet.markercluster).
"""

import datetime
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from cases.models import MISSING_STATUSES, CaseLink, TheftReport
from vehicles.models import Plate, Vehicle
from web.coords import to_display

# Coordinates in millionths of a degree (0.1 m; integers are shorter in JSON and cheaper to write
# than rounded decimals), times in epoch seconds.
MARKER_FIELDS = ["vehicle", "lat_e6", "lon_e6", "plate", "report", "station", "reported_at", "fix_at"]

MARKERS_FROM = """
FROM cases_theftreport r
JOIN tracking_terminalinstallation i ON i.vehicle_id = r.vehicle_id AND i.removed_at IS NULL
JOIN tracking_lastposition lp ON lp.terminal_id = i.terminal_id AND lp.device_time >= i.installed_at
LEFT JOIN vehicles_plate p ON p.vehicle_id = r.vehicle_id AND p.status = 'issued'
WHERE r.status = ANY(%(missing)s) AND r.vehicle_id IS NOT NULL {where}
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
    where, params = [], {"missing": sorted(MISSING_STATUSES)}
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


def stolen_markers(*, filters: MarkerFilter, datum: str = "wgs84") -> list[list[Any]]:
    """One row per missing bike with a position: the values of MARKER_FIELDS, coordinates in the
    display datum."""
    where, params = _where(filters)
    with connection.cursor() as cursor:
        cursor.execute(MARKERS_SQL.format(where=where), params)
        rows = cursor.fetchall()
    out = []
    for vehicle_id, lat, lon, plate, report_id, station_id, reported, fixed in rows:
        lat, lon = to_display(lat, lon, datum)
        out.append([vehicle_id, round(lat * 1e6), round(lon * 1e6), plate, report_id, station_id, reported, fixed])
    return out


def stolen_markers_json(*, filters: MarkerFilter) -> tuple[int, str]:
    """(count, the rows of stolen_markers as JSON text) in WGS-84, built by PostgreSQL."""
    where, params = _where(filters)
    with connection.cursor() as cursor:
        cursor.execute(MARKERS_JSON_SQL.format(where=where), params)
        count, text = cursor.fetchone()
    return count, text


@dataclass(frozen=True)
class MarkerCard:
    vehicle: Vehicle
    plate: str
    report: TheftReport | None
    cases: list[Any]


def marker_card(*, vehicle_id: int) -> MarkerCard:
    """What the card of a clicked marker shows: the bike, its plate, its open report and cases.
    No owner data: the card links to the record and the report, which have their own rules."""
    vehicle = Vehicle.objects.select_related("station").get(pk=vehicle_id)
    plate = Plate.objects.filter(vehicle=vehicle, status=Plate.Status.ISSUED).values_list("number", flat=True).first()
    report = (
        TheftReport.objects.filter(vehicle=vehicle, status__in=MISSING_STATUSES)
        .select_related("station")
        .order_by("-received_at")
        .first()
    )
    links = CaseLink.objects.filter(unlinked_at__isnull=True).select_related("case")
    cases = {link.case for link in links.filter(vehicle=vehicle)}
    if report is not None:
        cases |= {link.case for link in links.filter(report=report)}
    return MarkerCard(vehicle, plate or "", report, sorted(cases, key=lambda c: c.number))
