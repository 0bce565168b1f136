"""Tracing a bike: where it is, where it went, where it stayed, which other stolen bikes were at
those places, and which bikes were at a crime scene in a time window (伴随分析).

The queries on tracking's tables are tracking.selectors' (positions, tracks and stops, places);
this module checks the questions, adds the theft reports, plates and vehicles by id, and shapes the
answers. No access rule and no audit here: callers go through cases.tracing.access, which decides
who may look and records every look. See docs/architecture.md#tracing.
"""

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from cases.models import CLOSED_STATUSES, MISSING_STATUSES, TheftReport
from ebike_registry.problems import Problems
from tracking.selectors import places, tracks
from tracking.selectors.positions import Position as Position  # where the bike is: part of tracing's answers
from tracking.selectors.positions import vehicle_position as vehicle_position
from tracking.selectors.positions import vehicle_terminal_windows
from tracking.selectors.tracks import TrackPoint
from vehicles.models import Vehicle
from vehicles.selectors import plate_numbers

TRAJECTORY_MAX_SPAN = datetime.timedelta(days=31)
NEAR_MAX_SPAN = datetime.timedelta(hours=24)
DEFAULT_SPAN = datetime.timedelta(hours=24)  # a trajectory or stops without a report to start from
RADIUS_MIN_M, RADIUS_MAX_M = 10, 5000
STOP_RADIUS_MAX_M = 500  # wider than this, a "stop" is a neighbourhood
DEFAULT_STOP_MINUTES, DEFAULT_STOP_RADIUS_M = 10, 50
STOP_MINUTES_MAX = 24 * 60
DEFAULT_STOPS_LIMIT, STOPS_LIMIT_MAX = 20, 100
DEFAULT_POINT_CAP, POINT_CAP_MAX = 1000, 5000
# Douglas-Peucker tolerance: no vertex of the raw track is further than this from the drawn line.
# 10 m is below what a street-level map shows and above consumer GPS noise (3-5 m), so the jitter
# of a parked bike and of a straight ride disappears while every turn stays.
DEFAULT_TOLERANCE_M, TOLERANCE_MIN_M, TOLERANCE_MAX_M = 10.0, 1.0, 500.0
DEFAULT_NEARBY_DAYS, NEARBY_DAYS_MAX = 30, 90
NEAR_RESULTS_MAX = 500
STOLEN_NEAR_RADIUS_KM_MAX = 50.0
DEFAULT_STOLEN_NEAR_LIMIT, STOLEN_NEAR_LIMIT_MAX = 100, 500

# Stop detection (see vehicle_stops): a fix is "still" when it moved less than R from the previous
# fix and no faster than a slow walk (0.7 m/s ≈ 2.5 km/h; pushing a bike is 4-5 km/h), with a few
# metres' allowance for GPS jitter between close fixes.
STILL_SPEED_MPS = 0.7
STILL_JITTER_M = 3.0
# Two stays at the same place separated by less than this (a GPS jump, the bike moved a few metres
# across a yard) are one stop.
STOP_MERGE_GAP = datetime.timedelta(minutes=2)


# --- input checks ----------------------------------------------------------------------------------


def check_period(
    problems: Problems, since: datetime.datetime, until: datetime.datetime, *, max_span: datetime.timedelta
) -> None:
    now = timezone.now()
    if since >= until:
        problems.add("until", _("The end of the period must be after its start."))
    elif until - since > max_span:
        problems.add(
            "since",
            _("The period is longer than %(limit)s; ask for a shorter one.") % {"limit": _span_text(max_span)},
        )
    if since > now:
        problems.add("since", _("The start of the period is in the future."))


def _span_text(span: datetime.timedelta) -> str:
    if span.days and not span.seconds:
        return _("%(n)d days") % {"n": span.days}
    return _("%(n)d hours") % {"n": span.total_seconds() // 3600}


def check_range(problems: Problems, name: str, value: float, low: float, high: float, unit: str = "") -> None:
    if not low <= value <= high:
        problems.add(
            name, _("Must be between %(low)s and %(high)s%(unit)s.") % {"low": low, "high": high, "unit": unit}
        )


def check_point(problems: Problems, lat: float, lon: float) -> None:
    if not -90 <= lat <= 90:
        problems.add("lat", _("Latitude must be between -90 and 90."))
    if not -180 <= lon <= 180:
        problems.add("lon", _("Longitude must be between -180 and 180."))
    if lat == 0 and lon == 0:
        problems.add("lat", _("(0, 0) is not a place in the county; give the point's coordinates."))


# --- which terminal was on the bike when ----------------------------------------------------------


def open_report(vehicle_id: int) -> TheftReport | None:
    """The vehicle's report that is not closed or withdrawn, if any (at most one is open)."""
    return (
        TheftReport.objects.filter(vehicle_id=vehicle_id)
        .exclude(status__in=CLOSED_STATUSES)
        .order_by("-received_at", "-id")
        .first()
    )


def default_since(*, vehicle_id: int, until: datetime.datetime) -> datetime.datetime:
    """Since the bike was last seen by its owner when it has an open report, else a day back;
    never further back than the longest trajectory allowed."""
    report = open_report(vehicle_id)
    since = report.last_seen_at if report else until - DEFAULT_SPAN
    return max(since, until - TRAJECTORY_MAX_SPAN)


# --- last known position -----------------------------------------------------------------------------


# --- trajectory ----------------------------------------------------------------------------------------


@dataclass
class Trajectory:
    vehicle_id: int
    since: datetime.datetime
    until: datetime.datetime
    count: int = 0  # every stored fix in the period, outliers and fixes without GPS lock included
    outliers: int = 0
    invalid: int = 0  # no GPS lock (the terminal repeated an old or cell-tower position)
    line_count: int = 0  # fixes the line is drawn through: valid and not outliers
    line: list[tuple[float, float]] = field(default_factory=list)  # (lon, lat), simplified
    tolerance_m: float = DEFAULT_TOLERANCE_M
    points: list[TrackPoint] = field(default_factory=list)  # one page, in time order
    point_cap: int = DEFAULT_POINT_CAP
    after: datetime.datetime | None = None
    truncated: bool = False
    next_after: datetime.datetime | None = None

    @property
    def simplified_count(self) -> int:
        return len(self.line)


def trajectory_check(
    *,
    since: datetime.datetime,
    until: datetime.datetime,
    point_cap: int = DEFAULT_POINT_CAP,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
    after: datetime.datetime | None = None,
) -> None:
    problems = Problems()
    check_period(problems, since, until, max_span=TRAJECTORY_MAX_SPAN)
    check_range(problems, "limit", point_cap, 1, POINT_CAP_MAX)
    check_range(problems, "tolerance", tolerance_m, TOLERANCE_MIN_M, TOLERANCE_MAX_M, " m")
    if after is not None and not since <= after < until:
        problems.add("after", _("The page cursor is outside the period asked for."))
    problems.raise_if_any()


def vehicle_trajectory(
    *,
    vehicle_id: int,
    since: datetime.datetime,
    until: datetime.datetime,
    point_cap: int = DEFAULT_POINT_CAP,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
    after: datetime.datetime | None = None,
    with_line: bool = True,
) -> Trajectory:
    """The fixes of [since, until): counts, a simplified line through the plausible ones (outliers
    and fixes without GPS lock left out), and one page of at most `point_cap` fixes in time order
    starting after `after` (keyset paging: pass `next_after` back to get the next page)."""
    trajectory_check(since=since, until=until, point_cap=point_cap, tolerance_m=tolerance_m, after=after)
    result = Trajectory(
        vehicle_id=vehicle_id, since=since, until=until, tolerance_m=tolerance_m, point_cap=point_cap, after=after
    )
    windows = vehicle_terminal_windows(vehicle_id=vehicle_id, since=since, until=until)
    if not windows:
        return result
    found = tracks.track(windows, tolerance_m=tolerance_m, after=after, cap=point_cap + 1, with_line=with_line)
    result.count, result.outliers, result.invalid = found.count, found.outliers, found.invalid
    result.line_count, result.line, result.points = found.line_count, found.line, found.points
    result.truncated = len(result.points) > point_cap
    if result.truncated:
        result.points = result.points[:point_cap]
        result.next_after = result.points[-1].time
    return result


def trajectory_geojson(trajectory: Trajectory, *, basis: str = "") -> dict[str, Any]:
    """A GeoJSON FeatureCollection (RFC 7946): the simplified line, then the page of points; the
    counts and paging go in a "metadata" foreign member."""
    features: list[dict[str, Any]] = []
    if len(trajectory.line) >= 2:
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[round(lon, 6), round(lat, 6)] for lon, lat in trajectory.line],
                },
                "properties": {
                    "kind": "line",
                    "tolerance_m": trajectory.tolerance_m,
                },
            }
        )
    tz = timezone.get_current_timezone()
    for point in trajectory.points:
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round(point.longitude, 6), round(point.latitude, 6)]},
                "properties": {
                    "kind": "point",
                    "time": point.time.astimezone(tz).isoformat(),
                    "speed_kmh": None if point.speed_kmh is None else round(point.speed_kmh, 1),
                    "course": None if point.course is None else round(point.course),
                    "valid": point.valid,
                    "outlier": point.outlier,
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "features": features,
        "metadata": {
            "vehicle": trajectory.vehicle_id,
            "since": _iso(trajectory.since),
            "until": _iso(trajectory.until),
            "count": trajectory.count,
            "outliers": trajectory.outliers,
            "invalid": trajectory.invalid,
            "line_count": trajectory.line_count,
            "simplified_count": trajectory.simplified_count,
            "tolerance_m": trajectory.tolerance_m,
            "returned_points": len(trajectory.points),
            "point_cap": trajectory.point_cap,
            "after": _iso(trajectory.after) if trajectory.after else None,
            "truncated": trajectory.truncated,
            "next_after": _iso(trajectory.next_after) if trajectory.next_after else None,
            "basis": basis,
        },
    }


def _iso(value: datetime.datetime) -> str:
    return timezone.localtime(value).isoformat()


# --- stops -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stop:
    rank: int
    latitude: float
    longitude: float
    arrival: datetime.datetime
    departure: datetime.datetime
    pings: int
    spread_m: float  # root-mean-square distance of the stop's fixes from its centre
    before_since: bool  # the bike was already there when the period starts
    ongoing: bool  # the bike was still there at its last fix in the period

    @property
    def dwell_seconds(self) -> int:
        return int((self.departure - self.arrival).total_seconds())


@dataclass
class Stops:
    vehicle_id: int
    since: datetime.datetime
    until: datetime.datetime
    min_minutes: int
    radius_m: float
    stops: list[Stop] = field(default_factory=list)
    found: int = 0  # before the limit


def stops_check(
    *,
    since: datetime.datetime,
    until: datetime.datetime,
    min_minutes: int = DEFAULT_STOP_MINUTES,
    radius_m: float = DEFAULT_STOP_RADIUS_M,
    limit: int = DEFAULT_STOPS_LIMIT,
) -> None:
    problems = Problems()
    check_period(problems, since, until, max_span=TRAJECTORY_MAX_SPAN)
    check_range(problems, "min_minutes", min_minutes, 1, STOP_MINUTES_MAX)
    check_range(problems, "radius", radius_m, RADIUS_MIN_M, STOP_RADIUS_MAX_M, " m")
    check_range(problems, "limit", limit, 1, STOPS_LIMIT_MAX)
    problems.raise_if_any()


def vehicle_stops(
    *,
    vehicle_id: int,
    since: datetime.datetime,
    until: datetime.datetime,
    min_minutes: int = DEFAULT_STOP_MINUTES,
    radius_m: float = DEFAULT_STOP_RADIUS_M,
    limit: int = DEFAULT_STOPS_LIMIT,
) -> Stops:
    """Places where the bike stayed at least `min_minutes` within `radius_m` (R), longest first.

    Gaps and islands over the time-ordered plausible fixes, in one SQL statement:
    1. a fix is still when its step from the previous fix is at most R and no faster than a slow
       walk (STILL_SPEED_MPS, plus STILL_JITTER_M for GPS noise between close fixes); every other
       fix starts a new run, so a run is the fix where the bike arrived and the fixes that did not
       move away from it. A terminal that sleeps while parked and reports again from the same
       place has stayed there all along;
    2. runs of two fixes or more are stays; consecutive stays whose centres are at most R apart and
       which are less than STOP_MERGE_GAP apart in time are one stop (a GPS jump, or the bike
       moved across a yard, does not split a stop);
    3. a stop is kept when it lasted at least N minutes (first to last fix) and its fixes are no
       more spread than fixes filling the disc of radius R evenly (root-mean-square distance from
       the centre at most R/√2), which rejects a bike pushed slowly along a street.
    ST_ClusterDBSCAN was not used: it clusters by place only, so it would join visits on different
    days into one stop and chain along a slowly ridden road, and it searches neighbours for every
    fix where this reads the ordered fixes once. Window functions (lag, running sums) express the
    same gaps and islands but cost twice as much at this size (see tracking.selectors.tracks.STOPS_SQL).
    """
    stops_check(since=since, until=until, min_minutes=min_minutes, radius_m=radius_m, limit=limit)
    result = Stops(vehicle_id=vehicle_id, since=since, until=until, min_minutes=min_minutes, radius_m=radius_m)
    windows = vehicle_terminal_windows(vehicle_id=vehicle_id, since=since, until=until)
    if not windows:
        return result
    rows = tracks.stays(
        windows,
        radius_m=radius_m,
        still_mps=STILL_SPEED_MPS,
        jitter_m=STILL_JITTER_M,
        merge_gap=STOP_MERGE_GAP,
        min_minutes=min_minutes,
    )
    result.found = len(rows)
    result.stops = [
        Stop(
            rank=rank,
            latitude=lat,
            longitude=lon,
            arrival=arrival,
            departure=departure,
            pings=int(n),
            spread_m=round(spread, 1),
            before_since=before,
            ongoing=ongoing,
        )
        for rank, (lat, lon, arrival, departure, n, spread, before, ongoing) in enumerate(rows[:limit], start=1)
    ]
    return result


# --- other stolen bikes at a place -------------------------------------------------------------------


@dataclass(frozen=True)
class StolenVisit:
    vehicle_id: int
    report_number: str
    report_status: str
    first_seen: datetime.datetime
    last_seen: datetime.datetime
    pings: int
    min_distance_m: float


def nearby_check(*, radius_m: float, days: int) -> None:
    problems = Problems()
    check_range(problems, "nearby_radius", radius_m, RADIUS_MIN_M, RADIUS_MAX_M, " m")
    check_range(problems, "nearby_days", days, 1, NEARBY_DAYS_MAX)
    problems.raise_if_any()


MissingReports = dict[int, tuple[str, str, datetime.datetime]]


def missing_reports(*, exclude_vehicle_id: int = 0) -> MissingReports:
    """The bikes missing now (report in MISSING_STATUSES): vehicle id -> (report number, status,
    last seen). Read once by a caller that asks about several places (the stops of one trace)."""
    return {
        vehicle_id: (number, status, last_seen_at)
        for vehicle_id, number, status, last_seen_at in TheftReport.objects.filter(
            status__in=MISSING_STATUSES, vehicle_id__isnull=False
        )
        .exclude(vehicle_id=exclude_vehicle_id)
        .values_list("vehicle_id", "number", "status", "last_seen_at")
    }


def stolen_at_place(
    *,
    latitude: float,
    longitude: float,
    radius_m: float,
    days: int = DEFAULT_NEARBY_DAYS,
    exclude_vehicle_id: int = 0,
    missing: MissingReports | None = None,
) -> list[StolenVisit]:
    """Bikes missing now (report in MISSING_STATUSES) whose fixes came within `radius_m` of a place
    in the last `days` days, counting only fixes recorded after they went missing (their report's
    last_seen_at): their owners' own earlier visits say nothing about a ring. `missing`: those bikes
    as `missing_reports` read them, when the caller asks about several places."""
    nearby_check(radius_m=radius_m, days=days)
    until = timezone.now()
    reports = missing_reports(exclude_vehicle_id=exclude_vehicle_id) if missing is None else missing
    rows = places.visits_at_place(
        latitude=latitude,
        longitude=longitude,
        radius_m=radius_m,
        since=until - datetime.timedelta(days=days),
        until=until,
        seen_after={vehicle_id: report[2] for vehicle_id, report in reports.items()},
    )
    return [
        StolenVisit(vehicle_id, *reports[vehicle_id][:2], first, last, pings, min_distance_m=round(distance, 1))
        for vehicle_id, first, last, pings, distance in rows
    ]


# --- 伴随分析: which bikes were near a place in a time window -------------------------------------------


@dataclass(frozen=True)
class NearVehicle:
    vehicle_id: int
    first_seen: datetime.datetime
    last_seen: datetime.datetime
    pings: int
    min_distance_m: float
    plate: str = ""
    brand: str = ""
    colour: str = ""
    status: str = ""
    open_report: str = ""  # number of the vehicle's own open theft report


@dataclass
class NearResult:
    latitude: float
    longitude: float
    radius_m: float
    since: datetime.datetime
    until: datetime.datetime
    vehicles: list[NearVehicle] = field(default_factory=list)
    truncated: bool = False


def near_check(
    *, latitude: float, longitude: float, radius_m: float, since: datetime.datetime, until: datetime.datetime
) -> None:
    problems = Problems()
    check_point(problems, latitude, longitude)
    check_range(problems, "radius", radius_m, RADIUS_MIN_M, RADIUS_MAX_M, " m")
    check_period(problems, since, until, max_span=NEAR_MAX_SPAN)
    problems.raise_if_any()


def vehicles_near(
    *, latitude: float, longitude: float, radius_m: float, since: datetime.datetime, until: datetime.datetime
) -> NearResult:
    """Bikes with a plausible fix within `radius_m` of the place between `since` and `until`, the
    closest first, with when they were first and last seen there."""
    near_check(latitude=latitude, longitude=longitude, radius_m=radius_m, since=since, until=until)
    result = NearResult(latitude=latitude, longitude=longitude, radius_m=radius_m, since=since, until=until)
    rows = places.vehicles_at_place(
        latitude=latitude, longitude=longitude, radius_m=radius_m, since=since, until=until, limit=NEAR_RESULTS_MAX + 1
    )
    result.truncated = len(rows) > NEAR_RESULTS_MAX
    rows = rows[:NEAR_RESULTS_MAX]
    ids = [row[0] for row in rows]
    vehicles = Vehicle.objects.in_bulk(ids)
    plates = plate_numbers(ids)
    reports = dict(
        TheftReport.objects.filter(vehicle_id__in=ids)
        .exclude(status__in=CLOSED_STATUSES)
        .values_list("vehicle_id", "number")
    )
    for vehicle_id, first, last, pings, distance in rows:
        vehicle = vehicles.get(vehicle_id)
        result.vehicles.append(
            NearVehicle(
                vehicle_id=vehicle_id,
                first_seen=first,
                last_seen=last,
                pings=pings,
                min_distance_m=round(distance, 1),
                plate=plates.get(vehicle_id, ""),
                brand=vehicle.brand if vehicle else "",
                colour=vehicle.colour if vehicle else "",
                status=vehicle.status if vehicle else "",
                open_report=reports.get(vehicle_id, ""),
            )
        )
    return result


# --- stolen bikes' last positions near a point -----------------------------------------------------------


@dataclass(frozen=True)
class StolenPosition:
    vehicle_id: int
    report_number: str
    report_received_at: datetime.datetime
    device_time: datetime.datetime
    latitude: float
    longitude: float
    distance_m: float
    age_seconds: int


def stolen_near_check(
    *, latitude: float, longitude: float, radius_km: float, limit: int = DEFAULT_STOLEN_NEAR_LIMIT
) -> None:
    problems = Problems()
    check_point(problems, latitude, longitude)
    check_range(problems, "radius_km", radius_km, RADIUS_MIN_M / 1000, STOLEN_NEAR_RADIUS_KM_MAX, " km")
    check_range(problems, "limit", limit, 1, STOLEN_NEAR_LIMIT_MAX)
    problems.raise_if_any()


def stolen_near(
    *, latitude: float, longitude: float, radius_km: float, limit: int = DEFAULT_STOLEN_NEAR_LIMIT
) -> tuple[list[StolenPosition], bool]:
    """Bikes missing now whose last position is within `radius_km` of the point, the `limit`
    closest first (the flag says whether more were cut off). A last position older than the
    terminal's fitting on the bike belongs to another bike and is left out."""
    stolen_near_check(latitude=latitude, longitude=longitude, radius_km=radius_km, limit=limit)
    now = timezone.now()
    wanted = 2 * (limit + 1)  # the closest flagged positions looked at first
    found, candidates = _stolen_positions(latitude, longitude, radius_km, wanted, limit=limit + 1, now=now)
    if len(found) <= limit and (not found or candidates == wanted):
        # Candidates may have fallen out at the fitting or the report: ask again for all of them.
        found, _ = _stolen_positions(latitude, longitude, radius_km, None, limit=limit + 1, now=now)
    return found[:limit], len(found) > limit


def _stolen_positions(
    latitude: float, longitude: float, radius_km: float, candidates: int | None, *, limit: int, now: datetime.datetime
) -> tuple[list[StolenPosition], int]:
    """The flagged last positions near the point (tracking.selectors.places.missing_near) whose bike
    has a report in MISSING_STATUSES, with its newest such report, at most `limit`; and how many
    flagged positions were looked at."""
    rows, count = places.missing_near(
        latitude=latitude, longitude=longitude, radius_m=radius_km * 1000, candidates=candidates
    )
    reports: dict[int, tuple[str, datetime.datetime]] = {}
    for vehicle_id, number, received_at in (
        TheftReport.objects.filter(vehicle_id__in={row[0] for row in rows}, status__in=MISSING_STATUSES)
        .order_by("received_at")
        .values_list("vehicle_id", "number", "received_at")
    ):
        reports[vehicle_id] = (number, received_at)  # the newest last
    found = [
        StolenPosition(
            vehicle_id=vehicle_id,
            report_number=reports[vehicle_id][0],
            report_received_at=reports[vehicle_id][1],
            device_time=device_time,
            latitude=lat,
            longitude=lon,
            distance_m=round(distance, 1),
            age_seconds=int((now - device_time).total_seconds()),
        )
        for vehicle_id, device_time, lat, lon, distance in rows
        if vehicle_id in reports
    ]
    return found[:limit], count
