"""The failover drill: a dead primary under load, the synchronous standby promoted, nothing acknowledged
lost. Run by tests/ops/test_failover.py (one drill, asserted) and `make drills` (five, JSON figures):

    .venv/bin/python tests/ops/failover_drill.py [--runs 5]

A throwaway primary and its synchronous standby (bench/harness/clusters.py); the gateway and a counter
(tests/ops/failover_client.py) connect through the multi-host URL while GT06 terminals report. The
primary is SIGKILLed, the standby promoted; every acknowledged ping and registration must be on the
new primary exactly once, nothing sent after the kill acknowledged before the promotion; RTO is the
kill to the first new ack. The old primary is fenced, rewound and rejoined as the standby.
Step by step: docs/architecture.md#standby-and-failover.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script by scripts/drills.sh
    sys.path.insert(0, str(ROOT))

from bench.harness.clusters import ThrowawayCluster  # noqa: E402

PRIMARY_HOST = "127.0.0.2"
STANDBY_HOST = "127.0.0.3"
NODE_NAMES = {PRIMARY_HOST: "ebike_node_a", STANDBY_HOST: "ebike_node_b"}  # application_name, slot
DATABASE = "ebike"
TERMINALS = 4
PINGS_PER_TERMINAL_PER_S = 25
WARMUP_S = 3.0
PROMOTE_DELAY_S = 1.0
AFTER_RECOVERY_S = 2.0
RTO_TARGET_S = 15.0  # asserted by the test; gateway retry backoff is 0.2 s doubling to 5 s


@dataclass
class Terminal:
    imei: str
    port: int
    first_time: datetime.datetime
    sent: dict[int, tuple[datetime.datetime, float]] = field(default_factory=dict)  # serial -> (device, at)
    acked: dict[int, float] = field(default_factory=dict)  # serial -> when its ack arrived
    serial: int = 1

    async def start(self) -> None:
        from tracking.protocols import gt06

        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(gt06.encode_login(self.imei, 1))
        reply = await asyncio.wait_for(self.reader.readexactly(10), 10)
        if reply != gt06.login_ack(1):
            raise AssertionError(f"login of {self.imei} not acknowledged: {reply.hex()}")
        self.receiving = asyncio.create_task(self._receive())

    async def _receive(self) -> None:
        from tracking.protocols import gt06
        from tracking.protocols.stream import Gt06Framer

        framer = Gt06Framer()
        with contextlib.suppress(ConnectionError):
            while data := await self.reader.read(4096):
                now = time.time()
                for frame in framer.feed(data):
                    if isinstance(frame, bytes):
                        protocol, _content, serial = gt06.parse_frame(frame)
                        if protocol == gt06.GPS_LBS and serial in self.sent:
                            self.acked.setdefault(serial, now)

    def send(self) -> None:
        from tracking.protocols import gt06
        from tracking.protocols.common import Fix

        self.serial += 1
        when = self.first_time + datetime.timedelta(seconds=self.serial)
        self.sent[self.serial] = (when, time.time())
        fix = Fix(time=when, latitude=39.88, longitude=117.74, valid=True, speed_kmh=10.0)
        with contextlib.suppress(ConnectionError, RuntimeError):
            self.writer.write(gt06.encode_location(fix, self.serial))

    async def stop(self) -> None:
        self.receiving.cancel()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


# --- the pair -----------------------------------------------------------------------------------


def build_pair(base: Path) -> tuple[ThrowawayCluster, ThrowawayCluster]:
    """Primary (migrated) and its synchronous standby, on one port, two loopback addresses."""
    primary = ThrowawayCluster(host=PRIMARY_HOST, name="node-a", base_dir=base / "node-a")
    port = primary.port
    standby = ThrowawayCluster(host=STANDBY_HOST, port=port, name="node-b", base_dir=base / "node-b", initdb=False)
    # pg_rewind needs hint-bit changes in the WAL (or data checksums, initdb -k).
    primary.append_conf("wal_log_hints = on\nsynchronous_commit = on")
    primary.start()
    primary.sql(
        "CREATE ROLE ebike LOGIN CREATEDB PASSWORD 'ebike';"
        "CREATE ROLE ebike_app LOGIN PASSWORD 'ebike_app';"
        "CREATE ROLE ebike_gateway LOGIN PASSWORD 'ebike_gateway'"
    )
    primary.sql(
        "CREATE EXTENSION IF NOT EXISTS postgis; CREATE EXTENSION IF NOT EXISTS pg_trgm;"
        "CREATE EXTENSION IF NOT EXISTS btree_gist",
        "template1",
    )
    primary.sql(f"CREATE DATABASE {DATABASE} OWNER ebike")
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT, env=child_env(single_url(primary, "ebike")), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if migrate.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{migrate.stdout}\n{migrate.stderr}")
    standby.basebackup_from(primary, application_name=NODE_NAMES[STANDBY_HOST], slot=NODE_NAMES[STANDBY_HOST])
    standby.start()
    make_synchronous(primary, NODE_NAMES[STANDBY_HOST])
    return primary, standby


def make_synchronous(primary: ThrowawayCluster, standby_name: str) -> None:
    """What scripts/standby.sh does on the primary once its standby streams."""
    primary.wait_sync_standby(standby_name, state="async")
    primary.sql(f"ALTER SYSTEM SET synchronous_standby_names = '\"{standby_name}\"'")
    primary.sql("SELECT pg_reload_conf()")
    primary.wait_sync_standby(standby_name, state="sync")


def promote(standby: ThrowawayCluster) -> None:
    """The documented promotion (README "Operations", scripts/standby.sh promote): pg_promote() and
    no synchronous standby to wait for until the old primary has rejoined."""
    if standby.sql("SELECT pg_promote(true, 60)") != "t":
        raise RuntimeError(f"pg_promote() failed: {standby.log_tail()}")
    standby.sql("ALTER SYSTEM RESET synchronous_standby_names")
    standby.sql("SELECT pg_reload_conf()")


def rejoin(old: ThrowawayCluster, new: ThrowawayCluster) -> float:
    """Fenced old primary -> pg_rewind -> standby of `new` -> synchronous again. Seconds taken."""
    started = time.monotonic()
    # The promoted node writes its new timeline into its control file only at the end of its
    # first checkpoint; before it, pg_rewind reads the old timeline and finds nothing to rewind.
    new.sql("CHECKPOINT")
    old.rewind_from(new)
    name = NODE_NAMES[old.host]
    new.sql(f"SELECT pg_create_physical_replication_slot('{name}')")
    old.follow(new, application_name=name, slot=name)
    old.start()
    try:
        make_synchronous(new, name)
    except TimeoutError as error:
        raise TimeoutError(f"{error}\nthe rejoining node's log:\n{old.log_tail()}") from None
    return time.monotonic() - started


def single_url(cluster: ThrowawayCluster, role: str) -> str:
    return f"postgis://{role}:{role}@{cluster.host}:{cluster.port}/{DATABASE}"


def pair_url(port: int, role: str) -> str:
    """What DATABASE_URL looks like for a component following the primary (ebike_registry/db_url.py)."""
    return f"postgis://{role}:{role}@{PRIMARY_HOST},{STANDBY_HOST}:{port}/{DATABASE}?target_session_attrs=read-write"


def child_env(database_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "TEST_DATABASE"))}
    return {
        **env,
        "DATABASE_URL": database_url,
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "ebike_registry.settings",
    }


def client(*args: str, database_url: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603
        [sys.executable, str(ROOT / "tests/ops/failover_client.py"), *args],
        cwd=ROOT, env=child_env(database_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )  # fmt: skip


# --- one drill ----------------------------------------------------------------------------------


def run_drill() -> dict:
    """One drill from scratch; returns its figures and what was checked (see `problems`)."""
    from tests.tracking.gateway_harness import GatewayProcess

    base = Path(tempfile.mkdtemp(prefix="ebike-failover-"))
    base.chmod(0o755)  # the clusters' directories inside belong to postgres
    figures: dict = {}
    problems: list[str] = []
    gateway = counter = None
    primary = standby = None
    stop_file = base / "stop"
    try:
        started = time.monotonic()
        primary, standby = build_pair(base)
        port = primary.port
        figures["pair_ready_s"] = round(time.monotonic() - started, 1)
        seed = client("seed", str(TERMINALS), database_url=single_url(primary, "ebike"))
        out, err = seed.communicate(timeout=120)
        if seed.returncode != 0:
            raise RuntimeError(f"seed failed: {err}")
        seeded = json.loads(out.strip().splitlines()[-1])
        gateway = GatewayProcess(pair_url(port, "ebike_gateway"))
        counter = client("register", seeded["clerk"], str(stop_file), database_url=pair_url(port, "ebike_app"))
        counter_lines: list[str] = []
        reader = threading.Thread(target=lambda: counter_lines.extend(counter.stdout), daemon=True)
        reader.start()
        first_time = datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(hours=2)
        terminals = [Terminal(imei, gateway.ports["gt06"], first_time) for imei in seeded["imeis"]]
        marks = asyncio.run(_stream(terminals, primary, standby, counter_lines))
        stop_file.touch()
        counter.wait(60)
        reader.join(10)
        counter_out, counter_err = "".join(counter_lines), counter.stderr.read()
        figures.update(_check(terminals, counter_out, marks, standby, problems))
        if counter.returncode != 0:
            problems.append(f"registration loop exited {counter.returncode}: {counter_err[-2000:]}")
        gateway.stop()
        gateway = None
        figures["rejoin_s"] = round(rejoin(primary, standby), 2)
        if not primary.in_recovery():
            problems.append("the old primary came back as a writer")
        standby.sql("CREATE TABLE drill_after_rejoin (id int)", DATABASE)  # commits only with the sync standby
        if primary.sql("SELECT sync_state FROM pg_stat_replication", "postgres") != "":
            problems.append("the rejoined node has standbys of its own")
    finally:
        stop_file.touch()
        if counter is not None and counter.poll() is None:
            counter.kill()
            counter.communicate()
        if gateway is not None:
            gateway.stop()
        for cluster in (primary, standby):
            if cluster is not None:
                cluster.cleanup()
        import shutil

        shutil.rmtree(base, ignore_errors=True)
    figures["problems"] = problems
    return figures


async def _stream(
    terminals: list[Terminal], primary: ThrowawayCluster, standby: ThrowawayCluster, counter_lines: list[str]
) -> dict:
    for terminal in terminals:
        await terminal.start()
    marks: dict[str, float] = {}
    pace = 1 / PINGS_PER_TERMINAL_PER_S
    loop_started = time.monotonic()

    async def send_until(stop: asyncio.Event) -> None:
        while not stop.is_set():
            for terminal in terminals:
                terminal.send()
            await asyncio.sleep(pace)

    stop = asyncio.Event()
    sender = asyncio.create_task(send_until(stop))
    await asyncio.sleep(WARMUP_S)
    deadline = time.monotonic() + 60  # the counter (a Django process) takes a few seconds to start
    while not any(line.startswith('{"ok"') for line in counter_lines) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    if not any(t.acked for t in terminals) or not any(line.startswith('{"ok"') for line in counter_lines):
        raise AssertionError("no ping acknowledged or no bike registered before the kill")
    marks["kill"] = await asyncio.to_thread(_kill, primary)
    marks["killed"] = time.time()
    primary.fence()  # before anything could restart it: it comes back read-only, if at all
    await asyncio.sleep(PROMOTE_DELAY_S)
    marks["promote"] = time.time()
    await asyncio.to_thread(promote, standby)
    marks["promoted"] = time.time()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _first_ack_after(terminals, marks["kill"]) is not None:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(AFTER_RECOVERY_S)
    stop.set()
    await sender
    settle = time.monotonic() + 5  # the last batch's acks
    while time.monotonic() < settle and any(len(t.acked) < len(t.sent) for t in terminals):
        await asyncio.sleep(0.05)
    for terminal in terminals:
        await terminal.stop()
    marks["duration_s"] = time.monotonic() - loop_started
    return marks


def _kill(primary: ThrowawayCluster) -> float:
    """SIGKILL the postmaster, then its backends (the server is gone); returns when the first SIGKILL
    went out (time.time()), the moment "after the kill" is measured from."""
    pid = primary.postmaster_pid()
    children = primary.children_of(pid)
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    primary.kill()  # waits until the port is closed
    return killed_at


def _first_ack_after(terminals: list[Terminal], kill: float) -> float | None:
    """When the first ack of a ping sent after the kill arrived."""
    times = [at for t in terminals for serial, at in t.acked.items() if t.sent[serial][1] >= kill]
    return min(times) if times else None


def _check(terminals: list[Terminal], counter_out: str, marks: dict, new_primary: ThrowawayCluster,
           problems: list[str]) -> dict:  # fmt: skip
    # No primary is writable from the kill until the promotion request: nothing begun after the kill
    # may be acknowledged before it. (pg_promote() returns up to 100 ms after the node took writes.)
    kill, promoted, writable = marks["kill"], marks["promoted"], marks["promote"]
    stored: dict[tuple[str, str], int] = {}
    rows = new_primary.sql(
        "SELECT t.imei, to_char(p.device_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), count(*) "
        "FROM tracking_ping p JOIN tracking_terminal t ON t.id = p.terminal_id GROUP BY 1, 2",
        DATABASE,
    )
    for line in rows.splitlines():
        imei, when, count = line.split("|")
        stored[(imei, when)] = int(count)
    acked = lost = twice = early = 0
    for terminal in terminals:
        for serial, at in terminal.acked.items():
            device_time, sent_at = terminal.sent[serial]
            count = stored.get((terminal.imei, device_time.strftime("%Y-%m-%d %H:%M:%S")), 0)
            acked += 1
            lost += count == 0
            twice += count > 1
            early += sent_at >= kill and at < writable
    if lost or twice or early:
        problems.append(f"pings: {lost} acknowledged and lost, {twice} stored twice, {early} acked with no primary")
    if sum(stored.values()) != len(stored):
        problems.append("a ping is stored twice")

    seen_ok = [json.loads(line) for line in counter_out.splitlines() if line.startswith('{"ok"')]
    failures = [json.loads(line) for line in counter_out.splitlines() if line.startswith('{"error"')]
    frames = {}
    for line in new_primary.sql(
        "SELECT frame_number, count(*) FROM vehicles_vehicle GROUP BY 1", DATABASE
    ).splitlines():
        frame, count = line.split("|")
        frames[frame] = int(count)
    reg_lost = sum(frames.get(item["ok"], 0) == 0 for item in seen_ok)
    reg_twice = sum(count > 1 for count in frames.values())
    reg_early = sum(item["started"] >= kill and item["at"] < writable for item in seen_ok)
    if reg_lost or reg_twice or reg_early:
        problems.append(f"registrations: {reg_lost} seen and lost, {reg_twice} twice, {reg_early} with no primary")
    if not any(item["started"] >= promoted for item in seen_ok):
        problems.append("no registration succeeded after the promotion")
    first_ack = _first_ack_after(terminals, kill)
    if first_ack is None:
        problems.append("no ping acknowledged after the kill")
    first_registration = min((item["at"] for item in seen_ok if item["started"] >= kill), default=None)
    in_flight = sum(len(t.sent) - len(t.acked) for t in terminals)
    return {
        "rto_s": round(first_ack - kill, 2) if first_ack is not None else None,
        "registration_rto_s": round(first_registration - kill, 2) if first_registration is not None else None,
        "promote_s": round(promoted - marks["promote"], 2),
        "no_primary_window_s": round(promoted - kill, 2),
        "acked_pings": acked,
        "acked_and_lost": lost,
        "stored_twice": twice,
        "acked_without_primary": early,
        "unacked_pings": in_flight,
        "registrations_ok": len(seen_ok),
        "registrations_failed_seen": len(failures),
        "registrations_lost": reg_lost,
        "stored_rows_not_acked": len(stored) - acked,
    }


# --- what the synchronous standby costs the gateway --------------------------------------------


def standby_cost(*, terminals: int = 40, rate: int = 4000, stage_s: float = 6.0) -> dict:
    """The gateway on the pair at `rate` offered pings/s (open loop), in alternating stages with the
    standby synchronous and asynchronous (synchronous_standby_names set / empty), same run, same
    clusters: acked pings/s and ack latency percentiles of each mode (median over its stages)."""
    from tests.tracking.gateway_harness import GatewayProcess

    base = Path(tempfile.mkdtemp(prefix="ebike-standby-cost-"))
    base.chmod(0o755)
    primary = standby = gateway = None
    try:
        primary, standby = build_pair(base)
        seed = client("seed", str(terminals), database_url=single_url(primary, "ebike"))
        out, err = seed.communicate(timeout=180)
        if seed.returncode != 0:
            raise RuntimeError(f"seed failed: {err}")
        imeis = json.loads(out.strip().splitlines()[-1])["imeis"]
        gateway = GatewayProcess(pair_url(primary.port, "ebike_gateway"))
        first_time = datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(hours=3)
        fleet = [Terminal(imei, gateway.ports["gt06"], first_time) for imei in imeis]
        stages = asyncio.run(_cost_stages(fleet, primary, rate=rate, stage_s=stage_s))
    finally:
        if gateway is not None:
            gateway.stop()
        for cluster in (primary, standby):
            if cluster is not None:
                cluster.cleanup()
        import shutil

        shutil.rmtree(base, ignore_errors=True)
    result: dict = {"offered_pings_per_s": rate, "terminals": terminals, "stage_s": stage_s, "stages": stages}
    for mode in ("sync", "async"):
        mine = [stage for stage in stages if stage["mode"] == mode]
        for key in ("acked_pings_per_s", "p50_ms", "p99_ms"):
            result[f"{mode}_{key}"] = round(statistics.median(stage[key] for stage in mine), 1)
    result["sync_p99_added_ms"] = round(result["sync_p99_ms"] - result["async_p99_ms"], 1)
    result["sync_throughput_ratio"] = round(result["sync_acked_pings_per_s"] / result["async_acked_pings_per_s"], 3)
    return result


async def _cost_stages(fleet: list[Terminal], primary: ThrowawayCluster, *, rate: int, stage_s: float) -> list:
    for terminal in fleet:
        await terminal.start()
    stages = []
    tick = 0.01
    per_tick = max(1, round(rate * tick / len(fleet)))
    for mode in ("sync", "async", "sync", "async"):
        names = f'"{NODE_NAMES[STANDBY_HOST]}"' if mode == "sync" else ""
        await asyncio.to_thread(primary.sql, f"ALTER SYSTEM SET synchronous_standby_names = '{names}'")
        await asyncio.to_thread(primary.sql, "SELECT pg_reload_conf()")
        await asyncio.to_thread(primary.wait_sync_standby, NODE_NAMES[STANDBY_HOST], state=mode)
        started = time.time()
        marks = {terminal.imei: terminal.serial for terminal in fleet}
        next_tick = time.monotonic()
        while time.monotonic() - next_tick < stage_s and time.time() - started < stage_s:
            for terminal in fleet:
                for _ in range(per_tick):
                    terminal.send()
            next_tick += tick
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
        settle = time.monotonic() + 10
        while time.monotonic() < settle and any(len(t.acked) < len(t.sent) for t in fleet):
            await asyncio.sleep(0.02)
        latencies, last_ack, sent = [], started, 0
        for terminal in fleet:
            for serial in range(marks[terminal.imei] + 1, terminal.serial + 1):
                sent += 1
                at = terminal.acked.get(serial)
                if at is not None:
                    latencies.append((at - terminal.sent[serial][1]) * 1000)
                    last_ack = max(last_ack, at)
        latencies.sort()
        stages.append({
            "mode": mode,
            "sent": sent,
            "acked": len(latencies),
            "acked_pings_per_s": len(latencies) / (last_ack - started),
            "p50_ms": latencies[len(latencies) // 2] if latencies else math.nan,
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else math.nan,
        })  # fmt: skip
    for terminal in fleet:
        await terminal.stop()
    return stages


def drill_runs(name: str, count: int, run: Callable[[], dict]) -> list[dict]:
    """The figures of `count` runs of a drill, each printed to stderr as it ends."""
    runs = []
    for number in range(count):
        figures = run()
        print(json.dumps({"drill": name, "run": number + 1, **figures}), file=sys.stderr, flush=True)
        runs.append(figures)
    return runs


def spread(values: list[float]) -> dict[str, float | None]:
    return {
        "min": min(values, default=None),
        "median": statistics.median(values) if values else None,
        "max": max(values, default=None),
    }


def summary_status(summary: dict, rtos: list[float]) -> int:
    """Print a drill's summary; 0 when every run recovered within its target (`rto_target_s`) with
    no problem."""
    print(json.dumps(summary))
    recovered = len(rtos) == summary["runs"] and max(rtos, default=0) <= summary["rto_target_s"]
    return 0 if not summary["problems"] and recovered else 1


def main() -> int:
    import argparse

    import django

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--standby-cost", action="store_true", help="instead: the gateway's acked pings/s and p99, sync vs async"
    )
    parser.add_argument("--rate", type=int, default=4000, help="--standby-cost: offered pings/s")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ebike_registry.settings")
    django.setup()
    if args.standby_cost:
        print(json.dumps({"drill": "standby_cost", **standby_cost(rate=args.rate)}))
        return 0
    runs = drill_runs("failover", args.runs, run_drill)
    rtos = [run["rto_s"] for run in runs if run["rto_s"] is not None]
    summary = {
        "drill": "failover",
        "runs": len(runs),
        "rto_target_s": RTO_TARGET_S,
        "rto_s": spread(rtos),
        "acked_and_lost": sum(run["acked_and_lost"] + run["registrations_lost"] for run in runs),
        "acked_without_primary": sum(run["acked_without_primary"] for run in runs),
        "rejoin_s_max": max((run["rejoin_s"] for run in runs if "rejoin_s" in run), default=None),
        "problems": [problem for run in runs for problem in run["problems"]],
        "per_run": runs,
    }
    return summary_status(summary, rtos)


if __name__ == "__main__":
    sys.exit(main())
