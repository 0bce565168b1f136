"""What the officer map reads: stolen bikes' last positions, lean enough for 10,000 markers.

The markers' statement is cases.tracing.markers' (missing bikes, their fitted terminals' last
positions and their plates, in one statement driven from the open theft reports); this module
writes the rows out in the display datum, and builds the cards and links of the map's results.

The rows go to the browser as compact arrays (see MARKER_FIELDS) rather than GeoJSON features: 10,000
markers are ~0.5 MB instead of ~2.5 MB, and the browser clusters them (Leaflet.markercluster).
"""

import datetime
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.urls import reverse

from cases.models import MISSING_STATUSES, CaseLink, TheftReport
from cases.tracing import access, markers
from cases.tracing import selectors as tracing
from cases.tracing.markers import MarkerFilter as MarkerFilter  # the map's filter, as its views and bench/map.py use it
from tracking.coords import to_display
from tracking.map_tiles import map_config, map_strings
from vehicles.models import Plate, Vehicle
from vehicles.selectors import plate_numbers

# Coordinates in millionths of a degree (0.1 m; integers are shorter in JSON and cheaper to write
# than rounded decimals), times in epoch seconds.
MARKER_FIELDS = ["vehicle", "lat_e6", "lon_e6", "plate", "report", "station", "reported_at", "fix_at"]


def stolen_markers(*, filters: MarkerFilter, datum: str = "wgs84") -> list[list[Any]]:
    """One row per missing bike with a position: the values of MARKER_FIELDS, coordinates in the
    display datum."""
    out = []
    for vehicle_id, lat, lon, plate, report_id, station_id, reported, fixed in markers.marker_rows(filters):
        lat, lon = to_display(lat, lon, datum)
        out.append([vehicle_id, round(lat * 1e6), round(lon * 1e6), plate, report_id, station_id, reported, fixed])
    return out


def stolen_markers_json(*, filters: MarkerFilter) -> tuple[int, str]:
    """(count, the rows of stolen_markers as JSON text) in WGS-84, built by PostgreSQL."""
    return markers.markers_json(filters)


@dataclass(frozen=True)
class MarkerCard:
    vehicle: Vehicle
    plate: str
    report: TheftReport | None
    cases: list[Any]
    position: tracing.Position | None = None  # with_position: the last fix, written out on the card


def marker_card(*, vehicle_id: int, with_position: bool = False) -> MarkerCard:
    """What the card of a clicked marker shows: the bike, its plate, its open report and cases, and
    (with_position) its last fix, whose coordinates the card writes out: without a tile server a
    dot on a grey field is all an officer would have. No owner data: the card links to the record
    and the report, which have their own rules."""
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
    position = tracing.vehicle_position(vehicle_id=vehicle.pk) if with_position else None
    return MarkerCard(vehicle, plate or "", report, sorted(cases, key=lambda c: c.number), position)


# --- links from tracing results: each asks the rule of the page it opens -----------------------------------


def _report_urls(user: Any, numbers: set[str]) -> dict[str, str]:
    """The reports among `numbers` the user may open (cases.view_report), by number."""
    reports = TheftReport.objects.filter(number__in=numbers) if numbers else TheftReport.objects.none()
    return {r.number: reverse("cases:report", args=[r.pk]) for r in reports if user.has_perm("cases.view_report", r)}


def _trace_url(user: Any, vehicle_id: int, search_id: int | None) -> str:
    """A trace opened from a search reads on the search's stated reason (cases.tracing.origins): open
    to those who may look on a stated reason."""
    if search_id is None or not user.has_perm("cases.trace_with_reason"):
        return ""
    return f"{reverse('web:trace', args=[vehicle_id])}?{urlencode({'search': search_id})}"


@dataclass(frozen=True)
class RingBike:
    """Another missing bike seen near a stop, with the pages the viewer may open from it."""

    visit: tracing.StolenVisit
    plate: str
    report_url: str
    trace_url: str


def stop_rings(*, user: Any, view: access.StopsView) -> dict[int, list[RingBike]]:
    """The other stolen bikes seen at each stop (by stop rank), linked to their reports and traces."""
    visits = [visit for found in view.nearby.values() for visit in found]
    plates = plate_numbers({v.vehicle_id for v in visits})
    reports = _report_urls(user, {v.report_number for v in visits})
    return {
        rank: [
            RingBike(
                visit=v,
                plate=plates.get(v.vehicle_id, ""),
                report_url=reports.get(v.report_number, ""),
                trace_url=_trace_url(user, v.vehicle_id, view.audit_id),
            )
            for v in found
        ]
        for rank, found in view.nearby.items()
    }


@dataclass(frozen=True)
class FoundBike:
    """A bike a crime-scene search found, with the pages the viewer may open from it."""

    found: tracing.NearVehicle
    status: str
    record_url: str
    trace_url: str
    report_url: str


def scene_results(*, user: Any, view: access.NearView) -> list[FoundBike]:
    vehicles = view.result.vehicles
    reports = _report_urls(user, {v.open_report for v in vehicles if v.open_report})
    may_open_records = user.has_perm("vehicles.search_records")
    labels = dict(Vehicle.Status.choices)
    return [
        FoundBike(
            found=v,
            status=str(labels.get(v.status, v.status)),
            record_url=reverse("vehicles:detail", args=[v.vehicle_id]) if may_open_records else "",
            trace_url=_trace_url(user, v.vehicle_id, view.audit_id),
            report_url=reports.get(v.open_report, ""),
        )
        for v in vehicles
    ]


# --- the last position on the filing record ------------------------------------------------------------


@dataclass(frozen=True)
class RecordPosition:
    position: tracing.Position | None  # None: the bike's terminals never sent a valid fix
    basis: str  # the legal basis of the look, as audited
    last_heard: datetime.datetime | None  # the terminal's last message of any kind (heartbeats too)
    map_config: dict[str, Any]
    page: dict[str, Any]  # what the small map's script reads: the marker in the tiles' datum, strings


def record_last_position(*, user: Any, vehicle: Vehicle, ip: str | None = None) -> RecordPosition | None:
    """Where the bike is and when it was last heard from, for the filing record page: shown to those
    who may trace the bike without stating a reason (cases.trace_vehicle: an officer with a duty on
    it; the owner has own pages), None to everyone else, who are not asked for a reason here (the
    trace page asks). The read is audited with its basis (trajectory.position)."""
    if not user.has_perm("cases.trace_vehicle", vehicle):
        return None
    try:
        view = access.vehicle_position_view(user=user, vehicle_id=vehicle.pk, ip=ip)
    except PermissionDenied:
        return None
    config = map_config()
    position = view.position
    terminal = getattr(vehicle, "terminal", None)
    return RecordPosition(
        position=position,
        basis=view.access.basis,
        last_heard=terminal.last_seen_at if terminal is not None else None,
        map_config=config,
        page={
            "at": to_display(position.latitude, position.longitude, config["datum"]) if position else None,
            "strings": map_strings(),
        },
    )
