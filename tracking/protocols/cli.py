"""`decode_frames`: JSON lines in, one JSON line out per input line (docs/architecture.md#decode_frames).

Input:  {"protocol": "gt06"|"jt808", "hex": "..."}  |  {"protocol": "osmand", "query": "id=...&lat=..."}
        |  {"protocol": "osmand", "body": "<JSON text of a Traccar Client POST>"}   (other keys ignored)
Output: {"kind", "terminal", "positions": [{"time", "latitude", "longitude", "speed_kmh", "course",
        "valid", "alarms"}], "reply_hex"}  or  {"error": "<reason>"}.

Each line is decoded as if it opened a new connection: GT06 times are UTC, JT/T 808 replies carry
platform serial 0 (and answer a register with the terminal id as auth code, as Traccar does), and
`reply_hex` is what the server sends back first ("" when nothing). Unknown speed or course (the JSON
client sends -1) are written as 0.0 to keep the numeric contract, as Traccar does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from io import TextIOBase
from typing import Any, TextIO

from . import gt06, jt808, osmand
from .common import Fix, Message, ProtocolError, UnknownType, iso_utc


class NotJsonLine(ValueError):
    pass


def decode_line(line: str) -> dict[str, Any]:
    """Decode one input line; never raises (a line that is not JSON gives an error object too)."""
    try:
        record = _parse(line)
    except NotJsonLine as error:
        return {"error": str(error)}
    return decode_record(record)


def decode_record(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        return {"error": "line is not a JSON object"}
    try:
        message = _decode(record)
    except ProtocolError as error:
        return {"error": f"{error.code}: {error}"}
    return message_to_dict(message)


def message_to_dict(message: Message) -> dict[str, Any]:
    return {
        "kind": message.kind,
        "terminal": message.terminal,
        "positions": [fix_to_dict(fix) for fix in message.fixes],
        "reply_hex": message.reply.hex() if message.reply else "",
    }


def fix_to_dict(fix: Fix) -> dict[str, Any]:
    return {
        "time": iso_utc(fix.time),
        "latitude": round(fix.latitude, 6),
        "longitude": round(fix.longitude, 6),
        "speed_kmh": float(fix.speed_kmh) if fix.speed_kmh is not None else 0.0,
        "course": float(fix.course) if fix.course is not None else 0.0,
        "valid": fix.valid,
        "alarms": list(fix.alarms),
    }


def run(stdin: Iterable[str], stdout: TextIO | TextIOBase) -> int:
    """Decode every line of `stdin` to `stdout`. Returns 0, or 1 if a line was not JSON.

    Blank lines are skipped. A line that is not JSON still gets an error line, so outputs stay aligned
    with inputs, and the exit status says the input was not JSON lines.
    """
    status = 0
    for line in stdin:
        if not line.strip():
            continue
        try:
            result = decode_record(_parse(line))
        except NotJsonLine as error:
            result = {"error": str(error)}
            status = 1
        stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
        stdout.flush()
    return status


def _parse(line: str) -> Any:
    try:
        return json.loads(line)
    except (ValueError, RecursionError) as error:
        raise NotJsonLine(f"not JSON: {error}") from None


def _decode(record: dict[str, Any]) -> Message:
    protocol = record.get("protocol")
    if protocol in ("gt06", "jt808"):
        text = record.get("hex")
        if not isinstance(text, str) or not text.strip():
            raise ProtocolError(f"{protocol} needs a non-empty 'hex' string")
        try:
            data = bytes.fromhex(text.strip().removeprefix("0x"))
        except ValueError as error:
            raise ProtocolError(f"'hex' is not hexadecimal: {error}") from None
        return gt06.decode(data) if protocol == "gt06" else jt808.decode(data, platform_serial=0)
    if protocol == "osmand":
        query, body = record.get("query"), record.get("body")
        if isinstance(body, dict | list):
            body = json.dumps(body)
        if not isinstance(query, str | None) or not isinstance(body, str | None):
            raise ProtocolError("'query' and 'body' must be strings")
        content_type = record.get("content_type")
        return osmand.decode_request(
            query=query, body=body, content_type=content_type if isinstance(content_type, str) else None
        )
    raise UnknownType(f"unknown protocol {protocol!r}; expected gt06, jt808 or osmand")
