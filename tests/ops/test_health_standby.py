"""/healthz on a primary with a synchronous standby, and on the standby (issue 19, point 6).

A throwaway pair (bench/harness/clusters.py; never the machine's own cluster) and the health report run
in a subprocess whose DATABASE_URL names one of them, as a web node's would:
- on the primary: 200, role primary, the standby streaming as "sync" with its lag, read as a
  monitoring role that is a member of pg_read_all_stats and of nothing else;
- on the standby: 503 (a web node cannot write there), role standby, its receiver streaming.
The registry's tables do not exist in these clusters: the parts that need them answer with their
error, which is what they must do rather than fail the whole report. About 10 s.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bench.harness.clusters import ThrowawayCluster
from tests.ops.failover_drill import make_synchronous

NAME = "ebike_standby"
ROOT = Path(__file__).resolve().parents[2]
REPORT = """
import json, django
django.setup()
from ebike_registry.health import health_report
body, serving = health_report()
print(json.dumps({"serving": serving, "body": body}))
"""


@pytest.fixture(scope="module")
def pair():
    base = Path(tempfile.mkdtemp(prefix="ebike-health-"))
    base.chmod(0o755)
    primary = standby = None
    try:
        primary = ThrowawayCluster(host="127.0.0.41", name="health-a", base_dir=base / "a")
        standby = ThrowawayCluster(
            host="127.0.0.42", port=primary.port, name="health-b", base_dir=base / "b", initdb=False
        )
        primary.start()
        primary.sql("CREATE EXTENSION postgis")
        primary.sql("CREATE ROLE ebike_monitor LOGIN; GRANT pg_read_all_stats TO ebike_monitor")
        standby.basebackup_from(primary, application_name=NAME, slot=NAME)
        standby.start()
        make_synchronous(primary, NAME)
        primary.sql("CREATE TABLE written AS SELECT generate_series(1, 1000) AS id")  # some WAL to replay
        yield primary, standby, base
    finally:
        for cluster in (primary, standby):
            if cluster is not None:
                cluster.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def report(cluster: ThrowawayCluster, monitor: ThrowawayCluster, base: Path) -> tuple[bool, dict]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ebike_registry.settings",
        "DATABASE_URL": cluster.url("postgres"),
        "HEALTH_DATABASE_URL": f"postgresql://ebike_monitor@{monitor.host}:{monitor.port}/postgres",
        "STANDBY_ENABLED": "true",
        "STANDBY_ALARM_FILE": str(base / "no-alarm.json"),
        # Not the shared cache: the backup part reads and writes it (that part then says it cannot).
        "CACHE_URL": f"redis://127.0.0.1:{closed_port()}/0",
    }
    env.pop("TEST_DATABASE_NAME", None)
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", REPORT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer["serving"], answer["body"]


def test_on_the_primary_the_synchronous_standby_and_its_lag(pair):
    primary, _standby, base = pair
    serving, body = report(primary, primary, base)
    assert serving and body["checks"]["database"].startswith("ok (PostGIS")
    assert body["database"]["role"] == "primary"
    replication = body["replication"]
    assert replication["read_as"] == "ebike_monitor" and replication["synchronous_standby_names"] == f'"{NAME}"'
    [seen] = replication["standbys"]
    assert (seen["name"], seen["state"], seen["sync_state"]) == (NAME, "streaming", "sync")
    assert seen["address"].startswith("127.")  # the standby's end of the connection
    assert isinstance(seen["replay_lag_bytes"], int) and seen["replay_lag_bytes"] >= 0
    assert not any(line.startswith("replication:") for line in body["warnings"])
    # No registry tables here: those parts say so, the report still answers.
    assert "error" in body["outbox"] and "error" in body["gateway"]
    assert body["status"] == "warn"


def test_on_the_standby_the_node_cannot_serve_and_says_why(pair):
    primary, standby, base = pair
    serving, body = report(standby, primary, base)
    assert not serving and body["status"] == "error"
    assert body["checks"]["database"].startswith("error: read-only (connected to a standby")
    assert body["database"]["role"] == "standby"
    replication = body["replication"]
    assert replication["receiver"] == "streaming"
    assert isinstance(replication["replay_lag_bytes"], int)
    assert replication["received_lsn"] and replication["replayed_lsn"]
