"""Celery beat runs in one place at a time (issue 19, point 5; ebike_registry/beat.py): two real
`celery beat` processes against the test database and a Redis database of the test's own; only the
one holding the lock queues anything, the other takes over within seconds of the first being
killed, and a beat still waiting stops at once on SIGTERM."""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/14"  # not the broker of a system running beside the tests
QUEUE = "celery"


class Beat:
    def __init__(self, name: str, tmp_path: Path, db_url: str) -> None:
        self.log_path = tmp_path / f"beat-{name}.log"
        self.process = subprocess.Popen(  # noqa: S603 (our own command)
            [
                str(ROOT / ".venv/bin/celery"),
                "-A",
                "ebike_registry",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(tmp_path / f"schedule-{name}"),
            ],
            cwd=ROOT,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "DATABASE_URL": db_url, "REDIS_URL": REDIS_URL, "BEAT_LOCK_RETRY_SECONDS": "1"},
            start_new_session=True,
        )
        self.pid = self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 60) -> float:
        """Seconds until `text` is in the log."""
        started = time.monotonic()
        while text not in self.log():
            if self.process.poll() is not None or time.monotonic() - started > timeout:
                raise AssertionError(f"no {text!r} (exit {self.process.poll()}) in:\n{self.log()}")
            time.sleep(0.1)
        return time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.pid, signal.SIGKILL)
            self.process.wait()


def senders(broker: redis.Redis) -> dict[int, int]:
    """Messages in the queue per sending process (Celery stamps each with its origin, gen<pid>@host)."""
    counts: dict[int, int] = {}
    for raw in broker.lrange(QUEUE, 0, -1):
        origin = json.loads(raw)["headers"].get("origin", "")
        match = re.match(r"gen(\d+)@", origin)
        if match:
            counts[int(match[1])] = counts.get(int(match[1]), 0) + 1
    return counts


def sent_by(broker: redis.Redis, pid: int, timeout: float = 10) -> int:
    """Messages from `pid` once at least one is in the queue: beat logs "Sending due task" just
    before it publishes, so the log line alone does not mean the message is there yet."""
    deadline = time.monotonic() + timeout
    while not (count := senders(broker).get(pid, 0)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return count


@pytest.fixture
def beats(tmp_path):
    from tests.tracking.gateway_harness import database_url  # needs Django set up

    broker = redis.Redis.from_url(REDIS_URL)
    broker.delete(QUEUE)
    started: list[Beat] = []

    def start(name: str) -> Beat:
        started.append(Beat(name, tmp_path, database_url(role="app")))
        return started[-1]

    yield start, broker
    for beat in started:
        beat.kill()
    broker.delete(QUEUE)


@pytest.mark.django_db
def test_two_beats_schedule_once_and_the_second_takes_over_when_the_first_dies(beats):
    start, broker = beats
    first = start("first")
    first.wait_for("beat lock acquired")
    second = start("second")
    second.wait_for("beat lock held by another beat: waiting")

    time.sleep(5)  # the outbox run is due every 2 s
    sent = senders(broker)
    assert sent.get(first.pid, 0) >= 2, (sent, first.log())
    assert second.pid not in sent, second.log()
    assert "Sending due task" not in second.log()

    first.kill()
    took_over = second.wait_for("beat lock acquired", timeout=20)
    assert took_over < 10, took_over  # one retry (1 s) after the dead beat's session ended
    second.wait_for("Sending due task tracking-outbox")
    assert sent_by(broker, second.pid) >= 1, second.log()

    third = start("third")  # a beat still waiting for the lock stops at once when told to
    third.wait_for("beat lock held by another beat: waiting")
    third.process.send_signal(signal.SIGTERM)
    assert third.process.wait(timeout=10) == 0
    assert third.pid not in senders(broker)
