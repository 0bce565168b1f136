"""Tracing a bike: where it is, where it went, where it stayed, which other stolen bikes were at
those places, and which bikes were at a crime scene in a time window (伴随分析).

Everything is computed in PostGIS; Python sees only what is returned (a page of points, the
simplified line, the stops, the vehicles found). These are plain selectors with no access rule
and no audit: callers go through cases.tracing.access, which decides who may look and records
every look.

A vehicle's positions are read per terminal installation (TerminalInstallation), so a terminal
moved from one bike to another never lends its positions to the wrong bike, and a bike whose
terminal was replaced keeps its whole history. Each installation's time window becomes one
`terminal_id = … AND device_time >= … AND device_time < …` branch: the primary key
(terminal_id, device_time) serves it, and the constant time bounds prune the daily partitions
when the query is planned.

Distances: single comparisons against a place use geography (ST_DWithin / ST_Distance, metres on
the spheroid, served by the GiST indexes). Where a quarter of a million fixes are compared with
one another (stops) or simplified (the line), they are moved into a local metric frame (Frame:
degrees scaled by the WGS 84 length of a degree at the first fix's latitude): an affine map, one
multiplication per coordinate, where ST_Transform to the UTM zone cost ~600 ms per 260,000 points
one by one (measured) and a geography distance a geodesic per pair.

Statements that read a month of fixes run with JIT off (SET LOCAL): compiling their expressions
cost ~60 ms of a ~150 ms query. Server-wide `jit = off` would suit this workload anyway.
"""

import datetime
import math
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from cases.models import CLOSED_STATUSES, MISSING_STATUSES, TheftReport
from tracking.cells import cells_covering, hour_floor
from tracking.models import LastPosition, TerminalInstallation
from vehicles.models import Vehicle
from vehicles.selectors import plate_numbers
from vehicles.services.problems import Problems

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


@dataclass(frozen=True)
class Frame:
    """A local metric frame: x east and y north in metres from a reference fix, scaled with the
    WGS 84 lengths of a degree at the reference latitude (series to cos 4φ). Over the ±0.5° a bike
    covers in a month the scale is right to 1 % (an error of 0.5 m on a 50 m radius); the frame
    costs a multiplication per fix where ST_Transform costs a projection and a geography distance
    a geodesic."""

    lat0: float
    lon0: float

    @property
    def kx(self) -> float:
        phi = math.radians(self.lat0)
        return 111412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi)

    @property
    def ky(self) -> float:
        phi = math.radians(self.lat0)
        return 111132.92 - 559.82 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)

    def params(self) -> dict[str, float]:
        return {"lat0": self.lat0, "lon0": self.lon0, "kx": self.kx, "ky": self.ky}


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


def _pings_sql(windows: list[Window], columns: str) -> tuple[str, dict[str, Any]]:
    """A UNION ALL of the windows' pings (each branch prunes partitions with constant bounds),
    with named parameters w<i>_t, w<i>_s, w<i>_e."""
    parts, params = [], {}
    for i, window in enumerate(windows):
        parts.append(
            f"SELECT {columns} FROM tracking_ping "  # noqa: S608 (columns are constants of this module)
            f"WHERE terminal_id = %(w{i}_t)s AND device_time >= %(w{i}_s)s AND device_time < %(w{i}_e)s"
        )
        params |= {f"w{i}_t": window.terminal_id, f"w{i}_s": window.start, f"w{i}_e": window.end}
    return " UNION ALL ".join(parts), params


def _frame(cursor: Any, windows: list[Window]) -> Frame | None:
    """The local frame around the first plausible fix of the period (None: no fix)."""
    for window in windows:
        cursor.execute(
            "SELECT ST_Y(point::geometry), ST_X(point::geometry) FROM tracking_ping WHERE terminal_id = %s "
            "AND device_time >= %s AND device_time < %s AND valid AND NOT outlier ORDER BY device_time LIMIT 1",
            [window.terminal_id, window.start, window.end],
        )
        row = cursor.fetchone()
        if row is not None:
            return Frame(lat0=row[0], lon0=row[1])
    return None


def _no_jit(cursor: Any) -> None:
    """These statements read hundreds of thousands of rows in one pass, so the planner's costs pass
    jit_above_cost and PostgreSQL would spend ~60 ms compiling expressions that run for less; the
    setting lasts until the end of the transaction."""
    cursor.execute("SET LOCAL jit = off")


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


# --- trajectory ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackPoint:
    time: datetime.datetime
    latitude: float
    longitude: float
    speed_kmh: float | None
    course: float | None
    valid: bool
    outlier: bool
    session_id: int | None = None  # the gateway connection it came in on (tracking.TerminalSession)


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


# The line: the plausible fixes in time order (the ordered subquery is read by an ordered Append of
# the partitions' primary keys and feeds the aggregate in that order, no sort). Their coordinates
# are concatenated as little-endian WKB (16 bytes each, cut from ST_AsBinary) behind a LineString
# header and parsed once by ST_GeomFromWKB: half the cost of ST_MakeLine over an array of point
# geometries, which deserialises every point. The line is moved into the local metric frame with
# an affine map, simplified there by Douglas-Peucker with a tolerance in metres, and moved back.
# ST_Simplify rather than ST_SimplifyPreserveTopology: the topology it would preserve is that of
# rings and polygons; a month's track crosses itself everywhere, and preserving that costs time.
LINE_SQL = """
WITH agg AS (
    SELECT count(*) AS n,
           count(*) FILTER (WHERE outlier) AS outliers,
           count(*) FILTER (WHERE NOT valid AND NOT outlier) AS invalid,
           count(*) FILTER (WHERE valid AND NOT outlier)::int AS line_n,
           string_agg(substring(ST_AsBinary(point, 'NDR') FROM 6 FOR 16), ''::bytea)
               FILTER (WHERE valid AND NOT outlier) AS coords
    FROM (SELECT device_time, point, valid, outlier FROM ({pings}) u ORDER BY device_time) s
), line AS (
    SELECT n, outliers, invalid, line_n,
           CASE WHEN line_n >= 2 THEN ST_GeomFromWKB(
               '\\x0102000000'::bytea
               || set_byte(set_byte(set_byte(set_byte('\\x00000000'::bytea, 0, line_n & 255), 1, (line_n >> 8) & 255),
                                    2, (line_n >> 16) & 255), 3, (line_n >> 24) & 255)
               || coords
           ) END AS g
    FROM agg
)
SELECT n, outliers, invalid, line_n,
       (SELECT array_agg(ARRAY[ST_X(d.geom), ST_Y(d.geom)] ORDER BY d.path)
        FROM ST_DumpPoints(ST_Affine(
            ST_Simplify(
                ST_Affine(g, %(kx)s, 0, 0, %(ky)s, -%(lon0)s * %(kx)s, -%(lat0)s * %(ky)s), %(tolerance)s, true
            ),
            1 / %(kx)s, 0, 0, 1 / %(ky)s, %(lon0)s, %(lat0)s
        )) AS d)
FROM line
"""


COUNT_SQL = """
SELECT count(*), count(*) FILTER (WHERE outlier), count(*) FILTER (WHERE NOT valid AND NOT outlier),
       count(*) FILTER (WHERE valid AND NOT outlier)
FROM ({pings}) u
"""


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
    with transaction.atomic(), connection.cursor() as cursor:
        pings, params = _pings_sql(windows, "device_time, point, valid, outlier")
        frame = _frame(cursor, windows) if with_line else None
        _no_jit(cursor)
        if frame is not None:
            cursor.execute(LINE_SQL.format(pings=pings), {**params, **frame.params(), "tolerance": float(tolerance_m)})
            result.count, result.outliers, result.invalid, result.line_count, vertices = cursor.fetchone()
            result.line = [(lon, lat) for lon, lat in vertices or []]
        else:  # next pages, or no plausible fix to draw: the counts only
            cursor.execute(COUNT_SQL.format(pings=pings), params)
            result.count, result.outliers, result.invalid, result.line_count = cursor.fetchone()
        result.points = _points_page(cursor, windows, after=after, cap=point_cap + 1)
    result.truncated = len(result.points) > point_cap
    if result.truncated:
        result.points = result.points[:point_cap]
        result.next_after = result.points[-1].time
    return result


def _points_page(cursor: Any, windows: list[Window], *, after: datetime.datetime | None, cap: int) -> list[TrackPoint]:
    """The first `cap` fixes after `after`, window by window (windows do not overlap, so their
    order is the time order); each query reads only the rows it returns from the primary key."""
    points: list[TrackPoint] = []
    for window in windows:
        if after is not None and window.end <= after:
            continue
        start = window.start
        op = ">="
        if after is not None and after >= window.start:
            start, op = after, ">"
        cursor.execute(
            "SELECT device_time, ST_Y(point::geometry), ST_X(point::geometry), speed_kmh, course, valid, outlier, "  # noqa: S608 (op is ">" or ">=")
            "session_id "
            f"FROM tracking_ping WHERE terminal_id = %s AND device_time {op} %s AND device_time < %s "
            "ORDER BY device_time LIMIT %s",
            [window.terminal_id, start, window.end, cap - len(points)],
        )
        points.extend(TrackPoint(*row) for row in cursor.fetchall())
        if len(points) >= cap:
            break
    return points


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


# The fixes' x, y (metres in the local frame) and times (epoch seconds; date_part keeps float8 and
# microseconds, where extract() would go through numeric) are gathered into three arrays in one
# pass, in time order (ordered subquery, no sort). Every array subscript is O(1), so the
# still-or-not test of each fix against the previous one is a plain loop (generate_series) over
# the arrays: about half the cost of lag() in a window over a quarter of a million rows. Only the
# runs' first indexes come out of it (a few thousand); the stays' sums are taken over array slices.
STOPS_SQL = """
WITH arr AS (
    SELECT array_agg((ST_X(g) - %(lon0)s) * %(kx)s) AS xs, array_agg((ST_Y(g) - %(lat0)s) * %(ky)s) AS ys,
           array_agg(date_part('epoch', t)) AS ts, count(*)::int AS n
    FROM (
        SELECT device_time AS t, point::geometry AS g FROM ({pings}) u
        WHERE valid AND NOT outlier ORDER BY device_time
    ) s
), opens AS (
    SELECT i FROM arr, generate_series(1, arr.n) AS i
    WHERE i = 1 OR NOT (sqrt((xs[i] - xs[i - 1]) ^ 2 + (ys[i] - ys[i - 1]) ^ 2)
                        <= least(%(radius)s, %(still_mps)s * (ts[i] - ts[i - 1]) + %(jitter)s))
), runs AS MATERIALIZED (
    SELECT * FROM (
        SELECT i AS first, coalesce(lead(i) OVER (ORDER BY i) - 1, (SELECT n FROM arr)) AS last FROM opens
    ) o WHERE last > first
), stays AS MATERIALIZED (
    SELECT r.first, r.last, a.ts[r.first] AS t0, a.ts[r.last] AS t1, a.n AS total, s.*
    FROM arr a CROSS JOIN runs r
    CROSS JOIN LATERAL (
        SELECT count(*) AS k, sum(x) AS sx, sum(y) AS sy, sum(x * x) AS sxx, sum(y * y) AS syy
        FROM unnest(a.xs[r.first:r.last], a.ys[r.first:r.last]) AS u(x, y)
    ) s
), grouped AS (
    SELECT *, sum(CASE WHEN prev_t1 IS NULL OR t0 - prev_t1 > %(merge_gap)s
                            OR sqrt((sx / k - prev_cx) ^ 2 + (sy / k - prev_cy) ^ 2) > %(radius)s
                       THEN 1 ELSE 0 END) OVER (ORDER BY first ROWS UNBOUNDED PRECEDING) AS stop
    FROM (
        SELECT *, lag(t1) OVER o AS prev_t1, lag(sx / k) OVER o AS prev_cx, lag(sy / k) OVER o AS prev_cy
        FROM stays WINDOW o AS (ORDER BY first)
    ) l
), stops AS (
    SELECT min(t0) AS t0, max(t1) AS t1, sum(k) AS k, sum(sx) / sum(k) AS cx, sum(sy) / sum(k) AS cy,
           sum(sxx) AS sxx, sum(syy) AS syy, min(first) = 1 AS before_since, max(last) = max(total) AS ongoing
    FROM grouped GROUP BY stop
)
SELECT %(lat0)s + cy / %(ky)s, %(lon0)s + cx / %(kx)s, to_timestamp(t0), to_timestamp(t1), k, spread,
       before_since, ongoing
FROM (SELECT *, sqrt(greatest(0, sxx / k - cx * cx + syy / k - cy * cy)) AS spread FROM stops) s
WHERE t1 - t0 >= %(min_dwell)s AND spread <= %(radius)s / sqrt(2)
ORDER BY t1 - t0 DESC, t0
"""


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
    same gaps and islands but cost twice as much at this size (see STOPS_SQL).
    """
    stops_check(since=since, until=until, min_minutes=min_minutes, radius_m=radius_m, limit=limit)
    result = Stops(vehicle_id=vehicle_id, since=since, until=until, min_minutes=min_minutes, radius_m=radius_m)
    windows = vehicle_terminal_windows(vehicle_id=vehicle_id, since=since, until=until)
    if not windows:
        return result
    with transaction.atomic(), connection.cursor() as cursor:
        frame = _frame(cursor, windows)
        if frame is None:
            return result
        _no_jit(cursor)
        pings, params = _pings_sql(windows, "device_time, point, valid, outlier")
        params |= frame.params() | {
            "radius": float(radius_m),
            "still_mps": STILL_SPEED_MPS,
            "jitter": STILL_JITTER_M,
            "merge_gap": STOP_MERGE_GAP.total_seconds(),
            "min_dwell": min_minutes * 60.0,
        }
        cursor.execute(STOPS_SQL.format(pings=pings), params)
        rows = cursor.fetchall()
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


STOLEN_AT_PLACE_SQL = """
WITH missing AS (
    SELECT r.vehicle_id, r.number, r.status, i.terminal_id,
           greatest(r.last_seen_at, i.installed_at, %(since)s) AS t0,
           least(coalesce(i.removed_at, 'infinity'::timestamptz), %(until)s) AS t1
    FROM cases_theftreport r JOIN tracking_terminalinstallation i ON i.vehicle_id = r.vehicle_id
    WHERE r.status = ANY(%(missing)s) AND r.vehicle_id <> %(exclude)s
      AND (i.removed_at IS NULL OR i.removed_at > r.last_seen_at)
      AND i.terminal_id IN (
          SELECT terminal_id FROM tracking_pingcell
          WHERE cell = ANY(%(cells)s) AND hour >= %(since_hour)s AND hour < %(until)s)
), place AS (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography AS g)
SELECT m.vehicle_id, m.number, m.status, min(p.device_time), max(p.device_time), count(*),
       min(ST_Distance(p.point, place.g))
FROM missing m
JOIN tracking_ping p ON p.terminal_id = m.terminal_id AND p.device_time >= m.t0 AND p.device_time < m.t1
CROSS JOIN place
WHERE p.device_time >= %(since)s AND p.device_time < %(until)s AND p.valid AND NOT p.outlier
  AND ST_DWithin(p.point, place.g, %(radius)s)
GROUP BY m.vehicle_id, m.number, m.status
ORDER BY min(ST_Distance(p.point, place.g)), m.vehicle_id
"""


def stolen_at_place(
    *,
    latitude: float,
    longitude: float,
    radius_m: float,
    days: int = DEFAULT_NEARBY_DAYS,
    exclude_vehicle_id: int = 0,
) -> list[StolenVisit]:
    """Bikes missing now (report in MISSING_STATUSES) whose fixes came within `radius_m` of a place
    in the last `days` days, counting only fixes recorded after they went missing (their report's
    last_seen_at): their owners' own earlier visits say nothing about a ring."""
    nearby_check(radius_m=radius_m, days=days)
    until = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            STOLEN_AT_PLACE_SQL,
            {
                "since": until - datetime.timedelta(days=days),
                "since_hour": hour_floor(until - datetime.timedelta(days=days)),
                "until": until,
                "cells": cells_covering(latitude, longitude, radius_m),
                "missing": sorted(MISSING_STATUSES),
                "exclude": exclude_vehicle_id,
                "lat": latitude,
                "lon": longitude,
                "radius": float(radius_m),
            },
        )
        return [StolenVisit(*row[:6], min_distance_m=round(row[6], 1)) for row in cursor.fetchall()]


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


# The presence cells (tracking_pingcell) name the terminals that sent a fix from a cell the circle
# touches in an hour of the window; only their pings in the window are read (primary key range)
# and tested for the exact distance. The constant time bounds keep that to the one or two daily
# partitions of the window. Fixes are attributed to the bike the terminal was fitted to at that
# moment; fixes of a terminal on no bike are left out.
NEAR_SQL = """
WITH place AS (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography AS g),
there AS (
    SELECT DISTINCT terminal_id FROM tracking_pingcell
    WHERE cell = ANY(%(cells)s) AND hour >= %(since_hour)s AND hour < %(until)s
)
SELECT i.vehicle_id, min(p.device_time), max(p.device_time), count(*), min(ST_Distance(p.point, place.g))
FROM there
JOIN tracking_ping p ON p.terminal_id = there.terminal_id
CROSS JOIN place
JOIN tracking_terminalinstallation i ON i.terminal_id = p.terminal_id AND p.device_time >= i.installed_at
     AND (i.removed_at IS NULL OR p.device_time < i.removed_at)
WHERE p.device_time >= %(since)s AND p.device_time < %(until)s AND p.valid AND NOT p.outlier
  AND ST_DWithin(p.point, place.g, %(radius)s)
GROUP BY i.vehicle_id
ORDER BY min(ST_Distance(p.point, place.g)), i.vehicle_id
LIMIT %(limit)s
"""


def vehicles_near(
    *, latitude: float, longitude: float, radius_m: float, since: datetime.datetime, until: datetime.datetime
) -> NearResult:
    """Bikes with a plausible fix within `radius_m` of the place between `since` and `until`, the
    closest first, with when they were first and last seen there."""
    near_check(latitude=latitude, longitude=longitude, radius_m=radius_m, since=since, until=until)
    result = NearResult(latitude=latitude, longitude=longitude, radius_m=radius_m, since=since, until=until)
    with connection.cursor() as cursor:
        cursor.execute(
            NEAR_SQL,
            {
                "lat": latitude,
                "lon": longitude,
                "radius": float(radius_m),
                "since": since,
                "since_hour": hour_floor(since),
                "until": until,
                "cells": cells_covering(latitude, longitude, radius_m),
                "limit": NEAR_RESULTS_MAX + 1,
            },
        )
        rows = cursor.fetchall()
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


# Driven by the partial GiST index over the last positions of terminals on bikes missing now
# (LastPosition.missing_point, kept by tracking.services.last_positions_flag_missing): within 5 km
# of a town centre lie a third of the county's bikes but only ~1 % of them are missing, so the index
# holds only those. The closest `candidates` are taken first; only they are joined with their
# fitting and report (those joins, done for every missing bike in the circle, were most of the
# time: ~3,400 of them around a town centre). The fitting check can drop a candidate, so when the
# joined rows fall short while candidates were cut off, stolen_near asks again without the cut.
STOLEN_NEAR_SQL = """
WITH place AS (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography AS g),
near AS (
    SELECT lp.terminal_id, lp.device_time, lp.missing_point AS point, ST_Distance(lp.missing_point, place.g) AS distance
    FROM tracking_lastposition lp CROSS JOIN place
    WHERE lp.missing_point IS NOT NULL AND ST_DWithin(lp.missing_point, place.g, %(radius)s)
    ORDER BY distance, lp.terminal_id
    LIMIT %(candidates)s
)
SELECT i.vehicle_id, r.number, r.received_at, near.device_time, ST_Y(near.point::geometry),
       ST_X(near.point::geometry), near.distance, (SELECT count(*) FROM near) AS candidates
FROM near
JOIN tracking_terminalinstallation i ON i.terminal_id = near.terminal_id AND i.removed_at IS NULL
JOIN LATERAL (
    SELECT number, received_at FROM cases_theftreport
    WHERE vehicle_id = i.vehicle_id AND status = ANY(%(missing)s) ORDER BY received_at DESC LIMIT 1
) r ON true
WHERE near.device_time >= i.installed_at
ORDER BY near.distance, i.vehicle_id
LIMIT %(limit)s
"""


def stolen_near(
    *, latitude: float, longitude: float, radius_km: float, limit: int = DEFAULT_STOLEN_NEAR_LIMIT
) -> tuple[list[StolenPosition], bool]:
    """Bikes missing now whose last position is within `radius_km` of the point, the `limit`
    closest first (the flag says whether more were cut off). A last position older than the
    terminal's fitting on the bike belongs to another bike and is left out."""
    stolen_near_check(latitude=latitude, longitude=longitude, radius_km=radius_km, limit=limit)
    now = timezone.now()
    params = {
        "lat": latitude,
        "lon": longitude,
        "radius": radius_km * 1000,
        "missing": sorted(MISSING_STATUSES),
        "limit": limit + 1,
        "candidates": 2 * (limit + 1),
    }
    with transaction.atomic(), connection.cursor() as cursor:
        # The planner cannot tell how many missing bikes a circle holds and may start parallel
        # workers for a scan of a few thousand index hits: their start-up and the hand-over of
        # the rows cost more than the scan (20 ms against 8 ms at a town centre). It also prices
        # the partial index over missing_point far too high (millions for a few thousand rows)
        # and would compile the query (JIT: ~110 ms for a 7 ms query).
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(STOLEN_NEAR_SQL, params)
        rows = cursor.fetchall()
        if len(rows) <= limit and (not rows or rows[0][7] == params["candidates"]):
            # Candidates may have fallen out at the joins: ask again for all of them (LIMIT NULL).
            params["candidates"] = None
            cursor.execute(STOLEN_NEAR_SQL, params)
            rows = cursor.fetchall()
    found = [
        StolenPosition(
            vehicle_id=vehicle_id,
            report_number=number,
            report_received_at=received_at,
            device_time=device_time,
            latitude=lat,
            longitude=lon,
            distance_m=round(distance, 1),
            age_seconds=int((now - device_time).total_seconds()),
        )
        for vehicle_id, number, received_at, device_time, lat, lon, distance, _candidates in rows
    ]
    return found[:limit], len(found) > limit
