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


# --- the real scripts/run.sh ------------------------------------------------------------------------


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (our own server)
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout} s")
        time.sleep(0.2)


def answers(url: str) -> bool:
    try:
        return http_status(url) == 200
    except OSError:
        return False


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.django_db
def test_the_run_script_restarts_a_killed_gateway_while_the_web_keeps_answering(tmp_path):
    """scripts/run.sh itself, with its real children (gunicorn, the Celery workers and beat, the
    gateway), on free ports against the test database and a Redis database of its own."""
    from tests.tracking.gateway_harness import database_url  # needs Django set up

    web_port, gt06, jt808, osmand, metrics = (free_port() for _ in range(5))
    env = {
        **os.environ,
        "DATABASE_URL": database_url(role=None),
        "DATABASE_APP_URL": database_url(role="app"),
        "DATABASE_GATEWAY_URL": database_url(role="gateway"),
        "REDIS_URL": "redis://127.0.0.1:6379/15",  # not the broker of a system running beside the tests
        "WEB_BIND": f"127.0.0.1:{web_port}",
        "WEB_CONCURRENCY": "1",
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_GT06_PORT": str(gt06),
        "GATEWAY_JT808_PORT": str(jt808),
        "GATEWAY_OSMAND_PORT": str(osmand),
        "GATEWAY_METRICS_PORT": str(metrics),
        "GATEWAY_PROCESSES": "1",
        "CELERY_BEAT_SCHEDULE": str(tmp_path / "beat-schedule"),
        "RUN_RESTART_DELAY": "0.5",
        "RUN_STOP_TIMEOUT": "10",
    }
    out = tmp_path / "run.log"
    run = subprocess.Popen(  # noqa: S603 (our own script)
        ["/bin/bash", str(SCRIPTS / "run.sh")],
        stdout=out.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )

    def log() -> str:
        return out.read_text(errors="replace")

    def gateway_pids() -> list[int]:
        return [int(pid) for pid in re.findall(r"started gateway \(pid (\d+)\)", log())]

    health = f"http://127.0.0.1:{web_port}/healthz"
    try:
        until(lambda: answers(health), 60, f"the web answering /healthz; log:\n{log()}")
        until(lambda: listening(gt06) and listening(jt808), 60, f"the gateway listening; log:\n{log()}")
        web = int(re.search(r"started web \(pid (\d+)\)", log())[1])
        first = gateway_pids()[0]

        os.kill(first, signal.SIGKILL)
        until(lambda: "gateway exited with status 137" in log(), 10, f"the supervisor noticing; log:\n{log()}")
        assert http_status(health) == 200  # the web serves while the gateway is down
        killed_at = time.monotonic()
        until(lambda: listening(gt06), 30, f"the gateway back on its port; log:\n{log()}")
        back_after = time.monotonic() - killed_at
        assert len(gateway_pids()) == 2 and alive(gateway_pids()[1])
        assert back_after < 20, back_after  # seconds: a Django start on a busy 2-core machine
        assert alive(web) and http_status(health) == 200
        assert "stopping everything" not in log()

        run.send_signal(signal.SIGINT)  # Ctrl-C
        assert run.wait(timeout=30) == 130
        assert not alive(web) and not alive(gateway_pids()[1])
        assert not answers(health)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        for pid in map(int, re.findall(r"started \w+ \(pid (\d+)\)", log())):
            if alive(pid):
                os.killpg(pid, signal.SIGKILL)
