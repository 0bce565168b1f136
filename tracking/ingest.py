"""Storing terminal positions: the one entry point every transport uses (gateway, HTTP, replays).

A batch is written in ONE transaction: COPY into a session-local staging table, an insert into the
partitioned ping table (a plain one in a savepoint, and INSERT … ON CONFLICT DO NOTHING when that
meets a stored (terminal, device time): each is stored once, whatever the retries), the presence
cells, the last-position upsert, terminal alarms, and an outbox row that drives the derived work in
Celery. Callers acknowledge a message only after `commit` returned.

The batch logic is written once, as a generator that yields database operations (`Query`, `Copy`,
`Attempt`) and receives their results; `run_sync` (Django / psycopg connection) and the gateway
writer's pipelined `drive_plan` (psycopg AsyncConnection) drive it. Nothing here
touches the ORM: at tens of thousands of positions a second the ORM would be the bottleneck.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import struct
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from math import asin, cos, sin, sqrt
from typing import Any

from geopy.distance import geodesic

from tracking.cells import PRESENCE_ROWS_SQL, presence_of
from tracking.protocols import gt06, jt808
from tracking.protocols.common import ALARMS_UNREAD, Fix, fix_time_problem
from tracking.recent import Recent
from vehicles.subqueries import VEHICLE_STATES_SQL

LastFix = tuple[float, float, float]  # (epoch seconds, latitude, longitude) of a last position

# A position that implies a faster trip from the previous fix is not where the bike was. E-bikes
# are limited to 25 km/h, but a stolen bike can ride in a van: only what no road trip explains is
# flagged. Outliers are stored, flagged, and never become the last position.
DEFAULT_OUTLIER_SPEED_KMH = 150.0
# great_circle is within 0.5 % of the geodesic distance; only fixes this close to the limit pay for
# the exact (about ten times slower) geodesic computation.
SCREEN_MARGIN = 0.01

PING_COLUMNS = (
    "terminal_id",
    "device_time",
    "received_at",
    "point",
    "speed_kmh",
    "course",
    "altitude",
    "satellites",
    "valid",
    "battery",
    "alarms",
    "outlier",
    "session_id",
)
_COLUMNS = ", ".join(PING_COLUMNS)

# The gateway writer's staging table, kept for the connection's life. ON COMMIT DELETE ROWS (as in
# STAGE_DDL below) truncates the table's file at every commit, and ftruncate waits for the file
# system: while the kernel wrote back dirty pages or committed its journal, a batch's commit
# stalled for 0.1-0.4 s (strace of the writer's backends at 25,000 pings/s), and every terminal's
# ack with it. The writer's batches delete their rows instead (STAGE_CLEAR_SQL) and the writer
# vacuums the dead ones away, never truncating the file: it keeps the size of a few batches and no
# file-system call is left on the commit path.
WRITER_STAGE_DDL = "CREATE TEMP TABLE IF NOT EXISTS ping_stage (LIKE tracking_ping INCLUDING DEFAULTS)"
# The staging table of a caller that stores a batch now and then: each commit empties it.
STAGE_DDL = WRITER_STAGE_DDL + " ON COMMIT DELETE ROWS"
STAGE_CLEAR_SQL = "DELETE FROM ping_stage"
STAGE_VACUUM_SQL = "VACUUM (TRUNCATE false) ping_stage"
COPY_SQL = f"COPY ping_stage ({_COLUMNS}) FROM STDIN"
# First tried as a plain insert in a savepoint: a batch without a (terminal, device time) already
# stored, the rule, then skips the conflict check of every row. A retried batch fails it on the
# unique key and is inserted again by INSERT_SQL.
INSERT_NEW_SQL = f"INSERT INTO tracking_ping ({_COLUMNS}) SELECT {_COLUMNS} FROM ping_stage"  # noqa: S608
# Answers one row, the number stored (a row per stored ping only to count them cost the gateway
# more than the insert).
INSERT_SQL = (
    f"WITH stored AS (INSERT INTO tracking_ping ({_COLUMNS}) SELECT {_COLUMNS} FROM ping_stage "  # noqa: S608
    "ON CONFLICT (terminal_id, device_time) DO NOTHING RETURNING 1) SELECT count(*) FROM stored"
)
# Epoch seconds rather than a timestamp: parsing thousands of timestamps per batch showed in profiles.
LAST_SQL = (
    "SELECT terminal_id, extract(epoch FROM device_time)::float8, ST_Y(point::geometry), ST_X(point::geometry) "
    "FROM tracking_lastposition WHERE terminal_id = ANY(%s::bigint[])"
)
# Each terminal's newest plausible fix of the batch.
_NEWEST_STAGED = """
SELECT DISTINCT ON (s.terminal_id) s.terminal_id, s.device_time, s.received_at, s.point, s.speed_kmh, s.course,
       s.valid, s.battery
FROM ping_stage s
WHERE NOT s.outlier AND s.valid{only} ORDER BY s.terminal_id, s.device_time DESC
"""
# Terminals with a last position (nearly all of them, nearly always) move it with a plain update:
# INSERT … ON CONFLICT DO UPDATE locks each row first, a WAL record of its own per position (an
# eighth of the gateway's WAL), and probes the key twice. Only the missing bikes' rows change an
# indexed column (missing_point): the others are HOT updates.
UPDATE_LAST_SQL = (
    """
UPDATE tracking_lastposition lp SET
    device_time = s.device_time, received_at = s.received_at, point = s.point, speed_kmh = s.speed_kmh,
    course = s.course, valid = s.valid, battery = s.battery,
    missing_point = CASE WHEN lp.missing_point IS NOT NULL THEN s.point END
FROM ("""
    + _NEWEST_STAGED.format(only="")
    + """) s
WHERE lp.terminal_id = s.terminal_id AND lp.device_time < s.device_time
"""
)
# Terminals without one, as far as the batch knew: their first position (or, when another writer
# stored one meanwhile, the newer of the two). No join: a new row starts without missing_point, and
# FLAG_MISSING_SQL follows for them (joining each row's terminal and bike cost a third of the upsert).
UPSERT_LAST_SQL = (
    """
INSERT INTO tracking_lastposition
    (terminal_id, device_time, received_at, point, speed_kmh, course, valid, battery)
"""
    + _NEWEST_STAGED.format(only=" AND s.terminal_id = ANY(%s::bigint[])")
    + """
ON CONFLICT (terminal_id) DO UPDATE SET
    device_time = EXCLUDED.device_time, received_at = EXCLUDED.received_at, point = EXCLUDED.point,
    speed_kmh = EXCLUDED.speed_kmh, course = EXCLUDED.course, valid = EXCLUDED.valid, battery = EXCLUDED.battery,
    missing_point = CASE WHEN tracking_lastposition.missing_point IS NOT NULL THEN EXCLUDED.point END
WHERE tracking_lastposition.device_time < EXCLUDED.device_time
"""
)
# Brings missing_point in line with the stolen state of each terminal's bike (a condition on t.id
# or t.vehicle_id narrows it; tracking.services uses it when a bike is reported stolen or found).
FLAG_MISSING_SQL = (
    """
UPDATE tracking_lastposition lp
SET missing_point = CASE WHEN v.status = 'stolen' THEN lp.point END
FROM tracking_terminal t LEFT JOIN ("""
    + VEHICLE_STATES_SQL
    + """) v ON v.id = t.vehicle_id
WHERE t.id = lp.terminal_id AND (lp.missing_point IS NOT NULL) <> COALESCE(v.status = 'stolen', false)
"""
)
NEW_LAST_FLAG_SQL = FLAG_MISSING_SQL + " AND t.id = ANY(%s::bigint[])"
# Terminal alarms, those of the batch's fixes (with the fix's point) and those sent without one,
# from arrays the batch builds: joining the staging table (no statistics) to tracking_terminal had
# the planner hash the whole terminal table for every batch holding an alarm.
ALARM_SQL = """
INSERT INTO tracking_alarm (terminal_id, vehicle_id, kind, source, at, received_at, point, status, note)
SELECT t.id, t.vehicle_id, a.kind, 'terminal', a.at, %s, a.point::geography, 'new', a.note
FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::text[], %s::text[])
    AS a(terminal_id, kind, at, point, note)
JOIN tracking_terminal t ON t.id = a.terminal_id
ON CONFLICT (terminal_id, kind, at) DO NOTHING
"""
# Liveness to the minute is enough for offline alarms, and skips rewriting hot terminal rows.
LIVENESS_S = 60  # the interval of SEEN_SQL
SEEN_SQL = (
    "UPDATE tracking_terminal SET last_seen_at = now() WHERE id = ANY(%s::bigint[]) "
    "AND (last_seen_at IS NULL OR last_seen_at < now() - interval '60 seconds')"
)
# The terminal's own defence bit (GT06 terminal information, bit 0): written when it changes.
DEFENCE_SQL = (
    "UPDATE tracking_terminal t SET device_armed = v.armed, device_armed_changed_at = now() "
    "FROM unnest(%s::bigint[], %s::boolean[]) AS v(id, armed) "
    "WHERE t.id = v.id AND t.device_armed IS DISTINCT FROM v.armed"
)
OUTBOX_SQL = (
    "INSERT INTO tracking_ingestoutbox (created_at, terminal_ids, first_device_time, last_device_time) "
    "VALUES (now(), %s, %s, %s)"
)


@dataclass(slots=True)  # one per position: unfrozen for speed, as tracking.protocols.common.Fix
class Incoming:
    """A fix to store for a known terminal (the caller resolved the terminal's identity)."""

    terminal_id: int
    fix: Fix
    session_id: int | None = None  # the gateway connection it came in on (TerminalSession)


@dataclass(frozen=True, slots=True)
class BareAlarm:
    """An alarm sent without a position (GT06 heartbeat or LBS alarm). `note`: the raw text of an
    `other` alarm (`bare_alarms` fills it)."""

    terminal_id: int
    kind: str
    at: datetime.datetime
    note: str = ""


# --- alarm names -------------------------------------------------------------------------------------

OTHER_ALARM = "other"
# Alarms kept per position or per message without one (GATEWAY_MAX_ALARMS_PER_FIX): a real terminal
# raises one or two at a time.
MAX_ALARMS_PER_FIX = 8
ALARM_NOTE_LENGTH = 200  # Alarm.note
# What a terminal can raise: the names the decoders give (GT06 alarm codes and terminal-information
# bits, JT/T 808 alarm bits and the directions of its area and route alarms), and `other` for the
# rest. The kinds the system derives (offline, displacement, sighting, terminal conflicts) are not
# among them: a terminal that names one raises `other`.
TERMINAL_ALARMS = frozenset(
    {
        *gt06.ALARM_NAMES.values(),
        *gt06.TERMINAL_INFO_ALARMS.values(),
        *jt808.ALARM_BITS.values(),
        "geofence_enter",
        "geofence_exit",
        "route_enter",
        "route_exit",
        OTHER_ALARM,
    }
)
# Traccar's names (OsmAnd clients, integrations), snake_cased, for alarms the decoders name otherwise.
ALARM_ALIASES = {
    "fall_down": "fall",
    "accident": "collision",
    "tow": "movement",
    "shock": "vibration",
    "tampering": "tamper",
    "removing": "cover_removed",
    "hard_acceleration": "harsh_acceleration",
    "hard_braking": "braking",
    "gps_antenna_cut": "gnss_antenna_cut",
}
_LONGEST_ALARM = max(map(len, TERMINAL_ALARMS | ALARM_ALIASES.keys()))
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")


@dataclass(frozen=True, slots=True)
class AlarmKinds:
    """Alarm names as they are stored: `kinds` in our vocabulary, `note` the raw text of the names
    stored as `other`, `dropped` the names not stored at all."""

    kinds: tuple[str, ...]
    note: str = ""
    dropped: int = 0


def alarm_kind(name: str) -> str | None:
    """Our kind for an alarm name as a decoder gives it or in Traccar's camelCase (powerCut), or
    None for a name we do not know."""
    if name in TERMINAL_ALARMS:
        return name
    if len(name) > _LONGEST_ALARM + 8:  # not even a spelling of a known one
        return None
    key = _CAMEL_HUMP.sub(r"_\1", name.strip()).lower().replace("-", "_").replace(" ", "_")
    if key in TERMINAL_ALARMS:
        return key
    return ALARM_ALIASES.get(key)


def alarm_note(names: Iterable[str]) -> str:
    """The raw text of unknown alarm names for Alarm.note: at most ALARM_NOTE_LENGTH characters,
    the unprintable ones (PostgreSQL refuses NUL in text) as "?"."""
    text = ", ".join(name[:ALARM_NOTE_LENGTH] for name in names)
    if len(text) > ALARM_NOTE_LENGTH:
        text = text[: ALARM_NOTE_LENGTH - 1] + "\u2026"
    return "".join(char if char.isprintable() else "?" for char in text)


def alarm_kinds(names: Sequence[str], *, limit: int = MAX_ALARMS_PER_FIX, unread: int = 0) -> AlarmKinds:
    """The alarms of one position (or message) as stored: each known name as its kind, the unknown
    ones together as one `other` with their raw text in `note`, each kind once, at most `limit`
    kinds in the order sent. Only the first 4 x `limit` names are read; the names past them, those
    whose kind did not fit under the limit and `unread` (names the decoder did not read) are dropped.

    No name can make the database refuse a batch (Alarm.kind is 40 characters, Alarm.note 200), and
    a message naming ten thousand alarms costs what one naming 32 does."""
    window = names[: 4 * limit] if limit > 0 else ()
    dropped = len(names) - len(window) + unread
    kinds: list[str] = []
    unknown: list[str] = []
    for name in window:
        if not name:
            continue
        kind = alarm_kind(name)
        if kind is None:
            kind = OTHER_ALARM
            unknown.append(name)
        if kind in kinds:
            continue
        if len(kinds) >= limit:
            dropped += 1
            continue
        kinds.append(kind)
    note = alarm_note(unknown) if unknown and OTHER_ALARM in kinds else ""
    return AlarmKinds(tuple(kinds), note, dropped)


def bare_alarms_of(
    terminal_id: int, names: Sequence[str], at: datetime.datetime, *, limit: int = MAX_ALARMS_PER_FIX
) -> tuple[list[BareAlarm], int]:
    """The alarms of a message without a position, as `alarm_kinds` reads them; and how many
    names were dropped."""
    read = alarm_kinds(names, limit=limit)
    alarms = [BareAlarm(terminal_id, kind, at, read.note if kind == OTHER_ALARM else "") for kind in read.kinds]
    return alarms, read.dropped


def _bare_alarm_row(alarm: BareAlarm) -> tuple[str, str]:
    """(kind, note) of a bare alarm made by hand rather than by `bare_alarms`."""
    kind = alarm_kind(alarm.kind)
    if kind is None:
        return OTHER_ALARM, alarm_note([alarm.kind])
    return kind, alarm.note if kind == OTHER_ALARM else ""


@dataclass
class BatchResult:
    stored: int = 0
    duplicates: int = 0
    outliers: int = 0
    rejected: list[tuple[int, FixProblem]] = field(default_factory=list)  # (index in the batch, problem)
    latest: dict[int, tuple[float, float, float]] = field(default_factory=dict)  # terminal -> last position
    alarms_dropped: int = 0  # alarm names past the limit of a position (alarm_kinds)

    @property
    def accepted(self) -> int:
        return self.stored + self.duplicates


@dataclass(frozen=True, slots=True)
class Query:
    sql: str
    params: Sequence[Any] | None = None
    fetch: bool = False


@dataclass(frozen=True, slots=True)
class Attempt:
    """Run `query` in a savepoint; if it breaks a unique constraint, roll back to the savepoint and
    run `fallback` instead. The driver sends back None when `query` succeeded, else the fallback's
    rows."""

    query: Query
    fallback: Query


SAVEPOINT_SQL = "SAVEPOINT ingest_attempt"
RELEASE_SQL = "RELEASE SAVEPOINT ingest_attempt"
ROLLBACK_SQL = "ROLLBACK TO SAVEPOINT ingest_attempt"


def unique_violation(error: BaseException) -> bool:
    """The error, or the database error it wraps (Django wraps psycopg's), broke a unique constraint."""
    from psycopg.errors import UniqueViolation

    return isinstance(error, UniqueViolation) or isinstance(error.__cause__, UniqueViolation)


@dataclass(frozen=True, slots=True)
class Copy:
    sql: str
    data: bytes  # COPY text


Plan = Generator[Query | Copy | Attempt, Any, BatchResult]


def id_array(ids: Iterable[int | str]) -> str:
    """A PostgreSQL array literal of ids or digit strings (cast it in the SQL): a thousand ids as
    one text value, where adapting a list costs a regular expression per element."""
    return "{" + ",".join(map(str, ids)) + "}"


def ewkb_point(longitude: float, latitude: float) -> str:
    """Hex EWKB of a 4326 point: what PostGIS parses fastest from COPY text."""
    return struct.pack("<BIIdd", 1, 0x20000001, 4326, longitude, latitude).hex()


# --- checking fixes ----------------------------------------------------------------------------------


class FixProblem(str):
    """Why a fix cannot be stored: the string is the English sentence the APIs answer, `code` a
    stable label (the gateway's gateway_pings_rejected_total{reason}), one class per code, as
    `tracking.protocols.ProtocolError` has. `about`: what is wrong, the fix's "time" or "position"."""

    __slots__ = ()
    code = "invalid"
    about = "position"


class NoTime(FixProblem):
    code = "no_time"
    about = "time"


class FutureTime(FixProblem):
    code = "future_time"
    about = "time"


class ClockNotSet(FixProblem):
    code = "clock_not_set"
    about = "time"


class OutOfRange(FixProblem):
    code = "out_of_range"


class NoPosition(FixProblem):
    code = "no_position"


def fix_problem(fix: Fix, *, now: datetime.datetime) -> FixProblem | None:
    if fix.time is None:
        return NoTime("no device time")
    ahead = fix_time_problem(fix, now=now)
    if ahead:
        return FutureTime(ahead)
    if fix.time.year < 2000:
        return ClockNotSet(f"device time {fix.time.isoformat()} is before 2000 (clock not set)")
    lat, lon = fix.latitude, fix.longitude
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):  # NaN fails every comparison, infinities the range
        return OutOfRange(f"coordinates {lat}, {lon} are out of range")
    if lat == 0 and lon == 0:
        return NoPosition("no position (0, 0)")
    return None


@dataclass(slots=True)  # one per gateway message: unfrozen for speed, as Incoming
class CheckedFixes:
    """Fixes `check_fixes` looked at, in order, and the problem of each one it refused (by index in
    `items`). `batch_plan` stores the others without looking again; a plain sequence it is given
    instead is checked there, so every path checks each fix once and none skips the check."""

    items: Sequence[Incoming]
    rejected: Sequence[tuple[int, FixProblem]] = ()

    def accepted(self) -> list[Incoming]:
        if not self.rejected:
            return list(self.items)
        refused = {index for index, _problem in self.rejected}
        return [item for index, item in enumerate(self.items) if index not in refused]

    def without_rejected(self) -> CheckedFixes:
        """The accepted fixes alone, for a caller that answered for the others itself."""
        return self if not self.rejected else CheckedFixes(self.accepted())

    @staticmethod
    def join(parts: Iterable[CheckedFixes]) -> CheckedFixes:
        """One batch of several messages' checked fixes (the gateway writer's)."""
        items: list[Incoming] = []
        rejected: list[tuple[int, FixProblem]] = []
        for part in parts:
            if part.rejected:
                offset = len(items)
                rejected += [(offset + index, problem) for index, problem in part.rejected]
            items += part.items
        return CheckedFixes(items, rejected)


def check_fixes(items: Sequence[Incoming], *, now: datetime.datetime) -> CheckedFixes:
    """Each fix checked once (`fix_problem`), at `now`."""
    rejected: list[tuple[int, FixProblem]] | None = None  # a list only for a message with a problem
    for index, item in enumerate(items):
        problem = fix_problem(item.fix, now=now)
        if problem is not None:
            if rejected is None:
                rejected = []
            rejected.append((index, problem))
    return CheckedFixes(items, rejected or ())


EARTH_RADIUS_M = 6_371_009.0  # the mean radius geopy's great_circle uses
_RADIANS = math.pi / 180  # the factor of math.radians


def sphere_metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance on the mean sphere: geopy's great_circle, without building its objects
    for every position of every batch (it was a tenth of the gateway's CPU)."""
    p1, p2 = lat1 * _RADIANS, lat2 * _RADIANS
    h = sin((p2 - p1) / 2) ** 2 + cos(p1) * cos(p2) * sin((lon2 - lon1) * _RADIANS / 2) ** 2
    return 2 * EARTH_RADIUS_M * asin(min(1.0, sqrt(h)))


def implied_speed_kmh(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """Speed between two (epoch seconds, lat, lon) fixes, by great circle; inf when no time passed."""
    seconds = abs(b[0] - a[0])
    metres = sphere_metres(a[1], a[2], b[1], b[2])
    if seconds == 0:
        return math.inf if metres > 1 else 0.0
    return metres / seconds * 3.6


def is_outlier(prev: tuple[float, float, float], cur: tuple[float, float, float], limit_kmh: float) -> bool:
    speed = implied_speed_kmh(prev, cur)
    if speed < limit_kmh * (1 - SCREEN_MARGIN):
        return False
    if speed > limit_kmh * (1 + SCREEN_MARGIN) or math.isinf(speed):
        return True
    seconds = abs(cur[0] - prev[0])
    return geodesic(prev[1:], cur[1:]).meters / seconds * 3.6 > limit_kmh


# How long a writer trusts its memory of the last positions its own commits left (LastFixes).
LAST_FIX_TTL_S = 60.0


class LastFixes(Recent[int, LastFix]):
    """What a long-lived writer's commits left in tracking_lastposition (terminal -> last fix), so
    that its next batches skip reading those rows for the outlier check (`batch_plan`'s
    `last_known`: `getter(now)`). Put a batch's `BatchResult.latest` once its transaction committed,
    never before: a batch rolled back leaves no row behind. Meanwhile another writer (a gateway
    worker, an HTTP worker) may store a newer fix for the terminal, and the check compares with an
    older predecessor than the table's, no worse than a terminal that reports less often. A
    terminal remembered here has its tracking_lastposition row: rows are only ever deleted with
    their terminal, so UPDATE_LAST_SQL moves it."""

    def __init__(self, ttl_s: float = LAST_FIX_TTL_S) -> None:
        super().__init__(ttl_s)


def flag_outliers(
    items: list[Incoming],
    last: Mapping[int, LastFix],
    limit_kmh: float,
    *,
    latest: dict[int, LastFix] | None = None,
    presence: set[tuple[int, int, int]] | None = None,
) -> list[bool]:
    """Outlier flags, comparing each fix with the terminal's previous plausible fix in time order.

    A fix older than the stored last position (buffered, out of order) has no reliable predecessor
    here and is not flagged. `latest`, when given, receives each terminal's last position after the
    batch: what UPDATE_LAST_SQL and UPSERT_LAST_SQL leave in tracking_lastposition.

    `presence`, when given, receives the (cell, hour, terminal) rows of tracking_pingcell the batch
    may add: those of plausible fixes in another cell or hour than their predecessor. A predecessor
    from `last` has its row already (the last position and its cell are written in one transaction);
    a bike standing still adds nothing, where inserting every fix's row cost a probe each.
    """
    flags = [False] * len(items)
    # Terminal -> the index of its fix in the batch, or the indexes of its fixes when it has more
    # than one (most batches hold one fix per terminal: no list, no sort for those).
    fixes_of: dict[int, int | list[int]] = {}
    for index, item in enumerate(items):
        seen = fixes_of.get(item.terminal_id)
        if seen is None:
            fixes_of[item.terminal_id] = index
        elif seen.__class__ is int:
            fixes_of[item.terminal_id] = [seen, index]
        else:
            seen.append(index)  # type: ignore[union-attr]  # not an int, so a list (`__class__ is` is the fast test)
    # Below this many metres a second a fix is plausible at once (is_outlier's own screen, without
    # its three calls per fix).
    plausible_mps = limit_kmh * (1 - SCREEN_MARGIN) / 3.6
    epochs: dict[datetime.datetime, float] = {}  # the fixes of a batch share few distinct seconds
    for terminal_id, fixes in fixes_of.items():
        if fixes.__class__ is int:
            indexes: Iterable[int] = (fixes,)
        else:
            indexes = sorted(fixes, key=lambda i: items[i].fix.time)  # type: ignore[arg-type,return-value]  # checked fixes have a time
        prev = last.get(terminal_id)
        where = None if prev is None or presence is None else presence_of(*prev)
        for i in indexes:
            fix = items[i].fix
            moment = fix.time
            epoch = epochs.get(moment)  # type: ignore[arg-type]  # checked fixes have a time
            if epoch is None:
                epoch = epochs[moment] = moment.timestamp()  # type: ignore[index,union-attr]  # checked fixes have a time
            cur = (epoch, fix.latitude, fix.longitude)
            if prev is not None:
                if epoch < prev[0]:
                    if presence is not None and fix.valid:
                        presence.add((*presence_of(*cur), terminal_id))
                    continue
                elapsed = epoch - prev[0]
                if not (
                    elapsed > 0 and sphere_metres(prev[1], prev[2], cur[1], cur[2]) < plausible_mps * elapsed
                ) and is_outlier(prev, cur, limit_kmh):
                    flags[i] = True
                    continue
            if fix.valid:
                prev = cur
                if presence is not None:
                    here = presence_of(*cur)
                    if here != where:
                        presence.add((*here, terminal_id))
                        where = here
        if latest is not None and prev is not None:
            latest[terminal_id] = prev
    return flags


def batch_plan(
    items: CheckedFixes | Sequence[Incoming],
    *,
    bare_alarms: Sequence[BareAlarm] = (),
    defence: Mapping[int, bool] | None = None,
    now: datetime.datetime | None = None,
    outlier_speed_kmh: float = DEFAULT_OUTLIER_SPEED_KMH,
    liveness: Iterable[int] | None = None,
    last_known: Callable[[int], LastFix | None] | None = None,
    staged: bool = False,
    max_alarms_per_fix: int = MAX_ALARMS_PER_FIX,
) -> Plan:
    """Operations storing one batch: `items` as `check_fixes` left them (a plain sequence is checked
    here, at `now`); the fixes it refused are in `BatchResult.rejected`. `liveness` are the
    terminals whose last_seen_at to refresh (default: every terminal of the batch; a caller adds
    those heard without a fix, heartbeats, or leaves out those it refreshed a moment ago);
    `defence` is the defence bit terminals reported ({terminal id: in defence mode}).

    A caller that keeps state between batches (the gateway's writer) may also pass `last_known`,
    which answers a terminal's last position when it knows it (the others are read from
    tracking_lastposition). `BatchResult.latest` then holds the batch's terminals' last positions
    as committed. `staged`: the connection keeps an empty ping_stage across transactions
    (WRITER_STAGE_DDL, created by the writer when it connects): the batch does not create it, and
    deletes its rows again before it ends.

    Alarm names are stored as `alarm_kinds` reads them (at most `max_alarms_per_fix` a position,
    unknown ones as `other`), in the ping's alarms and as alarm rows alike."""
    now = now or datetime.datetime.now(datetime.UTC)
    batch = items if isinstance(items, CheckedFixes) else check_fixes(items, now=now)
    result = BatchResult(rejected=list(batch.rejected))
    accepted = batch.accepted()
    notes: dict[int, str] = {}  # index in accepted -> the raw text of its `other` alarm
    for index, item in enumerate(accepted):
        if item.fix.alarms:
            fix = item.fix
            read = alarm_kinds(fix.alarms, limit=max_alarms_per_fix, unread=fix.extras.get(ALARMS_UNREAD, 0))
            result.alarms_dropped += read.dropped
            if read.kinds != fix.alarms:
                accepted[index] = replace(item, fix=replace(fix, alarms=read.kinds))
            if read.note:
                notes[index] = read.note
    if liveness is not None:
        heard = set(liveness)
    else:
        heard = {item.terminal_id for item in batch.items} | {a.terminal_id for a in bare_alarms}
    if heard:
        yield Query(SEEN_SQL, [id_array(sorted(heard))])
    if defence:
        ids = sorted(defence)
        yield Query(DEFENCE_SQL, [ids, [defence[i] for i in ids]])
    if not accepted and not bare_alarms:
        return result
    if accepted:
        # Ahead of the read below: a pipelining driver sends them with it, in one round trip.
        if not staged:
            yield Query(STAGE_DDL)
            yield Query(STAGE_CLEAR_SQL)  # left over when an enclosing transaction is still open
        terminal_ids = sorted({item.terminal_id for item in accepted})
        last: dict[int, LastFix] = {}
        unknown = terminal_ids
        if last_known is not None:
            unknown = []
            for tid in terminal_ids:
                known = last_known(tid)
                if known is None:
                    unknown.append(tid)
                else:
                    last[tid] = known
        if unknown:
            rows = yield Query(LAST_SQL, [id_array(unknown)], fetch=True)
            last.update({tid: (epoch, lat, lon) for tid, epoch, lat, lon in rows})
        presence: set[tuple[int, int, int]] = set()
        flags = flag_outliers(accepted, last, outlier_speed_kmh, latest=result.latest, presence=presence)
        result.outliers = sum(flags)
        yield Copy(COPY_SQL, stage_copy_data(accepted, flags, now))
        counted = yield Attempt(Query(INSERT_NEW_SQL), Query(INSERT_SQL, fetch=True))
        result.stored = len(accepted) if counted is None else counted[0][0]
        result.duplicates = len(accepted) - result.stored
        if presence:
            rows = sorted(presence)
            yield Query(PRESENCE_ROWS_SQL, [id_array(column) for column in zip(*rows, strict=True)])
        first_positions = [tid for tid in terminal_ids if tid not in last]
        if last:
            yield Query(UPDATE_LAST_SQL)
        if first_positions:
            yield Query(UPSERT_LAST_SQL, [id_array(first_positions)])
        if staged:
            yield Query(STAGE_CLEAR_SQL)
        if first_positions:
            yield Query(NEW_LAST_FLAG_SQL, [id_array(first_positions)])
    alarms: list[tuple[int, str, datetime.datetime | None, str | None, str]] = [
        (
            item.terminal_id,
            kind,
            item.fix.time,
            ewkb_point(item.fix.longitude, item.fix.latitude),
            notes.get(index, "") if kind == OTHER_ALARM else "",
        )
        for index, item in enumerate(accepted)
        if item.fix.alarms
        for kind in item.fix.alarms
    ]
    for alarm in bare_alarms:
        kind, note = _bare_alarm_row(alarm)
        alarms.append((alarm.terminal_id, kind, alarm.at, None, note))
    if alarms:
        yield Query(ALARM_SQL, [now, *(list(column) for column in zip(*alarms, strict=True))])
    # One outbox row for the batch's positions and bare alarms alike: an SOS sent without a fix must
    # reach the duty room as surely as one with a position.
    outbox_ids = sorted({item.terminal_id for item in accepted} | {a.terminal_id for a in bare_alarms})
    times = [item.fix.time for item in accepted] + [a.at for a in bare_alarms]
    yield Query(OUTBOX_SQL, [json.dumps(outbox_ids), min(times), max(times)])  # type: ignore[type-var]  # checked fixes have a time
    return result


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
NULL = "\\N"  # COPY text's NULL


def _copy_number(value: float | None) -> str:
    return NULL if value is None else repr(value)


def stage_copy_data(items: Sequence[Incoming], flags: Sequence[bool], received_at: datetime.datetime) -> bytes:
    """The COPY text of ping_stage rows (PING_COLUMNS order), one formatted line per fix: a generic
    per-value encoder cost the gateway twice as much."""
    received = received_at.isoformat()
    times: dict[datetime.datetime, str] = {}  # fixes of one batch share few distinct seconds
    lines = []
    for item, outlier in zip(items, flags, strict=True):
        fix = item.fix
        moment = fix.time
        when = times.get(moment)  # type: ignore[arg-type]  # checked fixes have a time
        if when is None:
            when = times[moment] = moment.isoformat()  # type: ignore[index,union-attr]  # checked fixes have a time
        battery = NULL if fix.battery is None else str(max(0, min(100, round(fix.battery))))
        satellites = NULL if fix.satellites is None else fix.satellites
        alarms = "[]"
        if fix.alarms:
            alarms = json.dumps(list(fix.alarms))
            if "\\" in alarms:
                alarms = alarms.translate(_COPY_ESCAPES)
        lines.append(
            f"{item.terminal_id}\t{when}\t{received}\t{ewkb_point(fix.longitude, fix.latitude)}\t"
            f"{_copy_number(fix.speed_kmh)}\t{_copy_number(fix.course)}\t{_copy_number(fix.altitude)}\t"
            f"{satellites}\t{'t' if fix.valid else 'f'}\t{battery}\t"
            f"{alarms}\t{'t' if outlier else 'f'}\t{NULL if item.session_id is None else item.session_id}\n"
        )
    return "".join(lines).encode()


# --- drivers -------------------------------------------------------------------------------------


def run_sync(cursor: Any, plan: Plan) -> BatchResult:
    """Drive a plan on a psycopg (or Django-wrapped) cursor inside the caller's transaction."""
    try:
        op = next(plan)
        while True:
            op = plan.send(_execute_sync(cursor, op))
    except StopIteration as stop:
        return stop.value


def _execute_sync(cursor: Any, op: Query | Copy | Attempt) -> Any:
    if isinstance(op, Copy):
        with cursor.copy(op.sql) as copy:
            copy.write(op.data)  # one write: per-row write_row cost more than the insert
        return None
    if isinstance(op, Attempt):
        cursor.execute(SAVEPOINT_SQL)
        try:
            cursor.execute(op.query.sql, op.query.params)
        except Exception as error:
            if not unique_violation(error):
                raise
            cursor.execute(ROLLBACK_SQL)
            return _execute_sync(cursor, op.fallback)
        cursor.execute(RELEASE_SQL)
        return None
    cursor.execute(op.sql, op.params)
    return cursor.fetchall() if op.fetch else None


def ingest_fixes(
    items: CheckedFixes | Iterable[Incoming],
    *,
    bare_alarms: Sequence[BareAlarm] = (),
    liveness: Iterable[int] | None = None,
    last_known: Callable[[int], LastFix | None] | None = None,
) -> BatchResult:
    """Store a batch through Django's connection, in one transaction (HTTP ingestion, replays).
    `items` checked by the caller (`check_fixes`), or a plain iterable checked by the plan;
    `liveness` and `last_known` as for `batch_plan`."""
    from django.conf import settings
    from django.db import connection, transaction

    plan = batch_plan(
        items if isinstance(items, CheckedFixes) else list(items),
        bare_alarms=bare_alarms,
        outlier_speed_kmh=settings.OUTLIER_SPEED_KMH,
        liveness=liveness,
        last_known=last_known,
        max_alarms_per_fix=getattr(settings, "GATEWAY_MAX_ALARMS_PER_FIX", MAX_ALARMS_PER_FIX),
    )
    with transaction.atomic(), connection.cursor() as cursor:
        return run_sync(cursor, plan)
