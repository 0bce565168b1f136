"""A fleet of simulated terminals speaking the real protocols over TCP (`simulate_terminals`).

Each terminal opens its own connection, logs in (GT06) or authenticates (JT/T 808) with the auth
code it was given at its first register, as a real terminal keeps it: a terminal without a code (or
whose code no longer counts, after a reset at the counter) registers on a new connection first, and
the code it gets is handed to `on_code` for the caller to keep. Then it reports a position every
`interval` seconds along a plausible e-bike route around Yutian (39.88 N, 117.74 E): 10-25 km/h,
gentle turns, stops at "traffic lights", never straying more than `radius_km` from where it started.
GT06 terminals also send a heartbeat every `heartbeat` seconds. Acks are matched by serial number;
the ack latency of every position is kept.

No Django here: the management command picks or creates the terminals and renders progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import math
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tracking.protocols import ProtocolError, gt06, jt808
from tracking.protocols.common import Fix
from tracking.protocols.stream import Gt06Framer, Jt808Framer

YUTIAN = (39.88, 117.74)
EARTH_RADIUS_M = 6_371_000.0
GT06_ACKED = gt06.LOCATION_TYPES | gt06.ALARM_TYPES


@dataclass(frozen=True)
class SimTerminal:
    imei: str
    phone: str = ""  # JT/T 808 terminal phone (digits)
    auth_code: str = ""  # JT/T 808: the code its first register was given, if any


@dataclass
class FleetStats:
    terminals: int = 0
    connected: int = 0
    logged_in: int = 0
    refused: int = 0  # login / register / auth refused or unanswered
    sent: int = 0
    acked: int = 0
    heartbeats: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return math.nan
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


class Route:
    """A bike wandering the streets: position, speed (km/h) and course (degrees) after each step."""

    def __init__(self, rng: random.Random, *, center: tuple[float, float] = YUTIAN, radius_km: float = 8.0) -> None:
        self.rng = rng
        self.center = center
        self.radius_m = radius_km * 1000
        distance = rng.uniform(0, self.radius_m * 0.6)
        bearing = rng.uniform(0, 360)
        self.lat, self.lon = offset(center[0], center[1], distance, bearing)
        self.course = rng.uniform(0, 360)
        self.cruise_kmh = rng.uniform(12, 25)
        self.speed = self.cruise_kmh
        self.stopped_for = 0.0

    def step(self, seconds: float) -> tuple[float, float, float, float]:
        rng = self.rng
        if self.stopped_for > 0:
            self.stopped_for -= seconds
            self.speed = 0.0
            return self.lat, self.lon, self.speed, self.course
        if rng.random() < 0.02:
            self.stopped_for = rng.uniform(10, 60)  # a red light
        self.speed = max(5.0, min(25.0, self.cruise_kmh + rng.gauss(0, 2)))
        self.course = (self.course + rng.gauss(0, 15)) % 360
        if rng.random() < 0.05:
            self.course = (self.course + rng.choice((-90, 90))) % 360  # a turn at a crossing
        if distance_m(self.lat, self.lon, *self.center) > self.radius_m:
            self.course = bearing_deg(self.lat, self.lon, *self.center)  # head back to town
        self.lat, self.lon = offset(self.lat, self.lon, self.speed / 3.6 * seconds, self.course)
        return self.lat, self.lon, self.speed, self.course


def offset(lat: float, lon: float, metres: float, bearing: float) -> tuple[float, float]:
    angle = metres / EARTH_RADIUS_M
    theta = math.radians(bearing)
    phi1, lambda1 = math.radians(lat), math.radians(lon)
    phi2 = math.asin(math.sin(phi1) * math.cos(angle) + math.cos(phi1) * math.sin(angle) * math.cos(theta))
    lambda2 = lambda1 + math.atan2(
        math.sin(theta) * math.sin(angle) * math.cos(phi1), math.cos(angle) - math.sin(phi1) * math.sin(phi2)
    )
    return math.degrees(phi2), math.degrees(lambda2)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((phi2 - phi1) / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    delta = math.radians(lon2 - lon1)
    x = math.sin(delta) * math.cos(phi2)
    y = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(delta)
    return math.degrees(math.atan2(x, y)) % 360


class LoginRefused(Exception):
    pass


class Device:
    """One simulated terminal on its own TCP connection."""

    def __init__(
        self,
        terminal: SimTerminal,
        protocol: str,
        stats: FleetStats,
        rng: random.Random,
        *,
        on_event: Callable[[str], None] | None = None,
        on_code: Callable[[SimTerminal, str], None] | None = None,
    ) -> None:
        self.terminal = terminal
        self.auth_code = terminal.auth_code
        self.on_code = on_code or (lambda _terminal, _code: None)
        self.protocol = protocol
        self.stats = stats
        self.rng = rng
        self.route = Route(rng)
        self.on_event = on_event or (lambda _event: None)
        self.serial = 0
        self.last_time: datetime.datetime | None = None
        self.pending: dict[int, float] = {}  # serial -> perf_counter at send
        self.drained = asyncio.Event()
        self.login_reply: asyncio.Future[bytes | int] | None = None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.receiving: asyncio.Task[None] | None = None
        self.phone = jt808.phone_bytes(terminal.phone) if protocol == "jt808" else b""

    def next_serial(self) -> int:
        self.serial = (self.serial + 1) & 0xFFFF
        return self.serial

    def device_time(self) -> datetime.datetime:
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        if self.last_time is not None and now <= self.last_time:
            now = self.last_time + datetime.timedelta(seconds=1)
        self.last_time = now
        return now

    async def run(
        self, host: str, port: int, *, interval: float, duration: float, heartbeat: float, ack_wait: float
    ) -> None:
        stats = self.stats
        started = time.monotonic()
        deadline = started + duration
        await asyncio.sleep(self.rng.uniform(0, min(interval, 5.0)))  # terminals do not all wake at once
        if not await self.connect(host, port):
            return
        stats.connected += 1
        try:
            await self.log_in(host, port)
            stats.logged_in += 1
            self.on_event("login")
            next_ping = time.monotonic()
            next_heartbeat = time.monotonic() + heartbeat
            while time.monotonic() < deadline:
                now = time.monotonic()
                if now >= next_heartbeat and self.protocol == "gt06":
                    self.send(gt06.encode_heartbeat(self.next_serial()))
                    stats.heartbeats += 1
                    next_heartbeat += heartbeat
                if now >= next_ping:
                    self.send_position(interval)
                    next_ping += interval
                await asyncio.sleep(max(0.0, min(next_ping, deadline) - time.monotonic()))
            if self.pending:
                self.drained.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.drained.wait(), ack_wait)
        except LoginRefused:
            stats.refused += 1
            self.on_event("refused")
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            stats.errors += 1
        finally:
            await self.disconnect()

    async def connect(self, host: str, port: int) -> bool:
        try:
            self.reader, self.writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
        except (OSError, TimeoutError):
            self.stats.errors += 1
            return False
        self.receiving = asyncio.create_task(self.receive())
        return True

    async def disconnect(self) -> None:
        if self.receiving is not None:
            self.receiving.cancel()
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    def send(self, frame: bytes) -> None:
        if self.writer is None:
            raise RuntimeError("not connected")
        self.writer.write(frame)

    def send_position(self, interval: float) -> None:
        lat, lon, speed, course = self.route.step(interval)
        fix = Fix(
            time=self.device_time(),
            latitude=lat,
            longitude=lon,
            valid=True,
            speed_kmh=round(speed, 1),
            course=round(course),
            satellites=self.rng.randint(6, 12),
        )
        serial = self.next_serial()
        if self.protocol == "gt06":
            frame = gt06.encode_location(fix, serial, protocol=gt06.GPS_LBS_UTC)
        else:
            frame = jt808.encode_location(fix, phone=self.phone, serial=serial)
        self.pending[serial] = time.perf_counter()
        self.send(frame)
        self.stats.sent += 1
        self.on_event("sent")

    async def log_in(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        if self.protocol == "gt06":
            self.login_reply = loop.create_future()
            self.send(gt06.encode_login(self.terminal.imei, self.next_serial()))
            await self._reply(10)
            return
        if self.auth_code:
            if await self._authenticate() == jt808.RESULT_OK:
                return
            # The code no longer counts (reset at the counter): register anew, on a new connection.
            await self.disconnect()
            if not await self.connect(host, port):
                raise LoginRefused("could not reconnect to register")
        self.login_reply = loop.create_future()
        # The terminal ID a fitting records by default: the IMEI's last 7 digits.
        self.send(jt808.encode_register(phone=self.phone, serial=self.next_serial(), device_id=self.terminal.imei[-7:]))
        reply = await self._reply(10)
        if not isinstance(reply, bytes):
            raise LoginRefused(f"register result {reply}")
        self.auth_code = reply.decode("gbk")
        self.on_code(self.terminal, self.auth_code)
        result = await self._authenticate()
        if result != jt808.RESULT_OK:
            raise LoginRefused(f"authentication result {result!r}")

    async def _authenticate(self) -> bytes | int:
        self.login_reply = asyncio.get_running_loop().create_future()
        self.send(jt808.encode_auth(self.auth_code, phone=self.phone, serial=self.next_serial()))
        return await self._reply(10)

    async def _reply(self, timeout: float) -> bytes | int:
        if self.login_reply is None:
            raise RuntimeError("no request sent")
        try:
            return await asyncio.wait_for(self.login_reply, timeout)
        except TimeoutError:
            raise LoginRefused("no reply") from None

    async def receive(self) -> None:
        if self.reader is None:
            raise RuntimeError("not connected")
        framer = Gt06Framer() if self.protocol == "gt06" else Jt808Framer()
        handle = self._gt06_reply if self.protocol == "gt06" else self._jt808_reply
        while True:
            data = await self.reader.read(65536)
            if not data:
                if self.login_reply is not None and not self.login_reply.done():
                    self.login_reply.set_exception(LoginRefused("connection closed by the gateway"))
                return
            now = time.perf_counter()
            for item in framer.feed(data):
                if isinstance(item, bytes):
                    try:
                        handle(item, now)
                    except (ProtocolError, struct.error, IndexError):
                        self.stats.errors += 1

    def _acked(self, serial: int, now: float) -> None:
        sent_at = self.pending.pop(serial, None)
        if sent_at is None:
            return
        self.stats.acked += 1
        self.stats.latencies_ms.append((now - sent_at) * 1000)
        self.on_event("acked")
        if not self.pending:
            self.drained.set()

    def _gt06_reply(self, frame: bytes, now: float) -> None:
        protocol, _content, serial = gt06.parse_frame(frame)
        if protocol == gt06.LOGIN:
            if self.login_reply is not None and not self.login_reply.done():
                self.login_reply.set_result(b"")
        elif protocol in GT06_ACKED:
            self._acked(serial, now)

    def _jt808_reply(self, frame: bytes, now: float) -> None:
        header, body = jt808.parse_header(jt808.unwrap(frame))
        if header.msg_id == jt808.REGISTER_RESPONSE:
            _serial, result = struct.unpack_from(">HB", body)
            if self.login_reply is not None and not self.login_reply.done():
                self.login_reply.set_result(body[3:] if result == 0 else result)
        elif header.msg_id == jt808.PLATFORM_RESPONSE:
            serial, msg_id, result = struct.unpack_from(">HHB", body)
            if msg_id == jt808.AUTH:
                if self.login_reply is not None and not self.login_reply.done():
                    self.login_reply.set_result(result)
            elif msg_id in (jt808.LOCATION, jt808.BATCH) and result == jt808.RESULT_OK:
                self._acked(serial, now)


async def run_fleet(
    protocol: str,
    terminals: list[SimTerminal],
    *,
    host: str,
    port: int,
    interval: float,
    duration: float,
    heartbeat: float = 60.0,
    ack_wait: float = 10.0,
    seed: int | None = None,
    on_event: Callable[[str], None] | None = None,
    on_code: Callable[[SimTerminal, str], None] | None = None,
) -> FleetStats:
    """Run every terminal for `duration` seconds, then wait up to `ack_wait` s for the last acks.
    `on_code(terminal, code)`: a JT/T 808 terminal was given its auth code (keep it for the next run)."""
    if protocol not in ("gt06", "jt808"):
        raise ValueError("protocol must be gt06 or jt808")
    rng = random.Random(seed)  # noqa: S311 - simulation, not security
    stats = FleetStats(terminals=len(terminals))
    devices = [
        Device(t, protocol, stats, random.Random(rng.random()), on_event=on_event, on_code=on_code)  # noqa: S311
        for t in terminals
    ]
    await asyncio.gather(
        *(
            device.run(host, port, interval=interval, duration=duration, heartbeat=heartbeat, ack_wait=ack_wait)
            for device in devices
        )
    )
    return stats
