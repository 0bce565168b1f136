"""JT/T 808 (2011, 2013 and 2019 headers): framing, escaping, check code, decoders and platform replies.

Layouts: docs/protocols.md#jt808. Frame on the wire:

    7e | header | body | check code | 7e        inside the flags 7e -> 7d 02 and 7d -> 7d 01

Header: message id, body properties (bits 0-9 body length, 10-12 encryption, 13 subpackage, 14 the
2019 version flag), [2019: protocol version byte], terminal phone BCD[6] (2019: BCD[10]), serial,
[packet total, packet index]. The check code is the XOR of header and body after un-escaping.

Times are BCD `YYMMDDhhmmss` in GMT+8 and come out as UTC. Platform replies carry the platform's own
serial (Traccar always writes 0) and echo the terminal's phone field and, for 2019 terminals, the 2019
header.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import reduce
from operator import xor
from typing import Any

from .common import (
    BadChecksum,
    BadEscape,
    BadFraming,
    BadLength,
    Fix,
    Message,
    Truncated,
    Unsupported,
    bcd_digits,
    check_coordinates,
    luhn_check_digit,
)

PROTOCOL = "jt808"
FLAG = 0x7E
ESCAPE = 0x7D
BEIJING_MINUTES = 8 * 60

TERMINAL_RESPONSE = 0x0001
HEARTBEAT = 0x0002
LOGOUT = 0x0003
REGISTER = 0x0100
AUTH = 0x0102
LOCATION = 0x0200
LOCATION_QUERY_RESPONSE = 0x0201
BATCH = 0x0704
PLATFORM_RESPONSE = 0x8001
REGISTER_RESPONSE = 0x8100

# Terminal messages that answer a platform command: they need no reply of their own.
RESPONSE_IDS = frozenset({TERMINAL_RESPONSE, 0x0104, 0x0107, LOCATION_QUERY_RESPONSE, 0x0302, 0x0500, 0x0700, 0x0805})

RESULT_OK = 0
RESULT_FAILURE = 1
RESULT_MESSAGE_ERROR = 2
RESULT_NOT_SUPPORTED = 3
RESULT_ALARM_CONFIRMED = 4

# 0x8100 register results (an auth code follows only REGISTER_OK).
REGISTER_OK = 0
REGISTER_VEHICLE_TAKEN = 1
REGISTER_NO_SUCH_VEHICLE = 2
REGISTER_TERMINAL_TAKEN = 3
REGISTER_NO_SUCH_TERMINAL = 4

# Alarm flag bits (JT/T 808-2013 table 24) in docs/protocols.md#alarm-vocabulary or snake_case extras. Bits 15-17
# are reserved by the standard; vendors use them differently, so they keep a neutral name.
ALARM_BITS = {
    0: "sos",
    1: "overspeed",
    2: "fatigue_driving",
    3: "danger_warning",
    4: "gnss_fault",
    5: "gnss_antenna_cut",
    6: "gnss_antenna_short",
    7: "low_power",
    8: "power_cut",
    9: "lcd_fault",
    10: "tts_fault",
    11: "camera_fault",
    12: "ic_card_fault",
    13: "overspeed_warning",
    14: "fatigue_warning",
    15: "reserved_bit_15",
    16: "reserved_bit_16",
    17: "reserved_bit_17",
    18: "driving_overtime_day",
    19: "parking_overtime",
    20: "geofence",  # made geofence_enter / geofence_exit when additional item 0x12 gives the direction
    21: "route",  # likewise route_enter / route_exit
    22: "route_time",
    23: "route_deviation",
    24: "vss_fault",
    25: "fuel_abnormal",
    26: "stolen",
    27: "illegal_ignition",
    28: "movement",
    29: "collision",
    30: "rollover",
    31: "illegal_door_open",
}

# Numeric additional items: id -> (extras key, size, divisor or 0).
_ITEMS = {
    0x01: ("mileage_km", 4, 10),
    0x02: ("fuel_l", 2, 10),
    0x03: ("tachograph_speed_kmh", 2, 10),
    0x25: ("vehicle_signals", 4, 0),
    0x2A: ("io_status", 2, 0),
    0x2B: ("analog", 4, 0),
    0x30: ("signal", 1, 0),
}
_BCD = tuple((byte >> 4) * 10 + (byte & 0x0F) for byte in range(256))
_BASIC = struct.Struct(">IIIIhHH6s")  # alarm, status, lat, lon, altitude, speed, direction, BCD time
_HEADER_2013 = struct.Struct(">HH6sH")
_HEADER_2019 = struct.Struct(">HHB10sH")


@dataclass(frozen=True, slots=True)
class Header:
    msg_id: int
    properties: int
    version: int | None  # the 2019 protocol-version byte; None for a 2011/2013 header
    phone: bytes  # raw terminal phone field, echoed in replies
    serial: int
    packet_total: int | None = None
    packet_index: int | None = None

    @property
    def body_length(self) -> int:
        return self.properties & 0x03FF

    @property
    def standard(self) -> str:
        return "2019" if self.version is not None else "2013"

    @property
    def terminal_id(self) -> str | None:
        """The phone field's BCD digits, leading zeros kept; None if it is not BCD."""
        return bcd_digits(self.phone)

    @property
    def imei_binary(self) -> str | None:
        """Jimi/Concox convention: a non-BCD 6-byte phone is the IMEI's first 14 digits in binary."""
        if self.terminal_id is not None or len(self.phone) != 6:
            return None
        first14 = str(int.from_bytes(self.phone, "big"))
        return first14 + str(luhn_check_digit(first14))

    @property
    def terminal(self) -> str:
        return self.terminal_id or self.imei_binary or self.phone.hex()


# --- bytes ------------------------------------------------------------------------------------------


def checksum(data: bytes) -> int:
    """XOR of all bytes. Short data: a C-level reduce; longer: fold as big integers (O(log n) steps)."""
    size = len(data)
    if size <= 64:
        return reduce(xor, data, 0)
    value = int.from_bytes(data, "big")
    while size > 1:
        low = size - size // 2
        bits = 8 * low
        value = (value >> bits) ^ (value & ((1 << bits) - 1))
        size = low
    return value


def escape(payload: bytes) -> bytes:
    return payload.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")


def unescape(data: bytes) -> bytes:
    """Undo 7d 01 -> 7d and 7d 02 -> 7e; any other byte after 7d (or 7d last) is a BadEscape."""
    if ESCAPE not in data:
        return bytes(data)
    out = bytearray()
    start = 0
    while True:
        at = data.find(ESCAPE, start)
        if at < 0:
            out += data[start:]
            return bytes(out)
        if at + 1 >= len(data):
            raise BadEscape("0x7d is the last byte before the closing flag")
        follower = data[at + 1]
        if follower == 0x01:
            out += data[start:at]
            out.append(0x7D)
        elif follower == 0x02:
            out += data[start:at]
            out.append(0x7E)
        else:
            raise BadEscape(f"0x7d followed by 0x{follower:02x} (only 01 and 02 are escapes) at byte {at + 1}")
        start = at + 2


def unwrap(frame: bytes) -> bytes:
    """Check flags, escaping and check code of one wire frame; return header + body (no check code)."""
    if len(frame) < 2:
        raise Truncated(f"{len(frame)} byte(s) cannot hold a JT/T 808 frame")
    if frame[0] != FLAG:
        raise BadFraming(f"frame starts with 0x{frame[0]:02x}, not the 0x7e flag")
    if frame[-1] != FLAG:
        raise Truncated("the frame does not end with a 0x7e flag (cut short, or bytes after it)")
    inner = frame[1:-1]
    stray = inner.find(FLAG)
    if stray >= 0:
        raise BadEscape(f"0x7e at byte {stray + 1} inside the frame: not escaped (or more than one frame)")
    payload = unescape(inner)
    if len(payload) < 13:
        raise Truncated(f"{len(payload)} bytes between the flags; a header and check code need at least 13")
    expected = checksum(payload[:-1])
    if expected != payload[-1]:
        raise BadChecksum(f"check code {payload[-1]:02x} in the frame, {expected:02x} computed")
    return payload[:-1]


def parse_header(data: bytes) -> tuple[Header, bytes]:
    """Split header + body (check code already removed); the body length must match the header."""
    if len(data) < 12:
        raise Truncated(f"{len(data)} bytes cannot hold a JT/T 808 header")
    properties = (data[2] << 8) | data[3]
    if properties & 0x4000:
        if len(data) < 17:
            raise Truncated("2019 header (version flag set) needs 17 bytes")
        msg_id, properties, version, phone, serial = _HEADER_2019.unpack_from(data)
        offset = 17
    else:
        msg_id, properties, phone, serial = _HEADER_2013.unpack_from(data)
        version = None
        offset = 12
    total = index = None
    if properties & 0x2000:
        if len(data) < offset + 4:
            raise Truncated("subpackage flag set but the packet total and index are missing")
        total = (data[offset] << 8) | data[offset + 1]
        index = (data[offset + 2] << 8) | data[offset + 3]
        offset += 4
    body = data[offset:]
    declared = properties & 0x03FF
    if len(body) != declared:
        raise BadLength(f"body properties announce {declared} body bytes, the frame carries {len(body)}")
    return Header(msg_id, properties, version, phone, serial, total, index), body


def encode(
    msg_id: int,
    body: bytes,
    *,
    phone: bytes,
    serial: int,
    version: int | None = None,
    packet: tuple[int, int] | None = None,
) -> bytes:
    """A complete escaped frame with check code and flags."""
    if len(body) > 0x03FF:
        raise ValueError("a JT/T 808 body holds at most 1023 bytes; split it into packets")
    properties = len(body)
    if version is not None:
        properties |= 0x4000
    if packet is not None:
        properties |= 0x2000
    if version is None and len(phone) == 6:
        header = _HEADER_2013.pack(msg_id, properties, phone, serial)
    elif version is not None and len(phone) == 10:
        header = _HEADER_2019.pack(msg_id, properties, version, phone, serial)
    else:
        raise ValueError("the phone field is 6 bytes (2013 header) or 10 bytes (2019 header)")
    if packet is not None:
        header += packet[0].to_bytes(2, "big") + packet[1].to_bytes(2, "big")
    payload = header + body
    return b"\x7e" + escape(payload + bytes((checksum(payload),))) + b"\x7e"


# --- platform replies -------------------------------------------------------------------------------


def reply(header: Header, msg_id: int, body: bytes, *, platform_serial: int = 0) -> bytes:
    return encode(msg_id, body, phone=header.phone, serial=platform_serial, version=header.version)


def general_response(header: Header, *, result: int = RESULT_OK, platform_serial: int = 0) -> bytes:
    """0x8001: terminal serial, message id, result."""
    body = struct.pack(">HHB", header.serial, header.msg_id, result)
    return reply(header, PLATFORM_RESPONSE, body, platform_serial=platform_serial)


def register_response(
    header: Header, *, auth_code: str | None = None, result: int = RESULT_OK, platform_serial: int = 0
) -> bytes:
    """0x8100: terminal serial, result, and the auth code only when the result is 0 (success)."""
    body = struct.pack(">HB", header.serial, result)
    if result == RESULT_OK:
        body += (auth_code if auth_code is not None else header.terminal).encode("gbk")
    return reply(header, REGISTER_RESPONSE, body, platform_serial=platform_serial)


# --- decoding ---------------------------------------------------------------------------------------


def decode(
    frame: bytes,
    *,
    platform_serial: int = 0,
    auth_code: str | None = None,
    tz_offset_minutes: int = BEIJING_MINUTES,
) -> Message:
    """Decode one wire frame (with its 0x7e flags). Raises ProtocolError for anything invalid.

    The reply is built with `platform_serial`; a register is answered with `auth_code`, by default the
    terminal id as Traccar does (the gateway issues its own code, once: tracking.gateway.sessions).
    """
    return decode_unescaped(
        unwrap(frame), platform_serial=platform_serial, auth_code=auth_code, tz_offset_minutes=tz_offset_minutes
    )


def decode_unescaped(
    data: bytes, *, platform_serial: int = 0, auth_code: str | None = None, tz_offset_minutes: int = BEIJING_MINUTES
) -> Message:
    """Decode header + body whose check code has been verified (see `unwrap`)."""
    header, body = parse_header(data)
    terminal_id = header.terminal_id
    info: dict[str, Any] = {"header": header, "version": header.standard, "terminal_id": terminal_id}
    if terminal_id is None:
        info["imei_binary"] = header.imei_binary
        terminal = header.terminal
    else:
        terminal = terminal_id

    def message(kind: str, fixes: tuple[Fix, ...] = (), reply_bytes: bytes | None = None) -> Message:
        return Message(PROTOCOL, kind, terminal, header.serial, fixes, reply_bytes, msg_type=header.msg_id, info=info)

    def ack(result: int = RESULT_OK) -> bytes:
        return general_response(header, result=result, platform_serial=platform_serial)

    msg_id = header.msg_id
    if msg_id >= 0x8000:  # a platform message sent by a terminal: nothing to store, nothing to answer
        info["body_hex"] = body.hex()
        return message("other")
    if (header.properties >> 10) & 0x07:
        raise Unsupported(f"message 0x{msg_id:04x} has an encrypted body (properties 0x{header.properties:04x})")
    if header.packet_total is not None and (header.packet_total > 1 or header.packet_index != 1):
        info.update(packet_total=header.packet_total, packet_index=header.packet_index, body_hex=body.hex())
        return message("other", reply_bytes=ack())
    try:
        if msg_id == LOCATION:
            return message("location", (decode_location_body(body, tz_offset_minutes),), ack())
        if msg_id == BATCH:
            fixes, batch_type = _decode_batch(body, tz_offset_minutes)
            info.update(batch_count=len(fixes), batch_type=batch_type)
            return message("batch", fixes, ack())
        if msg_id == HEARTBEAT:
            return message("heartbeat", reply_bytes=ack())
        if msg_id == REGISTER:
            info.update(_decode_register(body, header))
            return message(
                "register", reply_bytes=register_response(header, auth_code=auth_code, platform_serial=platform_serial)
            )
        if msg_id == AUTH:
            info.update(_decode_auth(body, header))
            return message("auth", reply_bytes=ack())
        if msg_id == LOGOUT:
            info["logout"] = True
            return message("other", reply_bytes=ack())
        if msg_id == TERMINAL_RESPONSE:
            if len(body) < 5:
                raise Truncated(f"terminal general response body is {len(body)} bytes; 5 expected")
            reply_serial, reply_id, result = struct.unpack_from(">HHB", body)
            info.update(reply_serial=reply_serial, reply_msg_id=reply_id, result=result)
            return message("other")
        if msg_id == LOCATION_QUERY_RESPONSE:
            if len(body) < 2:
                raise Truncated("location query response without its reply serial")
            info["reply_serial"] = (body[0] << 8) | body[1]
            return message("location", (decode_location_body(body[2:], tz_offset_minutes),))
    except (IndexError, struct.error) as error:
        raise Truncated(f"message 0x{msg_id:04x}: body of {len(body)} bytes is too short") from error
    info["body_hex"] = body.hex()
    if msg_id in RESPONSE_IDS:
        return message("other")
    return message("other", reply_bytes=ack(RESULT_NOT_SUPPORTED))


def _bcd_time(raw: bytes, tz_offset_minutes: int) -> datetime | None:
    """BCD `YYMMDDhhmmss` in the device zone -> aware UTC; None for all zeros or impossible values."""
    if not raw.hex().isdigit() or raw == b"\x00\x00\x00\x00\x00\x00":
        return None
    year, month, day, hour, minute, second = map(_BCD.__getitem__, raw)
    try:
        local = datetime(2000 + year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
    return local - timedelta(minutes=tz_offset_minutes)


def alarm_names(flags: int, area_direction: int | None = None, route_direction: int | None = None) -> tuple[str, ...]:
    names = []
    bit = 0
    while flags >> bit:
        if flags >> bit & 1:
            name = ALARM_BITS[bit]
            if bit == 20 and area_direction is not None:
                name = "geofence_exit" if area_direction else "geofence_enter"
            elif bit == 21 and route_direction is not None:
                name = "route_exit" if route_direction else "route_enter"
            names.append(name)
        bit += 1
    return tuple(names)


def decode_location_body(body: bytes, tz_offset_minutes: int = BEIJING_MINUTES, *, buffered: bool = False) -> Fix:
    """A 0x0200 body: the 28-byte basic block, then `id, length, value` additional items.

    `buffered` marks fixes of a blind-area re-upload (0x0704 type 1).
    """
    if len(body) < 28:
        raise Truncated(f"location body is {len(body)} bytes; the basic block needs 28")
    alarm, status, lat_raw, lon_raw, altitude, speed, direction, raw_time = _BASIC.unpack_from(body)
    latitude = lat_raw / 1e6
    longitude = lon_raw / 1e6
    if status & 0x04:
        latitude = -latitude
    if status & 0x08:
        longitude = -longitude
    check_coordinates(latitude, longitude)
    time = _bcd_time(raw_time, tz_offset_minutes)
    extras: dict[str, Any] = {
        "alarm_flags": alarm,
        "status": status,
        "acc": bool(status & 0x01),
        "oil_cut": bool(status & 0x0400),
        "circuit_cut": bool(status & 0x0800),
        "gps": bool(status & 0x040000),
        "beidou": bool(status & 0x080000),
        "glonass": bool(status & 0x100000),
        "galileo": bool(status & 0x200000),
    }
    if time is None and raw_time != bytes(6):
        extras["raw_time"] = raw_time.hex()
    if buffered:
        extras["buffered"] = True
    satellites = _decode_items(body, 28, extras)
    area = extras.get("area_alarm")
    area_direction = area["direction"] if area and area["type"] in (1, 2, 3) else None
    route_direction = area["direction"] if area and area["type"] == 4 else None
    return Fix(
        time=time,
        latitude=latitude,
        longitude=longitude,
        valid=bool(status & 0x02),
        speed_kmh=round(speed / 10, 1),
        course=float(direction),
        altitude=float(altitude),
        satellites=satellites,
        alarms=alarm_names(alarm, area_direction, route_direction) if alarm else (),
        extras=extras,
    )


def _decode_items(body: bytes, offset: int, extras: dict[str, Any]) -> int | None:
    """Read additional items into `extras`; return the satellite count (item 0x31) if present.

    Unknown ids are skipped by their length; an item running past the end stops the reading without
    rejecting the basic block (firmwares append garbage).
    """
    satellites = None
    end = len(body)
    while offset + 2 <= end:
        item, size = body[offset], body[offset + 1]
        start = offset + 2
        offset = start + size
        if offset > end:
            extras["items_truncated_at"] = start - 2
            break
        known = _ITEMS.get(item)
        if known is not None and known[1] == size:
            number = int.from_bytes(body[start:offset], "big")
            extras[known[0]] = number / known[2] if known[2] else number
        elif item == 0x31 and size == 1:
            satellites = body[start]
        elif item == 0x12 and size == 6:
            extras["area_alarm"] = {
                "type": body[start],
                "id": int.from_bytes(body[start + 1 : start + 5], "big"),
                "direction": body[start + 5],
            }
        else:
            extras[f"item_{item:02x}"] = body[start:offset].hex()
    if offset < end:
        extras["trailing_hex"] = body[offset:].hex()
    return satellites


def _decode_batch(body: bytes, tz_offset_minutes: int) -> tuple[tuple[Fix, ...], int]:
    if len(body) < 3:
        raise Truncated("batch body needs an item count and a type")
    count, batch_type = struct.unpack_from(">HB", body)
    offset = 3
    fixes = []
    for number in range(count):
        if offset + 2 > len(body):
            raise Truncated(f"batch announces {count} items, the body ends after {number}")
        size = (body[offset] << 8) | body[offset + 1]
        offset += 2
        if offset + size > len(body):
            raise Truncated(f"batch item {number + 1} announces {size} bytes past the end of the body")
        fixes.append(decode_location_body(body[offset : offset + size], tz_offset_minutes, buffered=batch_type == 1))
        offset += size
    if offset != len(body):
        raise BadLength(f"{len(body) - offset} byte(s) after the last of {count} batch items")
    return tuple(fixes), batch_type


def _text(raw: bytes, encoding: str = "ascii") -> str:
    return raw.split(b"\x00", 1)[0].decode(encoding, errors="replace").strip()


def _decode_register(body: bytes, header: Header) -> dict[str, Any]:
    if header.version is not None:
        layout, sizes = "2019", (11, 30, 30)
    elif len(body) >= 37:
        layout, sizes = "2013", (5, 20, 7)
    elif len(body) >= 25:
        layout, sizes = "2011", (5, 8, 7)
    else:
        raise Truncated(f"register body is {len(body)} bytes; at least 25 expected")
    manufacturer_size, model_size, device_size = sizes
    fixed = 4 + manufacturer_size + model_size + device_size + 1
    if len(body) < fixed:
        raise Truncated(f"{layout} register body is {len(body)} bytes; at least {fixed} expected")
    province, city = struct.unpack_from(">HH", body)
    offset = 4
    manufacturer = _text(body[offset : offset + manufacturer_size])
    offset += manufacturer_size
    model = _text(body[offset : offset + model_size])
    offset += model_size
    device_id = _text(body[offset : offset + device_size])
    offset += device_size
    return {
        "register_layout": layout,
        "province": province,
        "city": city,
        "manufacturer": manufacturer,
        "model": model,
        "device_id": device_id,
        "plate_color": body[offset],
        "plate": _text(body[offset + 1 :], "gbk"),
    }


def _decode_auth(body: bytes, header: Header) -> dict[str, Any]:
    if header.version is not None and body and 1 + body[0] + 15 + 20 <= len(body):
        size = body[0]
        return {
            "auth_code": _text(body[1 : 1 + size], "gbk"),
            "imei": _text(body[1 + size : 16 + size]),
            "software_version": _text(body[16 + size : 36 + size]),
        }
    return {"auth_code": _text(body, "gbk")}


# --- terminal side (simulator, tests) ---------------------------------------------------------------


def phone_bytes(terminal_id: str, *, version: int | None = None) -> bytes:
    """The BCD phone field for a digit string (12 digits, or 20 for a 2019 header)."""
    width = 20 if version is not None else 12
    if not terminal_id.isdigit() or len(terminal_id) > width:
        raise ValueError(f"terminal id must be at most {width} digits")
    return bytes.fromhex(terminal_id.rjust(width, "0"))


def encode_location_body(fix: Fix, *, alarm_flags: int = 0, status: int | None = None, items: bytes = b"") -> bytes:
    if status is None:
        status = 0x000C0000 | (0x02 if fix.valid else 0)  # GPS + BeiDou used
    if fix.latitude < 0:
        status |= 0x04
    if fix.longitude < 0:
        status |= 0x08
    local = (fix.time.astimezone(UTC) + timedelta(minutes=BEIJING_MINUTES)) if fix.time else None
    stamp = bytes.fromhex(local.strftime("%y%m%d%H%M%S")) if local else bytes(6)
    body = _BASIC.pack(
        alarm_flags,
        status,
        round(abs(fix.latitude) * 1e6),
        round(abs(fix.longitude) * 1e6),
        round(fix.altitude or 0),
        round((fix.speed_kmh or 0) * 10),
        round(fix.course or 0) % 360,
        stamp,
    )
    if fix.satellites is not None:
        items += bytes((0x31, 1, fix.satellites))
    return body + items


def encode_location(fix: Fix, *, phone: bytes, serial: int, version: int | None = None, alarm_flags: int = 0) -> bytes:
    return encode(
        LOCATION, encode_location_body(fix, alarm_flags=alarm_flags), phone=phone, serial=serial, version=version
    )


def encode_batch(
    fixes: list[Fix], *, phone: bytes, serial: int, buffered: bool = True, version: int | None = None
) -> bytes:
    body = struct.pack(">HB", len(fixes), 1 if buffered else 0)
    for fix in fixes:
        item = encode_location_body(fix)
        body += len(item).to_bytes(2, "big") + item
    return encode(BATCH, body, phone=phone, serial=serial, version=version)


def encode_heartbeat(*, phone: bytes, serial: int, version: int | None = None) -> bytes:
    return encode(HEARTBEAT, b"", phone=phone, serial=serial, version=version)


def encode_auth(auth_code: str, *, phone: bytes, serial: int) -> bytes:
    return encode(AUTH, auth_code.encode("gbk"), phone=phone, serial=serial)


def encode_register(
    *,
    phone: bytes,
    serial: int,
    manufacturer: str = "EBIKE",
    model: str = "GT-1",
    device_id: str = "0000001",
    plate_color: int = 0,
    plate: str = "",
    version: int | None = None,
) -> bytes:
    sizes = (11, 30, 30) if version is not None else (5, 20, 7)
    body = struct.pack(">HH", 0, 0)
    for text, size in zip((manufacturer, model, device_id), sizes, strict=True):
        raw = text.encode("ascii")
        if len(raw) > size:
            raise ValueError(f"{text!r} does not fit {size} bytes")
        body += raw.ljust(size, b"\x00")
    body += bytes((plate_color,)) + plate.encode("gbk")
    return encode(REGISTER, body, phone=phone, serial=serial, version=version)
