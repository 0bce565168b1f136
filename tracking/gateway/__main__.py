"""The gateway process itself, without Django: `manage.py run_gateway` reads the settings, then
replaces itself (exec, same pid) with `python -m tracking.gateway`, handing over the resolved
configuration in EBIKE_GATEWAY_SPEC. Django and the rest of the project stay out of this process:
they were 85 MB of its memory, and a county's terminals are held open here day and night.

Exit status: 0 after SIGTERM/SIGINT or a drain (SIGUSR1: tracking.gateway.server), 1 after an
internal failure, 2 when it cannot start (port in use, address not available, no specification).
With GATEWAY_PROCESSES > 1 this process supervises that many forked workers (see `supervise`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import dataclasses
import gc
import json
import logging
import os
import signal
import sys

from tracking.gateway.config import SPEC_VARIABLE, GatewayConfig


def loop_factory(choice: str):  # a loop constructor, or None for asyncio's own
    """uvloop's event loop when asked for (or "auto" and installed), else asyncio's own."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise SystemExit("GATEWAY_EVENT_LOOP is uvloop but uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


def gc_tune() -> None:
    """Keep the cyclic garbage collector out of the hot path. What is loaded by now lives as long
    as the process: gc.freeze() takes it out of every collection. The gateway's own objects
    (messages, fixes, queued batches) are freed by reference counting the moment they are done;
    only the odd cycle (a closed transport, an exception) needs the collector. With the default
    threshold of 700 allocations it ran hundreds of times a second at county load, each time
    walking every queued batch and connection: a profile put a fifth of the gateway's time there.
    Memory freed while loading goes back to the system before the connections arrive."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    libc = ctypes.util.find_library("c")
    if libc:
        ctypes.CDLL(libc).malloc_trim(0)


def run(config: GatewayConfig, conninfo: str) -> int:
    """One gateway on this process's event loop until SIGTERM / SIGINT."""
    from tracking.gateway.server import serve

    try:
        with asyncio.Runner(loop_factory=loop_factory(config.event_loop)) as runner:
            return runner.run(serve(config, conninfo))
    except OSError as error:  # port in use, address not available
        logging.getLogger("tracking.gateway").error("gateway could not start: %s", error)
        return 2


def _die_with_parent(parent: int) -> None:
    """A worker gets SIGKILL when the supervisor dies, however it dies (Linux PR_SET_PDEATHSIG):
    a killed gateway leaves no worker holding the ports or acknowledging anything."""
    libc = ctypes.util.find_library("c")
    if libc:
        ctypes.CDLL(libc, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        os._exit(1)


def supervise(config: GatewayConfig, conninfo: str) -> int:
    """GATEWAY_PROCESSES workers forked from this process, each a whole gateway on the shared ports
    (SO_REUSEPORT) with its own metrics port (GATEWAY_METRICS_PORT + its number). SIGTERM / SIGINT
    and SIGUSR1 (drain) are passed on and each worker stops or drains as a single gateway does; when
    a worker ends on its own, the others are stopped and the exit status is the worst of theirs."""
    log = logging.getLogger("tracking.gateway")
    parent = os.getpid()
    workers: dict[int, int] = {}
    for number in range(config.processes):
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the supervisor's code
            status = 1
            try:
                _die_with_parent(parent)
                for handler in logging.getLogger().handlers:
                    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s %(name)s[{number}] %(message)s"))
                metrics_port = config.metrics_port + number if config.metrics_port else 0
                status = run(dataclasses.replace(config, metrics_port=metrics_port), conninfo)
            except BaseException:
                log.exception("gateway worker %d failed", number)
            finally:
                logging.shutdown()
                os._exit(status)
        workers[pid] = number
    stopping = False

    def stop_all(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGUSR1, stop_all)  # drain: every worker fails its health check, then stops
    log.info("gateway supervisor %d: %d worker processes %s", parent, len(workers), sorted(workers))
    status = 0
    while workers:
        pid, code = os.wait()
        ended = workers.pop(pid, None)
        if ended is None:
            continue
        exit_code = os.waitstatus_to_exitcode(code)
        if exit_code:
            status = max(status, exit_code if exit_code > 0 else 1)
        if not stopping:
            log.error("gateway worker %d (pid %d) ended with status %d: stopping the others", ended, pid, exit_code)
            stop_all(signal.SIGTERM, None)
    return status


def main() -> int:
    raw = os.environ.pop(SPEC_VARIABLE, "")
    if not raw:
        print(f"{SPEC_VARIABLE} is not set: start the gateway with `manage.py run_gateway`", file=sys.stderr)
        return 2
    spec = json.loads(raw)
    logging.basicConfig(
        level=spec.get("log_level", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    config = GatewayConfig(**spec["config"])
    if config.processes < 1:  # one per core
        config = dataclasses.replace(config, processes=os.cpu_count() or 1)
    # Loaded before the fork, shared by the workers page for page until one writes to it.
    import tracking.gateway.server  # noqa: F401

    gc_tune()
    if config.processes > 1:
        return supervise(config, spec["conninfo"])
    return run(config, spec["conninfo"])


if __name__ == "__main__":
    sys.exit(main())
