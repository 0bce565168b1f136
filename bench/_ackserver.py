"""An ack-only GT06 server: the floor under the gateway's cost, for bench/ingest.py.

    python bench/_ackserver.py PORT WORKERS HOLD_MS

It has the gateway's process layout (WORKERS forked processes accepting on one SO_REUSEPORT port,
uvloop's event loop when installed) and answers like it: a login at once, every other frame with
the 10-byte echo of its protocol and serial, held and written every HOLD_MS as the gateway writes
its acks after each batch commit. It decodes, checks and stores nothing. Driven by the same load
generator as the gateway, its CPU per ping is what the connections alone cost (the kernel's TCP
work on both ends, the event loop, the generator); what the gateway uses above it is its own work.
Frames other than short GT06 ones (0x78 0x78) close the connection: the generator sends no others.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from typing import Any

from tracking.protocols import gt06

LOGIN = 0x01


class AckOnly(asyncio.Protocol):
    def __init__(self, held: list[tuple[Any, bytes]]) -> None:
        self.held = held
        self.transport: Any = None
        self.rest = b""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.rest + data if self.rest else data
        start = 0
        while len(buffer) - start >= 5:
            if buffer[start] != 0x78 or buffer[start + 1] != 0x78:
                self.transport.abort()
                return
            end = start + buffer[start + 2] + 5
            if end > len(buffer):
                break
            protocol = buffer[start + 3]
            reply = gt06.ack(protocol, int.from_bytes(buffer[end - 6 : end - 4], "big"))
            if protocol == LOGIN:
                self.transport.write(reply)
            else:
                self.held.append((self.transport, reply))
            start = end
        self.rest = buffer[start:]


async def serve(port: int, hold_s: float) -> None:
    """Serve until the supervisor is gone (SIGTERM from it, or it died)."""
    loop = asyncio.get_running_loop()
    supervisor = os.getppid()
    held: list[tuple[Any, bytes]] = []
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(("127.0.0.1", port))
    await loop.create_server(lambda: AckOnly(held), sock=listener, backlog=4096)
    while os.getppid() == supervisor:
        await asyncio.sleep(hold_s)
        due = held.copy()
        held.clear()
        for transport, reply in due:
            if not transport.is_closing():
                transport.write(reply)


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main() -> None:
    port, workers, hold_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            with asyncio.Runner(loop_factory=new_loop) as runner:
                runner.run(serve(port, hold_ms / 1000))
            os._exit(0)
        children.append(pid)

    def stop(_signum: int, _frame: Any) -> None:
        for child in children:
            os.kill(child, signal.SIGTERM)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    os.wait()


if __name__ == "__main__":
    main()
