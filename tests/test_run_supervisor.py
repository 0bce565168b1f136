"""`make run` keeps the system up: scripts/supervise.sh, the supervision scripts/run.sh uses, run on
small stand-ins (an HTTP server as the web, `sleep` as the gateway) so that the real ports, Redis
queues and database are left alone. A killed component comes back with backoff, the others keep
serving, Ctrl-C and SIGTERM still stop everything, and one that keeps crashing stops the lot."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
SUPERVISE = SCRIPTS / "supervise.sh"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Supervisor:
    def __init__(self, tmp_path: Path, children: dict[str, str], **env: str):
        driver = tmp_path / "run.sh"
        # As scripts/run.sh does, with stand-ins for its children.
        lines = ["set -euo pipefail", 'LOG_PREFIX="[run]"', f"source {SCRIPTS / 'lib.sh'}", f"source {SUPERVISE}"]
        lines += [f"start {name} {command}" for name, command in children.items()]
        lines.append("supervise")
        driver.write_text("\n".join(lines) + "\n")
        self.out = tmp_path / "out.txt"
        self.process = subprocess.Popen(  # noqa: S603 (our own script)
            ["/bin/bash", str(driver)],
            stdout=self.out.open("wb"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUN_STOP_TIMEOUT": "5", **env},
            start_new_session=True,
        )

    def log(self) -> str:
        return self.out.read_text()

    def wait_for(self, pattern: str, timeout: float = 10, count: int = 1) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.findall(pattern, self.log())
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} ({count}x) in:\n{self.log()}")

    def pid_of(self, name: str, count: int = 1) -> int:
        return int(self.wait_for(rf"started {name} \(pid (\d+)\)", count=count)[count - 1])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def supervisor(tmp_path):
    started: list[Supervisor] = []

    def make(children: dict[str, str], **env: str) -> Supervisor:
        started.append(Supervisor(tmp_path, children, **env))
        return started[-1]

    yield make
    for each in started:  # a failed test leaves nothing running
        for pid in map(int, re.findall(r"started \w+ \(pid (\d+)\)", each.log())):
            if alive(pid):
                os.killpg(pid, signal.SIGKILL)
        each.stop()


def get(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        return response.status


def web_up(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            assert get(port) == 200
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_killed_gateway_is_back_within_seconds_and_the_web_keeps_answering(supervisor, tmp_path):
    port = free_port()
    run = supervisor(
        {
            "web": f"{sys.executable} -m http.server --bind 127.0.0.1 --directory {tmp_path} {port}",
            "gateway": "sleep 300",
        },
        RUN_RESTART_DELAY="0.5",
    )
    web, gateway = run.pid_of("web"), run.pid_of("gateway")
    web_up(port)

    os.kill(gateway, signal.SIGKILL)
    run.wait_for(r"gateway exited with status 137; restarting it in 0\.5 s .*the others keep running")
    assert get(port) == 200  # while the gateway is down
    killed_at = time.monotonic()
    again = run.pid_of("gateway", count=2)
    assert again != gateway and alive(again) and time.monotonic() - killed_at < 3
    assert alive(web) and get(port) == 200

    # Killed again soon after: a longer wait (backoff), still restarted.
    os.kill(again, signal.SIGKILL)
    run.wait_for(r"gateway exited with status 137; restarting it in 1 s \(exit 2 of 5")
    assert alive(run.pid_of("gateway", count=3))
    assert run.process.poll() is None and "stopping" not in run.log()

    # SIGTERM (as Ctrl-C) still stops everything.
    run.process.send_signal(signal.SIGTERM)
    assert run.process.wait(timeout=10) == 143
    assert "stopped (exit 143)" in run.log()
    assert not alive(web) and not alive(run.pid_of("gateway", count=3))


def test_ctrl_c_stops_everything_during_a_backoff(supervisor):
    run = supervisor({"web": "sleep 300", "worker": "sleep 300"}, RUN_RESTART_DELAY="30")
    web, worker = run.pid_of("web"), run.pid_of("worker")
    os.kill(worker, signal.SIGKILL)
    run.wait_for(r"worker exited with status 137; restarting it in 30 s")
    run.process.send_signal(signal.SIGINT)
    assert run.process.wait(timeout=10) == 130
    assert not alive(web) and "started worker" not in run.log().split("restarting it in 30 s")[1]


def test_a_component_that_keeps_crashing_stops_everything_and_says_so(supervisor):
    run = supervisor({"web": "sleep 300", "gateway": "sh -c 'echo cannot bind; exit 3'"}, RUN_RESTART_DELAY="0.05")
    web = run.pid_of("web")
    assert run.process.wait(timeout=15) == 1
    log = run.log()
    assert log.count("[gateway] cannot bind") == 5
    assert "gateway exited with status 3, 5 times in 60 s: it keeps crashing; stopping everything" in log
    assert "stopped (exit 1)" in log and not alive(web)
