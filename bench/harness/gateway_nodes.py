"""Gateway nodes behind a real HAProxy on this machine (tests/ops/test_gateway_nodes.py, the node-kill
drills of `make drills`, the two-node stage of bench/ingest.py).

Each node is `manage.py run_gateway` in a process group of its own (as if on a host of its own) on
a loopback address of its own, so every node has the same ports, as in production. HAProxy runs
the configuration scripts/haproxy_config.py renders from deploy/haproxy/haproxy.cfg.in, and connects
to the nodes from an address of its own, which the nodes trust for PROXY v2 headers
(GATEWAY_PROXY_FROM). Simulated GT06 terminals connect to HAProxy from addresses of their own,
resend what was not acknowledged after every reconnection, and keep what was acknowledged.

No Django here (the bench's load generator and asyncio code use it without a test database).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime
import io
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def haproxy_binary() -> str | None:
    """Debian's haproxy (scripts/setup.sh installs it; /usr/sbin is not on every PATH)."""
    return shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if os.access(p, os.X_OK)), None)


def loopback_prefix() -> str:
    """ "127.A.B." for this run: addresses no other run on this machine is likely to use."""
    return f"127.{random.randint(20, 250)}.{random.randint(1, 250)}."


def ports_free_on(hosts: list[str], count: int) -> list[int]:
    """`count` ports free on every one of `hosts` (the nodes serve the same ports, each on its address)."""
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = probe.getsockname()[1]
        if port in found:
            continue
        try:
            for host in hosts:
                with socket.socket() as probe:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    probe.bind((host, port))
        except OSError:
            continue
        found.append(port)
    return found


def free_ports(count: int) -> int:
    """The first of `count` consecutive ports free on 127.0.0.1 (a gateway's worker N serves its
    metrics on the first + N)."""
    while True:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            first = listener.getsockname()[1]
        probes = []
        try:
            for port in range(first, first + count):
                probe = socket.socket()
                probes.append(probe)
                probe.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()


def _wait_port(host: str, port: int, process: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited at start (status {process.returncode})")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {host}:{port} in {timeout:g} s")


class Node:
    """One gateway node: `manage.py run_gateway` on `host`, in a process group of its own."""

    def __init__(
        self, name: str, host: str, ports: dict[str, int], db_url: str | None, workdir: Path, env: dict[str, str]
    ) -> None:
        self.name, self.host, self.ports = name, host, ports
        self.db_url, self.env = db_url, env
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start it; `wait_ready` waits for it (start several, then wait for each)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                [
                    sys.executable,
                    str(ROOT / "manage.py"),
                    "run_gateway",
                    f"--host={self.host}",
                    f"--gt06-port={self.ports['gt06']}",
                    f"--jt808-port={self.ports['jt808']}",
                    f"--osmand-port={self.ports['osmand']}",
                    f"--metrics-port={self.ports['metrics']}",
                ],
                cwd=ROOT,
                env={
                    **os.environ,
                    **({"DATABASE_URL": self.db_url} if self.db_url else {}),  # None: the settings' own
                    "PYTHONUNBUFFERED": "1",
                    **self.env,
                },
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed as a whole, as a host would die
            )

    def wait_ready(self) -> None:
        assert self.process is not None
        try:
            _wait_port(self.host, self.ports["metrics"], self.process, f"gateway node {self.name}")
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n{self.log()}") from None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def healthz(self) -> tuple[int, str]:
        """(status, body) of GET /healthz on the node's metrics port; (0, error) when nothing answers."""
        url = f"http://{self.host}:{self.ports['metrics']}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError as error:
            return 0, str(error)

    def kill(self) -> None:
        """SIGKILL the node's whole process group: nothing of it commits or acknowledges anything more."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def drain(self) -> None:
        os.kill(self.pid, signal.SIGUSR1)

    def stop(self, timeout: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class HAProxy:
    """Debian's haproxy in the foreground with the configuration our script renders."""

    def __init__(
        self,
        *,
        listen: str,
        source: str,
        nodes: list[Node],
        ports: dict[str, int],
        workdir: Path,
        maxconn: int = 4_000,
    ) -> None:
        binary = haproxy_binary()
        if binary is None:
            raise RuntimeError("haproxy is not installed (scripts/setup.sh installs it)")
        self.listen, self.ports = listen, ports
        self.socket_path = workdir / "haproxy.sock"
        self.config_path = workdir / "haproxy.cfg"
        self.log_path = workdir / "haproxy.log"
        node_ports = nodes[0].ports
        args = [
            sys.executable,
            str(ROOT / "scripts" / "haproxy_config.py"),
            *(f"--node={node.host}" for node in nodes),
            f"--listen={listen}",
            f"--source={source}",
            f"--stats-bind={listen}:{ports['stats']}",
            f"--stats-socket={self.socket_path}",
            f"--maxconn={maxconn}",
            f"--output={self.config_path}",
        ]
        for name in ("gt06", "jt808", "osmand"):
            args += [f"--{name}-port={ports[name]}", f"--node-{name}-port={node_ports[name]}"]
        args.append(f"--node-metrics-port={node_ports['metrics']}")
        subprocess.run(args, check=True, timeout=30)  # noqa: S603
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                [binary, "-db", "-f", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait_port(listen, ports["gt06"], self.process, "haproxy", timeout=15)
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n{self.log()}") from None

    def command(self, text: str) -> str:
        """One command of HAProxy's runtime API (the stats socket)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket_path))
            sock.sendall(text.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self) -> dict[tuple[str, str], dict[str, str]]:
        """(backend, server) -> its `show stat` row (status UP / DOWN / MAINT…, scur, stot…)."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {(row["pxname"], row["svname"]): row for row in rows if row["svname"] not in ("FRONTEND", "BACKEND")}

    def status(self, server: str, backend: str = "gt06_nodes") -> str:
        return self.servers()[(backend, server)]["status"]

    def wait_status(self, server: str, wanted: str, timeout: float = 15, backend: str = "gt06_nodes") -> float:
        """Seconds until `server` of `backend` has the status `wanted` (UP, DOWN…); fails after `timeout`."""
        started = time.monotonic()
        while True:
            status = self.status(server, backend)
            if status.split()[0] == wanted:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise AssertionError(f"haproxy: {backend}/{server} is {status}, not {wanted}, after {timeout:g} s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# --- simulated GT06 terminals ---------------------------------------------------------------------------


@dataclass
class Terminal:
    """A GT06 terminal that streams positions through HAProxy from its own address. Its positions
    wait in `pending` (serial -> device time, frame) until acknowledged, then go to `acked`; after a
    lost connection it reconnects, logs in again and resends every pending one, in order."""

    imei: str
    source: str
    target: tuple[str, int]
    start: datetime.datetime  # device time of its first position; one second apart
    interval_s: float = 0.05
    sent: int = 0
    pending: dict[int, tuple[datetime.datetime, bytes]] = field(default_factory=dict)
    acked: dict[datetime.datetime, float] = field(default_factory=dict)  # device time -> monotonic ack time
    logins: list[float] = field(default_factory=list)  # monotonic times of login acks
    drops: list[float] = field(default_factory=list)  # monotonic times connections were lost
    bad_replies: int = 0

    def next_frame(self) -> None:
        from tracking.protocols import gt06
        from tracking.protocols.common import Fix

        serial = self.sent % 0xFFFE + 2  # the login uses serial 1
        when = self.start + datetime.timedelta(seconds=self.sent)
        fix = Fix(when, 39.8826 + self.sent * 1e-6, 117.7390, True, speed_kmh=4, course=0, satellites=9)
        self.pending[serial] = (when, gt06.encode_location(fix, serial))
        self.sent += 1

    def first_ack_after(self, moment: float) -> float | None:
        later = [at for at in self.acked.values() if at >= moment]
        return min(later) if later else None

    async def run(self, sending: asyncio.Event, done: asyncio.Event) -> None:
        """Stream while `sending` is set; once it is cleared, stay until every position is
        acknowledged or `done` is set."""
        from tracking.protocols import gt06

        while not done.is_set() and (sending.is_set() or self.pending):
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(*self.target, local_addr=(self.source, 0)), 5
                )
            except (OSError, TimeoutError):
                await asyncio.sleep(0.1)
                continue
            reading: asyncio.Task | None = None
            try:
                writer.write(gt06.encode_login(self.imei, 1))
                reply = await asyncio.wait_for(reader.readexactly(10), 10)
                if reply[3] != 0x01:
                    raise ConnectionError(f"no login ack: {reply.hex()}")
                self.logins.append(time.monotonic())
                reading = asyncio.create_task(self._read_acks(reader))
                for _when, frame in list(self.pending.values()):  # what the last node did not acknowledge
                    writer.write(frame)
                while not reading.done() and not done.is_set() and (sending.is_set() or self.pending):
                    if sending.is_set():
                        self.next_frame()
                        writer.write(next(reversed(self.pending.values()))[1])
                    await asyncio.wait({reading}, timeout=self.interval_s)
                if reading.done():
                    reading.result()  # ConnectionError / IncompleteReadError
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                pass
            finally:
                if reading is not None:
                    reading.cancel()
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            if not done.is_set() and (sending.is_set() or self.pending):
                self.drops.append(time.monotonic())
                await asyncio.sleep(0.05)

    async def _read_acks(self, reader: asyncio.StreamReader) -> None:
        while True:
            reply = await reader.readexactly(10)
            if reply[:3] != b"\x78\x78\x05":
                self.bad_replies += 1
                continue
            serial = reply[4] << 8 | reply[5]
            item = self.pending.pop(serial, None)
            if item is not None:
                self.acked[item[0]] = time.monotonic()
