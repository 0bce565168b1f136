"""Who is this terminal? Lookups by GT06 IMEI, JT/T 808 terminal phone, or OsmAnd id.

A small in-process cache (GATEWAY_TERMINAL_CACHE_TTL_S) keeps reconnect storms off the database, and
lookups that miss are gathered and answered by one query; while the database is away a lookup fails
fast (`LookupUnavailable`) and the login is refused. The directory also writes what a JT/T 808
register decides: the one-time auth code's digest (a conditional update, so of two racing registers
one gets the code) and the `terminal_conflict` alarm of a refused register, with an outbox row.
Secrets are compared as SHA-256 digests: the table holds nothing a reader could replay.
See docs/architecture.md#the-gateway and docs/architecture.md#terminal-identity.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any, NamedTuple

import psycopg

from . import db
from .metrics import Metrics

log = logging.getLogger("tracking.gateway")

GT06_IMEI = "gt06"
JT808_PHONE = "jt808_phone"
JT808_IMEI = "jt808_imei"
OSMAND_ID = "osmand"
# The longest identifier a terminal is stored under (tracking_terminal: imei 15, phone 20,
# jt808_device_id 30; tests/tracking/test_gateway.py holds it to the model).
MAX_ID_LENGTH = 30

_COLUMNS = "id, imei, phone, auth_code_digest, jt808_device_id, maker, model_code, osmand_key_digest"
_QUERIES = {
    GT06_IMEI: f"SELECT {_COLUMNS} FROM tracking_terminal WHERE active AND protocol = 'gt06' AND imei = ANY(%s)",  # noqa: S608
    JT808_IMEI: f"SELECT {_COLUMNS} FROM tracking_terminal WHERE active AND protocol = 'jt808' AND imei = ANY(%s)",  # noqa: S608
    JT808_PHONE: f"SELECT {_COLUMNS} FROM tracking_terminal WHERE active AND protocol = 'jt808' AND phone = ANY(%s)",  # noqa: S608
    OSMAND_ID: (
        f"SELECT {_COLUMNS} FROM tracking_terminal WHERE active AND protocol = 'osmand' "  # noqa: S608
        "AND (imei = ANY(%s) OR phone = ANY(%s))"
    ),
}


class LookupUnavailable(Exception):
    """The database could not be asked (down, or the lookup timed out)."""


# The code is issued only while none is (the register that wins a race gets it).
_ISSUE_SQL = (
    "UPDATE tracking_terminal SET auth_code_digest = %s, auth_code_issued_at = now() "
    "WHERE id = %s AND active AND auth_code_digest = '' RETURNING id"
)
# A refused register: an alarm for the duty room (cases.alerts.duty_room routes `terminal_conflict`) and its
# outbox row. A refused terminal registers again every few seconds: the same refusal from the same
# address is stored once a minute.
_REFUSED_ALARM_SQL = """
WITH alarm AS (
    INSERT INTO tracking_alarm (terminal_id, vehicle_id, kind, source, at, received_at, point, status, note)
    SELECT t.id, t.vehicle_id, 'terminal_conflict', 'derived', now(), now(), NULL, 'new', %(note)s::text
    FROM tracking_terminal t
    WHERE t.id = %(terminal)s::bigint AND NOT EXISTS (
        SELECT 1 FROM tracking_alarm a
        WHERE a.terminal_id = t.id AND a.kind = 'terminal_conflict' AND a.at > now() - interval '1 minute'
          AND a.note = %(note)s::text)
    ON CONFLICT (terminal_id, kind, at) DO NOTHING
    RETURNING terminal_id, at
)
INSERT INTO tracking_ingestoutbox (created_at, terminal_ids, first_device_time, last_device_time)
SELECT now(), jsonb_build_array(terminal_id), at, at FROM alarm
"""


class TerminalInfo(NamedTuple):
    id: int
    imei: str
    phone: str
    auth_digest: str  # SHA-256 of the JT/T 808 auth code; empty: none issued
    device_id: str  # JT/T 808 terminal ID on record; empty: the IMEI or its last 7 digits
    maker: str  # empty: not checked
    model: str  # empty: not checked
    osmand_key_digest: str  # empty: no key required


def secret_digest(secret: str) -> str:
    """How auth codes and OsmAnd keys are kept and compared: SHA-256, hex (random secrets, no salt
    needed; the Django side stores them, and the HTTP ingestion tokens, with this same function)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _same(a: str, b: str) -> bool:
    return a.strip().upper() == b.strip().upper()


def register_mismatch(info: TerminalInfo, register: dict[str, Any]) -> str | None:
    """What of a JT/T 808 register (decoded 0x0100 body) is not what the terminal record says:
    "terminal ID", "maker" or "model"; None when it matches."""
    device_id = str(register.get("device_id", ""))
    expected = [info.device_id] if info.device_id else [info.imei, info.imei[-7:]]
    if not device_id.strip() or not any(_same(device_id, value) for value in expected):
        return "terminal ID"
    if info.maker and not _same(str(register.get("manufacturer", "")), info.maker):
        return "maker"
    if info.model and not _same(str(register.get("model", "")), info.model):
        return "model"
    return None


def phone_key(digits: str) -> str:
    """JT/T 808 phones compare without leading zeros (BCD[6] pads 11 digits to 12, BCD[10] to 20)."""
    return digits.lstrip("0") or "0"


def _phone_candidates(key: str) -> set[str]:
    return {key, key.rjust(11, "0"), key.rjust(12, "0"), key.rjust(20, "0")}


class TerminalDirectory:
    def __init__(
        self,
        conninfo: str,
        metrics: Metrics,
        *,
        ttl_s: float = 60.0,
        unknown_ttl_s: float = 10.0,
        timeout_s: float = 5.0,
        retry_s: float = 1.0,
    ) -> None:
        self.conninfo = conninfo
        self.metrics = metrics
        self.ttl_s = ttl_s
        self.unknown_ttl_s = unknown_ttl_s
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self._cache: dict[tuple[str, str], tuple[float, TerminalInfo | None]] = {}
        self._waiting: dict[tuple[str, str], asyncio.Future[TerminalInfo | None]] = {}
        self._queued: list[tuple[str, str]] = []
        self._wakeup = asyncio.Event()
        self._connection: psycopg.AsyncConnection | None = None
        self._down_until = 0.0
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def key(kind: str, value: str) -> tuple[str, str]:
        return (kind, phone_key(value) if kind == JT808_PHONE else value)

    def cached(self, kind: str, value: str) -> tuple[bool, TerminalInfo | None]:
        """(True, terminal or None) when the cache knows the answer, else (False, None)."""
        entry = self._cache.get(self.key(kind, value))
        if entry is not None and entry[0] > time.monotonic():
            self.metrics.lookups["hit"] += 1
            return True, entry[1]
        return False, None

    async def find(self, kind: str, value: str) -> TerminalInfo | None:
        """The active terminal of that protocol with that id, or None. Raises LookupUnavailable.

        An id no terminal can have (not printable ASCII, or longer than any stored one) is unknown
        without a query: a NUL (PostgreSQL text cannot hold it) or a lone surrogate (not UTF-8) would
        fail the whole batch it joined, and with it every other terminal's login for `retry_s`."""
        if not (len(value) <= MAX_ID_LENGTH and value.isascii() and value.isprintable()):
            self.metrics.lookups["unknown"] += 1
            return None
        known, info = self.cached(kind, value)
        if known:
            return info
        if time.monotonic() < self._down_until:
            self.metrics.lookups["failed"] += 1
            raise LookupUnavailable("database unavailable")
        key = self.key(kind, value)
        future = self._waiting.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiting[key] = future
            self._queued.append(key)
            self._wakeup.set()
            self._ensure_task()
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
        except TimeoutError as error:
            self.metrics.lookups["failed"] += 1
            raise LookupUnavailable("terminal lookup timed out") from error

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="terminal-lookups")

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await asyncio.sleep(0.002)  # let a burst of logins gather into one query
            keys, self._queued = self._queued, []
            if not keys:
                continue
            try:
                found = await asyncio.wait_for(self._query(keys), self.timeout_s)
            except Exception as error:  # database down or broken: every waiter hears it
                log.warning("terminal lookup failed: %s", error)
                self.metrics.errors["lookup"] += 1
                self.metrics.lookups["failed"] += len(keys)
                self._down_until = time.monotonic() + self.retry_s
                await db.close_quietly(self._connection)
                self._connection = None
                for key in keys:
                    future = self._waiting.pop(key, None)
                    if future is not None and not future.done():
                        future.set_exception(LookupUnavailable(str(error)))
                        future.exception()  # retrieved: no "never retrieved" warning if nobody waits
                continue
            now = time.monotonic()
            for key in keys:
                info = found.get(key)
                self.metrics.lookups["miss" if info else "unknown"] += 1
                self._cache[key] = (now + (self.ttl_s if info else self.unknown_ttl_s), info)
                future = self._waiting.pop(key, None)
                if future is not None and not future.done():
                    future.set_result(info)
            if len(self._cache) > 200_000:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}

    async def _query(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], TerminalInfo]:
        if self._connection is None or self._connection.closed:
            self._connection = await db.connect(self.conninfo, autocommit=True)
        found: dict[tuple[str, str], TerminalInfo] = {}
        by_kind: dict[str, list[str]] = {}
        for kind, value in keys:
            by_kind.setdefault(kind, []).append(value)
        for kind, values in by_kind.items():
            if kind == JT808_PHONE:
                params: list[object] = [sorted({c for value in values for c in _phone_candidates(value)})]
            elif kind == OSMAND_ID:
                params = [values, values]
            else:
                params = [values]
            cursor = await self._connection.execute(_QUERIES[kind], params)
            for row in await cursor.fetchall():
                info = TerminalInfo(*row)
                if kind == JT808_PHONE:
                    found[(kind, phone_key(info.phone))] = info
                elif kind == OSMAND_ID:
                    for value in (info.imei, info.phone):
                        if value in values:
                            found[(kind, value)] = info
                else:
                    found[(kind, info.imei)] = info
        return found

    def forget(self, kind: str, value: str) -> None:
        """Drop what the cache holds for that id: the next lookup reads the database."""
        self._cache.pop(self.key(kind, value), None)

    async def _write(self, sql: str, params: list[Any] | dict[str, Any]) -> list[tuple[Any, ...]]:
        """One autocommit statement on the directory's connection; LookupUnavailable when it fails."""
        if time.monotonic() < self._down_until:
            raise LookupUnavailable("database unavailable")
        try:
            if self._connection is None or self._connection.closed:
                self._connection = await asyncio.wait_for(db.connect(self.conninfo, autocommit=True), self.timeout_s)
            cursor = await asyncio.wait_for(self._connection.execute(sql, params), self.timeout_s)
            return await cursor.fetchall() if cursor.description else []
        except Exception as error:
            log.warning("terminal directory write failed: %s", error)
            self.metrics.errors["lookup"] += 1
            self._down_until = time.monotonic() + self.retry_s
            await db.close_quietly(self._connection)
            self._connection = None
            raise LookupUnavailable(str(error)) from error

    async def issue_auth_code(self, terminal_id: int, digest: str) -> bool:
        """Record the digest of a freshly issued JT/T 808 auth code, unless one is issued already
        (by another register, maybe on another node): True when this one counts."""
        return bool(await self._write(_ISSUE_SQL, [digest, terminal_id]))

    async def register_refused(self, terminal_id: int, note: str) -> None:
        """The `terminal_conflict` alarm of a refused register (and its outbox row)."""
        await self._write(_REFUSED_ALARM_SQL, {"note": note[:200], "terminal": terminal_id})

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await db.close_quietly(self._connection)
        self._connection = None
