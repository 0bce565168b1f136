"""Types and helpers shared by the terminal protocol decoders.

Everything under `tracking.protocols` is pure: bytes or text in, frozen dataclasses out. No Django, no
database, no clock unless a caller passes one, so the gateway, the HTTP endpoint, `decode_frames` and
the tests all read a frame the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

KINDS = ("login", "location", "heartbeat", "alarm", "register", "auth", "batch", "other")
# Fix.extras key: how many alarm names a decoder left unread (past the most it reads from one message).
ALARMS_UNREAD = "alarms_unread"


# --- errors -----------------------------------------------------------------------------------------


class ProtocolError(ValueError):
    """The input is not a valid message. `code` is a stable label for metrics; str() explains."""

    code = "invalid"


class Truncated(ProtocolError):
    code = "truncated"


class BadLength(ProtocolError):
    code = "bad_length"


class FrameTooLong(BadLength):
    code = "frame_too_long"


class BadFraming(ProtocolError):
    """Start or stop bytes are not what the protocol uses."""

    code = "bad_framing"


class BadChecksum(ProtocolError):
    code = "bad_checksum"


class BadEscape(ProtocolError):
    code = "bad_escape"


class BadValue(ProtocolError):
    """A field holds a value that cannot be right (non-BCD digits, latitude 95°, missing id…)."""

    code = "bad_value"


class UnknownType(ProtocolError):
    code = "unknown_type"


class Unsupported(ProtocolError):
    """Well-formed, but uses a feature we do not decode (for example an RSA-encrypted JT/T 808 body)."""

    code = "unsupported"


# --- decoded values ---------------------------------------------------------------------------------


# Fix and Message are built for every message a terminal sends; plain slotted dataclasses build
# four times faster than frozen ones (whose __init__ goes through object.__setattr__ per field).
# Treat them as immutable all the same.
@dataclass(slots=True)
class Fix:
    """One position report, as the device sent it (hemisphere signs applied, units converted).

    `time` is aware UTC, or None when the device sent an all-zero or impossible date. `speed_kmh`,
    `course`, `altitude`, `satellites` and `battery` (percent) are None when the protocol or the
    device did not say. `extras` holds raw status bits and protocol-specific values (cell, mileage…).
    """

    time: datetime | None
    latitude: float
    longitude: float
    valid: bool
    speed_kmh: float | None = None
    course: float | None = None
    altitude: float | None = None
    satellites: int | None = None
    alarms: tuple[str, ...] = ()
    battery: float | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Message:
    """One decoded message.

    `terminal` identifies the sender where the message says who it is (GT06 login IMEI, JT/T 808
    terminal phone, OsmAnd id); GT06 messages after the login carry no identity and have None.
    `reply` is the frame the server answers with (None when the protocol wants none). `alarms` are
    alarms of messages without a fix (GT06 heartbeat, LBS alarm); alarms with a position are on the fix.
    `info` holds message-specific fields (auth code, register fields, terminal status, JT/T 808 header).
    """

    protocol: str
    kind: str
    terminal: str | None
    serial: int | None = None
    fixes: tuple[Fix, ...] = ()
    reply: bytes | None = None
    alarms: tuple[str, ...] = ()
    msg_type: int | None = None
    info: dict[str, Any] = field(default_factory=dict)


# --- helpers ----------------------------------------------------------------------------------------


def bcd_digits(data: bytes) -> str | None:
    """The decimal digits of packed BCD bytes, or None if a nibble is above 9."""
    digits = data.hex()
    return digits if digits.isdigit() else None


def luhn_check_digit(number: str) -> int:
    """The Luhn digit that completes `number` (IMEI check digit)."""
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10


def check_coordinates(latitude: float, longitude: float) -> None:
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        raise BadValue("coordinates are not finite numbers")
    if not -90.0 <= latitude <= 90.0:
        raise BadValue(f"latitude {latitude} is outside -90..90")
    if not -180.0 <= longitude <= 180.0:
        raise BadValue(f"longitude {longitude} is outside -180..180")


def iso_utc(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with `Z`; milliseconds or microseconds only when the time has them."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    if value.microsecond == 0:
        spec = "seconds"
    elif value.microsecond % 1000 == 0:
        spec = "milliseconds"
    else:
        spec = "microseconds"
    return value.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def fix_time_problem(fix: Fix, *, now: datetime, max_ahead: timedelta = timedelta(minutes=10)) -> str | None:
    """Why a fix's device time cannot be stored (far in the future), or None. Clock passed in: pure."""
    if fix.time is not None and fix.time > now + max_ahead:
        return f"device time {iso_utc(fix.time)} is more than {max_ahead} ahead of the server clock"
    return None
