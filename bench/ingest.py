"""Ingestion benchmark: raw COPY, one INSERT per position, the gateway end to end, the HTTP batch API.

    .venv/bin/python bench/ingest.py [--scale small|full] [--rates 10000,25000] [--stage-seconds 20] [--profile]

Every phase writes into the same day partition of tracking_ping for the same bench terminals:
(a) COPY, the ceiling; the storage pipeline alone; (b) one INSERT per position; (c) the gateway as a
subprocess under an open-loop GT06 load generator (this script with --loadgen), in stages of rising
rate, rows stored checked against pings acked; (d) POST /api/v1/pings; (e) the gateway's memory
with every connection open; (f) two nodes behind HAProxy; and the ack-only floor
(bench/_ackserver.py). small = 500 terminals, full = 10,000 and a 20M-row partition. Targets:
(c) >= 25,000 acked/s at p99 <= 250 ms and >= 0.3 of (a); (d) >= 60,000/s; (e) <= 200 MB.
Each phase in detail: docs/benchmarks.md#ingest; the runs: docs/ingest-measurements.md.
"""

from __future__ import annotations

import argparse
import array
import datetime
import http.client
import json
import math
import os
import random
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import _common as bench

SCALES: dict[str, dict[str, Any]] = {
    "small": {
        "terminals": 500,
        "seed_rows": 0,
        "copy_rows": 50_000,
        "pipeline_rows": 20_000,
        "insert_rows": 2_000,
        "rates": [3_000],
        "stage_s": 8,
        "http_s": 5,
    },
    "full": {
        "terminals": 10_000,
        "seed_rows": 20_000_000,
        "copy_rows": 500_000,
        "pipeline_rows": 200_000,
        "insert_rows": 20_000,
        "rates": [10_000, 15_000, 20_000, 25_000, 32_000, 40_000],
        "stage_s": 20,
        "http_s": 15,
    },
}
SLOT_S = 1  # seconds between two rows of a terminal, seeded or written by a run ("slots")
SLOTS_PER_DAY = 86400 // SLOT_S
BENCH_TAC = "35209900"  # IMEIs of bench terminals: this prefix, a 6-digit serial, the Luhn digit
TARGET_P99_MS = 250.0
TARGET_RATE = 25_000
TARGET_RATIO = 0.3  # (c) over (a)
ALARM_EVERY = 1000  # one alarm packet (0x16, vibration) among this many location packets
OUT = bench.ROOT / "bench" / "out"
COLUMNS = (
    "terminal_id, device_time, received_at, point, speed_kmh, course, altitude, satellites, valid, battery, "
    "alarms, outlier"
)


# --- set-up: terminals, partition, seed rows, the run's slots ---------------------------------------------


def bench_terminals(count: int) -> list[tuple[int, str]]:
    """(id, IMEI) of `count` active GT06 bench terminals, created in bulk when missing."""
    from stdnum import luhn

    from tracking.models import Terminal

    def imei(serial: int) -> str:
        body = f"{BENCH_TAC}{serial:06d}"
        return body + luhn.calc_check_digit(body)

    wanted = [imei(n) for n in range(1, count + 1)]
    existing = set(Terminal.objects.filter(imei__in=wanted).values_list("imei", flat=True))
    missing = [value for value in wanted if value not in existing]
    if missing:
        bench.log(f"creating {len(missing):,} bench terminals")
        Terminal.objects.bulk_create(
            [Terminal(imei=value, protocol="gt06", heartbeat_interval_s=300) for value in missing], batch_size=5000
        )
    Terminal.objects.filter(imei__in=wanted).exclude(active=True, protocol="gt06").update(active=True, protocol="gt06")
    by_imei = dict(Terminal.objects.filter(imei__in=wanted).values_list("imei", "id"))
    return [(by_imei[value], value) for value in wanted]


def partition_rows(cursor: Any, name: str) -> int:
    cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [name])
    row = cursor.fetchone()
    return max(0, row[0]) if row else 0


def choose_day(seed_rows: int) -> datetime.date:
    """Full scale: a past day whose partition holds the seeded rows (reused), else one three days back
    (seeded next). Small scale (no seeding): the emptiest of the days two to six back, so that a
    quick check does not wade through the big partition."""
    from django.db import connection

    from tracking.partitions import partition_create, partition_name, partitions_existing

    today = datetime.datetime.now(datetime.UTC).date()
    existing = set(partitions_existing())
    with connection.cursor() as cursor:
        sizes = {day: partition_rows(cursor, partition_name(day)) for day in existing if day < today}
    if seed_rows:
        best = max(sizes, key=sizes.__getitem__, default=None)
        if best is not None and sizes[best] >= 0.9 * seed_rows:
            return best
        day = today - datetime.timedelta(days=3)
    else:
        candidates = [today - datetime.timedelta(days=back) for back in range(2, 7)]
        day = min(candidates, key=lambda candidate: sizes.get(candidate, 0))
    if day not in existing:
        partition_create(day)
    return day


def seed(day: datetime.date, terminal_ids: list[int], seed_rows: int) -> int:
    """Top the day's partition up to `seed_rows` rows: slots 0 .. seed_slots - 1 of every terminal."""
    from django.db import connection

    from tracking.partitions import partition_name

    name = partition_name(day)
    per_terminal = seed_slots(seed_rows, len(terminal_ids))
    with connection.cursor() as cursor:
        have = partition_rows(cursor, name)
        if not seed_rows or have >= 0.9 * seed_rows:
            return have
        start = datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)
        chunk = max(1, 1_000_000 // per_terminal)
        bench.log(f"seeding {name}: {per_terminal} rows per terminal for {len(terminal_ids):,} terminals (once)")
        with bench.Stopwatch() as watch:
            for first in range(0, len(terminal_ids), chunk):
                ids = terminal_ids[first : first + chunk]
                cursor.execute(
                    f"""
                    INSERT INTO {name} ({COLUMNS})
                    SELECT t, %s + make_interval(secs => k * {SLOT_S}), now(),
                        ST_SetSRID(ST_MakePoint(117.74 + (random() - 0.5) * 0.2, 39.88 + (random() - 0.5) * 0.2),
                                   4326)::geography,
                        15, 90, 20, 9, true, 80, '[]'::jsonb, false
                    FROM unnest(%s::bigint[]) AS t, generate_series(0, %s) AS k
                    ON CONFLICT DO NOTHING
                    """,
                    [start, ids, per_terminal - 1],
                )
                done = min(first + chunk, len(terminal_ids)) * per_terminal
                bench.log(f"  {done:,} rows, {done / watch_elapsed(watch):,.0f} rows/s")
        bench.log(f"seeded in {watch.seconds:.0f} s; VACUUM ANALYZE {name}")
        cursor.execute(f"VACUUM ANALYZE {name}")
        return partition_rows(cursor, name)


def watch_elapsed(watch: bench.Stopwatch) -> float:
    return max(1e-9, time.perf_counter() - watch.started)


# Small tables every batch updates rows of. This machine's PostgreSQL runs with autovacuum off,
# so without this their dead row versions piled up from run to run (50,000 in the last-position
# table after one run, 75,000 in the terminal table after a few), and every lookup walked past them.
# A production server's autovacuum keeps them clean.
HOT_TABLES = ("tracking_terminal", "tracking_lastposition", "tracking_pingcell", "tracking_ingestoutbox")


def before_phase() -> None:
    """Vacuum the hot tables (as autovacuum would), then write the machine's dirty pages to disk
    (os.sync). The phases before a measured one leave up to a gigabyte in the page cache (seeding,
    the COPY baseline); the kernel wrote it back in one burst in the middle of the next phase, and
    the WAL flushes of that phase's commits queued behind it: the burst measured the phase before,
    not this one."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {', '.join(HOT_TABLES)}")
    with bench.Stopwatch() as watch:
        os.sync()
    bench.log(f"hot tables vacuumed; dirty pages written back in {watch.seconds:.1f} s")


def seed_slots(seed_rows: int, terminals: int) -> int:
    return min(SLOTS_PER_DAY, math.ceil(seed_rows / terminals)) if seed_rows else 0


def run_slots(config: dict[str, Any]) -> int:
    """The slots one run takes: every phase writes its rows one slot a round of the terminals."""
    terminals = config["terminals"]
    rows = [config["copy_rows"], config["pipeline_rows"], config["insert_rows"], http_pings(config["http_s"])]
    rows += [rate * config["stage_s"] for rate in config["rates"]]
    rows.append(max(config["rates"]) * config["stage_s"])  # (f), at most the highest rate
    return sum(math.ceil(count / terminals) + 2 for count in rows)


def http_pings(seconds: float) -> int:
    """Pings prepared for (d): more than 1,000-ping requests can send in `seconds`."""
    return 40 * max(1, int(seconds)) * 1000


def run_start(day: datetime.date, terminal_ids: list[int], config: dict[str, Any]) -> int:
    """The first slot of this run: the one after the newest row of the bench terminals that day. When
    the rest of the day is too short for the run, earlier runs' rows are deleted first."""
    from django.db import connection

    from tracking.partitions import partition_name

    start = datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)
    seeded = seed_slots(config["seed_rows"], len(terminal_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT max(device_time) FROM tracking_ping WHERE terminal_id = %s AND device_time >= %s "
            "AND device_time < %s",
            [terminal_ids[0], start, start + datetime.timedelta(days=1)],
        )
        newest = cursor.fetchone()[0]
        first = seeded if newest is None else max(seeded, int((newest - start).total_seconds()) // SLOT_S + 1)
        if first + run_slots(config) <= SLOTS_PER_DAY:
            return first
        name = partition_name(day)
        bench.log(f"{name} has no room left for this run: deleting earlier runs' rows (seeded rows stay)")
        cursor.execute(
            f"DELETE FROM {name} WHERE terminal_id = ANY(%s) AND device_time >= %s",
            [terminal_ids, start + datetime.timedelta(seconds=seeded * SLOT_S)],
        )
        cursor.execute(f"VACUUM ANALYZE {name}")
    return seeded


def forget_last_positions(terminals: list[tuple[int, str]]) -> None:
    """Drop the bench terminals' last positions an earlier run left: its fixes were at other places
    (`place`) and, after a purge, later than this run's."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM tracking_lastposition WHERE terminal_id = ANY(%s)", [[t for t, _ in terminals]])


def home_spots(count: int) -> list[tuple[float, float]]:
    """Each bench terminal's own spot in the county (see `place`)."""
    rng = random.Random(3)
    return [(39.88 + rng.uniform(-0.08, 0.08), 117.74 + rng.uniform(-0.08, 0.08)) for _ in range(count)]


def place(spot: tuple[float, float], slot: int) -> tuple[float, float]:
    """Where a terminal whose home spot is `spot` is at `slot`: rolling north and back about 2 m a
    slot. Every phase uses it, so a terminal's fixes follow each other along a road from one phase
    to the next (jumps would be flagged as outliers, which skip the last-position update and would
    make a phase cheaper than a live fleet)."""
    leg = slot % 7200
    return spot[0] + 0.00002 * (leg if leg < 3600 else 7200 - leg), spot[1]


class Clock:
    """Device times of this run: terminal-independent slot counter k -> day + k * SLOT_S."""

    def __init__(self, day: datetime.date, first_slot: int) -> None:
        self.start = datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)
        self.next_slot = first_slot

    def take(self, slots: int) -> int:
        first = self.next_slot
        self.next_slot += slots
        if self.next_slot > SLOTS_PER_DAY:
            raise SystemExit(f"this run needs more than {SLOTS_PER_DAY} slots per terminal; use fewer rows or rates")
        return first

    def time(self, slot: int) -> datetime.datetime:
        return self.start + datetime.timedelta(seconds=slot * SLOT_S)


def ewkb(lon: float, lat: float) -> str:
    from tracking.ingest import ewkb_point

    return ewkb_point(lon, lat)


# --- (a) COPY and (b) INSERT ----------------------------------------------------------------------------


def copy_baseline(conninfo: str, terminals: list[tuple[int, str]], clock: Clock, rows: int) -> tuple[float, int]:
    import psycopg

    rounds = math.ceil(rows / len(terminals))
    first = clock.take(rounds)
    now = datetime.datetime.now(datetime.UTC).isoformat()
    rng = random.Random(1)
    lines = []
    for n in range(rows):
        terminal_id = terminals[n % len(terminals)][0]
        when = clock.time(first + n // len(terminals)).isoformat()
        point = ewkb(117.74 + rng.uniform(-0.1, 0.1), 39.88 + rng.uniform(-0.1, 0.1))
        lines.append(f"{terminal_id}\t{when}\t{now}\t{point}\t15\t90\t20\t9\tt\t80\t[]\tf\n")
    payload = "".join(lines).encode()
    with psycopg.connect(conninfo) as connection, connection.cursor() as cursor:
        started = time.perf_counter()
        with cursor.copy(f"COPY tracking_ping ({COLUMNS}) FROM STDIN") as copy:
            for offset in range(0, len(payload), 1 << 20):
                copy.write(payload[offset : offset + (1 << 20)])
        connection.commit()
        seconds = time.perf_counter() - started
    return rows / seconds, rows


def insert_baseline(conninfo: str, terminals: list[tuple[int, str]], clock: Clock, rows: int) -> float:
    import psycopg

    rounds = math.ceil(rows / len(terminals))
    first = clock.take(rounds)
    now = datetime.datetime.now(datetime.UTC)
    rng = random.Random(2)
    params = [
        (
            terminals[n % len(terminals)][0],
            clock.time(first + n // len(terminals)),
            now,
            ewkb(117.74 + rng.uniform(-0.1, 0.1), 39.88 + rng.uniform(-0.1, 0.1)),
        )
        for n in range(rows)
    ]
    sql = (
        f"INSERT INTO tracking_ping ({COLUMNS}) "
        "VALUES (%s, %s, %s, %s::geography, 15, 90, 20, 9, true, 80, '[]'::jsonb, false)"
    )
    with psycopg.connect(conninfo, autocommit=True) as connection, connection.cursor() as cursor:
        started = time.perf_counter()
        for row in params:
            cursor.execute(sql, row)
        seconds = time.perf_counter() - started
    return rows / seconds


def pipeline_baseline(
    conninfo: str, terminals: list[tuple[int, str]], clock: Clock, rows: int, batch: int = 2000
) -> float:
    """The gateway's storage path without the gateway: `batch_plan` batches driven as the gateway's
    writer drives them (two connections in parallel, one transaction per batch). The ceiling (c) can
    reach with this ingestion pipeline on this database."""
    import asyncio

    from tracking.gateway import db
    from tracking.gateway.writer import drive_plan
    from tracking.ingest import Incoming, batch_plan
    from tracking.protocols.common import Fix

    rounds = math.ceil(rows / len(terminals))
    first = clock.take(rounds)
    spots = home_spots(len(terminals))
    items = [
        Incoming(
            terminals[n % len(terminals)][0],
            Fix(
                clock.time(first + n // len(terminals)),
                *place(spots[n % len(terminals)], first + n // len(terminals)),
                valid=True,
                speed_kmh=12.0,
                course=90.0,
                satellites=9,
            ),
        )
        for n in range(rows)
    ]
    batches = [items[offset : offset + batch] for offset in range(0, rows, batch)]

    async def run() -> float:
        connections = [await db.connect(conninfo, autocommit=False) for _ in range(2)]

        async def worker(connection: Any) -> None:
            while batches:
                chunk = batches.pop(0)  # in time order, as a fleet sends them
                plan = batch_plan(chunk, now=datetime.datetime.now(datetime.UTC))
                await drive_plan(connection, plan)

        started = time.perf_counter()
        await asyncio.gather(*(worker(connection) for connection in connections))
        seconds = time.perf_counter() - started
        for connection in connections:
            await connection.close()
        return rows / seconds

    return asyncio.run(run())


# --- (c) the gateway ------------------------------------------------------------------------------------


def kept_up(stage: dict[str, Any]) -> bool:
    """Every ping offered was acked, 99 % of them within TARGET_P99_MS."""
    return stage["acked"] == stage["sent"] and stage["p99_ms"] <= TARGET_P99_MS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The load generator opens every connection from 127.0.0.1: the gateway's per-address cap
# (GATEWAY_MAX_CONNECTIONS_PER_ADDRESS, 2,000 by default) is raised for the bench, or most of its
# 10,000 terminals would be refused.
BENCH_CONNECTIONS_PER_ADDRESS = 1_000_000


def start_gateway(port: int, metrics_port: int, log_path: Path) -> subprocess.Popen:
    log_file = log_path.open("w")
    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            str(bench.ROOT / "manage.py"),
            "run_gateway",
            "--host=127.0.0.1",
            f"--gt06-port={port}",
            "--jt808-port=0",
            "--osmand-port=0",
            f"--metrics-port={metrics_port}",
        ],
        cwd=bench.ROOT,
        env={
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS": str(BENCH_CONNECTIONS_PER_ADDRESS),
        },
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    wait_for_port(metrics_port, process, f"gateway (see {log_path})")
    return process


def wait_for_port(port: int, process: subprocess.Popen, what: str) -> None:
    """Until `process` accepts connections on `port` (30 s at most); exit when it died or never did."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{what} did not start")


def stop_process(process: subprocess.Popen, timeout: float = 20) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def run_gateway_phase(
    terminals: list[tuple[int, str]], clock: Clock, config: dict[str, Any], profile: bool
) -> dict[str, Any]:
    from django.db import connection

    OUT.mkdir(parents=True, exist_ok=True)
    from harness.gateway_nodes import free_ports  # worker N serves its metrics on the first + N

    port, metrics_port = free_port(), free_ports(os.cpu_count() or 1)
    gateway = start_gateway(port, metrics_port, OUT / "ingest_gateway.log")
    stage_slots = [math.ceil(rate * config["stage_s"] / len(terminals)) + 2 for rate in config["rates"]]
    first_slot = clock.take(sum(stage_slots))
    bench.log(
        f"gateway pid {gateway.pid}; load generator: {len(terminals):,} connections from one address "
        f"(per-address cap raised to {BENCH_CONNECTIONS_PER_ADDRESS:,}), rates {config['rates']}"
    )
    try:
        result = drive(
            "gateway",
            gateway.pid,
            port,
            terminals,
            clock,
            {**config, "first_slot": first_slot, "stage_slots": stage_slots},
            profile,
        )
    finally:
        stop_process(gateway)
    summary = [line for line in (OUT / "ingest_gateway.log").read_text().splitlines() if "gateway stopped" in line]
    if summary:
        bench.log(summary[-1].split("gateway stopped: ", 1)[-1])

    end_slot = first_slot + sum(stage_slots)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM tracking_ping WHERE terminal_id = ANY(%s) AND device_time >= %s AND device_time < %s",
            [[tid for tid, _imei in terminals], clock.time(first_slot), clock.time(end_slot)],
        )
        result["rows_stored"] = cursor.fetchone()[0]
    return result


def run_floor_phase(
    terminals: list[tuple[int, str]], clock: Clock, config: dict[str, Any], rate: int
) -> dict[str, Any]:
    """One stage at `rate` against bench/_ackserver.py: the gateway's connections, event loop and
    ack cadence without its work (nothing decoded or stored, so no slots are taken)."""
    from tracking.gateway.config import DEFAULTS

    port = free_port()
    workers, hold_ms = os.cpu_count() or 1, DEFAULTS["GATEWAY_BATCH_MS"]  # as the gateway by default
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, str(Path(__file__).with_name("_ackserver.py")), str(port), str(workers), str(hold_ms)],
        cwd=bench.ROOT,
        env={**os.environ, "PYTHONPATH": str(bench.ROOT)},
    )
    try:
        wait_for_port(port, server, "ack-only server")
        time.sleep(0.5)  # every worker accepting
        stage_config = {**config, "rates": [rate], "first_slot": 0, "stage_slots": [0]}
        return drive("server", server.pid, port, terminals, clock, stage_config, profile=False)
    finally:
        stop_process(server)


# (f): the nodes' addresses (loopback: each node the same ports, as on hosts of their own); HAProxy
# listens on 127.0.0.1, where the load generator connects, and connects to the nodes from there.
NODE_HOSTS = ("127.0.0.2", "127.0.0.3")
ONE_MACHINE_NOTE = (
    "one machine, 2 cores: the two nodes share the cores one node had, so this measures HAProxy's cost "
    "(its CPU per ping, the latency it adds), not scale-out"
)


def run_nodes_phase(terminals: list[tuple[int, str]], clock: Clock, config: dict[str, Any], rate: int) -> dict:
    """One stage at `rate` through HAProxy to two gateway nodes (bench/harness/gateway_nodes.py)."""
    from django.db import connection
    from harness.gateway_nodes import HAProxy, Node, haproxy_binary, ports_free_on

    if haproxy_binary() is None:
        return {"note": "skipped: haproxy is not installed (scripts/setup.sh installs it)"}
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    terminals = terminals[: min(len(terminals), (hard - 1000) // 2)]  # HAProxy: two descriptors a connection
    workdir = OUT / "ingest_nodes"
    workdir.mkdir(parents=True, exist_ok=True)
    node_ports = dict(zip(("gt06", "jt808", "osmand", "metrics"), ports_free_on(list(NODE_HOSTS), 4), strict=True))
    front = dict(zip(("gt06", "jt808", "osmand", "stats"), ports_free_on(["127.0.0.1"], 4), strict=True))
    env = {
        "GATEWAY_PROCESSES": "1",
        "GATEWAY_PROXY_FROM": "127.0.0.1",
        "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS": str(BENCH_CONNECTIONS_PER_ADDRESS),
    }
    nodes = [Node(f"node{number}", host, node_ports, None, workdir, env) for number, host in enumerate(NODE_HOSTS, 1)]
    haproxy = None
    stage_slots = [math.ceil(rate * config["stage_s"] / len(terminals)) + 2]
    first_slot = clock.take(stage_slots[0])
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_ready()
        haproxy = HAProxy(
            listen="127.0.0.1",
            source="127.0.0.1",
            nodes=nodes,
            ports=front,
            workdir=workdir,
            maxconn=len(terminals) + 100,
        )
        for node in nodes:
            haproxy.wait_status(node.name, "UP", 20)
        pids = [node.pid for node in nodes]
        bench.log(f"(f) HAProxy pid {haproxy.process.pid}, nodes {pids}: {len(terminals):,} connections")
        result = drive(
            "haproxy",
            haproxy.process.pid,
            front["gt06"],
            terminals,
            clock,
            {
                **config,
                "rates": [rate],
                "first_slot": first_slot,
                "stage_slots": stage_slots,
                "also_watch": {"gateway_nodes": [node.pid for node in nodes]},
            },
            profile=False,
        )
        spread = {node.name: int(haproxy.servers()[("gt06_nodes", node.name)]["stot"]) for node in nodes}
    finally:
        if haproxy is not None:
            haproxy.stop()
        for node in nodes:
            node.stop()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM tracking_ping WHERE terminal_id = ANY(%s) AND device_time >= %s AND device_time < %s",
            [[tid for tid, _imei in terminals], clock.time(first_slot), clock.time(first_slot + stage_slots[0])],
        )
        stored = cursor.fetchone()[0]
    stage = result["stages"][0]
    cores = stage["cpu_cores"]
    acked = max(1, stage["acked_per_s"])
    return {
        **{key: stage[key] for key in ("offered_per_s", "acked_per_s", "p50_ms", "p99_ms", "max_ms")},
        "nodes": len(nodes),
        "connections": len(terminals),
        "connections_per_node": spread,
        "cpu_cores": {key: cores[key] for key in ("haproxy", "gateway_nodes", "postgres", "loadgen", "machine_busy")},
        "haproxy_us_per_ping": round(cores["haproxy"] / acked * 1e6, 1),
        "node_us_per_ping": round(cores["gateway_nodes"] / acked * 1e6, 1),
        "haproxy_rss_mb": result["rss_mb"],
        "rows_stored_equals_acked": stored == stage["acked"],
        "note": ONE_MACHINE_NOTE,
    }


def drive(
    label: str,
    server_pid: int,
    port: int,
    terminals: list[tuple[int, str]],
    clock: Clock,
    config: dict[str, Any],
    profile: bool,
) -> dict[str, Any]:
    """Run the load generator against a GT06 server on `port`; its result (stages, totals, RSS)."""
    loadgen_config = {
        "port": port,
        "server": label,
        "server_pid": server_pid,
        "imeis": [imei for _id, imei in terminals],
        "rates": config["rates"],
        "stage_s": config["stage_s"],
        "stage_slots": config["stage_slots"],
        "first_slot": config["first_slot"],
        "start": clock.start.isoformat(),
        "profile_seconds": config["stage_s"] if profile else 0,
        "also_watch": config.get("also_watch", {}),  # name -> pids whose CPU the stages report too
    }
    config_path = OUT / f"ingest_loadgen_{label}.json"
    config_path.write_text(json.dumps(loadgen_config))
    generator = subprocess.Popen(  # noqa: S603
        [sys.executable, __file__, "--loadgen", str(config_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=bench.ROOT,
    )
    last = ""
    for line in generator.stdout or ():
        line = line.rstrip("\n")
        if line.startswith("{"):
            last = line
        else:
            print(line, flush=True)
    generator.wait()
    if generator.returncode or not last:
        raise SystemExit(f"load generator failed (exit {generator.returncode})")
    return json.loads(last)


# --- the load generator (a separate process) -----------------------------------------------------------


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each process still there."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / tick
    return used


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two `cpu_seconds` snapshots; processes started in between count from 0."""
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


class CpuWatch:
    """The CPU cores groups of processes and the whole machine use over a phase."""

    def __init__(self, watched: dict[str, list[int]]) -> None:
        self.watched = watched  # name -> pids; a caller may refresh a group's pids before `cores`
        self.before = {name: cpu_seconds(pids) for name, pids in watched.items()}
        self.machine_before = machine_cpu()

    def cores(self, seconds: float) -> dict[str, float]:
        used = {
            name: round(cpu_used(self.before[name], cpu_seconds(pids)) / seconds, 2)
            for name, pids in self.watched.items()
        }
        names = ("machine_busy", "machine_iowait")
        for name, before, after in zip(names, self.machine_before, machine_cpu(), strict=False):
            used[name] = round((after - before) / seconds, 2)
        return used


def machine_cpu() -> tuple[float, float, float]:
    """(busy, iowait, idle) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle, iowait = fields[3], fields[4]
    return (sum(fields[:8]) - idle - iowait) / tick, iowait / tick, idle / tick


def wal_written() -> tuple[int, int]:
    """(bytes, full-page images) of WAL the cluster has written since its statistics were reset.

    Full-page images are what a page's first change after a checkpoint starts writes: a stage that
    meets the start of a checkpoint writes a burst of them, and every commit waits for it."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT wal_bytes, wal_fpi FROM pg_stat_wal")
        wal_bytes, fpi = cursor.fetchone()
    return int(wal_bytes), int(fpi)


def postgres_pids() -> list[int]:
    """The gateway's database backends and PostgreSQL's own background processes (WAL writer,
    checkpointer…); other sessions' backends on this shared machine are not ours to count."""
    import psycopg

    from tracking.gateway.db import conninfo

    with psycopg.connect(conninfo(application_name="ebike-bench"), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'ebike-gateway' "
            "OR backend_type NOT IN ('client backend', 'autovacuum worker')"
        ).fetchall()
    return [pid for (pid,) in rows]


def with_workers(pid: int) -> list[int]:
    """A server process and its forked workers (the gateway's, the ack-only server's, gunicorn's)."""
    try:
        children = [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        children = []
    return [pid, *children]


def server_rss_mb(pid: int) -> float:
    """Resident memory of a server process and its workers together."""
    total = 0
    for member in with_workers(pid):
        for line in Path(f"/proc/{member}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024 if total else math.nan


def loadgen(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(json.dumps(LoadGenerator(config).run()), flush=True)


class LoadGenerator:
    """Simulated GT06 terminals on plain non-blocking sockets and one epoll: the generator shares the
    two cores with the gateway and PostgreSQL, so it must cost as little per ping as it can (an
    asyncio generator cost twice as much CPU per ping)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.epoll = select.epoll()
        self.sockets: list[socket.socket] = []
        self.by_fd: dict[int, int] = {}
        self.buffers: dict[int, bytes] = {}
        self.outboxes: dict[int, bytearray] = {}  # fd -> bytes the kernel did not take yet
        self.sent_at: list[dict[int, float]] = []
        self.serials: list[int] = []
        self.logged_in = 0
        self.acked = 0
        self.last_ack = 0.0
        self.bad_replies = 0
        self.closed = 0
        self.latencies = array.array("d")
        self.latency_sent = array.array("d")  # when each ping of `latencies` was sent

    def run(self) -> dict[str, Any]:
        from tracking.protocols import gt06

        config = self.config
        imeis = config["imeis"]
        started = time.perf_counter()
        for index, imei in enumerate(imeis):
            sock = socket.create_connection(("127.0.0.1", config["port"]), timeout=30)
            sock.sendall(gt06.encode_login(imei, 1))
            sock.setblocking(False)
            self.sockets.append(sock)
            self.by_fd[sock.fileno()] = index
            self.sent_at.append({})
            self.serials.append(1)
            self.epoll.register(sock.fileno(), select.EPOLLIN)
            if index % 500 == 499:
                self.poll(0)
        deadline = time.perf_counter() + 60
        while self.logged_in < len(imeis) and time.perf_counter() < deadline:
            self.poll(0.01)
        if self.logged_in < len(imeis):
            raise SystemExit(f"only {self.logged_in} of {len(imeis)} terminals logged in")
        connect_s = time.perf_counter() - started
        _log(f"{len(imeis):,} connections logged in after {connect_s:.1f} s")
        settle = time.perf_counter() + 2
        while time.perf_counter() < settle:
            self.poll(0.05)
        rss = server_rss_mb(config["server_pid"])
        _log(f"{config['server']} RSS with {len(imeis):,} idle connections: {rss:.1f} MB")

        slot = config["first_slot"]
        stages = []
        for number, (rate, slots) in enumerate(zip(config["rates"], config["stage_slots"], strict=True)):
            stage = self.stage(number, rate, slot)
            stages.append(stage)
            slot += slots
            if not kept_up(stage) and rate >= TARGET_RATE:
                _log("this stage did not keep up: the higher rates are skipped")
                break
        for sock in self.sockets:
            sock.close()
        return {
            "connections": len(imeis),
            "connect_s": round(connect_s, 1),
            "rss_mb": round(rss, 1),
            "stages": stages,
            "pings_sent": sum(stage["sent"] for stage in stages),
            "pings_acked": sum(stage["acked"] for stage in stages),
            "bad_replies": self.bad_replies,
            "closed_by_gateway": self.closed,
        }

    def frames(self, rate: int, slot: int) -> list[tuple[int, int, bytes]]:
        """The stage's packets, built before its clock starts (sending, not encoding, is measured)."""
        from tracking.protocols import gt06
        from tracking.protocols.common import Fix

        config = self.config
        count = int(rate * config["stage_s"])
        connections = len(self.sockets)
        start = datetime.datetime.fromisoformat(config["start"])
        spots = home_spots(connections)
        vibration = gt06.encode_status(terminal_info=0x46, alarm_code=0x03)
        frames = []
        for n in range(count):
            index = n % connections
            round_ = n // connections
            lat, lon = place(spots[index], slot + round_)
            when = start + datetime.timedelta(seconds=(slot + round_) * SLOT_S)
            self.serials[index] = serial = self.serials[index] % 0xFFFF + 1
            fix = Fix(when, lat, lon, True, speed_kmh=12, course=90, satellites=9)
            if n % ALARM_EVERY == ALARM_EVERY - 1:
                frame = gt06.encode_alarm(fix, serial, status=vibration)
            else:
                frame = gt06.encode_location(fix, serial)
            frames.append((index, serial, frame))
        return frames

    def stage(self, number: int, rate: int, slot: int) -> dict[str, Any]:
        config = self.config
        frames = self.frames(rate, slot)
        count = len(frames)
        _log(f"stage {number + 1}: offering {rate:,}/s for {config['stage_s']} s ({count:,} pings)")
        profiler = None
        if number == 0 and config.get("profile_seconds"):
            profiler = _start_profiler(config["server_pid"], config["profile_seconds"])
        watch = CpuWatch(
            {
                config["server"]: with_workers(config["server_pid"]),
                "loadgen": [os.getpid()],
                "postgres": postgres_pids(),
                **config.get("also_watch", {}),
            }
        )
        wal_before = wal_written()
        latencies_before = len(self.latencies)
        acked_before = self.acked
        sockets = self.sockets
        sent_at = self.sent_at
        t0 = time.perf_counter()
        sent = 0
        while sent < count:  # open loop: what is due goes out, acked or not
            now = time.perf_counter()
            due = min(count, int((now - t0) * rate) + 1)
            while sent < due:
                index, serial, frame = frames[sent]
                sent_at[index][serial] = now
                self.send(sockets[index], frame)
                sent += 1
            self.poll(0.001)
        send_s = time.perf_counter() - t0
        # Wait for the backlog: until everything is acked, or no ack came for 10 s (at most 3 minutes).
        deadline = time.perf_counter() + 180
        progress = (self.acked, time.perf_counter())
        while self.acked - acked_before < count and time.perf_counter() < deadline:
            self.poll(0.01)
            if self.acked != progress[0]:
                progress = (self.acked, time.perf_counter())
            elif time.perf_counter() - progress[1] > 10:
                break
        acked = self.acked - acked_before
        wall = time.perf_counter() - t0
        watch.watched["postgres"] = postgres_pids()
        cpu = watch.cores(wall)
        wal_bytes, fpi = (after - before for after, before in zip(wal_written(), wal_before, strict=True))
        latencies = sorted(self.latencies[latencies_before:])
        by_second: dict[int, list[float]] = {}
        for at, latency in zip(self.latency_sent[latencies_before:], self.latencies[latencies_before:], strict=True):
            by_second.setdefault(int(at - t0), []).append(latency)
        span = max(self.last_ack - t0, send_s)
        result = {
            "offered_per_s": rate,
            "sent": count,
            "sent_per_s": round(count / send_s),
            "acked": acked,
            "acked_per_s": round(acked / span),
            "p50_ms": round(_pct(latencies, 50), 1),
            "p99_ms": round(_pct(latencies, 99), 1),
            "max_ms": round(latencies[-1], 1) if latencies else None,
            # By the second the pings were sent in: a warm-up or a periodic stall shows here.
            "p99_ms_by_second": [round(_pct(sorted(by_second[second]), 99)) for second in sorted(by_second)],
            "cpu_cores": cpu,
            "wal": {
                "mb_per_s": round(wal_bytes / wall / 2**20, 1),
                "bytes_per_ping": round(wal_bytes / max(1, acked)),
                "fpi": fpi,
            },
        }
        _log(f"stage {number + 1}: {json.dumps(result)}")
        if profiler is not None:
            profiler.wait()
        settle = time.perf_counter() + 1
        while time.perf_counter() < settle:
            self.poll(0.05)
        return result

    def send(self, sock: socket.socket, frame: bytes) -> None:
        fd = sock.fileno()
        pending = self.outboxes.get(fd)
        if pending is not None:  # the kernel buffer was full: keep the order
            pending += frame
            return
        try:
            written = sock.send(frame)
        except BlockingIOError:
            written = 0
        if written < len(frame):
            self.outboxes[fd] = bytearray(frame[written:])
            self.epoll.modify(fd, select.EPOLLIN | select.EPOLLOUT)

    def poll(self, timeout: float) -> None:
        for fd, events in self.epoll.poll(timeout):
            if events & select.EPOLLOUT:
                self.flush(fd)
            if events & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                self.receive(fd)

    def flush(self, fd: int) -> None:
        pending = self.outboxes[fd]
        try:
            written = self.sockets[self.by_fd[fd]].send(pending)
        except BlockingIOError:
            return
        del pending[:written]
        if not pending:
            del self.outboxes[fd]
            self.epoll.modify(fd, select.EPOLLIN)

    def receive(self, fd: int) -> None:
        index = self.by_fd[fd]
        try:
            data = self.sockets[index].recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.closed += 1
            self.epoll.unregister(fd)
            return
        now = time.perf_counter()
        rest = self.buffers.pop(fd, None)
        if rest:
            data = rest + data
        size = len(data) - len(data) % 10  # every reply is a 10-byte ack
        sent_at = self.sent_at[index]
        latencies = self.latencies
        for i in range(0, size, 10):
            if data[i] != 0x78 or data[i + 2] != 0x05:
                self.bad_replies += 1
                size = len(data)
                break
            if data[i + 3] == 0x01:
                self.logged_in += 1
                continue
            sent = sent_at.pop((data[i + 4] << 8) | data[i + 5], None)
            if sent is not None:
                latencies.append((now - sent) * 1000)
                self.latency_sent.append(sent)
                self.acked += 1
                self.last_ack = now
        if size < len(data):
            self.buffers[fd] = data[size:]


def _start_profiler(pid: int, seconds: int) -> subprocess.Popen | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        _log("py-spy not installed; no profile")
        return None
    out = OUT / "ingest_gateway_profile.txt"
    _log(f"py-spy recording the gateway for {seconds} s -> {out}")
    return subprocess.Popen(  # noqa: S603
        [
            *(spy, "record", "-p", str(pid), "-d", str(seconds), "-r", "250", "-f", "raw", "-o", str(out)),
            *("--nonblocking", "--subprocesses"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _pct(ordered: list[float], q: float) -> float:
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] loadgen: {message}", flush=True)


# --- (d) the HTTP batch endpoint -----------------------------------------------------------------------


def http_phase(
    terminals: list[tuple[int, str]], clock: Clock, seconds: float
) -> tuple[float | None, str, dict[str, float]]:
    """(pings/s, a note, the CPU cores the workers, the clients and the whole machine used)."""
    from django.urls import NoReverseMatch, reverse

    try:
        path = reverse("pings-ingest")
        from tracking.services import ingest_token_create
    except (NoReverseMatch, ImportError) as error:
        return None, f"POST /api/v1/pings not available: {error}", {}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        return None, "gunicorn not installed", {}
    _token, raw = ingest_token_create(name="bench-ingest")
    per_batch = 1000
    batches = http_pings(seconds) // per_batch
    rounds = math.ceil(batches * per_batch / len(terminals))
    first = clock.take(rounds)
    bodies = []
    spots = home_spots(len(terminals))
    n = 0
    for _ in range(batches):
        pings = []
        for _ in range(per_batch):
            _tid, imei = terminals[n % len(terminals)]
            when = clock.time(first + n // len(terminals)).isoformat().replace("+00:00", "Z")
            lat, lon = place(spots[n % len(terminals)], first + n // len(terminals))
            pings.append({"terminal": imei, "time": when, "latitude": lat, "longitude": lon, "speed_kmh": 12.0})
            n += 1
        bodies.append(json.dumps({"pings": pings}).encode())
    port = free_port()
    args = [str(gunicorn), "ebike_registry.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    help_text = subprocess.run([str(gunicorn), "--help"], capture_output=True, text=True, check=False).stdout  # noqa: S603
    if "--no-control-socket" in help_text:
        args.append("--no-control-socket")
    log_file = (OUT / "ingest_gunicorn.log").open("w")
    server = subprocess.Popen(args, cwd=bench.ROOT, stdout=log_file, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                probe.request("GET", "/healthz")
                probe.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    return None, "gunicorn did not start (see bench/out/ingest_gunicorn.log)", {}
                time.sleep(0.2)
        stored = [0]
        failures: list[str] = []
        lock = threading.Lock()
        queue = list(range(len(bodies)))
        stop_at = time.perf_counter() + seconds

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {raw}"}
            while time.perf_counter() < stop_at:
                with lock:
                    if not queue:
                        return
                    index = queue.pop()
                conn.request("POST", path, body=bodies[index], headers=headers)
                reply = conn.getresponse()
                text = reply.read()
                with lock:
                    if reply.status == 201:
                        stored[0] += per_batch
                    elif len(failures) < 3:
                        failures.append(f"{reply.status} {text[:200]!r}")

        threads = [threading.Thread(target=client) for _ in range(4)]
        watch = CpuWatch({"workers": with_workers(server.pid), "clients": [os.getpid()]})
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        cpu = watch.cores(elapsed)
    finally:
        stop_process(server)
        log_file.close()
    if failures:
        return None, f"POST /api/v1/pings failed: {failures}", cpu
    note = f"{stored[0]:,} pings in {elapsed:.1f} s, 1,000 per request, 4 clients, 2 workers"
    return stored[0] / elapsed, note, cpu


# --- main ----------------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rates", help="comma-separated offered rates for the gateway stages (pings/s)")
    parser.add_argument("--stage-seconds", type=int, help="seconds per gateway stage")
    parser.add_argument("--connections", type=int, help="GT06 connections (= bench terminals)")
    parser.add_argument("--seed-rows", type=int, help="rows to seed in the day partition")
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway during the first stage")
    parser.add_argument("--skip-http", action="store_true", help="skip (d)")
    parser.add_argument("--skip-floor", action="store_true", help="skip the ack-only floor stage")
    parser.add_argument("--skip-nodes", action="store_true", help="skip (f), two nodes behind HAProxy")
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)


def main() -> None:
    if "--loadgen" in sys.argv:
        bench.setup_django()
        loadgen(sys.argv[sys.argv.index("--loadgen") + 1])
        return
    args = bench.parse_args(__doc__.split("\n\n")[0], configure)
    bench.setup_django()
    from django.db import connection

    from tracking.gateway.db import conninfo as gateway_conninfo
    from tracking.partitions import partition_name

    config = dict(SCALES[args.scale])
    if args.rates:
        config["rates"] = [int(rate) for rate in args.rates.split(",")]
    if args.stage_seconds:
        config["stage_s"] = args.stage_seconds
    if args.connections:
        config["terminals"] = args.connections
    if args.seed_rows is not None:
        config["seed_rows"] = args.seed_rows
    results: dict[str, Any] = {"machine": bench.machine()}

    terminals = bench_terminals(config["terminals"])
    day = choose_day(config["seed_rows"])
    first_slot = run_start(day, [tid for tid, _imei in terminals], config)
    partition_size = seed(day, [tid for tid, _imei in terminals], config["seed_rows"])
    clock = Clock(day, first_slot)
    results.update(partition=partition_name(day), partition_rows_before=partition_size, first_slot=first_slot)
    bench.log(f"partition {partition_name(day)} holds ~{partition_size:,} rows; this run writes from slot {first_slot}")
    info = gateway_conninfo()

    before_phase()
    copy_rate, copied = copy_baseline(info, terminals, clock, config["copy_rows"])
    results["copy_rows_per_s"] = round(copy_rate)
    bench.log(f"(a) COPY: {copied:,} rows at {copy_rate:,.0f} rows/s")
    before_phase()
    forget_last_positions(terminals)
    pipeline_rate = pipeline_baseline(info, terminals, clock, config["pipeline_rows"])
    results["ingest_pipeline_rows_per_s"] = round(pipeline_rate)
    bench.log(f"(a2) batch_plan without the gateway (2 connections, 2,000 a batch): {pipeline_rate:,.0f} rows/s")
    before_phase()
    insert_rate = insert_baseline(info, terminals, clock, config["insert_rows"])
    results["insert_autocommit_rows_per_s"] = round(insert_rate)
    bench.log(f"(b) INSERT per row, autocommit: {insert_rate:,.0f} rows/s")

    before_phase()
    gateway = run_gateway_phase(terminals, clock, config, args.profile)
    stages = gateway["stages"]
    good = [stage for stage in stages if kept_up(stage)]
    chosen = max(good or stages, key=lambda stage: stage["acked_per_s"])
    results.update(
        gateway_acked_pings_per_s=chosen["acked_per_s"],
        gateway_p99_ack_ms=chosen["p99_ms"],
        gateway_p50_ack_ms=chosen["p50_ms"],
        gateway_kept_up=bool(good),
        gateway_at_target_rate=next((stage for stage in stages if stage["offered_per_s"] == TARGET_RATE), None),
        gateway_to_copy_ratio=round(chosen["acked_per_s"] / copy_rate, 3),
        gateway_connections=gateway["connections"],
        gateway_stages=stages,
        gateway_pings_sent=gateway["pings_sent"],
        gateway_pings_acked=gateway["pings_acked"],
        gateway_rows_stored=gateway["rows_stored"],
        gateway_rows_stored_equals_acked=gateway["rows_stored"] == gateway["pings_acked"],
    )
    rss_key = "gateway_rss_mb_at_10k_connections" if gateway["connections"] >= 10_000 else "gateway_rss_mb"
    results[rss_key] = gateway["rss_mb"]
    if rss_key != "gateway_rss_mb_at_10k_connections":
        results["gateway_rss_mb_at_10k_connections"] = None
        results["gateway_rss_note"] = f"measured with {gateway['connections']} connections (small scale)"
    bench.log(
        f"(c) gateway: {chosen['acked_per_s']:,} acked pings/s, p99 {chosen['p99_ms']} ms; "
        f"rows stored {gateway['rows_stored']:,} vs pings acked {gateway['pings_acked']:,}"
    )

    if args.skip_floor:
        results["ack_floor"] = None
    else:
        # The rate the ratio target asks for: what do the connections alone cost there?
        rate = max(TARGET_RATE, math.ceil(TARGET_RATIO * copy_rate / 1000) * 1000)
        before_phase()
        floor = run_floor_phase(terminals, clock, config, rate)
        stage = floor["stages"][0]
        cores = stage["cpu_cores"]
        results["ack_floor"] = {
            **{key: stage[key] for key in ("offered_per_s", "acked_per_s", "p50_ms", "p99_ms")},
            "cpu_cores": {key: cores[key] for key in ("server", "loadgen", "machine_busy")},
            "rss_mb": floor["rss_mb"],
        }
        gateway_cores = chosen["cpu_cores"]["gateway"]
        bench.log(
            f"ack-only floor at {rate:,}/s: server {cores['server']} + generator {cores['loadgen']} cores "
            f"(machine {cores['machine_busy']}); per ping: floor server "
            f"{cores['server'] / max(1, stage['acked_per_s']) * 1e6:.1f} µs, gateway "
            f"{gateway_cores / max(1, chosen['acked_per_s']) * 1e6:.1f} µs at {chosen['offered_per_s']:,}/s"
        )

    if args.skip_nodes:
        results["haproxy_two_nodes"] = None
    else:
        before_phase()
        nodes = run_nodes_phase(terminals, clock, config, chosen["offered_per_s"])
        results["haproxy_two_nodes"] = nodes
        if "acked_per_s" in nodes:
            results.update(
                haproxy_two_nodes_acked_pings_per_s=nodes["acked_per_s"],
                haproxy_two_nodes_p99_ack_ms=nodes["p99_ms"],
            )
            nodes["one_node_same_run"] = {key: chosen[key] for key in ("offered_per_s", "acked_per_s", "p99_ms")}
            bench.log(
                f"(f) two nodes behind HAProxy at {nodes['offered_per_s']:,}/s: {nodes['acked_per_s']:,} acked/s, "
                f"p99 {nodes['p99_ms']} ms (one node: {chosen['acked_per_s']:,}/s, p99 {chosen['p99_ms']} ms); "
                f"HAProxy {nodes['haproxy_us_per_ping']} µs CPU a ping, nodes {nodes['node_us_per_ping']} µs. "
                "One machine: HAProxy's cost, not scale-out"
            )
        else:
            bench.log(f"(f) two nodes behind HAProxy: {nodes['note']}")

    if args.skip_http:
        results["http_batch_pings_per_s"] = None
        results["http_batch_note"] = "skipped (--skip-http)"
    else:
        before_phase()
        rate, note, cpu = http_phase(terminals, clock, config["http_s"])
        results["http_batch_pings_per_s"] = None if rate is None else round(rate)
        results["http_batch_note"] = note
        results["http_batch_cpu_cores"] = cpu
        bench.log(f"(d) HTTP batch: {note}")
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {partition_name(day)}")
        results["partition_rows_after"] = partition_rows(cursor, partition_name(day))
    bench.emit("ingest", args.scale, results)


if __name__ == "__main__":
    main()
