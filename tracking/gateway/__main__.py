"""The gateway process itself, without Django: `manage.py run_gateway` reads the settings, then
replaces itself (exec, same pid) with `python -m tracking.gateway`, handing over the resolved
configuration in EBIKE_GATEWAY_SPEC. Django and the rest of the project stay out of this process:
they were 85 MB of its memory, and a county's terminals are held open here day and night.

Exit status: 0 after SIGTERM/SIGINT, 1 after an internal failure, 2 when it cannot start (port in
use, address not available, no specification).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import json
import logging
import os
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
    from tracking.gateway.server import serve

    config = GatewayConfig(**spec["config"])
    gc_tune()
    try:
        with asyncio.Runner(loop_factory=loop_factory(config.event_loop)) as runner:
            return runner.run(serve(config, spec["conninfo"]))
    except OSError as error:  # port in use, address not available
        logging.getLogger("tracking.gateway").error("gateway could not start: %s", error)
        return 2


if __name__ == "__main__":
    sys.exit(main())
