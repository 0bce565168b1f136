"""Throwaway PostgreSQL clusters for the operations tests and drills (backups, standby, failover).

`initdb` as the postgres user in a temporary directory, on a loopback address of its own (127.0.0.x)
and a free port, stopped and removed when the `with` block ends, even on failure; the machine's own
cluster is never touched. `ThrowawayCluster(initdb=False)` gives an empty directory for
pg_basebackup or a restore; `run_as_postgres()` runs any PostgreSQL tool the same way.

    with ThrowawayCluster(host="127.0.0.21") as primary:
        primary.append_conf("archive_mode = on\\narchive_command = '...'")
        primary.start()
        primary.sql("CREATE DATABASE app")
        url = primary.url("app")            # postgis://postgres@127.0.0.21:PORT/app, for DATABASE_URL
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"


def run_as_postgres(
    args: list[str], *, check: bool = True, timeout: float = 120, **kwargs
) -> subprocess.CompletedProcess:
    """Run a command as the postgres user (runuser when we are root), capturing text output."""
    command = [str(a) for a in args]
    if os.geteuid() == 0:
        command = ["runuser", "-u", PG_USER, "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)  # noqa: S603
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def chown_postgres(path: Path) -> None:
    """Hand a path we created to the postgres user (no-op unless we are root)."""
    if os.geteuid() == 0:
        shutil.chown(path, user=PG_USER, group=PG_USER)


def free_port(host: str) -> int:
    """A TCP port nothing listens on at host right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


class ThrowawayCluster:
    """One PostgreSQL cluster in a temporary directory: initdb, start/stop/kill, SQL, configuration."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        name: str = "pg",
        initdb: bool = True,
        fast: bool = True,
        base_dir: Path | None = None,
    ) -> None:
        """`fast` turns fsync off (the data outlives a postmaster SIGKILL, not a machine crash: enough
        for tests). `base_dir` puts the cluster in a given directory (created, owned by postgres)
        instead of a fresh temporary one; it is removed by cleanup() either way."""
        self.host = host
        self.port = port or free_port(host)
        if self.port == 5432 and host in ("127.0.0.1", "localhost"):
            raise ValueError("127.0.0.1:5432 is the machine's own cluster: pick another port")
        self.name = name
        if base_dir is None:
            self.base = Path(tempfile.mkdtemp(prefix=f"ebike-{name}-"))
        else:
            self.base = Path(base_dir)
            self.base.mkdir(parents=True, exist_ok=True)
        chown_postgres(self.base)
        self.base.chmod(0o755)  # the test process (root or not) reads logs; postgres writes
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.socket_dir = self.base
        if initdb:
            self.initdb(fast=fast)
        else:
            self.data.mkdir(mode=0o700)
            chown_postgres(self.data)

    # -- life cycle -------------------------------------------------------------------------------

    def initdb(self, *, fast: bool = True) -> None:
        run_as_postgres(
            [PG_BIN / "initdb", "-D", self.data, "-U", PG_USER, "--auth=trust", "--encoding=UTF8",
             "--locale=C.UTF-8", "--no-instructions"]
        )  # fmt: skip
        self.write_base_conf(fast=fast)

    def write_base_conf(self, *, fast: bool = True) -> None:
        """Listen address, port, socket directory and loopback trust; called again after a restore or
        pg_basebackup copied another cluster's files (which carry that cluster's settings)."""
        self.append_conf(
            f"""
# ThrowawayCluster {self.name}
listen_addresses = '{self.host}'
port = {self.port}
unix_socket_directories = '{self.socket_dir}'
max_connections = 60
shared_buffers = 32MB
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 128MB
hot_standby = on
logging_collector = off
log_min_messages = warning
{"fsync = off" if fast else ""}
"""
        )
        hba = self.data / "pg_hba.conf"
        run_as_postgres(
            ["sh", "-c", f"printf '%s\\n' 'local all all trust' 'host all all 127.0.0.0/8 trust' "
             f"'host replication all 127.0.0.0/8 trust' > '{hba}'"]
        )  # fmt: skip

    def start(self, *, timeout: float = 60) -> None:
        try:
            run_as_postgres(
                [PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", int(timeout), "start"],
                timeout=timeout + 10,
            )
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n{self.name} log:\n{self.log_tail()}") from None

    def stop(self, mode: str = "fast", *, timeout: float = 60) -> None:
        """pg_ctl stop -m smart|fast|immediate (immediate = crash-like, recovery on next start)."""
        run_as_postgres(
            [PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", int(timeout), "stop"],
            timeout=timeout + 10,
        )

    def kill(self) -> None:
        """SIGKILL the postmaster (a dead database server), then its orphaned backends."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        children = self.children_of(pid)  # before the kill: afterwards they belong to init
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        # Backends notice the dead postmaster on their own; kill them too so the port and the shared
        # memory are free at once (a restart or pg_rewind does not wait on them).
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
            any(self.pid_exists(p) for p in [pid, *children]) or port_open(self.host, self.port)
        ):
            time.sleep(0.05)

    def reload(self) -> None:
        run_as_postgres([PG_BIN / "pg_ctl", "-D", self.data, "reload"])

    def restart(self) -> None:
        self.stop()
        self.start()

    def promote(self) -> None:
        run_as_postgres([PG_BIN / "pg_ctl", "-D", self.data, "-w", "promote"])

    def is_running(self) -> bool:
        pid = self.postmaster_pid()
        return pid is not None and self.pid_alive(pid)

    def postmaster_pid(self) -> int | None:
        pidfile = self.data / "postmaster.pid"
        try:
            return int(pidfile.read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError, PermissionError):
            return None

    @classmethod
    def pid_alive(cls, pid: int) -> bool:
        """Exists and is not a zombie."""
        if not cls.pid_exists(pid):
            return False
        stat = Path(f"/proc/{pid}/stat")
        with contextlib.suppress(FileNotFoundError):
            return stat.read_text().split(") ", 1)[1][:1] != "Z"
        return False

    @staticmethod
    def pid_exists(pid: int) -> bool:
        """Also true for a zombie not yet reaped: a new postmaster refuses to start while the old pid
        in postmaster.pid still exists in any state."""
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    @staticmethod
    def children_of(pid: int) -> list[int]:
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = stat.read_text().rsplit(") ", 1)[1].split()
                if int(fields[1]) == pid:
                    children.append(int(stat.parent.name))
        return children

    def cleanup(self) -> None:
        """Stop (immediate, then SIGKILL) and remove the directory. Safe to call twice."""
        if self.is_running():
            try:
                self.stop("immediate", timeout=20)
            except (RuntimeError, subprocess.TimeoutExpired):
                self.kill()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> ThrowawayCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    # -- configuration and access ----------------------------------------------------------------

    def append_conf(self, text: str, *, file: str = "postgresql.conf") -> None:
        """Append lines to postgresql.conf (or another file in the data directory); later lines win."""
        target = self.data / file
        with target.open("a") as handle:
            handle.write("\n" + text.strip("\n") + "\n")
        chown_postgres(target)

    def conninfo(self, dbname: str = "postgres", **extra: str | int) -> str:
        """A libpq keyword/value string, e.g. for psycopg.connect() or primary_conninfo."""
        parts = {"host": self.host, "port": self.port, "user": PG_USER, "dbname": dbname, **extra}
        return " ".join(f"{key}={value}" for key, value in parts.items())

    def url(self, dbname: str = "postgres", scheme: str = "postgis") -> str:
        """A DATABASE_URL for this cluster (dj-database-url form)."""
        return f"{scheme}://{PG_USER}@{self.host}:{self.port}/{dbname}"

    def sql(self, query: str, dbname: str = "postgres", *, timeout: float = 60) -> str:
        """Run SQL with psql (stop on the first error) and return its unaligned, tuples-only output."""
        result = subprocess.run(  # noqa: S603
            [str(PG_BIN / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.host, "-p", str(self.port),
             "-U", PG_USER, "-d", dbname, "-c", query],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql on {self.host}:{self.port}/{dbname} failed: {result.stderr.strip()}\n{query}")
        return result.stdout.strip()

    def wait_ready(self, *, timeout: float = 60) -> None:
        """Until the cluster accepts connections (e.g. after a restore that starts recovery itself)."""
        deadline = time.monotonic() + timeout
        while True:
            result = subprocess.run(  # noqa: S603
                [str(PG_BIN / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port)], check=False, timeout=10
            )
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.name} on {self.host}:{self.port} not ready after {timeout}s: {self.log_tail()}"
                )
            time.sleep(0.1)

    def create_database(self, dbname: str, *, postgis: bool = True) -> None:
        self.sql(f'CREATE DATABASE "{dbname}"')
        if postgis:
            self.sql("CREATE EXTENSION IF NOT EXISTS postgis", dbname)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    # -- streaming replication (tests/ops/test_failover.py, scripts/standby.sh does the same) -------

    def basebackup_from(self, primary: ThrowawayCluster, *, application_name: str, slot: str) -> None:
        """Make this cluster (created with initdb=False, not running) a streaming standby of `primary`:
        pg_basebackup -R (standby.signal, primary_conninfo) with a new physical replication slot, then
        this cluster's own address and port. `application_name` is the name the primary's
        synchronous_standby_names lists."""
        run_as_postgres(
            [PG_BIN / "pg_basebackup", "-h", primary.host, "-p", primary.port, "-U", PG_USER, "-D", self.data,
             "-R", "-X", "stream", "-C", "-S", slot, "--checkpoint=fast", "--no-sync"]
        )  # fmt: skip
        self.write_base_conf()
        self.follow(primary, application_name=application_name, slot=slot)

    def follow(self, primary: ThrowawayCluster, *, application_name: str, slot: str | None = None) -> None:
        """Point this (stopped) cluster at `primary` as a standby: standby.signal and primary_conninfo
        (in postgresql.auto.conf, where pg_basebackup -R and pg_rewind -R write theirs; later wins)."""
        conninfo = primary.conninfo(application_name=application_name)
        lines = [f"primary_conninfo = '{conninfo}'", f"primary_slot_name = '{slot or ''}'"]
        self.append_conf("\n".join(lines), file="postgresql.auto.conf")
        self.fence()

    def fence(self) -> None:
        """Write standby.signal: whenever this data directory starts again, it starts as a standby
        (read-only), never as a second primary. Safe while it is stopped or dead."""
        signal_file = self.data / "standby.signal"
        signal_file.touch()
        chown_postgres(signal_file)

    def rewind_from(self, source: ThrowawayCluster) -> None:
        """pg_rewind this stopped (or killed: pg_rewind runs crash recovery first) old primary onto
        `source`'s timeline. Needs wal_log_hints = on or data checksums (initdb -k) in this cluster.
        pg_rewind copies the source's configuration files: this cluster's own address comes back.
        A fence (standby.signal) is lifted for pg_rewind's own single-user crash recovery, which
        refuses standby mode, and put back at once: the caller then follow()s the source."""
        if not self.is_running():  # a killed postmaster's pid file (its pid may linger as a zombie)
            (self.data / "postmaster.pid").unlink(missing_ok=True)
            # and its socket's lock file, which names the same pid and is refused the same way
            (self.socket_dir / f".s.PGSQL.{self.port}.lock").unlink(missing_ok=True)
        fence = self.data / "standby.signal"
        fenced = fence.exists()
        fence.unlink(missing_ok=True)
        try:
            run_as_postgres(
                [PG_BIN / "pg_rewind", "-D", self.data, f"--source-server={source.conninfo()}", "--no-sync"],
                timeout=120,
            )
        finally:
            if fenced:
                self.fence()
        self.write_base_conf()

    def in_recovery(self) -> bool:
        return self.sql("SELECT pg_is_in_recovery()") == "t"

    def wait_sync_standby(self, application_name: str, *, state: str = "sync", timeout: float = 30) -> None:
        """Until pg_stat_replication on this primary shows `application_name` streaming as `state`."""
        deadline = time.monotonic() + timeout
        query = (  # our own standby's name
            "SELECT sync_state FROM pg_stat_replication "
            f"WHERE application_name = '{application_name}' AND state = 'streaming'"
        )
        while self.sql(query) != state:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{application_name} not streaming as {state} from {self.name}: {self.log_tail()}")
            time.sleep(0.1)
