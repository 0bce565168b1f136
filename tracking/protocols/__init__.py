"""Pure protocol layer: bytes or text in, `Message`/`Fix` dataclasses out. No Django imports here."""

from .common import (
    BadChecksum,
    BadEscape,
    BadFraming,
    BadLength,
    BadValue,
    Fix,
    FrameTooLong,
    Message,
    ProtocolError,
    Truncated,
    UnknownType,
    Unsupported,
)

__all__ = [
    "BadChecksum",
    "BadEscape",
    "BadFraming",
    "BadLength",
    "BadValue",
    "Fix",
    "FrameTooLong",
    "Message",
    "ProtocolError",
    "Truncated",
    "UnknownType",
    "Unsupported",
]
