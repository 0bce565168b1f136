"""Request budgets per client and time window, shared by every web worker through the cache (Redis).

While Redis is unreachable each process keeps its own budget in memory with the same limit, so the
limit fails closed (a worker never lets more through than one budget allows), and Redis is not
asked again for a few seconds, so that a dead Redis does not cost every request its connect timeout.
"""

import logging
import threading
import time
from dataclasses import dataclass

import redis
from django.core.cache import cache

log = logging.getLogger(__name__)

# Seconds to use only the local budgets after Redis failed.
REDIS_RETRY_AFTER_S = 10.0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    # Seconds until the current window ends and the budget is full again.
    retry_after: int


class _LocalBudgets:
    """Fixed-window counters of this process, for when the shared ones cannot be reached."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[float, int]] = {}
        self.redis_down_until = 0.0

    def incr(self, key: str, *, expires_at: float, now: float) -> int:
        with self._lock:
            if len(self._counts) > 10_000:
                self._counts = {k: v for k, v in self._counts.items() if v[0] > now}
            _, count = self._counts.get(key, (expires_at, 0))
            self._counts[key] = (expires_at, count + 1)
            return count + 1

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()
            self.redis_down_until = 0.0


local_budgets = _LocalBudgets()


def _shared_incr(key: str, timeout: int) -> int:
    cache.add(key, 0, timeout=timeout)
    return cache.incr(key)


def rate_limit_take(*, scope: str, client: str | None, limit: int, window_s: int = 60) -> Verdict:
    """Count one request of `client` against `limit` per `window_s` seconds in `scope`."""
    now = time.time()
    window = int(now // window_s)
    window_end = (window + 1) * window_s
    retry_after = max(1, int(window_end - now + 0.999))
    key = f"ratelimit:{scope}:{client or 'unknown'}:{window}"
    if now >= local_budgets.redis_down_until:
        try:
            count = _shared_incr(key, timeout=window_s + 5)
        except (redis.RedisError, OSError, ValueError) as exc:
            log.warning("rate limit %s: shared budget unreachable (%s); using this process's budget", scope, exc)
            local_budgets.redis_down_until = now + REDIS_RETRY_AFTER_S
        else:
            return Verdict(allowed=count <= limit, retry_after=retry_after)
    count = local_budgets.incr(key, expires_at=window_end, now=now)
    return Verdict(allowed=count <= limit, retry_after=retry_after)
