"""A long-lived process's memory of what it read or wrote lately, each entry trusted for a while."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """key -> value, each entry counting for `ttl_s` seconds (monotonic clock) after it was put.
    An entry past its TTL is the same as none; `put` sweeps them away now and then, so that a
    process that has met a county's terminals over a day does not keep one of each for ever."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[K, tuple[V, float]] = {}
        self._sweep_at = 0.0

    def getter(self, now: float) -> Callable[[K], V | None]:
        """Look-ups as of `now`: the value, or None when there is none or it is past its TTL."""
        entries, oldest = self._entries, now - self.ttl_s

        def get(key: K) -> V | None:
            entry = entries.get(key)
            return entry[0] if entry is not None and entry[1] > oldest else None

        return get

    def put(self, items: Mapping[K, V], now: float) -> None:
        entries = self._entries  # the current dict: a sweep meanwhile may have replaced it
        for key, value in items.items():
            entries[key] = (value, now)
        if now >= self._sweep_at:
            self.forget_stale(now)

    def forget(self, keys: Iterable[K]) -> None:
        for key in keys:
            self._entries.pop(key, None)

    def forget_stale(self, now: float) -> None:
        oldest = now - self.ttl_s
        self._entries = {key: entry for key, entry in self._entries.items() if entry[1] > oldest}
        self._sweep_at = now + self.ttl_s

    def keys(self) -> set[K]:
        return set(self._entries)
