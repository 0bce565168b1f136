"""GT06 / Concox binary protocol: frames, CRC-ITU, decoders and the replies a device waits for.

Layouts and pitfalls: docs/protocols.md#gt06. Frame:

    78 78 | len(1) | protocol(1) | content | serial(2) | CRC(2) | 0d 0a      (79 79: len is 2 bytes)

`len` counts protocol number through CRC; the CRC-ITU (CRC-16/X-25) covers len through serial. A frame
whose CRC fails is rejected: unlike Traccar we never store what a corrupted frame seems to say.
Times are read as UTC (Concox "UTC" packets, Traccar's default); a session whose login carried a
time-zone word may pass `tz_offset_minutes` to read later packets in that zone.
"""

from __future__ import annotations

import struct
from binascii import crc_hqx
from datetime import UTC, datetime, timedelta
from typing import Any

from .common import (
    BadChecksum,
    BadFraming,
    BadLength,
    BadValue,
    Fix,
    Message,
    ProtocolError,
    Truncated,
    bcd_digits,
    check_coordinates,
)

PROTOCOL = "gt06"
STOP = b"\r\n"

LOGIN = 0x01
GPS = 0x10
GPS_LBS = 0x12
GPS_LBS_UTC = 0x22
GPS_LBS_4G = 0xA0
HEARTBEAT = 0x13
HEARTBEAT_GK310 = 0x23
ALARM = 0x16
ALARM_UTC = 0x26
ALARM_FENCE = 0x27
ALARM_4G = 0xA4
LBS_ALARM = 0x19
TIME_REQUEST = 0x8A

LOCATION_TYPES = frozenset({GPS, GPS_LBS, GPS_LBS_UTC, GPS_LBS_4G})
ALARM_TYPES = frozenset({ALARM, ALARM_UTC, ALARM_FENCE, ALARM_4G})
FENCE_ALARM_TYPES = frozenset({ALARM_FENCE, ALARM_4G})

# Alarm byte of the status block (Concox JM-VL table), in docs/protocols.md#alarm-vocabulary where a name
# exists there, else a snake_case protocol extra. docs/protocols.md#gt06-status-and-alarms lists where
# Traccar disagrees.
ALARM_NAMES = {
    0x01: "sos",
    0x02: "power_cut",
    0x03: "vibration",
    0x04: "geofence_enter",
    0x05: "geofence_exit",
    0x06: "overspeed",
    0x09: "movement",
    0x0A: "gps_blind_area_enter",
    0x0B: "gps_blind_area_exit",
    0x0C: "power_on",
    0x0D: "first_fix",
    0x0E: "low_power",
    0x0F: "low_power_protection",
    0x10: "sim_changed",
    0x11: "power_off",
    0x13: "tamper",
    0x14: "door",
    0x15: "power_off_low_battery",
    0x18: "cover_removed",
    0x19: "low_battery",
    0x23: "fall",
    0x29: "harsh_acceleration",
    0x2A: "sharp_turn_left",
    0x2B: "sharp_turn_right",
    0x2C: "collision",
    0x30: "braking",
    0x32: "unplugged",
    0xFE: "acc_on",
    0xFF: "acc_off",
}

# Terminal-information bits 5-3 (Concox table only; Traccar's 110/111 readings are not documented).
TERMINAL_INFO_ALARMS = {0b100: "sos", 0b011: "low_battery", 0b010: "power_cut", 0b001: "vibration"}

# The GPS block after its date-time: info/satellites, lat, lon, speed, course/status.
_GPS_TAIL = struct.Struct(">BIIBH")
_COORD_SCALE = 1_800_000.0


# --- CRC-ITU ----------------------------------------------------------------------------------------

_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def crc_itu(data: bytes) -> int:
    """CRC-16/X-25 (the GT06 "CRC-ITU").

    X-25 is CCITT with input and output reflected; crc_hqx (C, unreflected CCITT) over bit-reversed
    bytes, then reversing the 16-bit result, gives the same value about 7x faster than a table loop.
    """
    crc = crc_hqx(data.translate(_REVERSED), 0xFFFF)
    return ((_REVERSED[crc & 0xFF] << 8) | _REVERSED[crc >> 8]) ^ 0xFFFF


# --- framing ----------------------------------------------------------------------------------------


def frame_length(buffer: bytes | bytearray, start: int = 0) -> int | None:
    """Total frame size the length field at `start` announces, or None if the length is not there yet."""
    if buffer[start] == 0x78:
        return buffer[start + 2] + 5 if len(buffer) - start >= 3 else None
    return ((buffer[start + 2] << 8) | buffer[start + 3]) + 6 if len(buffer) - start >= 4 else None


def parse_frame(frame: bytes, *, check_crc: bool = True) -> tuple[int, bytes, int]:
    """Check the envelope of one whole frame; return (protocol number, content, serial)."""
    size = len(frame)
    if size < 2:
        raise Truncated(f"{size} byte(s) cannot hold a GT06 frame")
    if frame[0] == 0x78 and frame[1] == 0x78:
        header = 3
    elif frame[0] == 0x79 and frame[1] == 0x79:
        header = 4
    else:
        raise BadFraming(f"start bytes {frame[:2].hex()} are neither 7878 nor 7979")
    if size < header:
        raise Truncated(f"frame ends inside the length field ({size} bytes)")
    length = frame[2] if header == 3 else (frame[2] << 8) | frame[3]
    total = header + length + 2
    if length < 5:
        raise BadLength(f"length {length} is below 5 (protocol number, serial and CRC)")
    if size != total:
        if size < total and frame[-2:] != STOP:
            raise Truncated(f"length field announces a {total}-byte frame, only {size} bytes arrived")
        if size > total and frame[total - 2 : total] == STOP:
            raise BadLength(f"{size - total} byte(s) follow the end of the {total}-byte frame")
        raise BadLength(f"length field 0x{length:02x} announces a {total}-byte frame, the frame has {size} bytes")
    if frame[-2:] != STOP:
        raise BadFraming(f"stop bytes {frame[-2:].hex()} instead of 0d0a")
    if check_crc:
        expected = crc_itu(frame[2:-4])
        received = (frame[-4] << 8) | frame[-3]
        if expected != received:
            raise BadChecksum(f"CRC {received:04x} in the frame, {expected:04x} computed")
    return frame[header], frame[header + 1 : -6], (frame[-6] << 8) | frame[-5]


def build_frame(protocol: int, content: bytes, serial: int) -> bytes:
    """A complete frame (78 78, or 79 79 when the content needs a 2-byte length)."""
    length = len(content) + 5
    if length <= 0xFF:
        body = bytes((length, protocol)) + content + serial.to_bytes(2, "big")
        start = b"\x78\x78"
    else:
        body = length.to_bytes(2, "big") + bytes((protocol,)) + content + serial.to_bytes(2, "big")
        start = b"\x79\x79"
    return start + body + crc_itu(body).to_bytes(2, "big") + STOP


# --- server replies ---------------------------------------------------------------------------------


# Replies by (protocol, serial): a terminal's serial counts up, and every location packet is acked.
_ACKS: dict[int, bytes] = {}
_ACKS_MAX = 65536


def ack(protocol: int, serial: int) -> bytes:
    """The short echo reply for login, heartbeat, alarm (and the optional location ack)."""
    key = protocol << 16 | serial
    reply = _ACKS.get(key)
    if reply is None:
        body = bytes((5, protocol, serial >> 8, serial & 0xFF))
        reply = b"\x78\x78" + body + crc_itu(body).to_bytes(2, "big") + STOP
        if len(_ACKS) >= _ACKS_MAX:
            _ACKS.clear()
        _ACKS[key] = reply
    return reply


def login_ack(serial: int) -> bytes:
    return ack(LOGIN, serial)


def heartbeat_ack(serial: int, protocol: int = HEARTBEAT) -> bytes:
    return ack(protocol, serial)


def alarm_ack(protocol: int, serial: int) -> bytes:
    return ack(protocol, serial)


def time_reply(serial: int, now: datetime) -> bytes:
    """Answer to a 0x8A time request: the UTC date-time, binary Y-M-D h:m:s."""
    now = now.astimezone(UTC)
    content = bytes((now.year - 2000, now.month, now.day, now.hour, now.minute, now.second))
    return build_frame(TIME_REQUEST, content, serial)


def command(text: str, serial: int, *, server_flag: int = 0, language: int | None = None) -> bytes:
    """A 0x80 server command, e.g. "Relay,1#" (cut an e-bike's power relay) or "Relay,0#"."""
    payload = server_flag.to_bytes(4, "big") + text.encode("ascii")
    if language is not None:
        payload += language.to_bytes(2, "big")
    return build_frame(0x80, bytes((len(payload),)) + payload, serial)


# --- decoding ---------------------------------------------------------------------------------------


def decode(
    frame: bytes,
    *,
    check_crc: bool = True,
    tz_offset_minutes: int = 0,
    now: datetime | None = None,
    extras: bool = True,
) -> Message:
    """Decode one whole frame. Raises ProtocolError (and nothing else) for anything invalid.

    `check_crc=False` reads frames a lenient server would accept (tests compare with Traccar's values).
    `now` is only used for the reply to a 0x8A time request. `extras=False` leaves out what a
    location packet carries after its GPS block (cell tower, ACC, mileage): the gateway stores none
    of it, and reading it was about a third of a location packet's decoding.
    """
    protocol, content, serial = parse_frame(frame, check_crc=check_crc)
    try:
        return _decode_content(protocol, content, serial, tz_offset_minutes, now, extras)
    except (IndexError, struct.error) as error:  # a layout longer than the frame: report, never crash
        raise Truncated(f"protocol 0x{protocol:02x}: content of {len(content)} bytes is too short") from error


def _decode_content(protocol: int, content: bytes, serial: int, tz: int, now: datetime | None, extras: bool) -> Message:
    if protocol in LOCATION_TYPES:
        fix = _decode_location(protocol, content, tz, extras)
        return Message(PROTOCOL, "location", None, serial, (fix,), ack(protocol, serial), msg_type=protocol)
    if protocol in ALARM_TYPES:
        fix, status = _decode_alarm(protocol, content, tz)
        return Message(PROTOCOL, "alarm", None, serial, (fix,), ack(protocol, serial), msg_type=protocol, info=status)
    if protocol == LOGIN:
        return _decode_login(content, serial)
    if protocol == HEARTBEAT:
        return _decode_heartbeat(content, serial)
    if protocol == HEARTBEAT_GK310:
        if not content:
            raise Truncated("heartbeat 0x23 without terminal information")
        info = {"terminal_info": content[0], "raw": content.hex()}
        alarms = _terminal_info_alarms(content[0])
        reply = ack(protocol, serial)
        return Message(PROTOCOL, "heartbeat", None, serial, reply=reply, alarms=alarms, msg_type=protocol, info=info)
    if protocol == LBS_ALARM:
        lbs, offset = _read_lbs(content, 0, four_g=False)
        status, alarms = _read_status(content, offset)
        reply = ack(protocol, serial)
        return Message(
            PROTOCOL, "alarm", None, serial, reply=reply, alarms=alarms, msg_type=protocol, info=lbs | status
        )
    if protocol == TIME_REQUEST:
        reply = time_reply(serial, now or datetime.now(UTC))
        return Message(PROTOCOL, "other", None, serial, (), reply, msg_type=protocol, info={"time_request": True})
    # LBS/WiFi-only (0x18, 0x28, 0x2c, 0xa1), information transfer (0x94), command replies (0x15, 0x21),
    # vendor numbers: a well-formed frame we store nothing from. No reply (Traccar sends none either).
    return Message(PROTOCOL, "other", None, serial, msg_type=protocol, info={"content_hex": content.hex()})


def _decode_login(content: bytes, serial: int) -> Message:
    if len(content) not in (8, 10, 12):
        raise BadLength(f"login content is {len(content)} bytes; 8, 10 or 12 expected")
    digits = bcd_digits(content[:8])
    if digits is None:
        raise BadValue(f"login IMEI {content[:8].hex()} is not BCD")
    imei = digits[1:] if digits[0] == "0" else digits
    info: dict[str, Any] = {"imei": imei}
    if len(content) >= 10:
        info["type_code"] = content[8:10].hex()
    if len(content) == 12:
        word = (content[10] << 8) | content[11]
        hhmm = word >> 4
        minutes = (hhmm // 100) * 60 + hhmm % 100
        info["timezone_offset_minutes"] = -minutes if word & 0x08 else minutes
        info["language"] = word & 0x03
    return Message(PROTOCOL, "login", imei, serial, (), login_ack(serial), msg_type=LOGIN, info=info)


def _decode_heartbeat(content: bytes, serial: int) -> Message:
    if len(content) < 3:
        raise Truncated(f"heartbeat content is {len(content)} bytes; at least 3 expected")
    info: dict[str, Any] = {"terminal_info": content[0], "voltage_level": content[1], "gsm_signal": content[2]}
    alarms = list(_terminal_info_alarms(content[0]))
    if len(content) >= 5:
        info["alarm_code"] = content[3]
        info["language"] = content[4]
        _add_alarm_code(alarms, content[3])
    info.update(_terminal_info_bits(content[0]))
    reply = heartbeat_ack(serial)
    return Message(
        PROTOCOL, "heartbeat", None, serial, reply=reply, alarms=_unique(alarms), msg_type=HEARTBEAT, info=info
    )


# Device times by their six raw bytes: the terminals reporting in one second send the same ones, and
# building a datetime was a fifth of decoding a location packet. Cleared when it grows past the bound.
_TIMES: dict[bytes, datetime | None] = {}
_TIMES_MAX = 4096


def _device_time(raw: bytes) -> datetime | None:
    """The UTC time of the 6-byte Y-M-D h:m:s block; None for all zeros. Raises ValueError."""
    try:
        return _TIMES[raw]
    except KeyError:
        pass
    year, month, day, hour, minute, second = raw
    time = None if raw == b"\0\0\0\0\0\0" else datetime(2000 + year, month, day, hour, minute, second, tzinfo=UTC)
    if len(_TIMES) >= _TIMES_MAX:
        _TIMES.clear()
    _TIMES[raw] = time
    return time


def _fix(content: bytes, tz: int, alarms: tuple[str, ...] = ()) -> tuple[Fix, dict[str, Any]]:
    """The fix of the 18-byte GPS block at the start of `content`, and its extras (to add to)."""
    info, lat_raw, lon_raw, speed, course_status = _GPS_TAIL.unpack_from(content, 6)
    extras: dict[str, Any] = {"course_status": course_status}
    try:
        time = _device_time(content[:6])
    except ValueError:
        time = None
        extras["raw_time"] = content[:6].hex()
    else:
        if tz and time is not None:
            time -= timedelta(minutes=tz)
    latitude = lat_raw / _COORD_SCALE
    longitude = lon_raw / _COORD_SCALE
    if not course_status & 0x0400:  # bit 10 = 1 means north: south when clear
        latitude = -latitude
    if course_status & 0x0800:  # bit 11 = 1 means west
        longitude = -longitude
    latitude += 0.0  # no "-0.0" for the zero coordinates of a frame without a fix
    longitude += 0.0
    check_coordinates(latitude, longitude)
    if course_status & 0x2000:
        extras["differential"] = True
    valid = bool(course_status & 0x1000)
    # Positional: time, latitude, longitude, valid, speed_kmh, course, altitude, satellites, alarms,
    # battery, extras.
    fix = Fix(
        time,
        latitude,
        longitude,
        valid,
        float(speed),
        float(course_status & 0x03FF),
        None,
        info & 0x0F,
        alarms,
        None,
        extras,
    )
    return fix, extras


def _decode_location(protocol: int, content: bytes, tz: int, tail: bool) -> Fix:
    if len(content) < 18:
        raise Truncated(f"location 0x{protocol:02x}: {len(content)} content bytes, the GPS block needs 18")
    fix, extras = _fix(content, tz)
    if protocol == GPS or not tail:
        return fix
    if len(content) >= 26:
        lbs, offset = _read_lbs(content, 18, four_g=protocol == GPS_LBS_4G)
        extras.update(lbs)
        if protocol in (GPS_LBS_UTC, GPS_LBS_4G) and len(content) >= offset + 3:
            extras["acc"] = bool(content[offset])
            extras["upload_mode"] = content[offset + 1]
            extras["buffered"] = content[offset + 2] == 1
            if len(content) >= offset + 7:
                extras["mileage_m"] = int.from_bytes(content[offset + 3 : offset + 7], "big")
        elif offset < len(content):
            extras["tail_hex"] = content[offset:].hex()
    return fix


def _decode_alarm(protocol: int, content: bytes, tz: int) -> tuple[Fix, dict[str, Any]]:
    minimum = 18 + 1 + 8 + 5 + (1 if protocol == ALARM_FENCE else 0)
    if len(content) < minimum:
        raise Truncated(f"alarm 0x{protocol:02x}: {len(content)} content bytes, at least {minimum} expected")
    # The LBS length byte is 8, 9 or 10 depending on firmware: ignore it and parse the fields.
    lbs, offset = _read_lbs(content, 19, four_g=protocol == ALARM_4G)
    status, alarms = _read_status(content, offset)
    if protocol in FENCE_ALARM_TYPES and len(content) > offset + 5:
        fence = content[offset + 5]
        status["fence"] = None if fence == 0xFF else fence
    fix, extras = _fix(content, tz, alarms)
    extras.update(lbs)
    extras.update(status)
    return fix, status


def _read_lbs(content: bytes, offset: int, *, four_g: bool) -> tuple[dict[str, Any], int]:
    mcc = (content[offset] << 8) | content[offset + 1]
    offset += 2
    if mcc & 0x8000:  # 4G firmware: MNC is 2 bytes, MCC is the low 15 bits
        mcc &= 0x7FFF
        mnc = (content[offset] << 8) | content[offset + 1]
        offset += 2
    else:
        mnc = content[offset]
        offset += 1
    lac_size, cell_size = (4, 8) if four_g else (2, 3)
    if offset + lac_size + cell_size > len(content):
        raise Truncated("cell (LBS) block runs past the end of the content")
    lac = int.from_bytes(content[offset : offset + lac_size], "big")
    offset += lac_size
    cell = int.from_bytes(content[offset : offset + cell_size], "big")
    return {"mcc": mcc, "mnc": mnc, "lac": lac, "cell_id": cell}, offset + cell_size


def _read_status(content: bytes, offset: int) -> tuple[dict[str, Any], tuple[str, ...]]:
    if len(content) < offset + 5:
        raise Truncated("status block (terminal info, voltage, GSM, alarm, language) is cut short")
    terminal_info, voltage, gsm, alarm_code, language = content[offset : offset + 5]
    status: dict[str, Any] = {
        "terminal_info": terminal_info,
        "voltage_level": voltage,
        "gsm_signal": gsm,
        "alarm_code": alarm_code,
        "language": language,
    }
    status.update(_terminal_info_bits(terminal_info))
    alarms: list[str] = []
    _add_alarm_code(alarms, alarm_code)
    alarms.extend(_terminal_info_alarms(terminal_info))
    return status, _unique(alarms)


def _terminal_info_bits(value: int) -> dict[str, bool]:
    return {
        "relay_cut": bool(value & 0x80),
        "gps_tracking": bool(value & 0x40),
        "charging": bool(value & 0x04),
        "acc": bool(value & 0x02),
        "armed": bool(value & 0x01),
    }


def _terminal_info_alarms(value: int) -> tuple[str, ...]:
    name = TERMINAL_INFO_ALARMS.get((value >> 3) & 0x07)
    return (name,) if name else ()


def _add_alarm_code(alarms: list[str], code: int) -> None:
    if code:
        alarms.append(ALARM_NAMES.get(code, f"alarm_0x{code:02x}"))


def _unique(names: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


# --- device side (simulator, tests) -----------------------------------------------------------------


def encode_login(
    imei: str, serial: int, *, type_code: bytes | None = None, tz_offset_minutes: int | None = None
) -> bytes:
    if not (imei.isdigit() and len(imei) in (15, 16)):
        raise ValueError("IMEI must be 15 (or 16) digits")
    content = bytes.fromhex(imei.rjust(16, "0"))
    if type_code is not None or tz_offset_minutes is not None:
        content += type_code or b"\x00\x00"
    if tz_offset_minutes is not None:
        minutes = abs(tz_offset_minutes)
        word = ((minutes // 60) * 100 + minutes % 60) << 4 | (0x08 if tz_offset_minutes < 0 else 0) | 0x02
        content += word.to_bytes(2, "big")
    return build_frame(LOGIN, content, serial)


def encode_gps_block(fix: Fix) -> bytes:
    time = fix.time.astimezone(UTC) if fix.time else None
    stamp = bytes((time.year - 2000, time.month, time.day, time.hour, time.minute, time.second)) if time else bytes(6)
    course_status = int(fix.course or 0) & 0x03FF
    if fix.valid:
        course_status |= 0x1000
    if fix.longitude < 0:
        course_status |= 0x0800
    if fix.latitude >= 0:
        course_status |= 0x0400
    return stamp + _GPS_TAIL.pack(
        0xC0 | min(fix.satellites or 0, 15),
        round(abs(fix.latitude) * _COORD_SCALE),
        round(abs(fix.longitude) * _COORD_SCALE),
        min(round(fix.speed_kmh or 0), 255),
        course_status,
    )


def encode_lbs(mcc: int = 460, mnc: int = 0, lac: int = 0, cell_id: int = 0) -> bytes:
    return mcc.to_bytes(2, "big") + bytes((mnc,)) + lac.to_bytes(2, "big") + cell_id.to_bytes(3, "big")


def encode_location(fix: Fix, serial: int, *, protocol: int = GPS_LBS, lbs: bytes | None = None) -> bytes:
    """A 0x12 (or 0x22: ACC off, upload mode 0, live) location packet."""
    content = encode_gps_block(fix) + (lbs if lbs is not None else encode_lbs())
    if protocol == GPS_LBS_UTC:
        content += b"\x00\x00\x00"
    elif protocol != GPS_LBS:
        raise ValueError("encode_location writes 0x12 or 0x22 packets")
    return build_frame(protocol, content, serial)


def encode_status(
    *, terminal_info: int = 0x46, voltage_level: int = 6, gsm_signal: int = 4, alarm_code: int = 0, language: int = 2
) -> bytes:
    return bytes((terminal_info, voltage_level, gsm_signal, alarm_code, language))


def encode_heartbeat(serial: int, *, terminal_info: int = 0x46, voltage_level: int = 6, gsm_signal: int = 4) -> bytes:
    return build_frame(HEARTBEAT, bytes((terminal_info, voltage_level, gsm_signal, 0, 2)), serial)


def encode_alarm(fix: Fix, serial: int, *, protocol: int = ALARM, status: bytes | None = None) -> bytes:
    """A 0x16 / 0x26 alarm packet (LBS length byte 9, as most firmwares send)."""
    if protocol not in (ALARM, ALARM_UTC):
        raise ValueError("encode_alarm writes 0x16 or 0x26 packets")
    content = encode_gps_block(fix) + b"\x09" + encode_lbs() + (status or encode_status())
    return build_frame(protocol, content, serial)


__all__ = [
    "ALARM_NAMES",
    "ProtocolError",
    "ack",
    "alarm_ack",
    "build_frame",
    "command",
    "crc_itu",
    "decode",
    "encode_alarm",
    "encode_heartbeat",
    "encode_location",
    "encode_login",
    "heartbeat_ack",
    "login_ack",
    "parse_frame",
    "time_reply",
]
