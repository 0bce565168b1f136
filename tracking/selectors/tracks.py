"""A bike's track and stops, computed in PostGIS from its terminals' installation windows
(tracking.selectors.positions.Window): Python sees only what is returned (counts, the simplified
line, a page of points, the stops).

Distances: where a quarter of a million fixes are compared with one another (stops) or simplified
(the line), they are moved into a local metric frame (Frame: degrees scaled by the WGS 84 length of
a degree at the first fix's latitude): an affine map, one multiplication per coordinate, where
ST_Transform to the UTM zone cost ~600 ms per 260,000 points one by one (measured) and a geography
distance a geodesic per pair.

Statements that read a month of fixes run with JIT off (SET LOCAL): compiling their expressions
cost ~60 ms of a ~150 ms query. Server-wide `jit = off` would suit this workload anyway.
"""

import datetime
import math
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction

from tracking.selectors.positions import Window


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


def pings_sql(windows: list[Window], columns: str) -> tuple[str, dict[str, Any]]:
    """A UNION ALL of the windows' pings (each branch prunes partitions with constant bounds),
    with named parameters w<i>_t, w<i>_s, w<i>_e."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    for i, window in enumerate(windows):
        parts.append(
            f"SELECT {columns} FROM tracking_ping "  # noqa: S608 (columns are constants of this module)
            f"WHERE terminal_id = %(w{i}_t)s AND device_time >= %(w{i}_s)s AND device_time < %(w{i}_e)s"
        )
        params |= {f"w{i}_t": window.terminal_id, f"w{i}_s": window.start, f"w{i}_e": window.end}
    return " UNION ALL ".join(parts), params


def first_frame(cursor: Any, windows: list[Window]) -> Frame | None:
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


def no_jit(cursor: Any) -> None:
    """These statements read hundreds of thousands of rows in one pass, so the planner's costs pass
    jit_above_cost and PostgreSQL would spend ~60 ms compiling expressions that run for less; the
    setting lasts until the end of the transaction."""
    cursor.execute("SET LOCAL jit = off")


# --- the track ---------------------------------------------------------------------------------------


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


@dataclass
class Track:
    count: int = 0  # every stored fix in the period, outliers and fixes without GPS lock included
    outliers: int = 0
    invalid: int = 0  # no GPS lock (the terminal repeated an old or cell-tower position)
    line_count: int = 0  # fixes the line is drawn through: valid and not outliers
    line: list[tuple[float, float]] = field(default_factory=list)  # (lon, lat), simplified
    points: list[TrackPoint] = field(default_factory=list)  # the page asked for, in time order


def track(
    windows: list[Window],
    *,
    tolerance_m: float,
    after: datetime.datetime | None,
    cap: int,
    with_line: bool = True,
) -> Track:
    """The counts of the windows' fixes, the line through the plausible ones simplified to
    `tolerance_m` (with_line, and only when there is a plausible fix), and the first `cap` fixes
    after `after` (points_page)."""
    result = Track()
    with transaction.atomic(), connection.cursor() as cursor:
        pings, params = pings_sql(windows, "device_time, point, valid, outlier")
        frame = first_frame(cursor, windows) if with_line else None
        no_jit(cursor)
        if frame is not None:
            cursor.execute(LINE_SQL.format(pings=pings), {**params, **frame.params(), "tolerance": float(tolerance_m)})
            result.count, result.outliers, result.invalid, result.line_count, vertices = cursor.fetchone()
            result.line = [(lon, lat) for lon, lat in vertices or []]
        else:  # next pages, or no plausible fix to draw: the counts only
            cursor.execute(COUNT_SQL.format(pings=pings), params)
            result.count, result.outliers, result.invalid, result.line_count = cursor.fetchone()
        result.points = points_page(cursor, windows, after=after, cap=cap)
    return result


def points_page(cursor: Any, windows: list[Window], *, after: datetime.datetime | None, cap: int) -> list[TrackPoint]:
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


# --- stops -----------------------------------------------------------------------------------------


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


def stays(
    windows: list[Window],
    *,
    radius_m: float,
    still_mps: float,
    jitter_m: float,
    merge_gap: datetime.timedelta,
    min_minutes: int,
) -> list[tuple[Any, ...]]:
    """The stops of the windows' plausible fixes (STOPS_SQL), longest first, as rows of (latitude,
    longitude, arrival, departure, fixes, spread in metres, before the period, ongoing)."""
    with transaction.atomic(), connection.cursor() as cursor:
        frame = first_frame(cursor, windows)
        if frame is None:
            return []
        no_jit(cursor)
        pings, params = pings_sql(windows, "device_time, point, valid, outlier")
        params |= frame.params() | {
            "radius": float(radius_m),
            "still_mps": still_mps,
            "jitter": jitter_m,
            "merge_gap": merge_gap.total_seconds(),
            "min_dwell": min_minutes * 60.0,
        }
        cursor.execute(STOPS_SQL.format(pings=pings), params)
        return cursor.fetchall()
