"""The terminal gateway as a subprocess on free ports against the TEST database, and the socket
helpers tests speak to it with (tests/tracking/test_gateway.py, tests/cases/test_end_to_end.py)."""

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from bench.harness.gateway_nodes import free_ports

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url(host: str | None = None, port: int | None = None, *, role: str | None = "gateway") -> str:
    """The TEST database, as the gateway subprocess must see it: logged in as the gateway's own
    database role (settings.DATABASE_RUNTIME_ROLES), as in production; role=None: as the owner."""
    s = dict(connection.settings_dict)
    if role is not None:
        runtime = settings.DATABASE_RUNTIME_ROLES[role]
        s.update(USER=runtime["USER"], PASSWORD=runtime["PASSWORD"])
    return (
        f"postgis://{quote(s['USER'], safe='')}:{quote(s['PASSWORD'] or '', safe='')}@"
        f"{host or s['HOST'] or '127.0.0.1'}:{port or s['PORT'] or 5432}/{s['NAME']}"
    )


class GatewayProcess:
    def __init__(self, db_url: str, **settings: str) -> None:
        """`settings`: extra environment, e.g. GATEWAY_PROCESSES="2". One process unless told:
        the tests read the counters of its one metrics endpoint."""
        self.ports = {name: free_port() for name in ("gt06", "jt808", "osmand")}
        self.ports["metrics"] = free_ports(int(settings.get("GATEWAY_PROCESSES", "1")))
        self.log_file = tempfile.NamedTemporaryFile(prefix="gateway-", suffix=".log", delete=False)  # noqa: SIM115
        env = {**os.environ, "DATABASE_URL": db_url, "PYTHONUNBUFFERED": "1", "GATEWAY_PROCESSES": "1", **settings}
        self.process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "run_gateway",
                "--host=127.0.0.1",
                f"--gt06-port={self.ports['gt06']}",
                f"--jt808-port={self.ports['jt808']}",
                f"--osmand-port={self.ports['osmand']}",
                f"--metrics-port={self.ports['metrics']}",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited at start:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.ports["metrics"]), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gateway did not start:\n{self.log()}")

    def workers(self) -> list[int]:
        """Pids of the worker processes (GATEWAY_PROCESSES > 1), from /proc."""
        pid = self.process.pid
        try:
            return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []

    def log(self) -> str:
        return Path(self.log_file.name).read_text(errors="replace")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['metrics']}/metrics", timeout=5) as reply:
            return reply.read().decode()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log_file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.log_file.name)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.settimeout(5)
    return sock


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise AssertionError(f"connection closed after {data.hex()}")
        data += chunk
    return data


def closed_by_peer(sock: socket.socket, timeout: float = 5) -> bytes:
    """Read until the gateway closes the connection; return what it sent before. Fails (socket
    timeout) when the connection is still open after `timeout` seconds."""
    sock.settimeout(timeout)
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(4096):
            received += chunk
    return received
