"""Retention benchmark: retiring an old day partition of pings that holds a few rows under legal hold.

    .venv/bin/python bench/retention.py [--scale small|full]

Two identical day partitions of 2001 (bench terminal ids from 9,000,000,000, 1 % of them held for
the whole day); one is retired as tracking.retention does (held rows copied out, partition detached
and dropped: `retire_ms`, `retire_ingestion_waits_ms`), the other trimmed in place (DELETE, then
VACUUM: `trim_ms`, what stays on disk). Both report their WAL; everything made is removed at the
end. small = 2.9M rows a day, full = 28.8M. Details: docs/benchmarks.md#retention.
"""

import datetime

import _common as bench

SCALES = {"small": {"terminals": 2_000, "step_s": 60}, "full": {"terminals": 10_000, "step_s": 30}}
FIRST_TERMINAL = 9_000_000_000
DAYS = {"retire": datetime.date(2001, 1, 1), "trim": datetime.date(2001, 1, 2)}

SEED_SQL = """
INSERT INTO {table} (terminal_id, device_time, received_at, point, speed_kmh, course, valid, battery, alarms, outlier)
SELECT t, at, at + interval '2 seconds',
       ST_SetSRID(ST_MakePoint(117.70 + (t %% 1000) * 0.0001 + s * 0.000001, 39.86 + (t %% 997) * 0.0001), 4326)
           ::geography,
       12.0, 90.0, true, 80, '[]', false
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS t,
     generate_series(0, 86400 / %(step)s - 1) AS s,
     LATERAL (SELECT %(day)s::timestamptz + s * %(step)s * interval '1 second' AS at) x
"""


def main() -> None:
    args = bench.parse_args("retiring an old day partition of pings with a few rows under legal hold")
    bench.setup_django()
    from django.db import connection

    from tracking.partitions import partition_create, partition_name, partitions_existing
    from tracking.retention import Window, partition_retire, partition_trim

    scale = SCALES[args.scale]
    terminals, step = scale["terminals"], scale["step_s"]
    last = FIRST_TERMINAL + terminals - 1
    held = [FIRST_TERMINAL + i for i in range(0, terminals, 100)]  # 1 %

    def sql(statement: str, params: object = None) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def clean() -> None:
        for day in DAYS.values():
            if day in partitions_existing():
                sql(f"DROP TABLE {partition_name(day)}")
        sql("DELETE FROM tracking_ping_default WHERE terminal_id BETWEEN %s AND %s", [FIRST_TERMINAL, last])

    def wal() -> int:
        return int(sql("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")[0][0])

    def mb(table: str) -> float:
        return round(sql("SELECT pg_total_relation_size(%s)", [table])[0][0] / 2**20, 1)

    machine = bench.machine()
    select1 = bench.baseline_select1()
    clean()
    rows_per_day = terminals * (86400 // step)
    for way, day in DAYS.items():
        bench.log(f"seeding {partition_name(day)} ({way}): {rows_per_day:,} rows")
        partition_create(day)
        start = datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)
        sql(
            SEED_SQL.format(table=partition_name(day)),
            {"first": FIRST_TERMINAL, "last": last, "step": step, "day": start},
        )
        sql(f"VACUUM ANALYZE {partition_name(day)}")
    size_before = mb(partition_name(DAYS["trim"]))

    windows = [Window(t, None, None) for t in held]
    results: dict[str, object] = {"rows_per_partition": rows_per_day, "held_terminals": len(held)}
    results["partition_mb"] = size_before

    wal_start = wal()
    with bench.Stopwatch() as watch:
        retired = partition_retire(DAYS["retire"], windows=windows)
    moved = retired.rows_kept
    results |= {"retire_ms": round(watch.seconds * 1000, 1), "retire_rows_kept": moved}
    results["retire_ingestion_waits_ms"] = round(retired.locked_s * 1000, 1)
    results["retire_wal_mb"] = round((wal() - wal_start) / 2**20, 1)

    wal_start = wal()
    with bench.Stopwatch() as watch:
        deleted = partition_trim(DAYS["trim"], windows=windows)
    results |= {"trim_ms": round(watch.seconds * 1000, 1), "trim_rows_deleted": deleted}
    with bench.Stopwatch() as watch:
        sql(f"VACUUM {partition_name(DAYS['trim'])}")
    results["trim_vacuum_ms"] = round(watch.seconds * 1000, 1)
    results["trim_wal_mb"] = round((wal() - wal_start) / 2**20, 1)
    results["trim_partition_mb_after"] = mb(partition_name(DAYS["trim"]))
    results["rows_kept_equal"] = moved == rows_per_day - deleted
    results["retire_speedup"] = round(results["trim_ms"] / max(results["retire_ms"], 0.001), 1)

    clean()
    results["select1_p50_ms"] = bench.p50(select1)
    results["machine"] = machine
    bench.emit("retention", args.scale, results)


if __name__ == "__main__":
    main()
