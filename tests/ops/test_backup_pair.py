"""Backups with the synchronous standby pair (README "Operations" > "Backups"): DATABASE_URL names both
nodes (libpq multi-host, target_session_attrs=read-write) and nothing else says where the cluster is.
`make backup` finds the primary itself, sets archiving on both nodes, and after the primary is killed
and the standby promoted the next backup is taken from the new primary, WAL goes on reaching the
repository from it, and a point-in-time restore from that backup has exactly what was committed.

The pair is the project's own scripts/standby.sh in a temporary PG_PAIR_DIR on 127.0.0.56/.57 and a
free port; the repository, keys and restore are temporary too. About 30-40 s here.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from bench.harness.clusters import PG_BIN, ThrowawayCluster, free_port
from tests.ops.backup_sandbox import sandbox_cache_url

ROOT = Path(__file__).resolve().parents[2]
NODE_A, NODE_B, RESTORE_HOST = "127.0.0.56", "127.0.0.57", "127.0.0.58"


def psql(host: str, port: int, query: str, dbname: str = "app") -> str:
    result = subprocess.run(  # noqa: S603
        [str(PG_BIN / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", str(port),
         "-U", "postgres", "-d", dbname, "-c", query],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def script(name: str, env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        ["/bin/bash", f"scripts/{name}", *args], cwd=ROOT, env={**env, **extra}, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip


def kill_postmaster(data: Path) -> None:
    """SIGKILL a node's postmaster and its backends: the server is gone."""
    pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
    for process in [pid, *ThrowawayCluster.children_of(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process, signal.SIGKILL)


def test_backups_follow_the_primary_of_the_pair_and_a_backup_after_a_failover_restores():
    base = Path(tempfile.mkdtemp(prefix="ebike-backup-pair-"))
    base.chmod(0o755)
    keys = base / "keys"
    keys.mkdir(mode=0o700)
    (keys / "backup-passphrase").write_text("pair-test-passphrase-" + os.urandom(16).hex() + "\n")
    (keys / "backup-passphrase").chmod(0o600)
    port = free_port(NODE_A)
    env = {
        **os.environ,
        "PG_PAIR_DIR": str(base / "pg"),
        "PG_PAIR_PORT": str(port),
        "PG_NODE_A_HOST": NODE_A,
        "PG_NODE_B_HOST": NODE_B,
        "STANDBY_ENABLED": "1",
        # Only the pair's URL: no BACKUP_PG_PATH, _PORT or _SOCKET.
        "DATABASE_URL": f"postgresql://postgres@{NODE_A},{NODE_B}:{port}/app?target_session_attrs=read-write",
        "BACKUP_ENABLED": "true",
        "BACKUP_REPO_PATH": str(base / "repo"),
        "BACKUP_STATE_DIR": str(base / "state"),
        "BACKUP_STATUS_FILE": str(base / "backup-status.json"),
        "BACKUP_PASSPHRASE_FILE": str(keys / "backup-passphrase"),
        "BACKUP_FILES": str(keys),
        "BACKUP_COMPRESS_TYPE": "lz4",
        "CACHE_URL": sandbox_cache_url(),
    }
    for name in ("BACKUP_PG_PATH", "BACKUP_PG_PORT", "BACKUP_PG_SOCKET"):
        env.pop(name, None)
    restored = None
    try:
        up = script("standby.sh", env, "up")
        assert up.returncode == 0, up.stderr
        psql(NODE_A, port, "CREATE DATABASE app", "postgres")
        psql(NODE_A, port, "CREATE TABLE t (id int PRIMARY KEY, node text DEFAULT host(inet_server_addr()))")
        node_a, node_b = base / "pg/node-a/data", base / "pg/node-b/data"

        # Enabling backups sets archiving on both nodes; archive_mode needs a restart of each.
        first = script("backup.sh", env, BACKUP_TYPE="full")
        assert first.returncode == 3, first.stdout + first.stderr
        assert f"primary {NODE_A}:{port}" in first.stderr and f"standby {NODE_B}:{port}" in first.stderr
        assert "scripts/standby.sh stop && scripts/standby.sh up" in first.stderr
        assert script("standby.sh", env, "stop").returncode == 0
        restart = script("standby.sh", env, "up")
        assert restart.returncode == 0, restart.stderr
        for host in (NODE_A, NODE_B):
            assert psql(host, port, "SHOW archive_mode") == "on", host
            assert '--pg1-path="$PWD" archive-push %p' in psql(host, port, "SHOW archive_command"), host

        full = script("backup.sh", env, BACKUP_TYPE="full")
        assert full.returncode == 0, full.stdout + full.stderr
        assert f"primary: {NODE_A}:{port} (data {node_a})" in full.stdout
        full_label = next(line for line in full.stdout.splitlines() if "done:" in line).split()[2]
        psql(NODE_A, port, "INSERT INTO t (id) SELECT generate_series(1, 10)")  # set a, on node-a

        # The primary's server dies; the standby is promoted the documented way.
        kill_postmaster(node_a)
        promote = script("standby.sh", env, "promote")
        assert promote.returncode == 0, promote.stderr
        psql(NODE_B, port, "INSERT INTO t (id) SELECT generate_series(11, 20)")  # set b, on node-b

        # The next backup finds the new primary by itself, node-a being down.
        after = script("backup.sh", env, BACKUP_TYPE="incr")
        assert after.returncode == 0, after.stdout + after.stderr
        assert f"primary: {NODE_B}:{port} (data {node_b})" in after.stdout
        assert f"{NODE_A}:{port} does not answer" in after.stderr
        label = next(line for line in after.stdout.splitlines() if "done:" in line).split()[2]
        assert label.startswith(full_label) and label.endswith("I"), (full_label, label)

        time.sleep(1.1)  # pgBackRest picks a backup that stopped before the target, to the second
        psql(NODE_B, port, "INSERT INTO t (id) SELECT generate_series(21, 30)")  # set c
        target = psql(
            NODE_B, port, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US+00')"
        )
        time.sleep(0.01)
        psql(NODE_B, port, "INSERT INTO t (id) SELECT generate_series(31, 40)")  # set d, after the target
        segment = psql(NODE_B, port, "SELECT pg_walfile_name(pg_switch_wal())")
        deadline = time.monotonic() + 60
        while psql(NODE_B, port, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") < segment:
            assert time.monotonic() < deadline, "the promoted node does not archive"
            time.sleep(0.1)
        assert psql(NODE_B, port, "SELECT failed_count FROM pg_stat_archiver") == "0"

        # Restoring never goes over either node's data directory.
        refused = script("restore.sh", env, TARGET_TIME=target, RESTORE_PATH=str(node_b))
        assert refused.returncode != 0 and "live cluster" in refused.stderr

        restored = ThrowawayCluster(host=RESTORE_HOST, name="pair-restored", initdb=False)
        done = script(
            "restore.sh", env, TARGET_TIME=target, RESTORE_DIR=str(restored.base), RESTORE_PATH=str(restored.data),
            RESTORE_HOST=RESTORE_HOST, RESTORE_PORT=str(restored.port),
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["backup_set"] == label, done.stdout + done.stderr  # the backup taken after the failover
        assert restored.sql("SELECT pg_is_in_recovery()") == "f"
        # Exactly what was committed before the target: sets a, b (before the backup), c (WAL archived
        # by the promoted node), each row once; not d.
        assert restored.sql("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM t", "app") == "30|30|1|30"
        assert restored.sql("SELECT node, count(*) FROM t GROUP BY 1 ORDER BY 1", "app").split() == [
            f"{NODE_A}|10",
            f"{NODE_B}|20",
        ]
    finally:
        if restored is not None:
            restored.cleanup()
        script("standby.sh", env, "stop")  # node-b (node-a was killed)
        shutil.rmtree(base, ignore_errors=True)
