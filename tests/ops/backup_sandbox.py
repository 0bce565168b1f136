"""A throwaway cluster backed up by the project's own scripts/backup.sh into a temporary pgBackRest
repository, restored by scripts/restore.sh into new clusters: the backup/restore test and drill.

    .venv/bin/python -m tests.ops.backup_sandbox --runs 5          # the restore drill (make drills)
    .venv/bin/python -m tests.ops.backup_sandbox --bench-database  # restore time of the bench's database

Each drill run: an incremental backup (the first run: full), a set of registrations, theft reports
and pings written through the services (tests/ops/backup_workload.py), the time noted, a second set
written, WAL switched and archived, then a point-in-time restore to the noted time into a new cluster
on its own address and port; every table of the restored database is compared with the snapshot taken
at the noted time (row count and a content hash). Prints one JSON line.
The machine's own cluster (5432) is only read (pg_dump, for --bench-database), never configured.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.harness.clusters import ThrowawayCluster, free_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv/bin/python")
DBNAME = "app"

# Every table of the application's schema; partitions count as tables, their parents hold no rows.
SNAPSHOT_TABLES = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'spatial_ref_sys' ORDER BY 1
"""


class BackupSandbox:
    """A cluster with archiving to a repository in a temporary directory, driven by the real scripts."""

    def __init__(self, *, host: str = "127.0.0.51", restore_hosts: tuple[str, ...] = ("127.0.0.52",)) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ebike-backup-"))
        self.dir.chmod(0o755)
        self.restore_hosts = restore_hosts
        self.restores: list[ThrowawayCluster] = []
        self.media = self.dir / "media"
        self.keys = self.dir / "keys"
        for folder in (self.media / "photos", self.keys):
            folder.mkdir(parents=True)
        self.keys.chmod(0o700)
        (self.keys / "backup-passphrase").write_text(secrets.token_urlsafe(48) + "\n")
        (self.keys / "backup-passphrase").chmod(0o600)
        (self.keys / "evidence-ed25519.pem").write_text("test evidence key\n")
        (self.media / "photos" / "bike-1.jpg").write_bytes(b"\xff\xd8 a photo \xff\xd9")
        self.cluster = ThrowawayCluster(host=host, name="backup-primary")
        self.env = {
            **os.environ,
            "DATABASE_URL": self.cluster.url(DBNAME),
            "BACKUP_ENABLED": "true",
            "BACKUP_REPO_PATH": str(self.dir / "repo"),
            "BACKUP_STATE_DIR": str(self.dir / "state"),
            "BACKUP_STATUS_FILE": str(self.dir / "backup-status.json"),
            "BACKUP_PASSPHRASE_FILE": str(self.keys / "backup-passphrase"),
            "BACKUP_PG_PATH": str(self.cluster.data),
            "BACKUP_PG_PORT": str(self.cluster.port),
            "BACKUP_PG_SOCKET": str(self.cluster.socket_dir),
            "BACKUP_FILES": f"{self.media} {self.keys}",
            "BACKUP_COMPRESS_TYPE": "lz4",
            # The workload's Django keeps its cache apart from the development server's (Redis db 0).
            "CACHE_URL": os.environ.get("CACHE_URL") or sandbox_cache_url(),
        }

    # -- set-up -----------------------------------------------------------------------------------

    def start_and_migrate(self) -> None:
        self.cluster.start()
        self.cluster.create_database(DBNAME)
        run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], env=self.env, timeout=300)

    def backup(self, kind: str = "incr") -> subprocess.CompletedProcess:
        return run(["bash", "scripts/backup.sh"], env={**self.env, "BACKUP_TYPE": kind}, timeout=300, check=False)

    def first_backup(self) -> None:
        """The first `make backup`: it sets archive_mode and stops asking for a restart (exit 3);
        restart, then the full backup."""
        result = self.backup("full")
        if result.returncode == 3:
            self.cluster.restart()
            result = self.backup("full")
        check_ok(result)

    def write(self, *, tag: str, first: int, count: int) -> dict[str, int]:
        out = run(
            [PYTHON, "-m", "tests.ops.backup_workload", "--tag", tag, "--first", str(first), "--count", str(count)],
            env=self.env,
            timeout=180,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    def now(self) -> str:
        """The cluster's clock after everything so far committed: the restore target."""
        return self.cluster.sql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US+00')")

    def archive_current_wal(self, *, timeout: float = 60) -> None:
        """Close the current WAL segment and wait until archive_command has pushed it."""
        segment = self.cluster.sql("SELECT pg_walfile_name(pg_switch_wal())")
        deadline = time.monotonic() + timeout
        while self.cluster.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") < segment:
            if time.monotonic() > deadline:
                raise TimeoutError(f"WAL {segment} not archived after {timeout}s: {self.cluster.log_tail()}")
            time.sleep(0.1)

    # -- restore ----------------------------------------------------------------------------------

    def restore(self, target_time: str, *, host: str | None = None) -> tuple[ThrowawayCluster, dict]:
        """scripts/restore.sh into a new, empty directory on another address: (cluster, its JSON)."""
        host = host or self.restore_hosts[len(self.restores) % len(self.restore_hosts)]
        target = ThrowawayCluster(host=host, port=free_port(host), name="restored", initdb=False)
        self.restores.append(target)
        out = run(
            ["bash", "scripts/restore.sh"],
            env={
                **self.env,
                "TARGET_TIME": target_time,
                "RESTORE_DIR": str(target.base),
                "RESTORE_PATH": str(target.data),
                "RESTORE_HOST": host,
                "RESTORE_PORT": str(target.port),
            },
            timeout=300,
        )
        return target, json.loads(out.stdout.strip().splitlines()[-1])

    def cleanup(self) -> None:
        for cluster in [*self.restores, self.cluster]:
            cluster.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> BackupSandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()


def sandbox_cache_url() -> str:
    redis_url = urlsplit(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    return urlunsplit(redis_url._replace(path=f"/{1 + zlib.crc32(b'backup-sandbox') % 15}"))


def run(args: list[str], *, env: dict[str, str], timeout: float, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def snapshot(cluster: ThrowawayCluster, dbname: str = DBNAME) -> dict[str, tuple[int, str]]:
    """Per table: (rows, content hash). Every table of the schema, in one query. The hash is the sum
    of a 64-bit hash of each row's text: independent of row order, and constant memory (a bench
    partition of 20 million rows would not fit an md5 over one string)."""
    tables = cluster.sql(SNAPSHOT_TABLES, dbname).split()
    parts = [  # table names from the catalogue, not from input
        f"SELECT '{name}', count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM \"{name}\" t"  # noqa: S608
        for name in tables
    ]
    rows = cluster.sql(" UNION ALL ".join(parts), dbname, timeout=300)
    result = {}
    for line in rows.splitlines():
        name, count, digest = line.split("|")
        result[name] = (int(count), digest)
    return result


def differences(expected: dict[str, tuple[int, str]], actual: dict[str, tuple[int, str]]) -> list[str]:
    """Tables whose count or content differ (or that exist on one side only), in words."""
    problems = []
    for name in sorted(expected.keys() | actual.keys()):
        want, got = expected.get(name), actual.get(name)
        if want != got:
            problems.append(f"{name}: expected {want}, restored {got}")
    return problems


def drill(runs: int, count: int) -> dict:
    """The restore drill: `runs` point-in-time restores, each checked table by table."""
    figures: list[dict] = []
    with BackupSandbox(restore_hosts=("127.0.0.52", "127.0.0.53")) as box:
        box.start_and_migrate()
        box.first_backup()
        for number in range(runs):
            if number:
                check_ok(box.backup("incr"))
            before = box.write(tag=f"d{number}a", first=1000 + number * 100, count=count)
            expected = snapshot(box.cluster)
            target = box.now()
            box.write(tag=f"d{number}b", first=1000 + number * 100 + 50, count=count)
            box.archive_current_wal()
            restored, report = box.restore(target)
            actual = snapshot(restored)
            mismatches = differences(expected, actual)
            restored.cleanup()
            figures.append(
                {
                    "restore_seconds": report["restore_seconds"],
                    "backup_set": report["backup_set"],
                    "tables_checked": len(expected),
                    "rows_checked": sum(rows for rows, _ in expected.values()),
                    "written_before_target": before,
                    "mismatches": len(mismatches),
                    "mismatch_detail": mismatches[:5],
                }
            )
    seconds = [run["restore_seconds"] for run in figures]
    return {
        "drill": "restore",
        "runs": len(figures),
        "restore_seconds_min": min(seconds),
        "restore_seconds_max": max(seconds),
        "rows_checked": sum(run["rows_checked"] for run in figures),
        "mismatches": sum(run["mismatches"] for run in figures),
        "per_run": figures,
    }


SEED_BENCH = """
import sys
import _common as bench
bench.setup_django()
import ingest
terminals = [pk for pk, _ in ingest.bench_terminals(ingest.SCALES["full"]["terminals"])]
rows = int(sys.argv[1])
print(ingest.seed(ingest.choose_day(rows), terminals, rows))
"""


def bench_database(runs: int, seed_rows: int = 0) -> dict:
    """Restore time of the bench's database (DATABASE_URL's, read with pg_dump, never configured):
    loaded into a throwaway cluster, backed up in full, restored `runs` times to the latest point.
    `seed_rows`: first top it up as bench/ingest.py's full scale does (its own seed(), 10,000
    terminals; 20,000,000 rows at full scale), in the throwaway cluster only."""
    source = os.environ.get("DATABASE_URL", "postgis://ebike:ebike@127.0.0.1:5432/ebike")
    seconds = []
    with BackupSandbox(restore_hosts=("127.0.0.52",)) as box:
        box.cluster.start()
        box.cluster.create_database(DBNAME)
        dump = box.dir / "bench.dump"
        libpq_url = source.replace("postgis://", "postgresql://", 1)
        started = time.monotonic()
        run(["pg_dump", "-Fc", "-O", "-x", "-f", str(dump), libpq_url], env=box.env, timeout=1800)
        run(["pg_restore", "-O", "-x", "-j", "2", "-d", box.cluster.url(DBNAME, "postgresql"), str(dump)],
            env=box.env, timeout=1800, check=False)  # fmt: skip
        if seed_rows:
            env = {**box.env, "PYTHONPATH": f"{ROOT}:{ROOT / 'bench'}"}
            run([PYTHON, "-c", SEED_BENCH, str(seed_rows)], env=env, timeout=7200)
        load_seconds = time.monotonic() - started
        size = int(box.cluster.sql(f"SELECT pg_database_size('{DBNAME}')"))
        cluster_size = int(box.cluster.sql("SELECT sum(pg_database_size(datname)) FROM pg_database"))
        box.first_backup()
        started = time.monotonic()
        check_ok(box.backup("full"))
        backup_seconds = time.monotonic() - started
        expected = snapshot(box.cluster)
        target = box.now()
        box.cluster.sql("CREATE TABLE after_target (x int)", DBNAME)
        box.archive_current_wal()
        mismatches = 0
        for _ in range(runs):
            restored, report = box.restore(target)
            mismatches += len(differences(expected, snapshot(restored)))
            restored.cleanup()
            seconds.append(report["restore_seconds"])
    return {
        "drill": "restore_bench_database",
        "seeded_rows": seed_rows,
        "database_mb": round(size / 2**20, 1),
        "cluster_mb": round(cluster_size / 2**20, 1),
        "load_seconds": round(load_seconds, 1),
        "full_backup_seconds": round(backup_seconds, 2),
        "runs": runs,
        "restore_seconds": seconds,
        "restore_seconds_max": max(seconds),
        "mismatches": mismatches,
    }


def check_ok(result: subprocess.CompletedProcess) -> None:
    if result.returncode != 0:
        raise RuntimeError(f"backup failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--count", type=int, default=10, help="registrations per written set (each with pings)")
    parser.add_argument("--bench-database", action="store_true", help="restore time of DATABASE_URL's database")
    parser.add_argument(
        "--seed-rows", type=int, default=0, help="with --bench-database: pings seeded as the bench does"
    )
    args = parser.parse_args()
    result = bench_database(args.runs, args.seed_rows) if args.bench_database else drill(args.runs, args.count)
    print(json.dumps(result))
    if result["mismatches"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
