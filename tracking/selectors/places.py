"""Which terminals were near a place: in a time window (伴随分析, the rings at a stop) or, by their
last position, now. Distances against a place use geography (ST_DWithin / ST_Distance, metres on
the spheroid, served by the GiST indexes); the presence cells (tracking_pingcell) name the
terminals worth reading.
"""

import datetime
from typing import Any

from django.db import connection, transaction

from tracking.cells import cells_covering, hour_floor

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


def vehicles_at_place(
    *,
    latitude: float,
    longitude: float,
    radius_m: float,
    since: datetime.datetime,
    until: datetime.datetime,
    limit: int,
) -> list[tuple[Any, ...]]:
    """Bikes with a plausible fix within `radius_m` of the place in [since, until), closest first, at
    most `limit`: rows of (vehicle id, first seen, last seen, fixes, closest distance in metres)."""
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
                "limit": limit,
            },
        )
        return cursor.fetchall()


# The bikes given (with the moment each went missing) whose current or earlier terminals were in
# the presence cells of the place in the window; only fixes after that moment and during the
# terminal's installation on the bike are read.
VISITS_SQL = """
WITH missing AS (
    SELECT r.vehicle_id, i.terminal_id,
           greatest(r.last_seen_at, i.installed_at, %(since)s) AS t0,
           least(coalesce(i.removed_at, 'infinity'::timestamptz), %(until)s) AS t1
    FROM unnest(%(vehicles)s::bigint[], %(last_seen)s::timestamptz[]) AS r(vehicle_id, last_seen_at)
    JOIN tracking_terminalinstallation i ON i.vehicle_id = r.vehicle_id
    WHERE (i.removed_at IS NULL OR i.removed_at > r.last_seen_at)
      AND i.terminal_id IN (
          SELECT terminal_id FROM tracking_pingcell
          WHERE cell = ANY(%(cells)s) AND hour >= %(since_hour)s AND hour < %(until)s)
), place AS (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography AS g)
SELECT m.vehicle_id, min(p.device_time), max(p.device_time), count(*), min(ST_Distance(p.point, place.g))
FROM missing m
JOIN tracking_ping p ON p.terminal_id = m.terminal_id AND p.device_time >= m.t0 AND p.device_time < m.t1
CROSS JOIN place
WHERE p.device_time >= %(since)s AND p.device_time < %(until)s AND p.valid AND NOT p.outlier
  AND ST_DWithin(p.point, place.g, %(radius)s)
GROUP BY m.vehicle_id
ORDER BY min(ST_Distance(p.point, place.g)), m.vehicle_id
"""


def visits_at_place(
    *,
    latitude: float,
    longitude: float,
    radius_m: float,
    since: datetime.datetime,
    until: datetime.datetime,
    seen_after: dict[int, datetime.datetime],
) -> list[tuple[Any, ...]]:
    """The bikes of `seen_after` (vehicle id -> moment from which their fixes count) with a plausible
    fix within `radius_m` of the place in [since, until), closest first: rows of (vehicle id, first
    seen, last seen, fixes, closest distance in metres)."""
    if not seen_after:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            VISITS_SQL,
            {
                "since": since,
                "since_hour": hour_floor(since),
                "until": until,
                "cells": cells_covering(latitude, longitude, radius_m),
                "vehicles": list(seen_after),
                "last_seen": list(seen_after.values()),
                "lat": latitude,
                "lon": longitude,
                "radius": float(radius_m),
            },
        )
        return cursor.fetchall()


# Driven by the partial GiST index over the last positions of terminals on bikes missing now
# (LastPosition.missing_point, kept by tracking.services.last_positions_flag_missing): within 5 km
# of a town centre lie a third of the county's bikes but only ~1 % of them are missing, so the index
# holds only those. The closest `candidates` are taken first; only they are joined with their
# fitting (that join, done for every missing bike in the circle, was most of the time: ~3,400 of
# them around a town centre). A last position older than the terminal's fitting on the bike belongs
# to another bike and is left out.
MISSING_NEAR_SQL = """
WITH place AS (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography AS g),
near AS (
    SELECT lp.terminal_id, lp.device_time, lp.missing_point AS point, ST_Distance(lp.missing_point, place.g) AS distance
    FROM tracking_lastposition lp CROSS JOIN place
    WHERE lp.missing_point IS NOT NULL AND ST_DWithin(lp.missing_point, place.g, %(radius)s)
    ORDER BY distance, lp.terminal_id
    LIMIT %(candidates)s
)
SELECT i.vehicle_id, near.device_time, ST_Y(near.point::geometry), ST_X(near.point::geometry), near.distance,
       (SELECT count(*) FROM near) AS candidates
FROM near
JOIN tracking_terminalinstallation i ON i.terminal_id = near.terminal_id AND i.removed_at IS NULL
WHERE near.device_time >= i.installed_at
ORDER BY near.distance, i.vehicle_id
"""


def missing_near(
    *, latitude: float, longitude: float, radius_m: float, candidates: int | None
) -> tuple[list[tuple[Any, ...]], int]:
    """The last positions of bikes flagged missing within `radius_m` of the point, closest first:
    rows of (vehicle id, fix time, latitude, longitude, distance in metres), from the `candidates`
    closest flagged positions (None: all of them), and how many candidates there were."""
    params = {"lat": latitude, "lon": longitude, "radius": float(radius_m), "candidates": candidates}
    with transaction.atomic(), connection.cursor() as cursor:
        # The planner cannot tell how many missing bikes a circle holds and may start parallel
        # workers for a scan of a few thousand index hits: their start-up and the hand-over of
        # the rows cost more than the scan (20 ms against 8 ms at a town centre). It also prices
        # the partial index over missing_point far too high (millions for a few thousand rows)
        # and would compile the query (JIT: ~110 ms for a 7 ms query).
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(MISSING_NEAR_SQL, params)
        rows = cursor.fetchall()
    return [row[:5] for row in rows], (rows[0][5] if rows else 0)
