"""PROXY protocol version 2 (the binary header HAProxy sends with `send-proxy-v2`).

With HAProxy in front of the gateway every connection's socket address is HAProxy's. A connection
from an address listed in GATEWAY_PROXY_FROM must begin with a v2 header naming the real client,
which becomes the session's remote address (the proxy's is kept beside it); from any other address
no header is read, and bytes that look like one are the terminal's own (garbage to its framer). A
header is bounded (MAX_HEADER bytes) and must arrive whole within the login deadline like any
other first bytes.

Layout: 12 signature bytes, version/command (0x21 PROXY or 0x20 LOCAL), family/transport (0x11
TCP over IPv4, 0x21 TCP over IPv6), a big-endian length, the addresses (source, destination,
source port, destination port), then TLVs, which are skipped.
"""

from __future__ import annotations

import ipaddress
import struct

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
FIXED = 16  # signature, version/command, family, length
MAX_HEADER = 536  # the most a sender may need for addresses and the TLVs HAProxy adds


class ProxyHeaderError(ValueError):
    pass


def parse(data: bytes | bytearray) -> tuple[int, tuple[str, int] | None] | None:
    """None while the header is incomplete; else (its length, the client's address and port, or
    None for a LOCAL connection (the proxy's own health check) or an unspecified family).
    Raises ProxyHeaderError for anything that is not a valid v2 header."""
    head = bytes(data[:FIXED])
    if SIGNATURE[: len(head)] != head[: len(SIGNATURE)]:
        raise ProxyHeaderError("no PROXY v2 signature")
    if len(data) < FIXED:
        return None
    version_command, family, length = head[12], head[13], struct.unpack("!H", head[14:16])[0]
    if version_command >> 4 != 2 or version_command & 0x0F > 1:
        raise ProxyHeaderError(f"version/command {version_command:#04x}")
    total = FIXED + length
    if total > MAX_HEADER:
        raise ProxyHeaderError(f"header of {total} bytes")
    if len(data) < total:
        return None
    if version_command & 0x0F == 0:  # LOCAL: the proxy speaking for itself
        return total, None
    body = bytes(data[FIXED:total])
    if family == 0x11:
        if length < 12:
            raise ProxyHeaderError("IPv4 addresses cut short")
        source = str(ipaddress.IPv4Address(body[0:4]))
        port = struct.unpack("!H", body[8:10])[0]
    elif family == 0x21:
        if length < 36:
            raise ProxyHeaderError("IPv6 addresses cut short")
        address = ipaddress.IPv6Address(body[0:16])
        source = str(address.ipv4_mapped or address)
        port = struct.unpack("!H", body[32:34])[0]
    elif family == 0x00:
        return total, None
    else:
        raise ProxyHeaderError(f"family {family:#04x} is not TCP")
    return total, (source, port)


def header(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """A v2 PROXY header for TCP (what HAProxy sends); for tests, the simulator and the bench."""
    src, dst = ipaddress.ip_address(source[0]), ipaddress.ip_address(destination[0])
    if src.version != dst.version:
        raise ValueError("source and destination of different families")
    family = 0x11 if src.version == 4 else 0x21
    body = src.packed + dst.packed + struct.pack("!HH", source[1], destination[1])
    return SIGNATURE + bytes([0x21, family]) + struct.pack("!H", len(body)) + body
