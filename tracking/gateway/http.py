"""OsmAnd (Traccar Client) over HTTP/1.1 on a plain asyncio.Protocol, with a deliberately small parser.

Requests: the parameters in the query (classic app), a form body, or a JSON body (current app). The
id names an active terminal of protocol "osmand"; a terminal given a key must also send it as `key`
in the query (both apps keep the server URL's query), and the key is taken out before decoding and
compared by digest. Answers: 200 after the commit; 400 with the reason for input that cannot be
stored; the same 404 for an unknown id, a missing key and a wrong key, so a stranger cannot tell
them apart; 408 for a request not received whole within GATEWAY_HTTP_REQUEST_TIMEOUT_S.

Requests on one connection are answered in order. Every answer and limit:
docs/architecture.md#osmand-over-http.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import time
from urllib.parse import unquote_plus

from tracking.ingest import FutureTime, Incoming, check_fixes
from tracking.protocols import Message, ProtocolError, osmand

from . import terminals
from .sessions import PAUSE_BUFFER, Context, Session, utc_now
from .terminals import TerminalInfo

log = logging.getLogger("tracking.gateway")

MAX_HEAD = 16 * 1024
# Bytes of later requests read while one is being answered; past this the connection stops reading
# until the answer is out (the rest waits in the kernel's buffers, and TCP slows the sender down).
BUSY_BUFFER_CAP = 64 * 1024
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
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


def take_key(query: str) -> tuple[str, str | None]:
    """The query without its `key` parameters, and the (first) key it carried."""
    if "key" not in query:
        return query, None
    kept, key = [], None
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if unquote_plus(name) == "key":
            key = unquote_plus(value) if key is None else key
        else:
            kept.append(part)
    return "&".join(kept), key


def key_fits(info: TerminalInfo, key: str | None) -> bool:
    """A terminal without a key takes any request; one with a key, only those carrying it."""
    if not info.osmand_key_digest:
        return True
    return key is not None and hmac.compare_digest(terminals.secret_digest(key), info.osmand_key_digest)


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
        # Not idle time: a connection is idle between an answer and the first byte of the next request
        # (`_next_request`); a request in progress has its own deadline, whatever it trickles.
        if self._proxy_header is not None:
            unwrapped = self.unwrap_proxy(data)
            if not unwrapped:
                return
            data = unwrapped
        self._buffer += data
        if self._busy:
            if len(self._buffer) > BUSY_BUFFER_CAP:
                self.set_paused(PAUSE_BUFFER, True)
            return
        try:
            self._next_request()
        except Exception:
            self.internal_error("data_received")

    # --- parsing -------------------------------------------------------------------------------------

    def _next_request(self) -> None:
        while not self._busy and not self.closing and self._buffer:
            if self._deadline is None:  # the first bytes of a request: its deadline runs from here
                self.last_seen = time.monotonic()
                self.set_deadline(self.ctx.config.http_request_timeout_s, self._request_deadline)
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
            self._cancel_deadline()
            self._busy = True
            self._keep_alive = request.keep_alive
            self._handle(request)

    def _request_deadline(self) -> None:
        """A request not received whole within GATEWAY_HTTP_REQUEST_TIMEOUT_S of its first byte: 408
        and the connection closed, as RFC 9110 has it (and Apache's mod_reqtimeout does)."""
        self._deadline = None
        if self.closing or self._busy:
            return
        self.ctx.guard.report(
            "request_timeout",
            "osmand",
            f"osmand connection {self.peer} closed: request not received within "
            f"{self.ctx.config.http_request_timeout_s:g} s",
        )
        self.metrics.http_responses[408] += 1
        self.transport.write(response(408, "request not received in time", keep_alive=False))
        self.close("request_timeout")

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
        query, key = take_key(request.target.split("?", 1)[1] if "?" in request.target else "")
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
                self._respond(404, "unknown device", keep_alive=not self.login_failed())
                return
            if not key_fits(info, key):
                # Answered as an unknown id is. The record may be older than a key just issued:
                # the app resends, and its next request reads the terminal afresh.
                self.ctx.directory.forget(terminals.OSMAND_ID, terminal_id)
                self.metrics.refused[("osmand", "wrong_key" if key else "missing_key")] += 1
                log.info("osmand %s: id %r without its key (%s)", self.peer, terminal_id, "wrong" if key else "none")
                self._respond(404, "unknown device", keep_alive=not self.login_failed())
                return
            self._store(message, info)

        self.lookup(terminals.OSMAND_ID, terminal_id, found)

    def _store(self, message: Message, info: TerminalInfo) -> None:
        self.signed_in(info)
        if not message.fixes:
            self._respond(200)  # cell / WiFi only: no position to store
            return
        now = utc_now()
        items = [
            Incoming(info.id, fix if fix.time is not None else dataclasses.replace(fix, time=now), self.session_id)
            for fix in message.fixes  # no timestamp: the receive time, as Traccar does
        ]
        checked = check_fixes(items, now=now)
        for _index, problem in checked.rejected:  # answered here: the writer stores the others only
            label = "http_future_time" if problem.code == FutureTime.code else "http_invalid"
            self.metrics.pings_rejected[label] += 1
        if len(checked.rejected) == len(items):
            self._respond(400, str(checked.rejected[0][1]))
            return
        self.queue(response(200, keep_alive=self._keep_alive), checked.without_rejected())

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
        self.last_seen = time.monotonic()  # idle from the answer on
        if not self._keep_alive:
            self.close("http_close")
            return
        try:
            self._next_request()
        except Exception:
            self.internal_error("next request")
            return
        if self._pause_mask & PAUSE_BUFFER and (not self._busy or len(self._buffer) <= BUSY_BUFFER_CAP):
            self.set_paused(PAUSE_BUFFER, False)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._buffer.clear()
