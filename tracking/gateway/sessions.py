"""One asyncio.Protocol per terminal connection: framing, decoding, session state, replies.

GT06: a login (an active terminal's IMEI) and heartbeats are answered at once, locations and alarms
after their batch committed; nothing counts before a login. JT/T 808: register → 0x8100 with an auth
code issued once, authenticate → 0x8001, heartbeats at once, positions after the commit; nothing is
"ok" before authentication. Strangers are told no more than the protocol forces. Fixes ingestion
refuses are acknowledged all the same and counted by reason: resending would not make them valid.

Bad input is counted and skipped; too much of it, or no login within GATEWAY_LOGIN_TIMEOUT_S, closes
the connection, and no exception leaves a protocol callback. The conversations:
docs/architecture.md#sessions; who proves what, and what strangers get:
docs/architecture.md#terminal-identity.
"""

from __future__ import annotations

import asyncio
import datetime
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracking.ingest import BareAlarm, CheckedFixes, Incoming, bare_alarms_of, check_fixes
from tracking.protocols import FrameTooLong, Message, ProtocolError, gt06, jt808
from tracking.protocols.stream import Gt06Framer, Jt808Framer

from . import proxy, terminals
from .config import GatewayConfig
from .leases import SessionLedger
from .limits import Guard
from .metrics import Metrics
from .terminals import LookupUnavailable, TerminalDirectory, TerminalInfo
from .writer import NOTHING, BatchWriter

log = logging.getLogger("tracking.gateway")

# Reasons a connection stops reading (bits): the writer's pending cap, this connection's own cap of
# messages waiting for a commit, and the peer not reading our replies.
PAUSE_GLOBAL = 1
PAUSE_OWN = 2
PAUSE_WRITE = 4
PAUSE_BUFFER = 8  # OsmAnd: the next requests' bytes fill the buffer while one is being answered

# Frames held while a login / register lookup is in progress, and their bytes: a terminal waits for
# its login ack before it sends more than a frame or two.
MAX_BACKLOG_FRAMES = 64
MAX_BACKLOG_BYTES = 32 * 1024


@dataclass
class Context:
    """What every connection of one gateway shares."""

    config: GatewayConfig
    metrics: Metrics
    writer: BatchWriter
    directory: TerminalDirectory
    ledger: SessionLedger | None = None
    connections: set[Any] = field(default_factory=set)
    paused: bool = False
    paused_connections: set[Any] = field(default_factory=set)
    guard: Guard = field(init=False, repr=False)  # connection caps, failed logins (tracking.gateway.limits)

    def __post_init__(self) -> None:
        self.guard = Guard(self.config, self.metrics)

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
        # Where the connection comes from: the socket's peer, or what a trusted proxy's PROXY v2
        # header says (then `via` is the proxy's address); kept with the session's pings.
        self.remote: tuple[str, int] = ("", 0)
        self.via: str | None = None
        self._proxy_header: bytearray | None = None  # bytes of a PROXY header still being read
        self.session_id: int | None = None  # TerminalSession of the logged-in terminal
        self.session_terminal: int | None = None
        self._admitted = False  # under the caps when it came: registered, counted, closed as usual
        self._address: str | None = None  # what the connection counts against (limits.address_key)
        self._deadline: asyncio.TimerHandle | None = None  # login (TCP) or request (OsmAnd) deadline

    # --- asyncio callbacks ---------------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if isinstance(peer, tuple):
            self.remote = (str(peer[0]), int(peer[1]))
            if self.remote[0] in self.ctx.config.proxies:
                self._proxy_header = bytearray()
        # Over a cap the connection is closed before it costs more than its accept (limits.Guard).
        # Behind a proxy its address is known once the PROXY header is read.
        if self.ctx.guard.port_full(self.protocol_name):
            self._turn_away("port_cap", self.protocol_name)
            return
        if self._proxy_header is None and not self.admit_address(self.remote[0]):
            return
        self._admitted = True
        self.ctx.connections.add(self)
        self.metrics.connections_open[self.protocol_name] += 1
        self.metrics.connections_total[self.protocol_name] += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:  # turned away as it came: never registered nor counted
            self.closing = True
            return
        self._cancel_deadline()
        if self._address is not None:
            self.ctx.guard.release(self._address)
            self._address = None
        self.closing = True
        self.ctx.connections.discard(self)
        self.ctx.paused_connections.discard(self)
        self.metrics.connections_open[self.protocol_name] -= 1
        reason = self.close_reason or ("peer_closed" if exc is None else "connection_error")
        self.metrics.connections_closed[(self.protocol_name, reason)] += 1
        if self._lookup_task is not None:
            self._lookup_task.cancel()
        self.signed_out(reason)

    def pause_writing(self) -> None:
        self.set_paused(PAUSE_WRITE, True)

    def resume_writing(self) -> None:
        self.set_paused(PAUSE_WRITE, False)

    # --- limits (tracking.gateway.limits) --------------------------------------------------------------

    def admit_address(self, host: str) -> bool:
        """Count the connection against its source address; False when that refused it (closed)."""
        key, refusal = self.ctx.guard.admit(host)
        if refusal is None:
            self._address = key
            return True
        if self._admitted:  # the address came with a PROXY header
            self.ctx.guard.refused(self.protocol_name, refusal, key)
            self.close(refusal, abort=True)
        else:
            self._turn_away(refusal, key)
        return False

    def _turn_away(self, reason: str, subject: str) -> None:
        self.ctx.guard.refused(self.protocol_name, reason, subject)
        self.closing = True
        self.close_reason = reason
        self.transport.abort()

    def login_failed(self) -> bool:
        """A login naming an unknown terminal or proving nothing (wrong code, wrong key): counted
        against the source address. True when the address is blocked now (GATEWAY_LOGIN_*)."""
        if self._address is None:
            return False
        return self.ctx.guard.login_failed(self.protocol_name, self._address)

    def set_deadline(self, seconds: float, expired: Callable[[], None]) -> None:
        self._cancel_deadline()
        self._deadline = asyncio.get_running_loop().call_later(seconds, expired)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    # --- where the connection comes from, and its session --------------------------------------------

    def unwrap_proxy(self, data: bytes) -> bytes | None:
        """The connection's bytes after a trusted proxy's PROXY v2 header (from a proxy's address the
        header comes first); None while the header is incomplete or after it was refused."""
        if self._proxy_header is None:
            return data
        buffer = self._proxy_header
        buffer += data
        try:
            parsed = proxy.parse(buffer)
        except proxy.ProxyHeaderError as error:
            self.metrics.refused[(self.protocol_name, "proxy_header")] += 1
            log.warning("%s %s: bad PROXY header from a proxy (%s); closing", self.protocol_name, self.peer, error)
            self.close("proxy_header", abort=True)
            return None
        if parsed is None:
            return None
        length, client = parsed
        self._proxy_header = None
        if client is not None:
            self.via = self.remote[0]
            self.remote = client
            self.peer = f"{client[0]}:{client[1]} via {self.via}"
            if not self.admit_address(client[0]):  # counted by the client's address, not the proxy's
                return None
        return bytes(buffer[length:])

    @property
    def heard_at(self) -> float:
        """When bytes last came in, on the wall clock (for the session's lease)."""
        return time.time() - (time.monotonic() - self.last_seen)

    def signed_in(self, info: TerminalInfo) -> None:
        """The terminal proved who it is: open its session (lease, remote address) for its pings."""
        ledger = self.ctx.ledger
        if ledger is None or self.session_terminal == info.id:
            return
        self.session_terminal = info.id
        ledger.open(self, info.id, self.protocol_name, self.remote, self.via)  # sets self.session_id

    def signed_out(self, reason: str) -> None:
        if self.session_terminal is not None and self.ctx.ledger is not None:
            self.ctx.ledger.close(self, reason)

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

    def queue(self, ack: bytes | None, items: CheckedFixes, alarms: Sequence[BareAlarm] = ()) -> None:
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
        self._backlog_bytes = 0

    def make_framer(self, max_frame: int) -> Any:
        raise NotImplementedError

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if not self.closing:
            self.set_deadline(self.ctx.config.login_timeout_s, self._login_deadline)

    def _login_deadline(self) -> None:
        """Not logged in (GT06) or authenticated (JT/T 808) by GATEWAY_LOGIN_TIMEOUT_S: closed, rather
        than held for the idle timeout."""
        self._deadline = None
        if self.terminal is None and not self.closing:
            self.ctx.guard.report(
                "login_timeout",
                self.protocol_name,
                f"{self.protocol_name} connection {self.peer} closed: not logged in within "
                f"{self.ctx.config.login_timeout_s:g} s",
            )
            self.close("login_timeout")

    def data_received(self, data: bytes) -> None:
        # Idle time counts from the last valid frame (`good`), not the last byte: garbage trickled
        # once a minute holds no connection open.
        try:
            if self._proxy_header is not None:
                unwrapped = self.unwrap_proxy(data)
                if not unwrapped:
                    return
                data = unwrapped
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
        elif framer.pending > 2 * self.ctx.config.max_frame_bytes:  # the framer holds a frame at most
            self.metrics.frame_errors[(self.protocol_name, FrameTooLong.code)] += 1
            self.close("frame_too_long")

    def _hold(self, frame: bytes) -> None:
        self._backlog_bytes += len(frame)
        if len(self._backlog) >= MAX_BACKLOG_FRAMES or self._backlog_bytes > MAX_BACKLOG_BYTES:
            self.metrics.refused[(self.protocol_name, "backlog")] += 1
            self.close("backlog")
            return
        self._backlog.append(frame)

    def after_lookup(self) -> None:
        while self._backlog and not self.closing and not self.looking_up:
            frame = self._backlog.pop(0)
            self._backlog_bytes -= len(frame)
            self.frame(frame)

    def frame(self, frame: bytes) -> None:
        raise NotImplementedError

    def good(self) -> None:
        self.last_seen = time.monotonic()
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

    def items_and_alarms(self, fixes: Sequence[Any]) -> tuple[CheckedFixes, list[BareAlarm]]:
        """Positions to store, checked; alarms of positions that cannot be stored become bare alarms."""
        terminal_id = self.terminal.id  # type: ignore[union-attr]  # only after sign-in
        session_id = self.session_id
        items = tuple(Incoming(terminal_id, fix, session_id) for fix in fixes)
        checked = check_fixes(items, now=datetime.datetime.now(datetime.UTC))
        alarms: list[BareAlarm] = []
        for index, _problem in checked.rejected:
            fix = fixes[index]
            if fix.alarms:
                now = utc_now()
                limit = self.ctx.config.max_alarms_per_fix
                bare, dropped = bare_alarms_of(terminal_id, fix.alarms, now, limit=limit)
                alarms.extend(bare)
                self.metrics.alarms_dropped += dropped
        return checked, alarms


class Gt06Session(TcpSession):
    protocol_name = "gt06"

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.tz_offset_minutes = 0
        self._heartbeat_alarms: frozenset[str] = frozenset()
        self.stranger: str | None = None  # an unknown IMEI whose login was answered (module docstring)

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
        if terminal is None and self.stranger is not None:
            self.metrics.refused[("gt06", "unknown_terminal")] += 1  # never answered, never stored
            return
        if terminal is None:
            log.info("gt06 %s: %s before login; closing", self.peer, kind)
            self.refuse("not_logged_in", close=True)
            return
        if kind == "location":
            item = Incoming(terminal.id, message.fixes[0], self.session_id)
            self.queue(message.reply, check_fixes((item,), now=datetime.datetime.now(datetime.UTC)))
        elif kind == "alarm":
            if "armed" in message.info:  # the status block of an alarm packet carries the defence bit too
                self.ctx.writer.heard(terminal.id, defence=message.info["armed"])
            if message.fixes:
                items, alarms = self.items_and_alarms(message.fixes)
                self.queue(message.reply, items, alarms)
            elif message.alarms:  # LBS alarm: no position
                now = utc_now()
                self.queue(message.reply, NOTHING, [BareAlarm(terminal.id, name, now) for name in message.alarms])
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
        before = self.terminal.imei if self.terminal is not None else self.stranger
        if before is not None:
            if before == imei:
                self.write(message.reply or b"")
            else:
                log.warning("gt06 %s: second login as %s after %s; closing", self.peer, imei, before)
                self.refuse("imei_changed", close=True)
            return

        def logged_in(info: TerminalInfo | None) -> None:
            if info is None:
                # The ack a known terminal gets, and nothing more: see the module docstring.
                self.metrics.unknown_terminals["gt06"] += 1
                self.metrics.refused[("gt06", "unknown_terminal")] += 1
                log.info("gt06 %s: unknown or inactive IMEI %s; login answered, nothing else", self.peer, imei)
                self.stranger = imei
                self.login_failed()
                self.write(message.reply or b"")
                return
            self.terminal = info
            self.signed_in(info)
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
        self._identity_task: asyncio.Task[None] | None = None  # a register or authentication under way
        self._issued: tuple[int, str] | None = None  # (terminal, code) this connection's register was given

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
            self._register(message, header)
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

    # --- identity: register and authentication ---------------------------------------------------------

    @property
    def looking_up(self) -> bool:
        task = self._identity_task
        return super().looking_up or (task is not None and not task.done())

    def _identity(self, work: Callable[[], Coroutine[Any, Any, None]], where: str) -> None:
        """Run a register or an authentication (lookups, writes); frames arriving meanwhile wait."""
        self._identity_task = asyncio.get_running_loop().create_task(self._run_identity(work, where))

    async def _run_identity(self, work: Callable[[], Coroutine[Any, Any, None]], where: str) -> None:
        try:
            await work()
        except LookupUnavailable as error:
            self._identity_task = None
            self.metrics.refused[("jt808", "lookup_unavailable")] += 1
            log.warning("jt808 %s: %s not completed (%s)", self.peer, where, error)
            self.lookup_unavailable(error)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            self.internal_error(where)
            return
        self._identity_task = None
        try:
            self.after_lookup()
        except Exception:
            self.internal_error(f"after {where}")

    @staticmethod
    def _lookup_key(header: jt808.Header) -> tuple[str, str] | None:
        if header.terminal_id is not None:
            return terminals.JT808_PHONE, header.terminal_id
        if header.imei_binary is not None:
            return terminals.JT808_IMEI, header.imei_binary
        return None

    async def _find(self, header: jt808.Header, *, fresh: bool = False) -> TerminalInfo | None:
        key = self._lookup_key(header)
        if key is None:
            return None
        if fresh:
            self._forget(header)
        return await self.ctx.directory.find(*key)

    def _forget(self, header: jt808.Header) -> None:
        key = self._lookup_key(header)
        if key is not None:
            self.ctx.directory.forget(*key)

    @property
    def address(self) -> str:
        """The terminal's address for an alarm note (without the port: one note per address)."""
        address = self.remote[0] or self.peer
        return f"{address} via {self.via}" if self.via else address

    def _refuse_register(self, header: jt808.Header, result: int, reason: str) -> None:
        self.login_failed()
        self.write(jt808.register_response(header, result=result, platform_serial=self._next_serial()))
        self.refuse(reason, close=True)

    def _register(self, message: Message, header: jt808.Header) -> None:
        directory = self.ctx.directory

        async def register() -> None:
            info = await self._find(header)
            if self.closing:
                return
            if info is None:
                self.metrics.unknown_terminals["jt808"] += 1
                log.info("jt808 %s: register from unknown terminal %s; closing", self.peer, header.terminal)
                self._refuse_register(header, jt808.REGISTER_NO_SUCH_TERMINAL, "unknown_terminal")
                return
            mismatch = terminals.register_mismatch(info, message.info)
            if mismatch is not None:
                # Answered as for an unknown phone: the register learns nothing of the record.
                log.warning("jt808 %s: register as %s, %s not on record; refused", self.peer, header.terminal, mismatch)
                await directory.register_refused(info.id, f"register, {mismatch} not on record, from {self.address}")
                self._refuse_register(header, jt808.REGISTER_NO_SUCH_TERMINAL, "register_mismatch")
                return
            if self._issued is not None and self._issued[0] == info.id:
                code = self._issued[1]  # the register resent on this connection: the code just given
            else:
                code = secrets.token_hex(8)
                if not await directory.issue_auth_code(info.id, terminals.secret_digest(code)):
                    log.warning("jt808 %s: second register as %s; refused", self.peer, header.terminal)
                    await directory.register_refused(info.id, f"second register from {self.address}")
                    self._refuse_register(header, jt808.REGISTER_TERMINAL_TAKEN, "already_registered")
                    return
                self._issued = (info.id, code)
                self._forget(header)  # the cached record has no code yet
                log.info("jt808 %s: auth code issued to terminal %s", self.peer, header.terminal)
            self.write(jt808.register_response(header, auth_code=code, platform_serial=self._next_serial()))

        self._identity(register, "register")

    def _authenticate(self, message: Message, header: jt808.Header) -> None:
        digest = terminals.secret_digest(str(message.info.get("auth_code", "")))

        def matches(info: TerminalInfo) -> bool:
            return bool(info.auth_digest) and hmac.compare_digest(digest, info.auth_digest)

        async def authenticate() -> None:
            info = await self._find(header)
            if info is not None and not matches(info):
                # The cached record may predate a code issued on another node, or a reset: ask again.
                info = await self._find(header, fresh=True)
            if self.closing:
                return
            if info is None:
                self.metrics.unknown_terminals["jt808"] += 1
                log.info("jt808 %s: authentication from unknown terminal %s; closing", self.peer, header.terminal)
                self.write(self._response(header, jt808.RESULT_FAILURE))
                self.login_failed()
                self.close("unknown_terminal")
                return
            if not matches(info):
                reason = "wrong_auth_code" if info.auth_digest else "no_auth_code"
                log.info("jt808 %s: terminal %s refused (%s); closing", self.peer, header.terminal, reason)
                self.write(self._response(header, jt808.RESULT_FAILURE))
                self.login_failed()
                self.refuse(reason, close=True)
                return
            self.terminal = info
            self.signed_in(info)
            self.phone_field = header.phone
            self.write(self._response(header, jt808.RESULT_OK))
            self.ctx.writer.heard(info.id)

        self._identity(authenticate, "authentication")
