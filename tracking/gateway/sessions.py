"""One asyncio.Protocol per terminal connection: framing, decoding, session state, replies.

GT06 conversation: login (IMEI looked up: an active GT06 terminal) → login ack at once; heartbeats
→ ack at once (and the terminal's last_seen_at is refreshed with the next batch, its defence bit
stored where it changed, as is the bit of an alarm packet's status block); locations and
alarms → queued for the batch writer, their ack (for locations the optional echo of protocol and
serial) written only after the batch committed. Anything before a successful login closes the
connection. A login carrying a time-zone word makes the session read later GPS times in that zone,
as Traccar does; without one, times are UTC. Alarm bits repeated in every heartbeat are stored when
they appear, not each time.

JT/T 808 conversation: 0x0100 register (terminal phone looked up) → 0x8100 with the stored auth code,
or result 4 "no such terminal" and close; 0x0102 authenticate → 0x8001 ok, or failure and close;
heartbeat → 0x8001 at once; 0x0200 / 0x0704 → 0x8001 after commit. Other messages before
authentication are answered 0x8001 "failure" and count towards the bad-input limit.

Positions rejected by ingestion (no device time, far in the future, out of range) are acknowledged
after the batch all the same and counted by reason: resending would not make them valid, and an
unacknowledged GT06 or JT/T 808 message is retransmitted by the terminal forever.

Bad input (truncated, bad checksum, bad escape, garbage) is counted by kind and skipped by the
framer's resync; GATEWAY_MAX_BAD_FRAMES invalid frames in a row, GATEWAY_MAX_GARBAGE_BYTES of garbage
without a valid frame, or one frame over GATEWAY_MAX_FRAME_BYTES closes the connection. No exception
leaves a protocol callback: an unexpected one is logged, counted and closes that connection only.
"""

from __future__ import annotations

import asyncio
import datetime
import hmac
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracking.ingest import BareAlarm, Incoming, fix_problem
from tracking.protocols import FrameTooLong, Message, ProtocolError, gt06, jt808
from tracking.protocols.stream import Gt06Framer, Jt808Framer

from . import terminals
from .config import GatewayConfig
from .metrics import Metrics
from .terminals import LookupUnavailable, TerminalDirectory, TerminalInfo
from .writer import BatchWriter

log = logging.getLogger("tracking.gateway")

# Reasons a connection stops reading (bits): the writer's pending cap, this connection's own cap of
# messages waiting for a commit, and the peer not reading our replies.
PAUSE_GLOBAL = 1
PAUSE_OWN = 2
PAUSE_WRITE = 4

MAX_BACKLOG_FRAMES = 64  # frames held while a login / register lookup is in progress


@dataclass
class Context:
    """What every connection of one gateway shares."""

    config: GatewayConfig
    metrics: Metrics
    writer: BatchWriter
    directory: TerminalDirectory
    connections: set[Any] = field(default_factory=set)
    paused: bool = False
    paused_connections: set[Any] = field(default_factory=set)

    def set_pressure(self, on: bool) -> None:
        """Under pressure a connection stops reading when it next has data (idle ones cost nothing);
        when it is over, those that stopped resume."""
        self.paused = on
        if not on:
            paused, self.paused_connections = self.paused_connections, set()
            for connection in paused:
                connection.set_paused(PAUSE_GLOBAL, False)

    def pause_all(self) -> None:
        """Stop reading everywhere at once (shutdown)."""
        self.paused = True
        for connection in list(self.connections):
            connection.set_paused(PAUSE_GLOBAL, True)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


class Session(asyncio.Protocol):
    """What TCP and HTTP connections have in common: registration, pausing, idle time, closing."""

    protocol_name = "?"

    def __init__(self, context: Context) -> None:
        self.ctx = context
        self.metrics = context.metrics
        self.transport: Any = None
        self.peer = "?"
        self.last_seen = time.monotonic()
        self.closing = False
        self.close_reason: str | None = None
        self.inflight = 0  # messages waiting for their commit
        self._pause_mask = 0
        self._lookup_task: asyncio.Task[None] | None = None

    # --- asyncio callbacks ---------------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.ctx.connections.add(self)
        self.metrics.connections_open[self.protocol_name] += 1
        self.metrics.connections_total[self.protocol_name] += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.ctx.connections.discard(self)
        self.ctx.paused_connections.discard(self)
        self.metrics.connections_open[self.protocol_name] -= 1
        reason = self.close_reason or ("peer_closed" if exc is None else "connection_error")
        self.metrics.connections_closed[(self.protocol_name, reason)] += 1
        if self._lookup_task is not None:
            self._lookup_task.cancel()

    def pause_writing(self) -> None:
        self.set_paused(PAUSE_WRITE, True)

    def resume_writing(self) -> None:
        self.set_paused(PAUSE_WRITE, False)

    # --- helpers -------------------------------------------------------------------------------------

    def set_paused(self, reason: int, on: bool) -> None:
        before = self._pause_mask
        self._pause_mask = before | reason if on else before & ~reason
        if self.closing or bool(before) == bool(self._pause_mask):
            return
        try:
            if self._pause_mask:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()
        except RuntimeError:  # transport closing
            pass

    def close(self, reason: str, *, abort: bool = False) -> None:
        if self.closing:
            return
        self.closing = True
        self.close_reason = reason
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()  # replies already written still go out

    def internal_error(self, where: str) -> None:
        self.metrics.errors["internal"] += 1
        log.exception("%s connection %s: unexpected error in %s; closing it", self.protocol_name, self.peer, where)
        self.close("internal_error", abort=True)

    def write(self, data: bytes) -> None:
        if not self.closing and data:
            self.transport.write(data)
            self.metrics.replies[self.protocol_name] += 1

    def queue(self, ack: bytes | None, items: Sequence[Incoming], alarms: Sequence[BareAlarm] = ()) -> None:
        """Hand a message to the batch writer; `deliver` writes its ack after the commit."""
        context = self.ctx
        if not context.writer.accepting:
            self.close("shutting_down")
            return
        self.inflight += 1
        context.writer.add(self, ack, items, alarms)
        if self.inflight >= context.config.connection_pending_cap:
            self.set_paused(PAUSE_OWN, True)
        if context.paused and not self._pause_mask & PAUSE_GLOBAL:
            context.paused_connections.add(self)
            self.set_paused(PAUSE_GLOBAL, True)

    def deliver(self, acks: list[bytes | None]) -> None:
        self.inflight -= len(acks)
        if self._pause_mask & PAUSE_OWN and self.inflight <= self.ctx.config.connection_pending_cap // 2:
            self.set_paused(PAUSE_OWN, False)
        if self.closing:
            return
        data = acks[0] if len(acks) == 1 else b"".join([ack for ack in acks if ack])
        if data:
            self.transport.write(data)
            self.metrics.acks[self.protocol_name] += len(acks)

    def forget(self, messages: int) -> None:
        """Messages the database refused: no ack will come (the terminal resends, or gives up)."""
        self.inflight -= messages
        if self._pause_mask & PAUSE_OWN and self.inflight <= self.ctx.config.connection_pending_cap // 2:
            self.set_paused(PAUSE_OWN, False)

    def lookup(self, kind: str, value: str, then: Callable[[TerminalInfo | None], None]) -> None:
        """Call `then(terminal or None)`: at once from the cache, else when the database answered."""
        known, info = self.ctx.directory.cached(kind, value)
        if known:
            then(info)
            return
        self._lookup_task = asyncio.get_running_loop().create_task(self._await_lookup(kind, value, then))

    @property
    def looking_up(self) -> bool:
        return self._lookup_task is not None and not self._lookup_task.done()

    async def _await_lookup(self, kind: str, value: str, then: Callable[[TerminalInfo | None], None]) -> None:
        try:
            info = await self.ctx.directory.find(kind, value)
        except LookupUnavailable as error:
            self.metrics.refused[(self.protocol_name, "lookup_unavailable")] += 1
            log.warning("%s %s: terminal %s not looked up (%s)", self.protocol_name, self.peer, value, error)
            self._lookup_task = None
            try:
                self.lookup_unavailable(error)
            except Exception:
                self.internal_error("lookup unavailable")
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            self.internal_error("terminal lookup")
            return
        if self.closing:
            return
        try:
            then(info)
            self._lookup_task = None
            self.after_lookup()
        except Exception:
            self.internal_error("after terminal lookup")

    def after_lookup(self) -> None:
        """Continue with what arrived while the lookup ran."""

    def lookup_unavailable(self, error: Exception) -> None:
        """The terminal could not be looked up (database away): refuse; the terminal will come back."""
        self.close("lookup_unavailable")


class TcpSession(Session):
    """A binary terminal protocol over TCP: framer, bad-input limits, frames held during lookups."""

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.framer = self.make_framer(context.config.max_frame_bytes)
        self.terminal: TerminalInfo | None = None
        self._bad_in_row = 0
        self._garbage_seen = 0
        self._garbage_since_good = 0
        self._backlog: list[bytes] = []

    def make_framer(self, max_frame: int) -> Any:
        raise NotImplementedError

    def data_received(self, data: bytes) -> None:
        self.last_seen = time.monotonic()
        try:
            self._receive(data)
        except Exception:
            self.internal_error("data_received")

    def _receive(self, data: bytes) -> None:
        framer = self.framer
        items = framer.feed(data)
        garbage = framer.garbage_bytes - self._garbage_seen
        if garbage:
            self._garbage_seen = framer.garbage_bytes
            self.metrics.garbage_bytes[self.protocol_name] += garbage
            self._garbage_since_good += garbage
        for item in items:
            if self.closing:
                return
            if item.__class__ is bytes:
                if self.looking_up:
                    self._hold(item)
                else:
                    self.frame(item)
            else:
                self.invalid(item)
        if self.closing:
            return
        if self._garbage_since_good > self.ctx.config.max_garbage_bytes:
            self.metrics.refused[(self.protocol_name, "garbage")] += 1
            self.close("garbage")
        elif not items and framer.pending > 2 * self.ctx.config.max_frame_bytes:
            self.metrics.frame_errors[(self.protocol_name, FrameTooLong.code)] += 1
            self.close("frame_too_long")

    def _hold(self, frame: bytes) -> None:
        if len(self._backlog) >= MAX_BACKLOG_FRAMES:
            self.metrics.refused[(self.protocol_name, "backlog")] += 1
            self.close("backlog")
            return
        self._backlog.append(frame)

    def after_lookup(self) -> None:
        while self._backlog and not self.closing and not self.looking_up:
            self.frame(self._backlog.pop(0))

    def frame(self, frame: bytes) -> None:
        raise NotImplementedError

    def good(self) -> None:
        self._bad_in_row = 0
        self._garbage_since_good = 0

    def invalid(self, error: ProtocolError) -> None:
        self.metrics.frame_errors[(self.protocol_name, error.code)] += 1
        self._bad_in_row += 1
        if isinstance(error, FrameTooLong):
            self.close("frame_too_long")
        elif self._bad_in_row >= self.ctx.config.max_bad_frames:
            self.metrics.refused[(self.protocol_name, "bad_input")] += 1
            self.close("bad_input")

    def refuse(self, reason: str, *, close: bool) -> None:
        self.metrics.refused[(self.protocol_name, reason)] += 1
        if close:
            self.close(reason)
        else:
            self._bad_in_row += 1
            if self._bad_in_row >= self.ctx.config.max_bad_frames:
                self.close(reason)

    def items_and_alarms(self, fixes: Sequence[Any]) -> tuple[tuple[Incoming, ...], list[BareAlarm]]:
        """Positions to store; alarms of positions that cannot be stored become bare alarms."""
        terminal_id = self.terminal.id  # type: ignore[union-attr]
        items = tuple(Incoming(terminal_id, fix) for fix in fixes)
        alarms: list[BareAlarm] = []
        for fix in fixes:
            if fix.alarms:
                now = utc_now()
                if fix_problem(fix, now=now) is not None:
                    alarms.extend(BareAlarm(terminal_id, kind, now) for kind in fix.alarms)
        return items, alarms


class Gt06Session(TcpSession):
    protocol_name = "gt06"

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.tz_offset_minutes = 0
        self._heartbeat_alarms: frozenset[str] = frozenset()

    def make_framer(self, max_frame: int) -> Gt06Framer:
        return Gt06Framer(max_frame)

    def frame(self, frame: bytes) -> None:
        try:
            # The framer handed on only frames whose CRC it checked; nothing after a location
            # packet's GPS block is stored.
            message = gt06.decode(frame, check_crc=False, tz_offset_minutes=self.tz_offset_minutes, extras=False)
        except ProtocolError as error:
            self.invalid(error)
            return
        self.good()
        kind = message.kind
        self.metrics.frames[("gt06", kind)] += 1
        if kind == "login":
            self._login(message)
            return
        terminal = self.terminal
        if terminal is None:
            log.info("gt06 %s: %s before login; closing", self.peer, kind)
            self.refuse("not_logged_in", close=True)
            return
        if kind == "location":
            self.queue(message.reply, (Incoming(terminal.id, message.fixes[0]),))
        elif kind == "alarm":
            if "armed" in message.info:  # the status block of an alarm packet carries the defence bit too
                self.ctx.writer.heard(terminal.id, defence=message.info["armed"])
            if message.fixes:
                items, alarms = self.items_and_alarms(message.fixes)
                self.queue(message.reply, items, alarms)
            elif message.alarms:  # LBS alarm: no position
                now = utc_now()
                self.queue(message.reply, (), [BareAlarm(terminal.id, name, now) for name in message.alarms])
            elif message.reply:
                self.write(message.reply)
        elif kind == "heartbeat":
            self.write(message.reply or b"")
            self.ctx.writer.heard(terminal.id, defence=message.info.get("armed"))
            self._heartbeat(message, terminal)
        elif message.reply:  # time request
            self.write(message.reply)

    def _heartbeat(self, message: Message, terminal: TerminalInfo) -> None:
        # Alarm bits in a heartbeat are a state repeated every few minutes: store a change, not each one.
        current = frozenset(message.alarms)
        raised = current - self._heartbeat_alarms
        self._heartbeat_alarms = current
        if raised and self.ctx.writer.accepting:
            now = utc_now()
            self.ctx.writer.add(None, None, (), [BareAlarm(terminal.id, name, now) for name in sorted(raised)])

    def _login(self, message: Message) -> None:
        imei = message.terminal or ""
        if self.terminal is not None:
            if self.terminal.imei == imei:
                self.write(message.reply or b"")
            else:
                log.warning("gt06 %s: second login as %s after %s; closing", self.peer, imei, self.terminal.imei)
                self.refuse("imei_changed", close=True)
            return

        def logged_in(info: TerminalInfo | None) -> None:
            if info is None:
                self.metrics.unknown_terminals["gt06"] += 1
                log.info("gt06 %s: unknown or inactive IMEI %s; closing", self.peer, imei)
                self.close("unknown_terminal")
                return
            self.terminal = info
            self.tz_offset_minutes = message.info.get("timezone_offset_minutes", 0)
            self.write(message.reply or b"")
            self.ctx.writer.heard(info.id)

        self.lookup(terminals.GT06_IMEI, imei, logged_in)


class Jt808Session(TcpSession):
    protocol_name = "jt808"

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.phone_field: bytes | None = None
        self._serial = 0  # the platform's own message serial

    def make_framer(self, max_frame: int) -> Jt808Framer:
        return Jt808Framer(max(max_frame, 2100))

    def _next_serial(self) -> int:
        serial = self._serial
        self._serial = (serial + 1) & 0xFFFF
        return serial

    def frame(self, frame: bytes) -> None:
        try:
            message = jt808.decode(frame, platform_serial=self._serial)
        except ProtocolError as error:
            self.invalid(error)
            return
        self.good()
        header: jt808.Header = message.info["header"]
        msg_id = header.msg_id
        self.metrics.frames[("jt808", message.kind)] += 1
        if msg_id == jt808.REGISTER:
            self._register(header)
            return
        if msg_id == jt808.AUTH:
            self._authenticate(message, header)
            return
        terminal = self.terminal
        if terminal is None or header.phone != self.phone_field:
            if msg_id < 0x8000 and msg_id not in jt808.RESPONSE_IDS:
                self.write(self._response(header, jt808.RESULT_FAILURE))
            self.refuse("not_authenticated", close=False)
            return
        kind = message.kind
        if kind in ("location", "batch"):
            items, alarms = self.items_and_alarms(message.fixes)
            self.queue(self._reply_of(message), items, alarms)
        elif "packet_total" in message.info and msg_id in (jt808.LOCATION, jt808.BATCH):
            # Multi-packet positions are not reassembled: say so rather than ack what is not stored.
            self.write(self._response(header, jt808.RESULT_NOT_SUPPORTED))
            self.metrics.refused[("jt808", "subpackage")] += 1
        elif message.info.get("logout"):
            self.write(self._reply_of(message) or b"")
            self.close("logout")
        else:
            if kind == "heartbeat":
                self.ctx.writer.heard(terminal.id)
            self.write(self._reply_of(message) or b"")

    def _reply_of(self, message: Message) -> bytes | None:
        """The decoder's reply (built with the current platform serial), which then counts as used."""
        if message.reply is not None:
            self._next_serial()
        return message.reply

    def _response(self, header: jt808.Header, result: int) -> bytes:
        return jt808.general_response(header, result=result, platform_serial=self._next_serial())

    def _lookup_terminal(self, header: jt808.Header, then: Callable[[TerminalInfo | None], None]) -> None:
        if header.terminal_id is not None:
            self.lookup(terminals.JT808_PHONE, header.terminal_id, then)
        elif header.imei_binary is not None:
            self.lookup(terminals.JT808_IMEI, header.imei_binary, then)
        else:
            then(None)

    def _register(self, header: jt808.Header) -> None:
        def registered(info: TerminalInfo | None) -> None:
            if info is None:
                self.metrics.unknown_terminals["jt808"] += 1
                log.info("jt808 %s: register from unknown terminal %s; closing", self.peer, header.terminal)
                reply = jt808.register_response(header, result=4, platform_serial=self._next_serial())
                self.write(reply)
                self.close("unknown_terminal")
                return
            code = info.auth_code or header.terminal
            self.write(jt808.register_response(header, auth_code=code, platform_serial=self._next_serial()))

        self._lookup_terminal(header, registered)

    def _authenticate(self, message: Message, header: jt808.Header) -> None:
        code = str(message.info.get("auth_code", ""))

        def authenticated(info: TerminalInfo | None) -> None:
            if info is None:
                self.metrics.unknown_terminals["jt808"] += 1
                log.info("jt808 %s: authentication from unknown terminal %s; closing", self.peer, header.terminal)
                self.write(self._response(header, jt808.RESULT_FAILURE))
                self.close("unknown_terminal")
                return
            expected = info.auth_code or header.terminal
            if not hmac.compare_digest(code.encode(), expected.encode()):
                log.info("jt808 %s: wrong auth code from terminal %s; closing", self.peer, header.terminal)
                self.write(self._response(header, jt808.RESULT_FAILURE))
                self.refuse("wrong_auth_code", close=True)
                return
            self.terminal = info
            self.phone_field = header.phone
            self.write(self._response(header, jt808.RESULT_OK))
            self.ctx.writer.heard(info.id)

        self._lookup_terminal(header, authenticated)
