"""Celery beat that runs in one place at a time: a PostgreSQL advisory lock held by the scheduler.

Two beats would queue every periodic task twice. Each beat first takes a session-level advisory lock
on a connection of its own and only then starts sending; the others retry every
BEAT_LOCK_RETRY_SECONDS and take over within one retry of the holder's session ending. A holder that
loses its lock connection stops, and its supervisor starts it again to wait like any other.
CELERY_BEAT_SCHEDULER = "ebike_registry.beat:LockedScheduler" makes every `celery beat` use it.
See docs/architecture.md#periodic-work.
"""

import contextlib
import logging
import signal
import time
from types import FrameType
from typing import Any

from celery.beat import PersistentScheduler
from django.conf import settings
from django.db import Error, connections
from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger(__name__)

# pg_advisory_lock's bigint key: "ebikebea" in ASCII, one key for every beat of this database.
LOCK_KEY = 0x65_62_69_6B_65_62_65_61


class BeatLock:
    """The advisory lock on a connection of its own (not Django's, which may be closed under it)."""

    def __init__(self) -> None:
        self.db: BaseDatabaseWrapper | None = None

    def try_acquire(self) -> bool:
        try:
            if self.db is None:
                self.db = connections.create_connection("default")
            self.db.ensure_connection()
            with self.db.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
                return bool(cursor.fetchone()[0])
        except Error as exc:
            logger.warning("beat lock: database not reachable (%s); trying again", exc)
            self.release()
            return False

    def held(self) -> bool:
        """The lock's session is still there (a session-level lock lives exactly as long)."""
        if self.db is None:
            return False
        try:
            with self.db.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
            return True
        except Error:
            return False

    def release(self) -> None:
        """Closing the session releases the lock."""
        if self.db is not None:
            with contextlib.suppress(Error):
                self.db.close()
            self.db = None


class _Stop(Exception):
    pass


def _stop_waiting(signum: int, frame: FrameType | None) -> None:
    raise _Stop


class LockedScheduler(PersistentScheduler):
    """PersistentScheduler that holds the beat lock: waits for it before opening the schedule
    file, checks it before each tick, releases it on close."""

    lock: BeatLock | None = None

    def setup_schedule(self) -> None:
        self.lock = BeatLock()
        self._wait_for_lock(self.lock)
        super().setup_schedule()

    @staticmethod
    def _wait_for_lock(lock: BeatLock) -> None:
        # Celery's own SIGTERM/SIGINT handler would ask for this scheduler again while it is being
        # made (and wait for the lock again): while waiting, a stop signal just ends the process.
        previous = {sig: signal.signal(sig, _stop_waiting) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            waited = False
            while not lock.try_acquire():
                if not waited:
                    logger.warning("beat lock held by another beat: waiting (this beat sends nothing meanwhile)")
                    waited = True
                time.sleep(settings.BEAT_LOCK_RETRY_SECONDS)
        except _Stop:
            lock.release()
            raise SystemExit(0) from None
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        logger.warning("beat lock acquired: this beat schedules the periodic tasks")

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if self.lock is not None and not self.lock.held():
            logger.error("beat lock lost (database connection gone): stopping this beat")
            self.lock.release()
            self.lock = None
            raise SystemExit(1)
        return super().tick(*args, **kwargs)

    def close(self) -> None:
        super().close()
        if self.lock is not None:
            self.lock.release()
            self.lock = None
