"""The failover drill for derived work: the primary killed while a real Celery worker and beat raise
the duty room's rescue calls and POST them to the station's webhook. Run by
tests/ops/test_celery_failover.py (one drill, asserted) and `make drills` (five, JSON figures):

    .venv/bin/python tests/ops/celery_failover_drill.py [--runs 5]

1. The synchronous pair of tests/ops/failover_drill.py (throwaway clusters on 127.0.0.2/.3, the
   app migrated); a station whose webhook is a local receiver that holds each POST RECEIVER_HOLD_S
   (a slow station system), its duty officer, BIKES bikes with terminals fitted.
2. `celery worker` (queue celery) and `celery beat` exactly as scripts/run.sh starts them, under
   scripts/supervise.sh, as the app role on the multi-host URL ...?target_session_attrs=read-write,
   with the machine's Redis on database REDIS_DB (emptied before and after).
3. A client presses one bike's SOS button after another through ingest_fixes (what
   POST /api/v1/pings calls), resending a fix until its commit is acknowledged. Beat queues
   process_outbox every 2 s: a rescue call, the officer's notification and a webhook message per
   bike, in one transaction; after it commits, deliver_webhook POSTs the message.
4. Once calls have been delivered, and while a process_outbox run holds its claimed rows (its
   transaction open, seen in pg_locks) and the receiver holds a POST (a deliver_webhook task in
   flight, more queued behind it), the primary's postmaster and backends are SIGKILLed;
   PROMOTE_DELAY_S later the standby is promoted the documented way.
5. Checked on the new primary once the client has stopped: every SOS whose commit the client saw
   is there once and has exactly one rescue call, one notification and one webhook message,
   delivered; no outbox row waits or is dead; every message the receiver got is a stored one. The
   figures: what was committed before the kill, what was in flight (outbox rows and messages
   committed before the kill and finished after it), task failures and retries on the database's
   absence (the worker's log), beat's restarts, the time from the kill to the first call raised
   and the first message delivered on the new primary. The workers' log of the last run is left in
   $TMPDIR/ebike-celery-failover-workers.log.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script by scripts/drills.sh
    sys.path.insert(0, str(ROOT))

from tests.ops.failover_drill import (  # noqa: E402
    DATABASE,
    _kill,
    build_pair,
    child_env,
    client,
    drill_runs,
    pair_url,
    promote,
    single_url,
    spread,
    summary_status,
)

REDIS_DB = 13  # not the development server's broker (0) nor the beat-lock (14) or supervisor (15) tests'
BIKES = 120
SOS_PER_S = 8.0
RECEIVER_HOLD_S = 0.3
WARMUP_DELIVERED = 8  # messages delivered before the kill
PROMOTE_DELAY_S = 1.0
AFTER_RECOVERY_S = 3.0
# After the client stopped, for every call to be raised and delivered. Long enough for the resend
# sweep: a kill landing inside a process_outbox commit leaves its messages committed (the standby has
# them) but never queued, and beat's sweep (every 60 s, rows over a minute old) sends them 60-120 s
# later. The wait ends as soon as all are delivered: seconds, in every other run.
SETTLE_S = 150.0
RTO_TARGET_S = 20.0  # kill -> first rescue call raised on the new primary (asserted by the test)


class Receiver:
    """The station's system: records each POST's X-Webhook-Delivery id and holds it `hold_s`."""

    def __init__(self, hold_s: float) -> None:
        self.received: list[tuple[int, float]] = []  # (delivery id, when it arrived)
        self.in_flight = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.received.append((int(self.headers["X-Webhook-Delivery"]), time.time()))
                    receiver.in_flight += 1
                time.sleep(hold_s)
                with receiver.lock:
                    receiver.in_flight -= 1
                with contextlib.suppress(OSError):
                    self.send_response(200)
                    self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> set[int]:
        with self.lock:
            return {delivery for delivery, _ in self.received}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def redis_url() -> str:
    return f"redis://127.0.0.1:6379/{REDIS_DB}"


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(redis_url()).flushdb()


class Workers:
    """`celery worker` and `celery beat` under scripts/supervise.sh, as scripts/run.sh starts them."""

    def __init__(self, base: Path, port: int) -> None:
        self.log_path = base / "workers.log"
        driver = base / "run-workers.sh"
        driver.write_text(
            "\n".join(
                [
                    "set -euo pipefail",
                    'LOG_PREFIX="[drill]"',
                    f"source {ROOT / 'scripts/lib.sh'}",
                    f"source {ROOT / 'scripts/supervise.sh'}",
                    'CELERY="$VENV/bin/celery"',
                    'start worker "$CELERY" -A ebike_registry worker --loglevel INFO --queues celery '
                    '--concurrency 2 --hostname "drill-worker@%h"',
                    f'start beat "$CELERY" -A ebike_registry beat --loglevel INFO --schedule {base / "beat-schedule"}',
                    "supervise",
                ]
            )
            + "\n"
        )
        env = {
            **child_env(pair_url(port, "ebike_app")),
            "REDIS_URL": redis_url(),
            "CACHE_URL": redis_url(),
            "WEBHOOK_ALLOW_HTTP": "true",  # the receiver is plain http on this machine
            "WEBHOOK_SECRET": "celery-failover-drill",
            "BEAT_LOCK_RETRY_SECONDS": "1",
            "RUN_STOP_TIMEOUT": "10",
        }
        self.process = subprocess.Popen(  # noqa: S603 (our own script)
            ["/bin/bash", str(driver)],
            cwd=ROOT,
            env=env,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM: the supervisor stops its children (SIGKILL after RUN_STOP_TIMEOUT); then any
        process group it started that is somehow left."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        for pid in re.findall(r"started \w+ \(pid (\d+)\)", self.log()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(pid), signal.SIGKILL)


def run_drill() -> dict:
    """One drill from scratch; returns its figures and what was checked (see `problems`)."""
    base = Path(tempfile.mkdtemp(prefix="ebike-celery-failover-"))
    base.chmod(0o755)
    figures: dict = {}
    problems: list[str] = []
    receiver = Receiver(RECEIVER_HOLD_S)
    stop_file = base / "stop"
    primary = standby = workers = feeder = None
    flush_redis()
    try:
        started = time.monotonic()
        primary, standby = build_pair(base)
        port = primary.port
        figures["pair_ready_s"] = round(time.monotonic() - started, 1)
        workers = Workers(base, port)  # starts while the bikes are seeded
        seed = client("seed_duty", str(BIKES), receiver.url, database_url=single_url(primary, "ebike"))
        out, err = seed.communicate(timeout=300)
        if seed.returncode != 0:
            raise RuntimeError(f"seed failed: {err}")
        seeded = json.loads(out.strip().splitlines()[-1])
        feeder = client(
            "sos", str(SOS_PER_S), str(stop_file), *map(str, seeded["terminals"]),
            database_url=pair_url(port, "ebike_app"),
        )  # fmt: skip
        feeder_lines: list[str] = []
        reader = threading.Thread(target=lambda: feeder_lines.extend(feeder.stdout), daemon=True)
        reader.start()

        marks = _fail_over(receiver, primary, standby, feeder_lines, workers)
        stop_file.touch()
        feeder.wait(60)
        reader.join(10)
        oks = [json.loads(line) for line in feeder_lines if line.startswith('{"ok"')]
        marks["settled_s"] = _settle(standby, {item["ok"] for item in oks})
        workers.stop()
        figures.update(_check(standby, seeded["officer"], oks, feeder_lines, receiver, workers.log(), marks, problems))
        if feeder.returncode != 0:
            problems.append(f"the SOS client exited {feeder.returncode}: {feeder.stderr.read()[-2000:]}")
    finally:
        stop_file.touch()
        if feeder is not None and feeder.poll() is None:
            feeder.kill()
            feeder.communicate()
        if workers is not None:
            workers.stop()
            with contextlib.suppress(OSError):
                shutil.copy(workers.log_path, Path(tempfile.gettempdir()) / "ebike-celery-failover-workers.log")
        receiver.close()
        for cluster in (primary, standby):
            if cluster is not None:
                cluster.cleanup()
        flush_redis()
        shutil.rmtree(base, ignore_errors=True)
    figures["problems"] = problems
    return figures


# A process_outbox run between its claim (SELECT … FOR UPDATE SKIP LOCKED: a RowShareLock on the table,
# which ingestion's inserts do not take) and its commit.
OUTBOX_CLAIMED = """
SELECT EXISTS (
    SELECT FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.relation = 'tracking_ingestoutbox'::regclass AND l.mode = 'RowShareLock' AND l.granted
      AND a.usename = 'ebike_app')
"""


def _fail_over(receiver: Receiver, primary, standby, feeder_lines: list[str], workers: Workers) -> dict:
    deadline = time.monotonic() + 120  # the worker and beat start (Django, Celery) on a busy machine
    while len(receiver.delivered()) < WARMUP_DELIVERED:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"only {len(receiver.delivered())} messages delivered before the kill:\n{workers.log()}"
            )
        time.sleep(0.05)
    # The moment: a process_outbox run holding its claimed rows (its transaction open) while the
    # receiver holds a POST (a deliver_webhook task waiting for the answer), both mid-task.
    outbox_open = False
    with psycopg.connect(primary.conninfo(DATABASE), autocommit=True) as watcher:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if receiver.in_flight and watcher.execute(OUTBOX_CLAIMED).fetchone()[0]:
                outbox_open = True
                break
            time.sleep(0.001)
    deadline = time.monotonic() + 20
    while receiver.in_flight == 0 and time.monotonic() < deadline:  # at least a deliver_webhook mid-POST
        time.sleep(0.005)
    marks = {"in_flight_at_kill": receiver.in_flight, "outbox_claim_open_before_kill": outbox_open}
    marks["kill"] = _kill(primary)
    primary.fence()  # before anything could restart it: it comes back read-only, if at all
    time.sleep(PROMOTE_DELAY_S)
    marks["promote"] = time.time()
    promote(standby)
    marks["promoted"] = time.time()
    deadline = time.monotonic() + 60  # the client's SOS go through again
    while time.monotonic() < deadline and not any(
        line.startswith('{"ok"') and json.loads(line)["started"] >= marks["promoted"] for line in list(feeder_lines)
    ):
        time.sleep(0.05)
    time.sleep(AFTER_RECOVERY_S)
    return marks


def _settle(new_primary, acknowledged: set[int]) -> float:
    """Seconds until every acknowledged SOS has its rescue call delivered to the station (or SETTLE_S)."""
    started = time.monotonic()
    query = f"""
        SELECT count(DISTINCT t.id) FROM tracking_terminal t
        JOIN cases_dutycall c ON c.vehicle_id = t.vehicle_id AND c.kind = 'rescue'
        JOIN cases_webhookdelivery d ON (d.payload -> 'data' ->> 'call')::bigint = c.id AND d.delivered_at IS NOT NULL
        WHERE t.id IN ({",".join(map(str, acknowledged)) or "NULL"})
    """  # noqa: S608 (ids from our own client)
    while time.monotonic() - started < SETTLE_S:
        with contextlib.suppress(RuntimeError):
            if int(new_primary.sql(query, DATABASE)) >= len(acknowledged):
                break
        time.sleep(0.25)
    return round(time.monotonic() - started, 2)


def _rows(cluster, query: str) -> list[list[str]]:
    out = cluster.sql(query, DATABASE)
    return [line.split("|") for line in out.splitlines()] if out else []


def _check(new_primary, officer: int, oks: list[dict], feeder_lines: list[str], receiver: Receiver,
           worker_log: str, marks: dict, problems: list[str]) -> dict:  # fmt: skip
    kill = marks["kill"]
    acknowledged = {item["ok"] for item in oks}
    sos_rows = _rows(new_primary, "SELECT terminal_id, count(*) FROM tracking_alarm WHERE kind = 'sos' GROUP BY 1")
    sos = {int(terminal): int(count) for terminal, count in sos_rows}
    calls = _rows(
        new_primary,
        "SELECT c.id, t.id, extract(epoch FROM c.created_at) FROM cases_dutycall c "
        "JOIN tracking_terminal t ON t.vehicle_id = c.vehicle_id WHERE c.kind = 'rescue'",
    )
    calls_by_terminal: dict[int, int] = {}
    for _call, terminal, _at in calls:
        calls_by_terminal[int(terminal)] = calls_by_terminal.get(int(terminal), 0) + 1
    call_ids = {int(call) for call, _, _ in calls}
    deliveries = _rows(
        new_primary,
        "SELECT id, payload -> 'data' ->> 'call', extract(epoch FROM created_at), "
        "coalesce(extract(epoch FROM delivered_at)::text, ''), attempts, gave_up_at IS NOT NULL "
        "FROM cases_webhookdelivery",
    )
    per_call: dict[int, int] = {}
    for _id, call, *_ in deliveries:
        per_call[int(call)] = per_call.get(int(call), 0) + 1
    stored_ids = {int(row[0]) for row in deliveries}
    undelivered = [row for row in deliveries if not row[3]]
    notified = int(new_primary.sql(
        f"SELECT count(*) FROM cases_notification WHERE user_id = {int(officer)} AND kind = 'rescue'",  # noqa: S608
        DATABASE,
    ))  # fmt: skip
    pending, dead, carried, outbox_rows = map(
        int,
        new_primary.sql(
            "SELECT count(*) FILTER (WHERE processed_at IS NULL AND dead_at IS NULL), "  # noqa: S608 (numbers)
            "count(*) FILTER (WHERE dead_at IS NOT NULL), "
            f"count(*) FILTER (WHERE created_at < to_timestamp({kill}) AND processed_at >= to_timestamp({kill})), "
            "count(*) FROM tracking_ingestoutbox",
            DATABASE,
        ).split("|"),
    )

    # Lost: an acknowledged SOS without its alarm, its call or a delivered message; outbox rows left.
    sos_lost = sum(sos.get(t, 0) == 0 for t in acknowledged)
    calls_lost = sum(calls_by_terminal.get(t, 0) == 0 for t in acknowledged)
    messages_lost = sum(per_call.get(call, 0) == 0 for call in call_ids) + len(undelivered)
    lost = sos_lost + calls_lost + messages_lost + pending + dead
    # Written twice: an alarm, a call, a notification or a message more than once.
    twice = (
        sum(n > 1 for n in sos.values())
        + sum(n > 1 for n in calls_by_terminal.values())
        + sum(n > 1 for n in per_call.values())
        + max(0, notified - len(calls))
    )
    if sos_lost or calls_lost or messages_lost:
        problems.append(
            f"lost: {sos_lost} acknowledged SOS, {calls_lost} rescue calls, {messages_lost} webhook messages "
            f"(undelivered: {[(row[0], row[4]) for row in undelivered][:10]} (id, attempts))"
        )
    if pending or dead:
        problems.append(f"outbox: {pending} rows still waiting, {dead} dead")
    if twice:
        problems.append(f"written twice: {twice} (alarms, calls, notifications or messages)")
    if notified < len(calls):
        problems.append(f"{len(calls) - notified} rescue calls without the duty officer's notification")
    strangers = receiver.delivered() - stored_ids
    if strangers:
        problems.append(f"the receiver got messages that are not stored: {sorted(strangers)[:10]}")

    received = receiver.received
    first_call_after = min((float(at) for _, _, at in calls if float(at) > kill), default=None)
    first_post_after = min((at for delivery, at in received if at > marks["promoted"]), default=None)
    if first_call_after is None:
        problems.append("no rescue call raised after the kill")
    failed_on_db = len(re.findall(r"raised unexpected: (?:Operational|Interface)Error", worker_log))
    retried_on_db = len(re.findall(r"Retry in \d+s: (?:Operational|Interface)Error", worker_log))
    return {
        "sos_acknowledged": len(acknowledged),
        "sos_acknowledged_before_kill": sum(item["at"] < kill for item in oks),
        "sos_attempts_failed_seen": sum(line.startswith('{"error"') for line in feeder_lines),
        "calls_committed_before_kill": sum(float(at) < kill for _, _, at in calls),
        "messages_delivered_before_kill": len({d for d, at in received if at < kill}),
        "posts_in_flight_at_kill": marks["in_flight_at_kill"],
        "outbox_claim_open_before_kill": marks["outbox_claim_open_before_kill"],
        "outbox_rows_in_flight": carried,
        "messages_in_flight": sum(float(row[2]) < kill and float(row[3]) >= kill for row in deliveries if row[3]),
        "tasks_failed_on_db_error": failed_on_db,
        "tasks_retried_on_db_error": retried_on_db,
        "beat_stopped_on_lost_lock": worker_log.count("beat lock lost (database connection gone)"),
        "beat_restarts": len(re.findall(r"beat exited with status", worker_log)),
        "worker_restarts": len(re.findall(r"worker exited with status", worker_log)),
        "rescue_calls": len(calls),
        "messages": len(deliveries),
        "outbox_rows": outbox_rows,
        "lost": lost,
        "written_twice": twice,
        "messages_resent_same_id": len(received) - len(receiver.delivered()),
        "derived_rto_s": round(first_call_after - kill, 2) if first_call_after is not None else None,
        "webhook_rto_s": round(first_post_after - kill, 2) if first_post_after is not None else None,
        "no_primary_window_s": round(marks["promoted"] - kill, 2),
        "settled_s": marks["settled_s"],
    }


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = drill_runs("celery_failover", args.runs, run_drill)
    rtos = [run["derived_rto_s"] for run in runs if run.get("derived_rto_s") is not None]
    total = lambda key: sum(run.get(key, 0) for run in runs)  # noqa: E731
    summary = {
        "drill": "celery_failover",
        "runs": len(runs),
        "rto_target_s": RTO_TARGET_S,
        "derived_rto_s": spread(rtos),
        "webhook_rto_s_max": max((run["webhook_rto_s"] for run in runs if run.get("webhook_rto_s")), default=None),
        "sos_acknowledged": total("sos_acknowledged"),
        "calls_committed_before_kill": total("calls_committed_before_kill"),
        "outbox_rows_in_flight": total("outbox_rows_in_flight"),
        "messages_in_flight": total("messages_in_flight"),
        "outbox_claim_open_before_kill": total("outbox_claim_open_before_kill"),
        "tasks_failed_on_db_error": total("tasks_failed_on_db_error"),
        "tasks_retried_on_db_error": total("tasks_retried_on_db_error"),
        "beat_stopped_on_lost_lock": total("beat_stopped_on_lost_lock"),
        "lost": total("lost"),
        "written_twice": total("written_twice"),
        "messages_resent_same_id": total("messages_resent_same_id"),
        "problems": [problem for run in runs for problem in run["problems"]],
        "per_run": runs,
    }
    return summary_status(summary, rtos)


if __name__ == "__main__":
    sys.exit(main())
