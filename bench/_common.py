"""Shared helpers for bench/*.py: Django setup, command line, timing, percentiles, the JSON line.

The name starts with an underscore because scripts/bench.sh runs every other bench/*.py. Use:

    import _common as bench          # bench/ is sys.path[0] when run as `python bench/NAME.py`

    def main() -> None:
        args = bench.parse_args("what this measures")
        bench.setup_django()
        from vehicles.models import Vehicle   # Django models only after setup
        samples = bench.time_calls(do_one, inputs, warmup=30)
        bench.emit("NAME", args.scale, {"thing_p50_ms": bench.p50(samples), ...})

The contract every script keeps: docs/benchmarks.md#contract.
"""

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
SCALES = ("small", "full")
T = TypeVar("T")


def setup_django() -> None:
    """Make the project importable and configure Django against the dev database (DATABASE_URL)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ebike_registry.settings")
    import django

    django.setup()


def parse_args(description: str, configure: Callable[[argparse.ArgumentParser], None] | None = None) -> Any:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--scale", choices=SCALES, default="full", help="small: a quick check; full: target scale")
    if configure is not None:
        configure(parser)
    return parser.parse_args()


def log(message: str) -> None:
    """Progress for humans, on stdout before the final JSON line (bench.sh keeps the whole log)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- timing ------------------------------------------------------------------------------------------


def time_call(fn: Callable[[], Any]) -> float:
    """Milliseconds one call takes (wall clock, perf_counter)."""
    started = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - started) / 1e6


def time_calls(fn: Callable[[T], Any], inputs: Iterable[T], *, warmup: Iterable[T] = ()) -> list[float]:
    """Call fn on each warm-up input untimed, then time it on each input; milliseconds per call."""
    for value in warmup:
        fn(value)
    samples = []
    for value in inputs:
        started = time.perf_counter_ns()
        fn(value)
        samples.append((time.perf_counter_ns() - started) / 1e6)
    return samples


def time_interleaved(
    cases: dict[str, tuple[Callable[[T], Any], list[T]]], *, warmup: int = 0
) -> dict[str, list[float]]:
    """Time several cases round-robin (one call of each in turn), so that a burst of load on a
    shared machine hits them all alike instead of one block. The first `warmup` inputs of each
    case are run untimed."""
    rounds = max(len(inputs) for _fn, inputs in cases.values())
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(rounds):
        for name, (fn, inputs) in cases.items():
            if i >= len(inputs):
                continue
            started = time.perf_counter_ns()
            fn(inputs[i])
            elapsed = (time.perf_counter_ns() - started) / 1e6
            if i >= warmup:
                samples[name].append(elapsed)
    return samples


class Stopwatch:
    """with Stopwatch() as watch: ...; watch.seconds"""

    def __enter__(self) -> "Stopwatch":
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


# --- statistics --------------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); q in [0, 100]."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def p50(samples: list[float]) -> float:
    return round(percentile(samples, 50), 3)


def p99(samples: list[float]) -> float:
    return round(percentile(samples, 99), 3)


def latency_keys(name: str, samples: list[float]) -> dict[str, float]:
    """{"<name>_p50_ms": …, "<name>_p99_ms": …}"""
    return {f"{name}_p50_ms": p50(samples), f"{name}_p99_ms": p99(samples)}


# --- baselines ---------------------------------------------------------------------------------------


def baseline_select1(iterations: int = 300) -> list[float]:
    """Round trips of `SELECT 1` through Django's connection: the floor under every query."""
    from django.db import connection

    def once(_: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    return time_calls(once, range(iterations), warmup=range(20))


def baseline_commit(iterations: int = 100) -> list[float]:
    """An autocommit transaction that takes a transaction id and so flushes its commit record to the
    WAL: the floor under every write (an audited search writes one audit row)."""
    from django.db import connection

    def once(_: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()")
            cursor.fetchone()

    return time_calls(once, range(iterations), warmup=range(10))


def machine() -> dict[str, Any]:
    """What the figures were measured on. The machine is shared: the load says how busy it was, and
    `python_loop_ms` how fast its cores ran then (the median of three runs of one fixed pure-Python
    loop; seen from 77 to 167 ms on one idle machine within an hour). Compare runs with it."""
    load1, _load5, _load15 = os.getloadavg()
    loop = [time_call(lambda: sum(range(10_000_000))) for _ in range(3)]
    return {"cpus": os.cpu_count(), "loadavg_1m": round(load1, 2), "python_loop_ms": round(p50(loop), 1)}


# --- output ------------------------------------------------------------------------------------------


def emit(bench: str, scale: str, results: dict[str, Any]) -> None:
    """The last line of stdout: one JSON object. Nothing may be printed after it."""
    print(json.dumps({"bench": bench, "scale": scale, "results": results}, ensure_ascii=False), flush=True)
