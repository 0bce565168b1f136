"""OsmAnd (Traccar Client) over HTTP/1.1 on a plain asyncio.Protocol.

Requests: GET or POST with the parameters in the query string (classic app), a form body, or a JSON
body (current app; `location` may be a list). The id (`id`, `deviceid` or JSON `device_id`) is the
terminal's IMEI or its registered phone/id, for an active terminal of protocol "osmand".

Replies:
- 200 after the batch holding the positions committed (a request without coordinates but with cell
  or WiFi data is answered 200 at once: there is nothing we can store from it);
- 400 with the reason for input that cannot be read or cannot be stored (missing id, bad numbers,
  out-of-range coordinates, a time far in the future); in a JSON batch the valid positions are
  stored and 200 returned as long as at least one is valid;
- 404 for an id that is not a registered, active OsmAnd terminal (as Traccar does);
- 405, 411, 413, 431 and 503 (database unavailable) as HTTP has them.

Requests on one connection are answered in order (pipelined requests wait their turn). The parser
is deliberately small: request line, headers, Content-Length or chunked body, keep-alive.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from tracking.ingest import Incoming, fix_problem
from tracking.protocols import Message, ProtocolError, osmand

from . import terminals
from .sessions import Context, Session, utc_now
from .terminals import TerminalInfo

log = logging.getLogger("tracking.gateway")

MAX_HEAD = 16 * 1024
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclasses.dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


def response(status: int, text: str = "", *, keep_alive: bool = True) -> bytes:
    body = (text + "\n").encode() if text else b""
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode() + body


class OsmAndSession(Session):
    protocol_name = "osmand"

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self._buffer = bytearray()
        self._busy = False  # a request is being answered; later ones wait in the buffer
        self._keep_alive = True
        self._continued = False  # "100 Continue" sent for the request being read

    def data_received(self, data: bytes) -> None:
        self.last_seen = time.monotonic()
        self._buffer += data
        try:
            self._next_request()
        except Exception:
            self.internal_error("data_received")

    # --- parsing -------------------------------------------------------------------------------------

    def _next_request(self) -> None:
        while not self._busy and not self.closing and self._buffer:
            try:
                request = self._parse()
            except BadRequest as error:
                self.metrics.frame_errors[("osmand", f"http_{error.status}")] += 1
                self._respond(error.status, str(error), keep_alive=False)
                return
            if request is None:
                if len(self._buffer) > MAX_HEAD + self.ctx.config.http_max_body_bytes + 64:
                    self._respond(413, "request too large", keep_alive=False)
                return
            self._busy = True
            self._keep_alive = request.keep_alive
            self._handle(request)

    def _parse(self) -> Request | None:
        """One complete request from the buffer (removed from it), or None while incomplete."""
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD:
                raise BadRequest(431, "request head too large")
            return None
        if end > MAX_HEAD:
            raise BadRequest(431, "request head too large")
        lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise BadRequest(400, "malformed request line")
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name.strip():
                raise BadRequest(400, "malformed header line")
            headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        start = end + 4
        max_body = self.ctx.config.http_max_body_bytes
        if "chunked" in headers.get("transfer-encoding", "").lower():
            decoded = self._dechunk(start, max_body)
            if decoded is None:
                return None
            body, consumed = decoded
        else:
            raw_length = headers.get("content-length", "0") or "0"
            if not raw_length.isdigit():
                raise BadRequest(400, "bad Content-Length")
            length = int(raw_length)
            if length > max_body:
                raise BadRequest(413, f"body over {max_body} bytes")
            if len(buffer) < start + length:
                if headers.get("expect", "").lower() == "100-continue" and not self._continued:
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    self._continued = True
                return None
            body = bytes(buffer[start : start + length])
            consumed = start + length
        del buffer[:consumed]
        self._continued = False
        return Request(method, target, headers, body, keep_alive)

    def _dechunk(self, position: int, max_body: int) -> tuple[bytes, int] | None:
        buffer = self._buffer
        body = bytearray()
        while True:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            size_text = bytes(buffer[position:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadRequest(400, "bad chunk size") from None
            position = line_end + 2
            if size == 0:
                trailer_end = buffer.find(b"\r\n", position)  # no trailers expected: an empty line
                if trailer_end < 0:
                    return None
                return bytes(body), trailer_end + 2
            if len(body) + size > max_body:
                raise BadRequest(413, f"body over {max_body} bytes")
            if len(buffer) < position + size + 2:
                return None
            body += buffer[position : position + size]
            position += size + 2

    # --- handling ------------------------------------------------------------------------------------

    def _handle(self, request: Request) -> None:
        if request.method not in ("GET", "POST"):
            self._respond(405, "use GET or POST")
            return
        query = request.target.split("?", 1)[1] if "?" in request.target else ""
        try:
            message = osmand.decode_request(
                query=query, body=request.body or None, content_type=request.headers.get("content-type")
            )
        except ProtocolError as error:
            self.metrics.frame_errors[("osmand", error.code)] += 1
            self._respond(400, f"{error.code}: {error}")
            return
        self.metrics.frames[("osmand", message.kind)] += 1
        terminal_id = message.terminal or ""

        def found(info: TerminalInfo | None) -> None:
            if info is None:
                self.metrics.unknown_terminals["osmand"] += 1
                log.info("osmand %s: unknown or inactive id %r", self.peer, terminal_id)
                self._respond(404, "unknown device")
                return
            self._store(message, info)

        self.lookup(terminals.OSMAND_ID, terminal_id, found)

    def _store(self, message: Message, info: TerminalInfo) -> None:
        if not message.fixes:
            self._respond(200)  # cell / WiFi only: no position to store
            return
        now = utc_now()
        items = []
        problems = []
        for fix in message.fixes:
            if fix.time is None:  # no timestamp: the receive time, as Traccar does
                fix = dataclasses.replace(fix, time=now)
            problem = fix_problem(fix, now=now)
            if problem:
                problems.append(problem)
            else:
                items.append(Incoming(info.id, fix))
        if problems:
            self.metrics.pings_rejected["http_" + ("future_time" if "ahead" in problems[0] else "invalid")] += len(
                problems
            )
        if not items:
            self._respond(400, problems[0])
            return
        self.queue(response(200, keep_alive=self._keep_alive), items)

    def lookup_unavailable(self, error: Exception) -> None:
        self._respond(503, "terminal registry unavailable, retry later")

    # --- replies -------------------------------------------------------------------------------------

    def deliver(self, acks: list[bytes | None]) -> None:
        self.inflight -= len(acks)
        if self.closing:
            return
        self.metrics.acks["osmand"] += len(acks)
        self.metrics.http_responses[200] += len(acks)
        self._send(b"".join([ack for ack in acks if ack]))

    def forget(self, messages: int) -> None:
        self.inflight -= messages
        self.metrics.errors["osmand_refused_by_database"] += messages
        self._respond(500, "could not store this request", keep_alive=False)

    def _respond(self, status: int, text: str = "", *, keep_alive: bool | None = None) -> None:
        if keep_alive is not None:
            self._keep_alive = self._keep_alive and keep_alive
        self.metrics.http_responses[status] += 1
        self._send(response(status, text, keep_alive=self._keep_alive))

    def _send(self, data: bytes) -> None:
        if self.closing:
            return
        self.transport.write(data)
        self._busy = False
        if not self._keep_alive:
            self.close("http_close")
            return
        try:
            self._next_request()
        except Exception:
            self.internal_error("next request")

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._buffer.clear()
