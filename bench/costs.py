"""Per-position costs for the capacity model (docs/scale.md): database CPU, WAL, storage, the writer's CPU.

    .venv/bin/python bench/costs.py [--scale small|full] [--cycles N] [--interval 10]

The gateway's storage path (`batch_plan` driven by the writer's `drive_plan`) in a throwaway
PostgreSQL cluster holding the bench database's schema (bench/harness/clusters.py), so that its WAL and
CPU are this bench's alone; checkpoints only when the bench asks. For each batch size, over cycles
of CHECKPOINT, a cold run and warm runs give WAL per ping and page images per terminal, database and
writer CPU per ping, storage per row, and the cost of maintenance. small = 1,000 terminals (under a
minute), full = 10,000. The method in detail: docs/benchmarks.md#costs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import random
import statistics
import subprocess
import time
from typing import Any

import _common as bench
from ingest import cpu_seconds

SCALES: dict[str, dict[str, Any]] = {
    "small": {"terminals": 1_000, "warmup_rounds": 300, "rounds": 20, "cycles": 3, "batches": [200, 2000]},
    "full": {"terminals": 10_000, "warmup_rounds": 300, "rounds": 20, "cycles": 5, "batches": [200, 2000]},
}
HOST = "127.0.0.61"  # the throwaway cluster's own loopback address (other benches and drills use others)
DATABASE = "costs"
SPEED_KMH = 15.0
METRES_PER_DEGREE = 111_000.0
ALARM_EVERY = 1000
CLUSTER_CONF = """
# bench/costs.py: the machine cluster's settings, checkpoints only on request
shared_buffers = 128MB
wal_level = replica
full_page_writes = on
wal_compression = off
autovacuum = off
max_wal_size = 8GB
checkpoint_timeout = 1h
synchronous_commit = on
# as the primary runs with a standby (pg_rewind needs it; docker/db-init/30-replication.sh): the first
# hint bit set on a page after a checkpoint writes that page to the WAL whole
wal_log_hints = on
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cycles", type=int, help="CHECKPOINT + cold run + two warm runs, per batch size")
    parser.add_argument("--terminals", type=int, help="terminals (each reports once a round)")
    parser.add_argument("--interval", type=int, default=10, help="seconds of device time between two fixes")


# --- the scratch cluster --------------------------------------------------------------------------------


def schema_sql() -> str:
    """The bench database's schema, without owners, grants or rows."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    env = {**os.environ, "PGPASSWORD": str(database.get("PASSWORD") or "")}
    args = ["pg_dump", "--schema-only", "--no-owner", "--no-privileges", "-d", str(database["NAME"])]
    if database.get("HOST"):
        args += ["-h", str(database["HOST"]).split(",")[0]]
    if database.get("PORT"):
        args += ["-p", str(database["PORT"]).split(",")[0]]
    if database.get("USER"):
        args += ["-U", str(database["USER"])]
    dumped = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, check=False)  # noqa: S603
    if dumped.returncode != 0:
        raise SystemExit(f"pg_dump of the bench database failed: {dumped.stderr.strip()}")
    return dumped.stdout


def load_schema(cluster: Any, sql: str) -> None:
    from harness.clusters import PG_BIN

    cluster.sql(f'CREATE DATABASE "{DATABASE}"')
    loaded = subprocess.run(  # noqa: S603
        [str(PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", cluster.host, "-p", str(cluster.port),
         "-U", "postgres", "-d", DATABASE],
        input=sql, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if loaded.returncode != 0:
        raise SystemExit(f"loading the schema into the scratch cluster failed: {loaded.stderr.strip()[-2000:]}")


class Meter:
    """CPU of the cluster's processes and of its writer backend, WAL position and full-page images.

    A backend reports its WAL statistics (pg_stat_wal) at most once a second when it goes idle: each
    reading first makes the control connection's backend report, and the writer's `flush_stats` is
    awaited before a reading that follows its work. The WAL bytes come from the WAL position, exact."""

    def __init__(self, cluster: Any, connection: Any, backend_pid: int) -> None:
        self.cluster = cluster
        self.connection = connection  # autocommit psycopg connection for the readings
        self.backend_pid = backend_pid

    def pids(self) -> list[int]:
        postmaster = self.cluster.postmaster_pid()
        return [postmaster, *self.cluster.children_of(postmaster)]

    def read(self) -> dict[str, Any]:
        self.connection.execute("SELECT pg_stat_force_next_flush()")  # reported when it goes idle, now
        lsn, records, fpi = self.connection.execute(
            "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, wal_records, wal_fpi FROM pg_stat_wal"
        ).fetchone()
        return {
            "cpu": cpu_seconds(self.pids()),
            "lsn": int(lsn),
            "records": int(records),
            "fpi": int(fpi),
            "client_cpu": time.process_time(),
            "wall": time.perf_counter(),
        }

    def since(self, before: dict[str, Any]) -> dict[str, float]:
        """What happened between `before` and now. The readings' own queries run on another backend,
        whose CPU is counted too: a few hundred microseconds a reading."""
        after = self.read()
        cpu = sum(value - before["cpu"].get(pid, 0.0) for pid, value in after["cpu"].items())
        backend = after["cpu"].get(self.backend_pid, 0.0) - before["cpu"].get(self.backend_pid, 0.0)
        return {
            "db_cpu_s": cpu,
            "backend_cpu_s": backend,
            "wal_bytes": after["lsn"] - before["lsn"],
            "wal_records": after["records"] - before["records"],
            "fpi": after["fpi"] - before["fpi"],
            "client_cpu_s": after["client_cpu"] - before["client_cpu"],
            "seconds": after["wall"] - before["wall"],
        }


# --- the fleet ------------------------------------------------------------------------------------------


def create_terminals(connection: Any, count: int) -> list[int]:
    rows = connection.execute(
        """
        INSERT INTO tracking_terminal (imei, protocol, source, sim_iccid, phone, auth_code_digest,
            heartbeat_interval_s, positioning_enabled, active, created_at, armed)
        SELECT lpad(n::text, 15, '0'), 'gt06', 'bench', '', '', '', 300, true, true, now(), false
        FROM generate_series(1, %s) AS n
        RETURNING id
        """,
        [count],
    ).fetchall()
    return sorted(row[0] for row in rows)


def ensure_partition(connection: Any, day: datetime.date) -> str:
    name = f"tracking_ping_p{day:%Y%m%d}"
    start = datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF tracking_ping FOR VALUES FROM (%s) TO (%s)",
        [start, start + datetime.timedelta(days=1)],
    )
    return name


class Fleet:
    """Each terminal rides north from its own spot at SPEED_KMH, one fix every `interval` s."""

    def __init__(self, terminal_ids: list[int], day: datetime.date, interval: int) -> None:
        rng = random.Random(7)
        self.ids = terminal_ids
        self.spots = [(39.80 + rng.uniform(-0.08, 0.08), 117.74 + rng.uniform(-0.08, 0.08)) for _ in terminal_ids]
        self.start = datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)
        self.interval = interval
        self.step = SPEED_KMH / 3.6 * interval / METRES_PER_DEGREE  # degrees of latitude a fix
        self.round = 0
        self.sent = 0

    def rounds(self, count: int) -> list[Any]:
        """The next `count` rounds of fixes, every terminal once a round, in round order."""
        from tracking.ingest import Incoming
        from tracking.protocols.common import Fix

        items = []
        for _ in range(count):
            when = self.start + datetime.timedelta(seconds=self.round * self.interval)
            for index, terminal_id in enumerate(self.ids):
                lat, lon = self.spots[index]
                self.sent += 1
                alarms = ("vibration",) if self.sent % ALARM_EVERY == 0 else ()
                fix = Fix(
                    when, lat + self.round * self.step, lon, True, speed_kmh=SPEED_KMH, course=0.0,
                    altitude=20.0, satellites=9, battery=80, alarms=alarms,
                )  # fmt: skip
                items.append(Incoming(terminal_id, fix, session_id=terminal_id))
            self.round += 1
        return items

    def hours(self) -> float:
        """Device hours the fleet has covered so far."""
        return self.round * self.interval / 3600


class Writer:
    """The gateway writer's storage path on one connection (tracking.gateway.writer.BatchWriter)."""

    def __init__(self, connection: Any) -> None:
        from tracking.ingest import LastFixes

        self.connection = connection
        self.last = LastFixes(ttl_s=1e9)  # the bench's device clock runs faster than the TTL's
        self.dead = 0

    async def store(self, items: list[Any], batch: int) -> int:
        from tracking.gateway.writer import STAGE_VACUUM_ROWS, drive_plan
        from tracking.ingest import STAGE_VACUUM_SQL, batch_plan

        stored = 0
        for offset in range(0, len(items), batch):
            chunk = items[offset : offset + batch]
            now = time.monotonic()
            plan = batch_plan(
                chunk,
                now=datetime.datetime.now(datetime.UTC),
                liveness=(),
                last_known=self.last.getter(now),
                staged=True,
            )
            result = await drive_plan(self.connection, plan)
            self.last.put(result.latest, now)
            stored += result.stored
            self.dead += len(chunk)
            if self.dead >= STAGE_VACUUM_ROWS:
                await self.connection.set_autocommit(True)
                await self.connection.execute(STAGE_VACUUM_SQL)
                await self.connection.set_autocommit(False)
                self.dead = 0
        # Its WAL statistics reported now, for the reading that follows (see Meter).
        await self.connection.execute("SELECT pg_stat_force_next_flush()")
        await self.connection.commit()
        return stored


# --- the measurements ---------------------------------------------------------------------------------


def spread(values: list[float], digits: int = 1) -> dict[str, float]:
    """{"p50", "min", "max"} of a measured figure over the runs."""
    return {
        "p50": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


async def measure_batches(
    meter: Meter, writer: Writer, fleet: Fleet, config: dict[str, Any], batch: int
) -> dict[str, Any]:
    terminals = len(fleet.ids)
    warm, cold, checkpoint = [], [], []
    previous_pings = 0
    for cycle in range(config["cycles"]):
        before = meter.read()
        meter.connection.execute("CHECKPOINT")
        if cycle:  # the checkpoint writes back what the cycle before dirtied
            checkpoint.append(meter.since(before)["db_cpu_s"] / previous_pings)
        runs = []
        for _ in range(3):
            items = fleet.rounds(config["rounds"])
            before = meter.read()
            stored = await writer.store(items, batch)
            used = meter.since(before)
            if stored != len(items):
                raise SystemExit(f"{stored} of {len(items)} positions stored")
            used["pings"] = len(items)
            runs.append(used)
        previous_pings = sum(run["pings"] for run in runs)
        cold.append(runs[0])
        warm.extend(runs[1:])
        bench.log(
            f"batch {batch}, cycle {cycle + 1}: WAL a position cold {runs[0]['wal_bytes'] / runs[0]['pings']:.0f} B "
            f"({runs[0]['fpi']:,} page images), warm {runs[1]['wal_bytes'] / runs[1]['pings']:.0f} B; database CPU "
            f"{runs[1]['db_cpu_s'] / runs[1]['pings'] * 1e6:.1f} µs, writer "
            f"{runs[1]['client_cpu_s'] / runs[1]['pings'] * 1e6:.1f} µs a position; "
            f"{runs[1]['pings'] / runs[1]['seconds']:,.0f} positions/s"
        )
    warm_wal = statistics.median(run["wal_bytes"] / run["pings"] for run in warm)

    def per_ping(key: str, runs: list[dict[str, float]], scale: float = 1e6) -> dict[str, float]:
        return spread([run[key] / run["pings"] * scale for run in runs])

    return {
        "batch_size": batch,
        "runs": len(warm),
        "positions_per_s": spread([run["pings"] / run["seconds"] for run in warm], 0),
        "db_cpu_us_per_ping": per_ping("db_cpu_s", warm),
        "backend_cpu_us_per_ping": per_ping("backend_cpu_s", warm),
        "writer_cpu_us_per_ping": per_ping("client_cpu_s", warm),
        "checkpoint_cpu_us_per_ping": spread([value * 1e6 for value in checkpoint]) if checkpoint else None,
        "wal_bytes_per_ping": per_ping("wal_bytes", warm, 1),
        "wal_records_per_ping": spread([run["wal_records"] / run["pings"] for run in warm], 2),
        "cold_wal_bytes_per_ping": per_ping("wal_bytes", cold, 1),
        "cold_db_cpu_us_per_ping": per_ping("db_cpu_s", cold),
        "fpi_per_terminal": spread([run["fpi"] / terminals for run in cold], 2),
        "fpi_bytes_per_terminal": spread([(run["wal_bytes"] - warm_wal * run["pings"]) / terminals for run in cold], 0),
    }


def measure_liveness(
    meter: Meter, connection: Any, terminal_ids: list[int], batch: int, repeats: int = 5
) -> dict[str, Any]:
    """SEEN_SQL as the gateway sends it once a minute per terminal: WAL and CPU per terminal refreshed
    (`repeats` times every terminal, for CPU readings well above the clock tick)."""
    from tracking.ingest import SEEN_SQL, id_array

    wal = cpu = 0.0
    for _ in range(repeats):
        connection.execute("UPDATE tracking_terminal SET last_seen_at = now() - interval '2 minutes'")
        before = meter.read()
        for offset in range(0, len(terminal_ids), batch):
            with connection.transaction():
                connection.execute(SEEN_SQL, [id_array(terminal_ids[offset : offset + batch])])
        used = meter.since(before)
        wal += used["wal_bytes"]
        cpu += used["db_cpu_s"]
    count = len(terminal_ids) * repeats
    return {
        "wal_bytes_per_refresh": round(wal / count, 1),
        "db_cpu_us_per_refresh": round(cpu / count * 1e6, 1),
        "note": "one refresh a terminal a minute (tracking.ingest.LIVENESS_S): per position x interval / 60",
    }


def size(connection: Any, sql: str, params: list[Any] | None = None) -> int:
    return int(connection.execute(sql, params).fetchone()[0] or 0)


def measure_storage(connection: Any, partition: str, fleet: Fleet) -> dict[str, Any]:
    terminals = len(fleet.ids)
    connection.execute(f"ANALYZE {partition}")
    rows = size(connection, f"SELECT count(*) FROM {partition}")
    heap = size(connection, "SELECT pg_relation_size(%s)", [partition])
    indexes = size(connection, "SELECT pg_indexes_size(%s)", [partition])
    density = None
    try:
        connection.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        key = connection.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass AND indisprimary",
            [partition],
        ).fetchone()[0]
        density = float(connection.execute("SELECT avg_leaf_density FROM pgstatindex(%s)", [key]).fetchone()[0])
    except Exception as error:  # pgstattuple is optional (postgresql-contrib)
        bench.log(f"no leaf density: {error}")
    last_total = size(connection, "SELECT pg_total_relation_size('tracking_lastposition')")
    cells = size(connection, "SELECT count(*) FROM tracking_pingcell")
    cells_total = size(connection, "SELECT pg_total_relation_size('tracking_pingcell')")
    outbox = size(connection, "SELECT count(*) FROM tracking_ingestoutbox")
    outbox_total = size(connection, "SELECT pg_total_relation_size('tracking_ingestoutbox')")
    alarms = size(connection, "SELECT count(*) FROM tracking_alarm")
    terminal_total = size(connection, "SELECT pg_total_relation_size('tracking_terminal')")
    return {
        "ping_rows": rows,
        "rows_per_terminal": rows // terminals,
        "ping_heap_bytes_per_row": round(heap / rows, 1),
        "ping_index_bytes_per_row": round(indexes / rows, 1),
        "ping_key_leaf_density_pct": density,
        "lastposition_bytes_per_terminal": round(last_total / terminals),
        "terminal_bytes_per_terminal": round(terminal_total / terminals),
        "pingcell_rows_per_terminal_hour": round(cells / terminals / max(fleet.hours(), 1e-9), 1),
        "pingcell_rows_per_ping": round(cells / rows, 4),
        "pingcell_bytes_per_row": round(cells_total / max(1, cells), 1),
        "outbox_rows": outbox,
        "outbox_bytes_per_row": round(outbox_total / max(1, outbox)),
        "outbox_bytes_per_ping": round(outbox_total / rows, 1),
        "alarm_rows": alarms,
        "device_hours": round(fleet.hours(), 2),
    }


def measure_maintenance(meter: Meter, connection: Any, partition: str, rows: int) -> dict[str, Any]:
    """Once-per-page writes that come after ingestion, each right after a checkpoint (the worst case:
    a page changed again in the same checkpoint cycle is not written whole again): the first reader
    setting hint bits (WAL-logged with wal_log_hints), then freezing (anti-wraparound autovacuum)."""
    connection.execute("CHECKPOINT")
    before = meter.read()
    connection.execute(f"SELECT sum(battery) FROM {partition}")  # a sequential scan: sets the hint bits
    hints = meter.since(before)
    connection.execute("CHECKPOINT")
    before = meter.read()
    connection.execute(f"VACUUM (FREEZE) {partition}")
    freeze = meter.since(before)
    before = meter.read()
    connection.execute("VACUUM tracking_lastposition, tracking_pingcell, tracking_ingestoutbox, tracking_terminal")
    hot = meter.since(before)
    return {
        "hint_bits_wal_bytes_per_ping": round(hints["wal_bytes"] / rows, 1),
        "hint_bits_fpi": hints["fpi"],
        "freeze_wal_bytes_per_ping": round(freeze["wal_bytes"] / rows, 1),
        "freeze_cpu_us_per_ping": round(freeze["db_cpu_s"] / rows * 1e6, 2),
        "freeze_fpi": freeze["fpi"],
        "vacuum_small_tables_wal_bytes_per_ping": round(hot["wal_bytes"] / rows, 2),
        "vacuum_small_tables_cpu_us_per_ping": round(hot["db_cpu_s"] / rows * 1e6, 2),
    }


async def run(cluster: Any, config: dict[str, Any], interval: int) -> dict[str, Any]:
    import psycopg

    from tracking.gateway import db
    from tracking.ingest import WRITER_STAGE_DDL

    info = cluster.conninfo(DATABASE)
    control = psycopg.connect(info, autocommit=True)
    try:
        day = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)
        partition = ensure_partition(control, day)
        terminal_ids = create_terminals(control, config["terminals"])
        fleet = Fleet(terminal_ids, day, interval)
        connection = await db.connect(info, autocommit=False)
        await connection.execute(WRITER_STAGE_DDL)
        await connection.commit()
        backend = (await (await connection.execute("SELECT pg_backend_pid()")).fetchone())[0]
        await connection.commit()
        meter = Meter(cluster, control, backend)
        writer = Writer(connection)
        # Warm-up: every terminal's first position (the last-position inserts), then enough rounds that
        # each terminal's rows fill leaf pages of the ping key of their own, as in a day of reporting
        # (a terminal's newest rows then sit on its own right-edge leaf: one hot page a terminal).
        await writer.store(fleet.rounds(2), max(config["batches"]))
        for _ in range(0, config["warmup_rounds"], 50):
            await writer.store(fleet.rounds(50), max(config["batches"]))
        bench.log(f"warm-up: {fleet.sent:,} positions; cluster processes {len(meter.pids())}")
        by_batch = {}
        for batch in config["batches"]:
            by_batch[str(batch)] = await measure_batches(meter, writer, fleet, config, batch)
        await connection.close()
        # Maintenance first: any read of the partition (the storage figures' count) sets hint bits.
        maintenance = measure_maintenance(meter, control, partition, fleet.sent)
        storage = measure_storage(control, partition, fleet)
        liveness = measure_liveness(meter, control, terminal_ids, min(config["batches"]))
    finally:
        control.close()
    return {"by_batch": by_batch, "liveness": liveness, "storage": storage, "maintenance": maintenance}


def main() -> None:
    args = bench.parse_args(__doc__.split("\n\n")[0], configure)
    bench.setup_django()
    from harness.clusters import ThrowawayCluster

    config = dict(SCALES[args.scale])
    if args.cycles:
        config["cycles"] = args.cycles
    if args.terminals:
        config["terminals"] = args.terminals
    results: dict[str, Any] = {"machine": bench.machine()}
    sql = schema_sql()
    with ThrowawayCluster(host=HOST, name="costs", fast=False) as cluster:
        cluster.append_conf(CLUSTER_CONF)
        cluster.start()
        load_schema(cluster, sql)
        bench.log(
            f"scratch cluster {cluster.host}:{cluster.port} with the bench database's schema; "
            f"{config['terminals']:,} terminals, one fix every {args.interval} s, {config['rounds']} rounds a run, "
            f"{config['cycles']} cycles, batches {config['batches']}"
        )
        with bench.Stopwatch() as watch:
            measured = asyncio.run(run(cluster, config, args.interval))
    results.update(
        terminals=config["terminals"],
        interval_s=args.interval,
        rounds_per_run=config["rounds"],
        cycles=config["cycles"],
        cluster="throwaway cluster, the bench database's schema, shared_buffers 128MB, fsync on, "
        "full_page_writes on, wal_compression off, checkpoints only between cycles",
        seconds=round(watch.seconds, 1),
        **measured,
    )
    bench.emit("costs", args.scale, results)


if __name__ == "__main__":
    main()
