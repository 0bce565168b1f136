"""POST /api/v1/pings: validating a JSON batch of positions from an integration.

Validation is plain Python rather than a DRF serializer per item: a 1,000-ping batch must cost
milliseconds (DRF's field machinery costs ~50 µs an item). Every problem of every item is
reported at once, keyed "pings.<index>.<field>", and a batch with any problem stores nothing, so
an integration can fix and resend the whole batch safely (stored pings deduplicate anyway).
"""

import datetime
import hashlib
import math
from typing import Any

from django.db import connection

from tracking.ingest import Incoming, fix_problem, id_array
from tracking.models import IngestToken
from tracking.protocols.common import Fix

MAX_BATCH = 1000
NUMBER_FIELDS = {
    "speed_kmh": (0.0, 400.0),
    "course": (0.0, 360.0),
    "altitude": (-500.0, 9000.0),
    "satellites": (0, 64),
    "battery": (0, 100),
}


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_lookup(header: str) -> IngestToken | None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return IngestToken.objects.filter(token_sha256=token_digest(token.strip()), active=True).first()


def _parse_time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def parse_ping(item: Any, prefix: str, errors: dict[str, list[str]]) -> tuple[str, Fix] | None:
    if not isinstance(item, dict):
        errors[prefix] = ["Expected a JSON object."]
        return None
    mark = len(errors)
    terminal = item.get("terminal")
    if not isinstance(terminal, str) or not terminal:
        errors[f"{prefix}.terminal"] = ["Give the terminal's IMEI."]
    time = _parse_time(item.get("time"))
    if time is None:
        errors[f"{prefix}.time"] = ["Give the device time as ISO 8601 with a time zone, e.g. 2026-11-28T08:00:00Z."]
    coords = {}
    for key, low, high in (("latitude", -90.0, 90.0), ("longitude", -180.0, 180.0)):
        value = _number(item.get(key))
        if value is None or not low <= value <= high:
            errors[f"{prefix}.{key}"] = [f"Give the {key} in degrees (WGS-84), {low:g} to {high:g}."]
        else:
            coords[key] = value
    extra: dict[str, float | None] = {}
    for key, (low, high) in NUMBER_FIELDS.items():
        raw = item.get(key)
        if raw is None:
            extra[key] = None
            continue
        value = _number(raw)
        if value is None or not low <= value <= high:
            errors[f"{prefix}.{key}"] = [f"{key} must be a number from {low:g} to {high:g}."]
        else:
            extra[key] = value
    valid = item.get("valid", True)
    if not isinstance(valid, bool):
        errors[f"{prefix}.valid"] = ["valid must be true or false."]
    alarms = item.get("alarms", [])
    if not isinstance(alarms, list) or not all(isinstance(a, str) and 0 < len(a) <= 40 for a in alarms):
        errors[f"{prefix}.alarms"] = ["alarms must be a list of alarm names."]
    if len(errors) > mark:
        return None
    satellites = extra["satellites"]
    fix = Fix(
        time=time,
        latitude=coords["latitude"],
        longitude=coords["longitude"],
        valid=valid,
        speed_kmh=extra["speed_kmh"],
        course=extra["course"],
        altitude=extra["altitude"],
        satellites=None if satellites is None else int(satellites),
        battery=extra["battery"],
        alarms=tuple(alarms),
    )
    return terminal, fix  # type: ignore[return-value]


def _active_terminals(imeis: list[str]) -> dict[str, int]:
    """{imei: id} of the active ones among `imeis`: one array parameter, not a thousand. IMEIs are
    digits (tracking.services.imei_problem): anything else names no terminal and stays out of the literal."""
    imeis = [imei for imei in imeis if imei.isascii() and imei.isdigit()]
    if not imeis:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT imei, id FROM tracking_terminal WHERE imei = ANY(%s::text[]) AND active", [id_array(imeis)]
        )
        return dict(cursor.fetchall())


def parse_batch(body: Any, token: IngestToken) -> tuple[list[Incoming], dict[str, list[str]]]:
    """Items to store, or the problems with the request keyed by field path."""
    if isinstance(body, dict) and "pings" in body:
        items, prefix = body["pings"], "pings"
    elif isinstance(body, dict):
        items, prefix = [body], None
    else:
        return [], {"non_field_errors": ['Send one ping object or {"pings": [...]}.']}
    if not isinstance(items, list) or not items:
        return [], {"pings": ["pings must be a non-empty list."]}
    if len(items) > MAX_BATCH:
        return [], {"pings": [f"At most {MAX_BATCH} pings per request; this one has {len(items)}."]}
    errors: dict[str, list[str]] = {}
    parsed = []
    for index, item in enumerate(items):
        key = f"{prefix}.{index}" if prefix else "ping"
        parsed.append((key, parse_ping(item, key if prefix else "", errors)))
    if prefix is None:  # a single ping: report its fields at the top level
        errors = {k.lstrip("."): v for k, v in errors.items()}
    imeis = {p[1][0] for p in parsed if p[1] is not None}
    known = _active_terminals(sorted(imeis))
    incoming = []
    now = datetime.datetime.now(datetime.UTC)
    for key, result in parsed:
        if result is None:
            continue
        imei, fix = result
        field = f"{key}.terminal" if prefix else "terminal"
        problem = fix_problem(fix, now=now)
        if problem:
            where = "time" if "time" in problem else "latitude"
            errors[f"{key}.{where}" if prefix else where] = [problem]
        terminal_id = known.get(imei)
        if terminal_id is None:
            errors[field] = [f"Unknown or retired terminal {imei}."]
        elif token.terminal_id is not None and token.terminal_id != terminal_id:
            errors[field] = ["This token may only send positions for its own terminal."]
        else:
            incoming.append(Incoming(terminal_id, fix))
    return incoming, errors
