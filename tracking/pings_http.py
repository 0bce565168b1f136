"""POST /api/v1/pings: validating a JSON batch of positions from an integration.

Validation is plain Python rather than a DRF serializer per item: a 1,000-ping batch must cost
milliseconds (DRF's field machinery costs ~50 µs an item). Every problem of every item is
reported at once, keyed "pings.<index>.<field>", and a batch with any problem stores nothing, so
an integration can fix and resend the whole batch safely (stored pings deduplicate anyway).
"""

import datetime
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from ebike_registry.lengths import stored_length
from tracking.gateway.terminals import secret_digest
from tracking.ingest import (
    LIVENESS_S,
    BatchResult,
    CheckedFixes,
    Incoming,
    LastFixes,
    check_fixes,
    fix_problem,
    id_array,
    ingest_fixes,
)
from tracking.models import Terminal
from tracking.protocols.common import Fix
from tracking.recent import Recent

MAX_BATCH = 1000
IMEI_LENGTH = stored_length(Terminal, "imei")
# Alarm names in one ping: more than any terminal raises at once (each kind is stored once, at most
# GATEWAY_MAX_ALARMS_PER_FIX of them).
MAX_ALARM_NAMES = 16
ALARM_NAME_LENGTH = 40
_UNSEEN: Any = object()
NUMBER_FIELDS = {
    "speed_kmh": (0.0, 400.0),
    "course": (0.0, 360.0),
    "altitude": (-500.0, 9000.0),
    "satellites": (0, 64),
    "battery": (0, 100),
}


class Bearer(NamedTuple):
    """An active ingestion token: for one terminal, or (terminal_id None) for an integration."""

    id: int
    terminal_id: int | None


BEARER_SQL = "SELECT id, terminal_id FROM tracking_ingesttoken WHERE token_sha256 = %s AND active"


def token_lookup(header: str) -> Bearer | None:
    """The active token an Authorization header carries, or None. One plain query: building a
    queryset and a model instance was a twentieth of a 1,000-ping request's time."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    with connection.cursor() as cursor:
        cursor.execute(BEARER_SQL, [secret_digest(token.strip())])
        row = cursor.fetchone()
    return None if row is None else Bearer(*row)


def _parse_time(value: Any, seen: dict[str, datetime.datetime | None]) -> datetime.datetime | None:
    """An aware datetime from ISO 8601 text, or None. `seen` holds the batch's texts parsed so far:
    its pings share few distinct times, and one object per time also makes each later use of it
    (sorting, hashing, epoch seconds) cheaper than for a thousand equal copies."""
    if type(value) is not str:
        return None
    parsed = seen.get(value, _UNSEEN)
    if parsed is _UNSEEN:
        try:
            parsed = datetime.datetime.fromisoformat(value)  # Python 3.11 reads "Z" and offsets alike
        except ValueError:
            parsed = None
        else:
            if parsed.tzinfo is None:
                parsed = None
        seen[value] = parsed
    return parsed


def _in_range(value: Any, low: float, high: float) -> bool:
    """A JSON number (not a boolean) within [low, high]; NaN and infinities are never within."""
    kind = type(value)
    return (kind is float or kind is int) and low <= value <= high


def parse_ping(
    item: Any, prefix: str, errors: dict[str, list[str]], times: dict[str, datetime.datetime | None]
) -> tuple[str, Fix] | None:
    if type(item) is not dict:
        errors[prefix] = ["Expected a JSON object."]
        return None
    get = item.get
    mark = len(errors)
    terminal = get("terminal")
    if type(terminal) is not str or not terminal or len(terminal) > IMEI_LENGTH:
        errors[f"{prefix}.terminal"] = [f"Give the terminal's IMEI (at most {IMEI_LENGTH} characters)."]
    time = _parse_time(get("time"), times)
    if time is None:
        errors[f"{prefix}.time"] = ["Give the device time as ISO 8601 with a time zone, e.g. 2026-11-28T08:00:00Z."]
    latitude, longitude = get("latitude"), get("longitude")
    if not _in_range(latitude, -90.0, 90.0):
        errors[f"{prefix}.latitude"] = ["Give the latitude in degrees (WGS-84), -90 to 90."]
    if not _in_range(longitude, -180.0, 180.0):
        errors[f"{prefix}.longitude"] = ["Give the longitude in degrees (WGS-84), -180 to 180."]
    extra: dict[str, Any] = {}
    for key, (low, high) in NUMBER_FIELDS.items():
        value = get(key)
        if value is not None and not _in_range(value, low, high):
            errors[f"{prefix}.{key}"] = [f"{key} must be a number from {low:g} to {high:g}."]
        extra[key] = value
    valid = get("valid", True)
    if type(valid) is not bool:
        errors[f"{prefix}.valid"] = ["valid must be true or false."]
    alarms = get("alarms", [])
    if (
        type(alarms) is not list
        or len(alarms) > MAX_ALARM_NAMES
        or (alarms and not all(type(a) is str and 0 < len(a) <= ALARM_NAME_LENGTH for a in alarms))
    ):
        errors[f"{prefix}.alarms"] = [
            f"alarms must be a list of at most {MAX_ALARM_NAMES} alarm names of 1 to {ALARM_NAME_LENGTH} characters."
        ]
    if len(errors) > mark:
        return None
    speed, course, altitude = extra["speed_kmh"], extra["course"], extra["altitude"]
    satellites, battery = extra["satellites"], extra["battery"]
    fix = Fix(
        time,
        float(latitude),  # type: ignore[arg-type]  # a number: _in_range above
        float(longitude),  # type: ignore[arg-type]  # a number: _in_range above
        valid,
        None if speed is None else float(speed),
        None if course is None else float(course),
        None if altitude is None else float(altitude),
        None if satellites is None else int(satellites),
        tuple(alarms),
        None if battery is None else float(battery),
    )
    return terminal, fix  # type: ignore[return-value]  # a str: checked above


@dataclass(slots=True)
class KnownTerminal:
    id: int
    seen_at: float | None  # last_seen_at as read, or as this worker's commits set it (epoch seconds)


# The active terminals among a batch's IMEIs this worker has not read lately, with when each was
# last heard (whose liveness to refresh).
KNOWN_SQL = (
    "SELECT imei, id, extract(epoch FROM last_seen_at)::float8 FROM tracking_terminal "
    "WHERE imei = ANY(%s::text[]) AND active"
)
# A worker trusts what it read of a terminal for this long. Reading a batch's thousand terminals
# again for every request was a fifth of the database's work for POST /api/v1/pings. A terminal
# registered meanwhile is read at its first ping (unknown IMEIs are not remembered); a terminal
# saved or deleted is forgotten at once by this process (the signal below) and refused by every
# worker within this TTL once retired, as the gateway's TerminalDirectory does at login.
TERMINAL_TTL_S = 60.0
TERMINALS: Recent[str, KnownTerminal] = Recent(TERMINAL_TTL_S)
# What this worker's commits left in tracking_lastposition (LastFixes): the outlier check reads
# only the other terminals' last positions back.
LAST_FIXES = LastFixes()


@receiver([post_save, post_delete], sender=Terminal, dispatch_uid="pings_http_forget_terminal")
def _forget_terminal(sender: type[Terminal], instance: Terminal, **kwargs: Any) -> None:
    TERMINALS.forget([instance.imei])


def _active_terminals(imeis: list[str]) -> dict[str, KnownTerminal]:
    """The active ones among `imeis`: those read lately from TERMINALS, the others by one query
    with one array parameter, not a thousand. IMEIs are digits (tracking.services.imei_problem):
    anything else names no terminal and stays out of the literal."""
    now = time.monotonic()
    remembered = TERMINALS.getter(now)
    known: dict[str, KnownTerminal] = {}
    missing = []
    for imei in imeis:
        terminal = remembered(imei)
        if terminal is not None:
            known[imei] = terminal
        elif imei.isascii() and imei.isdigit():
            missing.append(imei)
    if missing:
        with connection.cursor() as cursor:
            cursor.execute(KNOWN_SQL, [id_array(missing)])
            read = {imei: KnownTerminal(tid, seen) for imei, tid, seen in cursor.fetchall()}
        TERMINALS.put(read, now)
        known.update(read)
    return known


@dataclass
class Parsed:
    """A request's pings to store (or its problems), with what was read of their terminals."""

    checked: CheckedFixes = field(default_factory=lambda: CheckedFixes(()))
    errors: dict[str, list[str]] = field(default_factory=dict)
    terminals: dict[int, KnownTerminal] = field(default_factory=dict)

    def liveness(self, now: float) -> list[int]:
        """Terminals whose last_seen_at is over a minute old (SEEN_SQL would skip the others)."""
        stale = now - LIVENESS_S
        return [t.id for t in self.terminals.values() if t.seen_at is None or t.seen_at < stale]


def parse_batch(body: Any, token: Bearer) -> Parsed:
    """Items to store, or the problems with the request keyed by field path."""
    if isinstance(body, dict) and "pings" in body:
        items, prefix = body["pings"], "pings"
    elif isinstance(body, dict):
        items, prefix = [body], None
    else:
        return Parsed(errors={"non_field_errors": ['Send one ping object or {"pings": [...]}.']})
    if not isinstance(items, list) or not items:
        return Parsed(errors={"pings": ["pings must be a non-empty list."]})
    if len(items) > MAX_BATCH:
        return Parsed(errors={"pings": [f"At most {MAX_BATCH} pings per request; this one has {len(items)}."]})
    errors: dict[str, list[str]] = {}
    parsed = []
    times: dict[str, datetime.datetime | None] = {}
    for index, item in enumerate(items):
        key = f"{prefix}.{index}" if prefix else "ping"
        parsed.append((key, parse_ping(item, key if prefix else "", errors, times)))
    if prefix is None:  # a single ping: report its fields at the top level
        errors = {k.lstrip("."): v for k, v in errors.items()}
    imeis = {p[1][0] for p in parsed if p[1] is not None}
    known = _active_terminals(sorted(imeis))
    senders: list[tuple[str, Fix, str | None]] = []  # each ping's key, fix and why its sender is refused
    incoming = []
    terminals: dict[int, KnownTerminal] = {}
    for key, result in parsed:
        if result is None:
            continue
        imei, fix = result
        terminal = known.get(imei)
        refusal = None
        if terminal is None:
            refusal = f"Unknown or retired terminal {imei}."
        elif token.terminal_id is not None and token.terminal_id != terminal.id:
            refusal = "This token may only send positions for its own terminal."
        else:
            incoming.append(Incoming(terminal.id, fix))
            terminals[terminal.id] = terminal
        senders.append((key, fix, refusal))
    now = datetime.datetime.now(datetime.UTC)
    checked = check_fixes(incoming, now=now)
    problems = dict(checked.rejected)
    checked_index = 0
    for key, fix, refusal in senders:  # the problems of each ping together, in the request's order
        if refusal is None:
            problem = problems.get(checked_index)
            checked_index += 1
        else:  # never stored (the request is refused), but reported with the rest
            problem = fix_problem(fix, now=now)
        if problem is not None:
            where = "time" if problem.about == "time" else "latitude"
            errors[f"{key}.{where}" if prefix else where] = [str(problem)]
        if refusal is not None:
            errors[f"{key}.terminal" if prefix else "terminal"] = [refusal]
    return Parsed(checked, errors, terminals)


def store(parsed: Parsed) -> BatchResult:
    """Store a request's checked pings in one transaction. Once it commits, LAST_FIXES learns their
    terminals' last positions and TERMINALS the liveness it refreshed."""
    started = time.monotonic()
    heard_at = time.time()
    due = parsed.liveness(heard_at)
    result = ingest_fixes(  # parse_batch checked every fix (the request stores none when one has a problem)
        parsed.checked,
        liveness=due,
        last_known=LAST_FIXES.getter(started),
    )

    def committed() -> None:
        LAST_FIXES.put(result.latest, time.monotonic())
        for terminal_id in due:
            parsed.terminals[terminal_id].seen_at = heard_at

    transaction.on_commit(committed)
    return result
