"""Terminal sessions in the database: node leases, remote addresses, and cloned identities found.

Every logged-in connection is a TerminalSession row (terminal, address, gateway node, since when),
and the pings it brings name it, so a position's evidence says where it came from. Leases are per
node: each worker renews its GatewayNode row, and a session is alive while it is not ended and its
node's lease runs, so a dead node's sessions are seen to be gone without asking it (one lease per
session cost more database CPU than storing the positions).

A cloned identity is two live sessions of one terminal, each heard from after the other logged in,
or a takeover from another address whose fixes land where the bike cannot be: a `terminal_conflict`
alarm with an outbox row for the duty room. Details: docs/architecture.md#leases-and-cloned-identities.
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
from typing import Protocol

import psycopg

from . import db
from .metrics import Metrics

log = logging.getLogger("tracking.gateway")

ID_BLOCK = 512
FLUSH_S = 0.5  # queued logins and closings are written at least this often
CONTENTION_WATCH_S = 600.0
IMPOSSIBLE_WINDOW = datetime.timedelta(minutes=10)
IMPOSSIBLE_OUTLIERS = 3  # one bad fix after a reconnect is a GPS still finding itself
NODE_LOST_AFTER = datetime.timedelta(minutes=1)  # a lease this long expired: the node is gone

_NODE_SQL = """
INSERT INTO tracking_gatewaynode (node, started_at, lease_until)
VALUES (%(node)s, now(), now() + make_interval(secs => %(lease)s))
ON CONFLICT (node) DO UPDATE SET lease_until = EXCLUDED.lease_until
"""
# Sessions of nodes that died: ended where their node's lease ran out, then the node forgotten.
_NODES_LOST_SQL = """
WITH lost AS (
    SELECT node, lease_until FROM tracking_gatewaynode
    WHERE lease_until < now() - %(after)s AND node <> %(node)s
    FOR UPDATE SKIP LOCKED
), ended AS (
    UPDATE tracking_terminalsession s
    SET ended_at = lost.lease_until, end_reason = 'node_lost', last_heard_at = greatest(s.last_heard_at, s.started_at)
    FROM lost WHERE s.node = lost.node AND s.ended_at IS NULL
    RETURNING s.id
)
DELETE FROM tracking_gatewaynode g USING lost WHERE g.node = lost.node
"""
_IDS_SQL = "SELECT nextval(pg_get_serial_sequence('tracking_terminalsession', 'id')) FROM generate_series(1, %s)"
_OPEN_SQL = """
INSERT INTO tracking_terminalsession
    (id, terminal_id, protocol, remote_address, remote_port, via_address, node, started_at, last_heard_at,
     end_reason)
SELECT o.id, o.terminal_id, o.protocol, o.remote_address::inet, o.remote_port, o.via_address::inet, %s,
       o.started_at, o.started_at, ''
FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::int[], %s::text[], %s::timestamptz[])
    AS o(id, terminal_id, protocol, remote_address, remote_port, via_address, started_at)
ON CONFLICT (id) DO NOTHING
"""
_END_SQL = """
UPDATE tracking_terminalsession s SET ended_at = e.ended_at, end_reason = e.reason, last_heard_at = e.heard_at
FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[], %s::timestamptz[]) AS e(id, ended_at, reason, heard_at)
WHERE s.id = e.id AND s.ended_at IS NULL
"""
# Session b is alive: not ended, on a node whose lease runs.
_LIVE = (
    "b.ended_at IS NULL "
    "AND EXISTS (SELECT 1 FROM tracking_gatewaynode n WHERE n.node = b.node AND n.lease_until > now())"
)
# Session b is the one session a took over from: an earlier session of the terminal, heard from
# within the window before a's login, from another address.
_PREDECESSOR = (
    "b.terminal_id = a.terminal_id AND b.started_at < a.started_at "
    "AND b.last_heard_at > a.started_at - %(window)s AND host(b.remote_address) <> host(a.remote_address)"
)
# Of this node's new sessions: which have another live session (contended), which took over from
# another address lately (watched for positions that cannot both be true).
_NEW_SQL = f"""
SELECT a.id,
       EXISTS (SELECT 1 FROM tracking_terminalsession b
               WHERE b.terminal_id = a.terminal_id AND b.id <> a.id AND {_LIVE}),
       EXISTS (SELECT 1 FROM tracking_terminalsession b WHERE {_PREDECESSOR})
FROM tracking_terminalsession a WHERE a.id = ANY(%(ids)s::bigint[])
"""  # noqa: S608 (_LIVE and _PREDECESSOR are constants)
# Sessions opened anywhere since the last look, not ended (terminals another node may also hold).
_RECENT_SQL = "SELECT id, terminal_id FROM tracking_terminalsession WHERE started_at > %s AND ended_at IS NULL"
_HEARD_SQL = """
UPDATE tracking_terminalsession s SET last_heard_at = greatest(s.last_heard_at, h.heard_at)
FROM unnest(%s::bigint[], %s::timestamptz[]) AS h(id, heard_at)
WHERE s.id = h.id AND s.ended_at IS NULL
"""
# Pairs of live sessions of one terminal, each heard from after the other's login.
_CONFLICTS_SQL = f"""
SELECT a.terminal_id, greatest(a.started_at, b.started_at),
       host(a.remote_address), a.remote_port, host(b.remote_address), b.remote_port
FROM tracking_terminalsession a
JOIN tracking_terminalsession b ON b.terminal_id = a.terminal_id AND b.id <> a.id
WHERE a.id = ANY(%(ids)s::bigint[]) AND a.ended_at IS NULL AND {_LIVE}
  AND a.last_heard_at > b.started_at + %(margin)s AND b.last_heard_at > a.started_at + %(margin)s
"""  # noqa: S608 (_LIVE is a constant)
# A session that took over from another address and whose fixes keep landing where the bike cannot
# be: positions from two places that cannot both be true.
_IMPOSSIBLE_SQL = f"""
SELECT a.terminal_id, a.started_at, host(a.remote_address), a.remote_port, host(b.remote_address), b.remote_port
FROM tracking_terminalsession a
JOIN LATERAL (
    SELECT b.remote_address, b.remote_port FROM tracking_terminalsession b
    WHERE {_PREDECESSOR} ORDER BY b.started_at DESC LIMIT 1
) b ON true
WHERE a.id = ANY(%(ids)s::bigint[])
  AND (SELECT count(*) FROM tracking_ping p
       WHERE p.terminal_id = a.terminal_id AND p.device_time > a.started_at - %(window)s
         AND p.session_id = a.id AND p.outlier) >= %(outliers)s
"""  # noqa: S608 (_PREDECESSOR is a constant)
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

LIVE_SESSIONS = "two live sessions"
IMPOSSIBLE = "positions that cannot both be true"


class Live(Protocol):
    """What the ledger needs of a connection: when it was last heard (wall clock, epoch seconds),
    and where its session id goes once one is at hand."""

    @property
    def heard_at(self) -> float: ...

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
    contended_until: float = 0.0  # monotonic: watched for a live twin until then
    takeover_until: float = 0.0  # monotonic: watched for impossible positions until then


def node_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:80]


def _utc(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC)


def conflict_note(a: tuple[str, int], b: tuple[str, int], *, what: str = LIVE_SESSIONS) -> str:
    return f"{what}: {a[0]}:{a[1]} and {b[0]}:{b[1]}"[:200]


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
        self._unchecked: list[_Open] = []  # written, not yet looked at for contention
        self._ending: list[tuple[int, datetime.datetime, str, datetime.datetime]] = []
        self._live: dict[Live, _Open] = {}
        self._by_id: dict[int, _Open] = {}
        self._by_terminal: dict[int, list[_Open]] = {}
        self._looked_at: datetime.datetime | None = None  # database time of the last look at new sessions
        self._renewed_at = 0.0  # wall clock of the last renewal and look for clones
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
        self._by_terminal.setdefault(terminal_id, []).append(entry)
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
        self._by_id[entry.id] = entry
        self._opening.append(entry)

    def close(self, connection: Live, reason: str) -> None:
        entry = self._live.pop(connection, None)
        connection.session_id = None
        if entry is None:
            return
        same_terminal = self._by_terminal.get(entry.terminal_id, [])
        if entry in same_terminal:
            same_terminal.remove(entry)
            if not same_terminal:
                del self._by_terminal[entry.terminal_id]
        if entry.id is None:  # never written: nothing to end
            self._unnumbered.remove(entry)
            return
        self._by_id.pop(entry.id, None)
        now = time.time()
        self._ending.append((entry.id, _utc(now), reason[:24], _utc(min(now, connection.heard_at))))

    @property
    def open_sessions(self) -> int:
        return len(self._live)

    # --- the ledger's own task --------------------------------------------------------------------

    async def prime(self, timeout_s: float = 3.0) -> None:
        """Take the node's lease and the first block of ids before the listeners open (terminals
        reconnect at once after a restart); with the database away the gateway starts all the same."""
        try:
            await asyncio.wait_for(self._flush(), timeout_s)
        except Exception as error:
            log.warning("terminal sessions: no lease or ids at start (%s); logins get theirs later", error)
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
        now = time.time()
        due = now - self._renewed_at >= self.renew_s
        if due:
            await self._renew(connection)
        if len(self._ids) < ID_BLOCK // 2 + len(self._unnumbered):
            cursor = await connection.execute(_IDS_SQL, [ID_BLOCK + len(self._unnumbered)])
            self._ids.extend(row[0] for row in await cursor.fetchall())
            unnumbered, self._unnumbered = self._unnumbered, []
            for entry in unnumbered:
                self._number(entry)
        if self._opening:
            opening = self._opening[:]  # logins during the write queue up behind these
            await connection.execute(
                _OPEN_SQL,
                [
                    self.node,
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
            self._unchecked.extend(opening)
        if self._ending:
            ending = self._ending[:]
            await connection.execute(_END_SQL, [list(column) for column in zip(*ending, strict=True)])
            del self._ending[: len(ending)]
        if due:
            await self._watch(connection)
            await self._check(connection)
            self._renewed_at = now

    async def _renew(self, connection: psycopg.AsyncConnection) -> None:
        """The node's lease; the sessions of nodes that died ended."""
        await connection.execute(_NODE_SQL, {"node": self.node, "lease": self.lease_s})
        await connection.execute(_NODES_LOST_SQL, {"node": self.node, "after": NODE_LOST_AFTER})

    async def _watch(self, connection: psycopg.AsyncConnection) -> None:
        """Find the sessions to watch: this node's new ones with a live twin or a recent takeover,
        and its older ones whose terminal someone logged in as lately (here or on another node)."""
        clock = time.monotonic()
        unchecked = [o for o in self._unchecked if o.id in self._by_id]
        self._unchecked = []
        if unchecked:
            cursor = await connection.execute(_NEW_SQL, {"ids": [o.id for o in unchecked], "window": IMPOSSIBLE_WINDOW})
            for session_id, contended, took_over in await cursor.fetchall():
                entry = self._by_id.get(session_id)
                if entry is None:
                    continue
                if contended:
                    entry.contended_until = clock + CONTENTION_WATCH_S
                if took_over:
                    entry.takeover_until = clock + IMPOSSIBLE_WINDOW.total_seconds()
        cursor = await connection.execute("SELECT now()")
        (database_now,) = await cursor.fetchone()  # type: ignore[misc]  # SELECT now(): one row
        since = self._looked_at or database_now - datetime.timedelta(seconds=self.renew_s)
        self._looked_at = database_now - self.margin  # overlapping looks: a session seen twice is no harm
        cursor = await connection.execute(_RECENT_SQL, [since])
        for session_id, terminal_id in await cursor.fetchall():
            for entry in self._by_terminal.get(terminal_id, ()):
                if entry.id is not None and entry.id != session_id:
                    entry.contended_until = clock + CONTENTION_WATCH_S

    async def _check(self, connection: psycopg.AsyncConnection) -> None:
        """Write when the watched sessions were last heard; look for clones among them."""
        clock = time.monotonic()
        contended = [o for o in self._by_id.values() if o.contended_until > clock]
        takeovers = [o for o in self._by_id.values() if o.takeover_until > clock]
        watched = {o.id: o for o in contended + takeovers}
        if not watched:
            return
        await connection.execute(_HEARD_SQL, [list(watched), [_utc(o.connection.heard_at) for o in watched.values()]])
        found: dict[tuple[int, datetime.datetime], str] = {}
        checks = (
            (_CONFLICTS_SQL, [o.id for o in contended], {"margin": self.margin}, LIVE_SESSIONS),
            (
                _IMPOSSIBLE_SQL,
                [o.id for o in takeovers],
                {"window": IMPOSSIBLE_WINDOW, "outliers": IMPOSSIBLE_OUTLIERS},
                IMPOSSIBLE,
            ),
        )
        for sql, ids, params, what in checks:
            if not ids:
                continue
            cursor = await connection.execute(sql, {"ids": ids, **params})
            for terminal_id, at, address_a, port_a, address_b, port_b in await cursor.fetchall():
                pair = sorted([(address_a, port_a), (address_b, port_b)])
                found.setdefault((terminal_id, at), conflict_note(pair[0], pair[1], what=what))
        if found:
            await self._raise(connection, found)

    async def _raise(
        self, connection: psycopg.AsyncConnection, found: dict[tuple[int, datetime.datetime], str]
    ) -> None:
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
            await self._connection.execute("DELETE FROM tracking_gatewaynode WHERE node = %s", [self.node])  # type: ignore[union-attr]  # _flush() connected
        except Exception as error:
            log.warning("terminal sessions not closed at shutdown: %s (the node's lease runs out)", error)
        await db.close_quietly(self._connection)
        self._connection = None
