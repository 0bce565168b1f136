"""OsmAnd HTTP protocol as the Traccar Client apps send it (docs/protocols.md#osmand).

- Classic app: parameters in the query string of a GET or POST (`id`, `timestamp`, `lat`, `lon`,
  `speed` in knots, `bearing`, `altitude`, `accuracy`, `batt` …); an empty query means the body is a form.
- Current app: POST with a JSON body `{"location": {"timestamp", "coords": {...}, "battery": {...}},
  "device_id"}`, speed in m/s, -1 meaning unknown. `location` may be a list (batch sync).

A request without an id, or with neither coordinates nor cell/WiFi data, is an error.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import parse_qs

from .common import ALARMS_UNREAD, BadValue, Fix, Message, check_coordinates

PROTOCOL = "osmand"
KNOTS_TO_KMH = 1.852
MPS_TO_KMH = 3.6
# Alarm names read from one request: Traccar Client sends one; Traccar joins several with commas.
# The others are only counted (Fix.extras[ALARMS_UNREAD]): reading a megabyte of names would hold
# up every other terminal's request.
MAX_ALARM_NAMES = 32
_MAX_SECONDS = 2**31 - 1  # larger Unix timestamps are milliseconds (Traccar's rule)
_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?")
_KNOWN = frozenset(
    {"id", "deviceid", "timestamp", "lat", "lon", "location", "speed", "bearing", "heading", "altitude", "accuracy"}
    | {"hdop", "batt", "valid", "alarm", "charge", "driverUniqueId", "cell", "wifi", "mock"}
    | {"key"}  # the terminal's key (tracking.gateway.http): a secret, never kept as an attribute
)


def decode_request(
    *,
    query: str | None = None,
    body: str | bytes | None = None,
    content_type: str | None = None,
    naive_tz: tzinfo = UTC,
) -> Message:
    """Decode one HTTP request: the query string if it has one, else the body (JSON or form)."""
    if query and query.lstrip("/?"):
        return decode_query(query, naive_tz=naive_tz)
    if body is None or not body.strip():
        raise BadValue("request has neither query parameters nor a body")
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    if (content_type and "json" in content_type.lower()) or text.lstrip().startswith(("{", "[")):
        return decode_json(text)
    return decode_query(text, naive_tz=naive_tz)


def decode_query(query: str, *, naive_tz: tzinfo = UTC) -> Message:
    """Decode the parameters of the classic app (`id=…&lat=…&lon=…`; a leading `/?` or a URL is allowed)."""
    if "?" in query:
        query = query.split("?", 1)[1]
    params = parse_qs(query, keep_blank_values=True)
    first = {key: values[0].strip() for key, values in params.items()}
    terminal = first.get("id") or first.get("deviceid")
    if not terminal:
        raise BadValue("missing id (or deviceid) parameter")
    time = parse_timestamp(first["timestamp"], naive_tz=naive_tz) if first.get("timestamp") else None
    cells = [_split(value) for value in params.get("cell", [])]
    wifis = [_split(value) for value in params.get("wifi", [])]
    coordinates = _coordinates(first)
    info: dict[str, Any] = {"id": terminal, "time": time}
    if cells:
        info["cells"] = cells
    if wifis:
        info["wifis"] = wifis
    if coordinates is None:
        if not (cells or wifis):
            raise BadValue("missing lat and lon (or location) parameters")
        return Message(PROTOCOL, "other", terminal, info=info)

    extras: dict[str, Any] = {}
    speed_kmh = None
    if first.get("speed"):
        knots = _number(first, "speed")
        extras["speed_knots"] = knots
        speed_kmh = round(knots * KNOTS_TO_KMH, 3)
    course = _optional_number(first, "bearing")
    if course is None:
        course = _optional_number(first, "heading")
    for key in ("accuracy", "hdop"):
        value = _optional_number(first, key)
        if value is not None:
            extras[key] = value
    if "charge" in first:
        extras["charging"] = _boolean(first["charge"])
    if "mock" in first:
        extras["mock"] = _boolean(first["mock"])
    if first.get("driverUniqueId"):
        extras["driver_unique_id"] = first["driverUniqueId"]
    for key, text in first.items():
        if key not in _KNOWN:
            extras[key] = text
    alarms, unread = _alarm_names(params.get("alarm", []))
    if unread:
        extras[ALARMS_UNREAD] = unread
    fix = Fix(
        time=time,
        latitude=coordinates[0],
        longitude=coordinates[1],
        valid=_boolean(first["valid"]) if first.get("valid") else True,
        speed_kmh=speed_kmh,
        course=course,
        altitude=_optional_number(first, "altitude"),
        alarms=alarms,
        battery=_optional_number(first, "batt"),
        extras=extras,
    )
    return Message(PROTOCOL, "location", terminal, fixes=(fix,), info=info)


def decode_json(body: str | bytes) -> Message:
    """Decode the JSON body of the current Traccar Client (one location or a list of them)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as error:  # RecursionError: absurdly deep nesting
        raise BadValue(f"body is not JSON: {error}") from error
    if not isinstance(data, dict):
        raise BadValue("JSON body is not an object")
    device = data.get("device_id")
    if device is None or isinstance(device, bool) or not str(device).strip():
        raise BadValue("missing device_id")
    terminal = str(device).strip()
    locations = data.get("location")
    if isinstance(locations, dict):
        locations = [locations]
    if not isinstance(locations, list) or not locations:
        raise BadValue("missing location object")
    fixes = tuple(_json_fix(location) for location in locations)
    kind = "batch" if isinstance(data["location"], list) else "location"
    return Message(PROTOCOL, kind, terminal, fixes=fixes, info={"id": terminal})


def _json_fix(location: Any) -> Fix:
    if not isinstance(location, dict) or not isinstance(location.get("coords"), dict):
        raise BadValue("location without a coords object")
    coords = location["coords"]
    latitude = _json_required(coords, "latitude")
    longitude = _json_required(coords, "longitude")
    check_coordinates(latitude, longitude)
    timestamp = location.get("timestamp")
    if timestamp is not None and not isinstance(timestamp, str | int | float):
        raise BadValue("timestamp is neither text nor a number")
    time = parse_timestamp(str(timestamp)) if timestamp not in (None, "") else None
    speed = _json_number(coords, "speed")
    heading = _json_number(coords, "heading")
    extras: dict[str, Any] = {}
    for source, target in (("accuracy", "accuracy"), ("altitude_accuracy", "altitude_accuracy")):
        value = _json_number(coords, source)
        if value is not None and value >= 0:
            extras[target] = value
    for key in ("is_moving", "odometer", "event", "mock", "uuid"):
        if key in location:
            extras[key] = location[key]
    battery = None
    if isinstance(location.get("battery"), dict):
        level = _json_number(location["battery"], "level")
        if level is not None and 0 <= level <= 1:
            battery = round(level * 100, 1)
        if isinstance(location["battery"].get("is_charging"), bool):
            extras["charging"] = location["battery"]["is_charging"]
    if isinstance(location.get("activity"), dict) and "type" in location["activity"]:
        extras["activity"] = location["activity"]["type"]
    return Fix(
        time=time,
        latitude=latitude,
        longitude=longitude,
        valid=True,
        speed_kmh=round(speed * MPS_TO_KMH, 3) if speed is not None and speed >= 0 else None,
        course=heading if heading is not None and heading >= 0 else None,
        altitude=_json_number(coords, "altitude"),
        battery=battery,
        extras=extras,
    )


def parse_timestamp(value: str, *, naive_tz: tzinfo = UTC) -> datetime:
    """Unix seconds (or milliseconds above 2^31-1), ISO 8601, or `yyyy-MM-dd HH:mm:ss` in `naive_tz`."""
    text = value.strip()
    try:
        if _NUMBER.fullmatch(text):
            number = int(text) if text.lstrip("+-").isdigit() else float(text)
            if number > _MAX_SECONDS:
                number /= 1000
            return datetime.fromtimestamp(number, UTC)
        if "T" in text:
            parsed = datetime.fromisoformat(text)
        else:  # Traccar reads this form in the server's zone: the caller says which (`naive_tz`)
            parsed = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=naive_tz)
    except (ValueError, OverflowError, OSError) as error:
        raise BadValue(f"timestamp {value!r} is neither Unix time nor ISO 8601") from error
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=naive_tz)
    return parsed.astimezone(UTC)


def _coordinates(params: dict[str, str]) -> tuple[float, float] | None:
    if params.get("lat") or params.get("lon"):
        latitude, longitude = _number(params, "lat"), _number(params, "lon")
    elif params.get("location"):
        parts = params["location"].split(",")
        if len(parts) != 2:
            raise BadValue("location parameter is not 'lat,lon'")
        latitude, longitude = _float(parts[0], "location"), _float(parts[1], "location")
    else:
        return None
    check_coordinates(latitude, longitude)
    return latitude, longitude


def _float(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BadValue(f"{name}={text!r} is not a number") from None
    if not math.isfinite(value):
        raise BadValue(f"{name}={text!r} is not a finite number")
    return value


def _number(params: dict[str, str], name: str) -> float:
    if not params.get(name):
        raise BadValue(f"missing {name} parameter")
    return _float(params[name], name)


def _optional_number(params: dict[str, str], name: str) -> float | None:
    return _float(params[name], name) if params.get(name) else None


def _json_required(data: dict[str, Any], name: str) -> float:
    value = _json_number(data, name)
    if value is None:
        raise BadValue(f"missing {name}")
    return value


def _json_number(data: dict[str, Any], name: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadValue(f"{name} is not a number")
    return float(value)


def _boolean(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",")]


def _alarm_names(values: list[str]) -> tuple[tuple[str, ...], int]:
    """The names of the `alarm` parameters, snake_cased, at most MAX_ALARM_NAMES; and how many more
    there were."""
    names: list[str] = []
    unread = 0
    for value in values:
        room = MAX_ALARM_NAMES - len(names)
        parts = value.split(",", room) if room > 0 else [value]
        if len(parts) > room:  # the last part holds the rest, unsplit
            rest = parts.pop()
            if rest.strip(" ,"):
                unread += rest.count(",") + 1
        names.extend(_snake(part) for part in parts if part.strip())
    return tuple(names), unread


def _snake(name: str) -> str:
    """Traccar-style camelCase alarm names (powerCut) to our snake_case vocabulary (power_cut)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name.strip()).lower().replace("-", "_").replace(" ", "_")
