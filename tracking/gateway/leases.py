"""Terminal sessions in the database: leases, remote addresses, and cloned identities found.

Every logged-in connection is a row of tracking_terminalsession (TerminalSession): which terminal,
from which address (behind HAProxy, the address PROXY protocol v2 reports, and the proxy's own),
on which gateway node, since when. The pings it brings name the row (Ping.session_id), so the
evidence of a position says where it came from.

The row is the session's lease. While the connection lives its node renews the lease every
GATEWAY_LEASE_RENEW_S for GATEWAY_LEASE_S and writes when the terminal was last heard; closing the
connection ends it. A node that dies renews nothing and its leases run out, so every node and
worker sees the sessions that are alive without asking the node that holds them.

A cloned identity is two connections of one terminal that are both alive: each heard from after the
other logged in (plus GATEWAY_CONFLICT_MARGIN_S, for bytes still in flight on a dying connection).
A terminal that reconnects after its old connection died is no conflict, from whatever address:
the dead connection says nothing more. Each node checks its own sessions heard since its last
check against every live session of the same terminal, its own and other nodes'. A conflict
is also a session that took over from another address and whose fixes keep landing where the bike
cannot be (IMPOSSIBLE_OUTLIERS fixes flagged as outliers by ingestion: an impossible speed from the
last plausible fix, which the other session sent): positions that cannot both be true. A conflict
becomes a `terminal_conflict` alarm naming both addresses, with an outbox row so that the duty
room (cases.duty) raises a call at the bike's station; the alarm's time is the later login, so two
nodes finding the same pair store one alarm.

Session ids come from the table's sequence in blocks, so a login never waits for the database:
the session's row and its first pings are written shortly after, each on its own path.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import os
import socket
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg

from . import db
from .metrics import Metrics

log = logging.getLogger("tracking.gateway")

ID_BLOCK = 512
FLUSH_S = 0.5  # queued logins and closings are written at least this often

_IDS_SQL = "SELECT nextval(pg_get_serial_sequence('tracking_terminalsession', 'id')) FROM generate_series(1, %s)"
_OPEN_SQL = """
INSERT INTO tracking_terminalsession
    (id, terminal_id, protocol, remote_address, remote_port, via_address, node, started_at, last_heard_at,
     lease_until, end_reason)
SELECT o.id, o.terminal_id, o.protocol, o.remote_address::inet, o.remote_port, o.via_address::inet, %s,
       o.started_at, o.started_at, now() + make_interval(secs => %s), ''
FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::int[], %s::text[], %s::timestamptz[])
    AS o(id, terminal_id, protocol, remote_address, remote_port, via_address, started_at)
ON CONFLICT (id) DO NOTHING
"""
_END_SQL = """
UPDATE tracking_terminalsession s SET ended_at = e.ended_at, end_reason = e.reason, last_heard_at = e.heard_at
FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[], %s::timestamptz[]) AS e(id, ended_at, reason, heard_at)
WHERE s.id = e.id AND s.ended_at IS NULL
"""
_RENEW_SQL = """
UPDATE tracking_terminalsession s
SET lease_until = now() + make_interval(secs => %s), last_heard_at = greatest(s.last_heard_at, r.heard_at)
FROM unnest(%s::bigint[], %s::timestamptz[]) AS r(id, heard_at)
WHERE s.id = r.id AND s.ended_at IS NULL
"""
# Pairs of live sessions of one terminal, each heard from after the other's login.
_CONFLICTS_SQL = """
SELECT a.terminal_id, greatest(a.started_at, b.started_at),
       host(a.remote_address), a.remote_port, host(b.remote_address), b.remote_port
FROM tracking_terminalsession a
JOIN tracking_terminalsession b ON b.terminal_id = a.terminal_id AND b.id <> a.id
WHERE a.id = ANY(%(ids)s::bigint[]) AND a.ended_at IS NULL
  AND b.ended_at IS NULL AND b.lease_until > now()
  AND a.last_heard_at > b.started_at + %(margin)s AND b.last_heard_at > a.started_at + %(margin)s
"""
# A session that took over from another address and whose fixes keep landing where the bike cannot
# be (flagged outliers: an impossible speed from the terminal's last plausible fix, which came from
# the other session): positions from two places that cannot both be true.
_IMPOSSIBLE_SQL = """
SELECT a.terminal_id, a.started_at, host(a.remote_address), a.remote_port, host(b.remote_address), b.remote_port
FROM tracking_terminalsession a
JOIN LATERAL (
    SELECT b.remote_address, b.remote_port FROM tracking_terminalsession b
    WHERE b.terminal_id = a.terminal_id AND b.started_at < a.started_at
      AND b.last_heard_at > a.started_at - %(window)s AND host(b.remote_address) <> host(a.remote_address)
    ORDER BY b.started_at DESC LIMIT 1
) b ON true
WHERE a.id = ANY(%(ids)s::bigint[]) AND a.started_at > now() - %(window)s
  AND (SELECT count(*) FROM tracking_ping p
       WHERE p.terminal_id = a.terminal_id AND p.device_time > a.started_at - %(window)s
         AND p.session_id = a.id AND p.outlier) >= %(outliers)s
"""
_CONFLICT_ALARM_SQL = """
INSERT INTO tracking_alarm (terminal_id, vehicle_id, kind, source, at, received_at, point, status, note)
SELECT t.id, t.vehicle_id, 'terminal_conflict', 'derived', c.at, now(), NULL, 'new', c.note
FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[]) AS c(terminal_id, at, note)
JOIN tracking_terminal t ON t.id = c.terminal_id
ON CONFLICT (terminal_id, kind, at) DO NOTHING
RETURNING terminal_id, at
"""
_OUTBOX_SQL = (
    "INSERT INTO tracking_ingestoutbox (created_at, terminal_ids, first_device_time, last_device_time) "
    "VALUES (now(), %s, %s, %s)"
)


class Live(Protocol):
    """What the ledger needs of a connection: when it was last heard (wall clock, epoch seconds),
    and where its session id goes once one is at hand."""

    heard_at: float
    session_id: int | None


@dataclass(eq=False)
class _Open:
    id: int | None
    terminal_id: int
    protocol: str
    address: str
    port: int
    via: str | None
    started_at: datetime.datetime
    connection: Live


def node_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:80]


def _utc(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC)


def conflict_note(a: tuple[str, int], b: tuple[str, int], *, what: str = "two live sessions") -> str:
    return f"{what}: {a[0]}:{a[1]} and {b[0]}:{b[1]}"[:200]


IMPOSSIBLE = "positions that cannot both be true"
IMPOSSIBLE_WINDOW = datetime.timedelta(hours=1)
IMPOSSIBLE_OUTLIERS = 3  # one bad fix after a reconnect is a GPS still finding itself


class SessionLedger:
    def __init__(
        self,
        conninfo: str,
        metrics: Metrics,
        *,
        lease_s: float = 90.0,
        renew_s: float = 20.0,
        conflict_margin_s: float = 5.0,
        retry_s: float = 1.0,
        node: str | None = None,
    ) -> None:
        self.conninfo = conninfo
        self.metrics = metrics
        self.lease_s = lease_s
        self.renew_s = renew_s
        self.margin = datetime.timedelta(seconds=conflict_margin_s)
        self.retry_s = retry_s
        self.node = node or node_name()
        self._ids: deque[int] = deque()
        self._opening: list[_Open] = []
        self._unnumbered: list[_Open] = []  # logged in while no id was at hand
        self._ending: list[tuple[int, datetime.datetime, str, datetime.datetime]] = []
        self._live: dict[Live, _Open] = {}
        self._checked_at = 0.0  # wall clock of the last conflict check
        self._renewed_at = 0.0
        self._connection: psycopg.AsyncConnection | None = None
        self._wakeup = asyncio.Event()

    # --- called by connections (never waits) --------------------------------------------------------

    def open(self, connection: Live, terminal_id: int, protocol: str, remote: tuple[str, int], via: str | None) -> None:
        """Open the connection's session; its id goes to `connection.session_id` at once, or with
        the next block of ids when none is at hand (a reconnect storm, the database away): pings
        queued before that are stored without one."""
        self.close(connection, "terminal_changed")
        entry = _Open(None, terminal_id, protocol, remote[0], remote[1], via, _utc(time.time()), connection)
        self._live[connection] = entry
        if self._ids:
            self._number(entry)
        else:
            self._unnumbered.append(entry)
            self.metrics.errors["session_ids_late"] += 1
            self._wakeup.set()
        if len(self._ids) < ID_BLOCK // 2 or len(self._opening) >= ID_BLOCK // 2:
            self._wakeup.set()

    def _number(self, entry: _Open) -> None:
        entry.id = entry.connection.session_id = self._ids.popleft()
        self._opening.append(entry)

    def close(self, connection: Live, reason: str) -> None:
        entry = self._live.pop(connection, None)
        connection.session_id = None
        if entry is None:
            return
        if entry.id is None:  # never written: nothing to end
            self._unnumbered.remove(entry)
            return
        now = time.time()
        self._ending.append((entry.id, _utc(now), reason[:24], _utc(min(now, connection.heard_at))))

    @property
    def open_sessions(self) -> int:
        return len(self._live)

    # --- the ledger's own task --------------------------------------------------------------------

    async def prime(self, timeout_s: float = 3.0) -> None:
        """Fetch the first block of ids before the listeners open (terminals reconnect at once after
        a restart); with the database away the gateway starts all the same."""
        try:
            await asyncio.wait_for(self._flush(), timeout_s)
        except Exception as error:
            log.warning("terminal sessions: no ids at start (%s); logins get theirs later", error)
            await db.close_quietly(self._connection)
            self._connection = None

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), FLUSH_S)
            self._wakeup.clear()
            try:
                await self._flush()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # database away: keep what is queued and try again
                log.warning("terminal sessions not written: %s", error)
                self.metrics.errors["sessions"] += 1
                await db.close_quietly(self._connection)
                self._connection = None
                await asyncio.sleep(self.retry_s)

    async def _flush(self) -> None:
        connection = self._connection
        if connection is None or connection.closed:
            connection = self._connection = await db.connect(self.conninfo, autocommit=True)
        if len(self._ids) < ID_BLOCK // 2 + len(self._unnumbered):
            cursor = await connection.execute(_IDS_SQL, [ID_BLOCK + len(self._unnumbered)])
            self._ids.extend(row[0] for row in await cursor.fetchall())
            unnumbered, self._unnumbered = self._unnumbered, []
            for entry in unnumbered:
                self._number(entry)
        if self._opening:
            opening = self._opening
            await connection.execute(
                _OPEN_SQL,
                [
                    self.node,
                    self.lease_s,
                    [o.id for o in opening],
                    [o.terminal_id for o in opening],
                    [o.protocol for o in opening],
                    [o.address for o in opening],
                    [o.port for o in opening],
                    [o.via for o in opening],
                    [o.started_at for o in opening],
                ],
            )
            del self._opening[: len(opening)]
        if self._ending:
            ending = self._ending
            await connection.execute(_END_SQL, [list(column) for column in zip(*ending, strict=True)])
            del self._ending[: len(ending)]
        now = time.time()
        if now - self._renewed_at >= self.renew_s:
            await self._renew(connection, now)

    async def _renew(self, connection: psycopg.AsyncConnection, now: float) -> None:
        """Renew every live lease; then look for clones among the sessions heard since the last look."""
        live = [o for o in self._live.values() if o.id is not None]
        if live:
            await connection.execute(
                _RENEW_SQL, [self.lease_s, [o.id for o in live], [_utc(o.connection.heard_at) for o in live]]
            )
        heard = [o.id for o in live if o.connection.heard_at > self._checked_at]
        self._renewed_at = self._checked_at = now
        if heard:
            await self._find_conflicts(connection, heard)

    async def _find_conflicts(self, connection: psycopg.AsyncConnection, ids: list[int]) -> None:
        found: dict[tuple[int, datetime.datetime], str] = {}
        checks = (
            (_CONFLICTS_SQL, {"ids": ids, "margin": self.margin}, "two live sessions"),
            (_IMPOSSIBLE_SQL, {"ids": ids, "window": IMPOSSIBLE_WINDOW, "outliers": IMPOSSIBLE_OUTLIERS}, IMPOSSIBLE),
        )
        for sql, params, what in checks:
            cursor = await connection.execute(sql, params)
            for terminal_id, at, address_a, port_a, address_b, port_b in await cursor.fetchall():
                pair = sorted([(address_a, port_a), (address_b, port_b)])
                found.setdefault((terminal_id, at), conflict_note(pair[0], pair[1], what=what))
        if not found:
            return
        async with connection.transaction():
            keys = list(found)
            cursor = await connection.execute(
                _CONFLICT_ALARM_SQL, [[k[0] for k in keys], [k[1] for k in keys], [found[k] for k in keys]]
            )
            raised = await cursor.fetchall()
            if raised:
                times = [row[1] for row in raised]
                terminals = sorted({row[0] for row in raised})
                await connection.execute(_OUTBOX_SQL, [json.dumps(terminals), min(times), max(times)])
        for terminal_id, at in raised:
            self.metrics.terminal_conflicts += 1
            log.warning("terminal %s: cloned identity? %s (since %s)", terminal_id, found[(terminal_id, at)], at)

    async def close_all(self, reason: str) -> None:
        """At shutdown: end every session still open, in one last write (best effort)."""
        for connection in list(self._live):
            self.close(connection, reason)
        try:
            await asyncio.wait_for(self._flush(), 3.0)
        except Exception as error:
            log.warning("terminal sessions not closed at shutdown: %s (their leases run out)", error)
        await db.close_quietly(self._connection)
        self._connection = None

    def stats(self) -> dict[str, Any]:
        return {
            "open": len(self._live),
            "ids": len(self._ids),
            "queued": len(self._opening) + len(self._ending) + len(self._unnumbered),
        }
