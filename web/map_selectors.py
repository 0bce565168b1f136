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

MARKER_FIELDS = ["vehicle", "lat", "lon", "plate", "report", "station", "reported_at", "fix_at"]

MARKERS_SQL = """
SELECT r.vehicle_id, ST_Y(lp.point::geometry), ST_X(lp.point::geometry), coalesce(p.number, ''), r.id,
       r.station_id, date_part('epoch', r.received_at)::bigint, date_part('epoch', lp.device_time)::bigint
FROM cases_theftreport r
JOIN tracking_terminalinstallation i ON i.vehicle_id = r.vehicle_id AND i.removed_at IS NULL
JOIN tracking_lastposition lp ON lp.terminal_id = i.terminal_id AND lp.device_time >= i.installed_at
LEFT JOIN vehicles_plate p ON p.vehicle_id = r.vehicle_id AND p.status = 'issued'
WHERE r.status = ANY(%(missing)s) AND r.vehicle_id IS NOT NULL {where}
ORDER BY r.vehicle_id
"""


@dataclass(frozen=True)
class MarkerFilter:
    station_id: int | None = None
    reported_from: datetime.date | None = None  # local dates, inclusive
    reported_to: datetime.date | None = None
    changed_since: datetime.datetime | None = None  # only positions received (or reports taken) since


def _day_start(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def stolen_markers(*, filters: MarkerFilter, datum: str = "wgs84") -> list[list[Any]]:
    """One row per missing bike with a position: the values of MARKER_FIELDS, coordinates in the
    display datum rounded to 6 decimals (0.1 m), times as epoch seconds."""
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
    with connection.cursor() as cursor:
        cursor.execute(MARKERS_SQL.format(where=" ".join(where)), params)
        rows = cursor.fetchall()
    out = []
    for vehicle_id, lat, lon, plate, report_id, station_id, reported, fixed in rows:
        lat, lon = to_display(lat, lon, datum)
        out.append([vehicle_id, round(lat, 6), round(lon, 6), plate, report_id, station_id, reported, fixed])
    return out


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
