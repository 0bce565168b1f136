"""The SQL the statistics (stats/) read of cases' tables: theft reports with their outcome, cases
filed, rescue calls, theft places. Each statement is a whole SELECT with named parameters; stats runs
it as it is or embeds it in its rollups' INSERT … SELECT, so cases' tables are named here only.
"""

# Per month of receipt and station: the outcome of every report so far. Shared by the rebuild
# (all reports) and the live reading of changed months (stats.selectors.thefts_monthly), so both
# count alike. %(ids)s limits it to some reports (NULL: all of them).
THEFT_MONTHS_SQL = """
    WITH r AS (
        SELECT t.id, t.station_id, t.received_at,
               date_trunc('month', t.received_at AT TIME ZONE %(tz)s)::date AS month
        FROM cases_theftreport t
        WHERE %(ids)s::bigint[] IS NULL OR t.id = ANY(%(ids)s::bigint[])
    ),
    x AS (
        SELECT tr.report_id,
               min(tr.at) FILTER (WHERE tr.to_status = 'recovered') AS recovered_at,
               bool_or(tr.to_status IN ('filed_criminal', 'filed_public_order')) AS filed,
               bool_or(tr.to_status = 'solved') AS solved
        FROM cases_reporttransition tr
        WHERE tr.to_status IN ('recovered', 'filed_criminal', 'filed_public_order', 'solved')
          AND (%(ids)s::bigint[] IS NULL OR tr.report_id = ANY(%(ids)s::bigint[]))
        GROUP BY tr.report_id
    )
    SELECT r.month, r.station_id,
           count(*) AS reported,
           count(*) FILTER (WHERE x.filed) AS filed,
           count(*) FILTER (WHERE x.solved) AS solved,
           count(x.recovered_at) AS recovered,
           coalesce(array_agg(extract(epoch FROM x.recovered_at - r.received_at)::float8 / 86400.0
                              ORDER BY x.recovered_at - r.received_at)
                    FILTER (WHERE x.recovered_at IS NOT NULL), '{}') AS recovery_days
    FROM r LEFT JOIN x ON x.report_id = r.id
    GROUP BY r.month, r.station_id
"""

# Rescue duty calls per county day raised and station, with every answered call's minutes.
RESCUE_DAYS_SQL = """
    SELECT (d.raised_at AT TIME ZONE %(tz)s)::date AS day, d.station_id,
           count(*) AS calls, count(d.acknowledged_at) AS answered,
           coalesce(array_agg(extract(epoch FROM d.acknowledged_at - d.raised_at)::float8 / 60.0
                              ORDER BY d.acknowledged_at - d.raised_at)
                    FILTER (WHERE d.acknowledged_at IS NOT NULL), '{}') AS answer_minutes
    FROM cases_dutycall d
    WHERE d.kind = 'rescue' AND d.raised_at >= %(since)s AND d.raised_at < %(until)s
      AND (%(station)s::bigint IS NULL OR d.station_id = %(station)s)
    GROUP BY 1, 2
"""

# Which (month, station) of the period hold reports received or moved since %(cutoff)s (or outside
# the whole months a rollup holds); then the ids of the reports of those groups.
THEFT_MONTHS_TOUCHED_SQL = """
    SELECT DISTINCT date_trunc('month', t.received_at AT TIME ZONE %(tz)s)::date AS month, t.station_id
    FROM cases_theftreport t
    WHERE t.received_at >= %(since)s AND t.received_at < %(until)s
      AND (%(station)s::bigint IS NULL OR t.station_id = %(station)s)
      AND (t.received_at < %(full_from)s OR t.received_at >= %(full_until)s
           OR t.received_at >= %(cutoff)s OR t.status_changed_at >= %(cutoff)s)
"""
THEFT_REPORT_IDS_SQL = """
    SELECT array_agg(t.id)
    FROM unnest(%(stations)s::bigint[], %(los)s::timestamptz[], %(his)s::timestamptz[]) AS g(station_id, lo, hi)
    CROSS JOIN LATERAL (
        SELECT r.id FROM cases_theftreport r
        WHERE r.station_id = g.station_id AND r.received_at >= GREATEST(g.lo, %(since)s)
          AND r.received_at < LEAST(g.hi, %(until)s)
        OFFSET 0  -- keeps the subquery per group (an index range scan) instead of one hash join over all reports
    ) t
"""

# Cases filed per month (filing date) and handling station, with reports linked and solved.
CASES_MONTHLY_SQL = """
        SELECT date_trunc('month', c.filed_on)::date AS month, c.station_id,
               count(*) AS filed,
               count(*) FILTER (WHERE EXISTS (
                   SELECT 1 FROM cases_caselink l
                   WHERE l.case_id = c.id AND l.report_id IS NOT NULL AND l.unlinked_at IS NULL)) AS with_reports,
               coalesce(sum((SELECT count(*) FROM cases_caselink l
                   WHERE l.case_id = c.id AND l.report_id IS NOT NULL AND l.unlinked_at IS NULL)), 0) AS linked_reports,
               count(*) FILTER (WHERE c.status = 'solved' OR c.solved_with_positioning) AS solved,
               count(*) FILTER (WHERE c.solved_with_positioning) AS solved_with_positioning
        FROM cases_case c
        WHERE c.filed_on BETWEEN %(since)s AND %(until)s
          AND (%(station)s::bigint IS NULL OR c.station_id = %(station)s)
        GROUP BY GROUPING SETS ((1, 2), (1), ())
        ORDER BY 1 NULLS LAST, 2 NULLS LAST
"""

# Theft-report places snapped to a square grid of %(s)s metres in %(srid)s, busiest cells first.
THEFT_HOTSPOTS_SQL = """
        WITH p AS (
            SELECT ST_SnapToGrid(ST_Transform(t.place_point::geometry, %(srid)s), %(half)s, %(half)s, %(s)s, %(s)s)
                   AS centre
            FROM cases_theftreport t
            WHERE t.received_at >= %(since)s AND t.received_at < %(until)s
              AND (%(station)s::bigint IS NULL OR t.station_id = %(station)s)
        ),
        totals AS (SELECT count(*) AS reports, count(*) FILTER (WHERE centre IS NULL) AS without_point FROM p),
        c AS (
            SELECT ST_X(centre) AS x, ST_Y(centre) AS y, count(*) AS reports FROM p
            WHERE centre IS NOT NULL GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT %(limit)s
        )
        SELECT totals.reports AS total, totals.without_point, c.x, c.y, c.reports,
               ST_AsGeoJSON(ST_Transform(
                   ST_MakeEnvelope(c.x - %(half)s, c.y - %(half)s, c.x + %(half)s, c.y + %(half)s, %(srid)s), 4326), 6)
                   AS geometry,
               ST_Y(ST_Transform(ST_SetSRID(ST_MakePoint(c.x, c.y), %(srid)s), 4326)) AS lat,
               ST_X(ST_Transform(ST_SetSRID(ST_MakePoint(c.x, c.y), %(srid)s), 4326)) AS lon
        FROM totals LEFT JOIN c ON true
        ORDER BY c.reports DESC, c.x, c.y
"""
