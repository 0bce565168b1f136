"""The documented procedures of README "Operations" as an operator runs them: scripts/standby.sh up
(the pair: initdb -k, pg_basebackup, synchronous), the primary's postmaster SIGKILLed, `promote`
(fence, pg_promote, no synchronous standby left to wait for), `rejoin` (pg_rewind, standby,
synchronous again). In a temporary PG_PAIR_DIR on a free port, never var/pg or the machine's cluster."""

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from bench.harness.clusters import PG_BIN, ThrowawayCluster, free_port

ROOT = Path(__file__).resolve().parents[2]


def standby_sh(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        ["/bin/bash", "scripts/standby.sh", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
        check=False,
    )  # fmt: skip


def psql(port: int, host: str, query: str, **env: str) -> str:
    result = subprocess.run(  # noqa: S603
        [str(PG_BIN / "psql"), "-X", "-At", "-h", host, "-p", str(port), "-U", "postgres", "-c", query],
        capture_output=True, text=True, timeout=30, check=True, env={**os.environ, **env},
    )  # fmt: skip
    return result.stdout.strip()


def test_standby_sh_up_promote_after_a_kill_and_rejoin_with_pg_rewind():
    base = Path(tempfile.mkdtemp(prefix="ebike-pair-"))
    base.chmod(0o755)
    port = free_port("127.0.0.2")
    env = {**os.environ, "PG_PAIR_DIR": str(base), "PG_PAIR_PORT": str(port), "STANDBY_ENABLED": "1"}
    both = "127.0.0.2,127.0.0.3"
    try:
        up = standby_sh("up", env)
        assert up.returncode == 0, up.stderr
        assert psql(port, "127.0.0.2", "SHOW synchronous_standby_names") == '"ebike_standby"'
        assert psql(port, "127.0.0.2", "SELECT sync_state FROM pg_stat_replication") == "sync"
        psql(port, both, "CREATE TABLE t AS SELECT 1 AS id", PGTARGETSESSIONATTRS="read-write")

        node_a = ThrowawayCluster.__new__(ThrowawayCluster)  # only to find and kill its processes
        node_a.data = base / "node-a/data"
        pid = node_a.postmaster_pid()
        for child in [pid, *ThrowawayCluster.children_of(pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)

        promote = standby_sh("promote", env)
        assert promote.returncode == 0, promote.stderr
        assert (base / "node-a/data/standby.signal").exists(), "the old primary is fenced"
        assert psql(port, "127.0.0.3", "SHOW synchronous_standby_names") == ""  # nothing to wait for
        psql(port, both, "INSERT INTO t VALUES (2)", PGTARGETSESSIONATTRS="read-write")  # on the new primary

        rejoin = standby_sh("rejoin", env)
        assert rejoin.returncode == 0, rejoin.stderr
        assert psql(port, "127.0.0.2", "SELECT pg_is_in_recovery()") == "t", "the old primary is a standby now"
        assert psql(port, "127.0.0.3", "SELECT sync_state FROM pg_stat_replication") == "sync"
        psql(port, both, "INSERT INTO t VALUES (3)", PGTARGETSESSIONATTRS="read-write")
        assert psql(port, "127.0.0.2", "SELECT count(*) FROM t") == "3"  # it follows the new timeline
    finally:
        standby_sh("stop", env)
        shutil.rmtree(base, ignore_errors=True)
