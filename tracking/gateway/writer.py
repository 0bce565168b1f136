"""The batch writer: positions from every connection, one transaction per batch, acks after commit.

Sessions hand it each message to store (`add`) and each that only shows a terminal is alive
(`heard`). A batch is cut at GATEWAY_BATCH_SIZE positions or after GATEWAY_BATCH_MS, stored by
`tracking.ingest.batch_plan` on one of GATEWAY_DB_WRITERS AsyncConnections, each committing its own
lane of terminals so that concurrent batches never wait for each other's row locks, and only after
the commit does each message's target get its ack. `drive_plan` runs the plan pipelined.

A connection problem acknowledges nothing and retries the same batch until it commits (a
(terminal, device time) is stored once); an error the data causes splits the batch until the one
bad message is found and dropped unacknowledged. The reasons, and the measurements behind them:
docs/architecture.md#the-batch-writer.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import psycopg

from tracking.ingest import (
    MAX_ALARMS_PER_FIX,
    RELEASE_SQL,
    ROLLBACK_SQL,
    SAVEPOINT_SQL,
    STAGE_VACUUM_SQL,
    WRITER_STAGE_DDL,
    Attempt,
    BareAlarm,
    BatchResult,
    CheckedFixes,
    Copy,
    Incoming,
    LastFixes,
    Plan,
    Query,
    batch_plan,
    check_fixes,
)
from tracking.recent import Recent

from . import db
from .metrics import Metrics

log = logging.getLogger("tracking.gateway")

# A terminal's last_seen_at is sent along at most this often (the database writes it at most once a
# minute anyway; offline alarms wait for three heartbeat intervals): not every terminal of every
# batch, which was a probe of thousands of terminal rows per batch.
LIVENESS_EVERY_S = 30.0

# The rows a writer's batches delete from its staging table before the writer vacuums them away
# (tracking.ingest.WRITER_STAGE_DDL): a few batches at county load, a few seconds of a quiet one.
# Until then every batch's scans of the table pass over them.
STAGE_VACUUM_ROWS = 2000

# Connection-level trouble: retry the same batch on a new connection.
RETRYABLE = (psycopg.OperationalError, psycopg.InterfaceError, TimeoutError, OSError)


class Heard(NamedTuple):
    """Terminals heard from without a position since the last batch, and the defence bits they reported."""

    terminals: set[int]
    defence: dict[int, bool]


class _Lane:
    """What one writer commits: the messages of the terminals routed to it (terminal id modulo the
    number of writers).

    Each writer has its own lane, so two batches committing at once never hold the same terminal's
    rows (its last position, its terminal row): they do not wait for each other's locks. A
    connection's messages all go to one lane, so its acks still come in the order its messages
    arrived."""

    __slots__ = ("defence", "entries", "first_at", "full", "has_work", "seen", "waiting")

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.seen: set[int] = set()
        self.defence: dict[int, bool] = {}  # terminal id -> defence bit, the latest reported
        self.waiting = 0  # positions (and bare alarms) in entries
        self.first_at = 0.0
        self.has_work = asyncio.Event()
        self.full = asyncio.Event()

    def idle(self) -> bool:
        return not self.entries and not self.seen


class Target(Protocol):
    def deliver(self, acks: list[bytes | None]) -> None:
        """Called once per committed batch with the acks of this target's messages, in arrival order
        (None for a message that wants no reply)."""


# One received message: who gets the ack, the ack, what it carries, when it arrived (monotonic).
Entry = tuple[Target | None, bytes | None, CheckedFixes, Sequence[BareAlarm], float]
NOTHING = CheckedFixes(())


# --- driving a plan ---------------------------------------------------------------------------------


async def drive_plan(connection: psycopg.AsyncConnection, plan: Plan, *, commit: bool = True) -> BatchResult:
    """Execute a `batch_plan` inside the connection's transaction (then commit it).

    Same order and results as `tracking.ingest.run_sync`; queries whose result is not read are held
    and sent together with the next one that is (pipeline mode), COPY data goes in one write.
    """
    held: list[Query] = []
    cursor = connection.cursor()

    async def send_held(*then: Query) -> None:
        """The held queries, and `then`, in one pipeline."""
        async with connection.pipeline():
            for query in (*held, *then):
                await cursor.execute(query.sql, query.params)
        held.clear()

    try:
        op = next(plan)
        while True:
            value = None
            if isinstance(op, Copy):
                if held:
                    await send_held()
                async with cursor.copy(op.sql) as copy:
                    await copy.write(op.data)
            elif isinstance(op, Attempt):
                # The savepoint and the attempt go with the held queries, its release with the
                # next ones: the rule (no conflict) costs one round trip.
                try:
                    await send_held(Query(SAVEPOINT_SQL), op.query)
                except psycopg.errors.UniqueViolation:
                    held.clear()
                    await cursor.execute(ROLLBACK_SQL)
                    await cursor.execute(op.fallback.sql, op.fallback.params)
                    value = await cursor.fetchall()
                else:
                    held.append(Query(RELEASE_SQL))
            elif op.fetch:
                if held:
                    await send_held(op)
                else:
                    await cursor.execute(op.sql, op.params)
                value = await cursor.fetchall()
            else:
                held.append(op)
            op = plan.send(value)
    except StopIteration as stop:
        result: BatchResult = stop.value
    if held or commit:
        async with connection.pipeline():
            for query in held:
                await cursor.execute(query.sql, query.params)
            if commit:
                await connection.commit()
    return result


# --- the writer -------------------------------------------------------------------------------------


class BatchWriter:
    def __init__(
        self,
        conninfo: str,
        metrics: Metrics,
        *,
        batch_size: int = 2000,
        batch_ms: float = 50,
        batch_max: int = 10000,
        pending_cap: int = 40000,
        writers: int = 2,
        db_timeout_s: float = 15.0,
        retry_min_s: float = 0.2,
        retry_max_s: float = 5.0,
        outlier_speed_kmh: float = 150.0,
        max_alarms_per_fix: int = MAX_ALARMS_PER_FIX,
        on_pressure: Callable[[bool], None] | None = None,
    ) -> None:
        self.conninfo = conninfo
        self.metrics = metrics
        self.batch_size = batch_size
        self.batch_wait_s = batch_ms / 1000
        self.batch_max = max(batch_max, batch_size)
        self.pending_cap = pending_cap
        self.writers = max(1, writers)
        self.db_timeout_s = db_timeout_s
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.outlier_speed_kmh = outlier_speed_kmh
        self.max_alarms_per_fix = max_alarms_per_fix
        self.on_pressure = on_pressure
        self._lanes = [_Lane() for _ in range(self.writers)]
        # Terminals whose liveness a commit sent lately (each for LIVENESS_EVERY_S), and what this
        # writer's commits left in tracking_lastposition.
        self._seen: Recent[int, bool] = Recent(LIVENESS_EVERY_S)
        self._last = LastFixes()
        self._waiting_items = 0  # positions (and bare alarms) waiting in all lanes
        self._inflight_items = 0  # in batches being committed
        self._pressure = False
        self._closing = False
        self._connections: list[psycopg.AsyncConnection | None] = [None] * self.writers
        self._up: list[bool] = [False] * self.writers
        self._stage_dead = [0] * self.writers  # rows deleted from each connection's ping_stage since its vacuum
        metrics.pending_items = lambda: self._waiting_items
        metrics.inflight_items = lambda: self._inflight_items

    # --- intake --------------------------------------------------------------------------------------

    @property
    def accepting(self) -> bool:
        return not self._closing

    def add(
        self,
        target: Target | None,
        ack: bytes | None,
        items: CheckedFixes | Sequence[Incoming] = NOTHING,
        alarms: Sequence[BareAlarm] = (),
    ) -> None:
        """Queue one message's positions / alarms; `target.deliver([ack])` follows the commit.
        Positions come checked (`check_fixes`, by the session); others are checked here.

        The message's terminal picks the lane. A GT06 or JT/T 808 connection is one terminal; an
        OsmAnd connection sends its next request only after the answer to the last, so each
        connection's acks still come in order."""
        if not isinstance(items, CheckedFixes):
            items = check_fixes(items, now=datetime.datetime.now(datetime.UTC))
        fixes = items.items
        key = fixes[0].terminal_id if fixes else alarms[0].terminal_id if alarms else 0
        lane = self._lanes[key % self.writers]
        now = time.monotonic()
        if lane.idle():
            lane.first_at = now
            lane.has_work.set()
        lane.entries.append((target, ack, items, alarms, now))
        count = len(fixes) + len(alarms)
        lane.waiting += count
        self._waiting_items += count
        if alarms:
            self.metrics.alarms_queued += len(alarms)
        if lane.waiting >= self.batch_size:
            lane.full.set()
        if not self._pressure and self._waiting_items + self._inflight_items >= self.pending_cap:
            self._set_pressure(True)

    def heard(self, terminal_id: int, *, defence: bool | None = None) -> None:
        """The terminal is alive (heartbeat, login): its last_seen_at is refreshed with the next batch,
        and its defence bit, when the message carries one, stored where it changed."""
        if self._closing:
            return
        lane = self._lanes[terminal_id % self.writers]
        if lane.idle():
            lane.first_at = time.monotonic()
            lane.has_work.set()
        lane.seen.add(terminal_id)
        if defence is not None:
            lane.defence[terminal_id] = defence

    def _set_pressure(self, on: bool) -> None:
        self._pressure = on
        self.metrics.paused = int(on)
        if on:
            log.warning(
                "pending cap reached (%d positions waiting, %d in flight): pausing reads",
                self._waiting_items,
                self._inflight_items,
            )
        else:
            log.info("pending positions drained: resuming reads")
        if self.on_pressure is not None:
            self.on_pressure(on)

    def _check_pressure(self) -> None:
        if self._pressure and self._waiting_items + self._inflight_items <= self.pending_cap // 2:
            self._set_pressure(False)

    # --- the loop ------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Commit batches until `stop()` and nothing is left; GATEWAY_DB_WRITERS at a time."""
        try:
            await asyncio.gather(*(self._work(number) for number in range(self.writers)))
        finally:
            for number in range(self.writers):
                await db.close_quietly(self._connections[number])
                self._connections[number] = None

    async def _work(self, number: int) -> None:
        lane = self._lanes[number]
        while True:
            if lane.idle():
                if self._closing:
                    return
                lane.has_work.clear()
                await lane.has_work.wait()
                continue
            await self._wait_for_batch(lane)
            entries, seen, count = self._take(lane)
            try:
                await self._write(number, entries, seen)
            finally:
                self._inflight_items -= count
                self._check_pressure()
            if self._stage_dead[number] >= STAGE_VACUUM_ROWS:
                await self._vacuum_stage(number)

    async def _wait_for_batch(self, lane: _Lane) -> None:
        while lane.waiting < self.batch_size and not self._closing:
            remaining = lane.first_at + self.batch_wait_s - time.monotonic()
            if remaining <= 0:
                return
            lane.full.clear()
            try:
                await asyncio.wait_for(lane.full.wait(), remaining)
            except TimeoutError:
                return

    def _take(self, lane: _Lane) -> tuple[list[Entry], Heard, int]:
        count = 0
        cut = 0
        for cut, entry in enumerate(lane.entries, 1):  # noqa: B007 - `cut` is used after the loop
            count += len(entry[2].items) + len(entry[3])
            if count >= self.batch_max:
                break
        entries = lane.entries[:cut]
        del lane.entries[:cut]
        seen = Heard(lane.seen, lane.defence)
        lane.seen, lane.defence = set(), {}
        lane.waiting -= count
        self._waiting_items -= count
        self._inflight_items += count
        lane.first_at = lane.entries[0][4] if lane.entries else time.monotonic()
        if lane.waiting < self.batch_size:
            lane.full.clear()
        return entries, seen, count

    async def _write(self, number: int, entries: list[Entry], seen: Heard) -> None:
        """Commit `entries` in one transaction (retrying connection trouble); isolate poison messages."""
        try:
            result, seconds = await self._commit(number, entries, seen)
        except psycopg.Error as error:  # not retryable: caused by the data of some message
            if len(entries) <= 1:
                self.metrics.errors["db_rejected"] += 1
                log.error(
                    "database refused a message (%d positions, %d alarms), dropped without ack: %s",
                    len(entries[0][2].items) if entries else 0,
                    len(entries[0][3]) if entries else 0,
                    error,
                )
                for target, _ack, _items, _alarms, _at in entries:
                    forget = getattr(target, "forget", None)
                    if forget is not None:
                        forget(1)
                return
            middle = len(entries) // 2
            await self._write(number, entries[:middle], seen)
            await self._write(number, entries[middle:], Heard(set(), {}))
            return
        self._account(result, entries, seconds)
        self._deliver(entries)

    async def _commit(self, number: int, entries: list[Entry], seen: Heard) -> tuple[BatchResult, float]:
        batch = CheckedFixes.join(entry[2] for entry in entries)
        alarms = [alarm for entry in entries for alarm in entry[3]]
        started_at = time.monotonic()
        heard = {item.terminal_id for item in batch.items} | {alarm.terminal_id for alarm in alarms} | seen.terminals
        sent_lately = self._seen.getter(started_at)
        due = [tid for tid in heard if sent_lately(tid) is None]
        last_known = self._last.getter(started_at)
        backoff = self.retry_min_s
        while True:
            connection = None
            try:
                connection = await self._connect(number)
                started = time.monotonic()
                plan = batch_plan(
                    batch,
                    bare_alarms=alarms,
                    defence=seen.defence,
                    now=datetime.datetime.now(datetime.UTC),
                    outlier_speed_kmh=self.outlier_speed_kmh,
                    liveness=due,
                    last_known=last_known,
                    staged=True,
                    max_alarms_per_fix=self.max_alarms_per_fix,
                )
                async with asyncio.timeout(self.db_timeout_s):
                    result = await drive_plan(connection, plan)
                committed = time.monotonic()
                self._stage_dead[number] += len(batch.items)
                self._seen.put(dict.fromkeys(due, True), committed)
                self._last.put(result.latest, committed)
                return result, committed - started
            except RETRYABLE as error:
                self.metrics.batch_failures += 1
                await self._drop(number, connection)
                log.warning(
                    "batch of %d positions not committed (%s: %s); retrying in %.1f s",
                    len(batch.items),
                    type(error).__name__,
                    error,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.retry_max_s)
            except psycopg.Error:
                self.metrics.batch_failures += 1
                await self._rollback(number)
                raise

    def forget_stale(self, now: float) -> None:
        """Drop the liveness times and last fixes that are past their TTL at `now` (monotonic)."""
        self._seen.forget_stale(now)
        self._last.forget_stale(now)

    def remembered(self) -> int:
        """Terminals this writer holds a liveness time or a last fix for."""
        return len(self._seen.keys() | self._last.keys())

    async def _connect(self, number: int) -> psycopg.AsyncConnection:
        connection = self._connections[number]
        if connection is None or connection.closed:
            async with asyncio.timeout(self.db_timeout_s):
                connection = await db.connect(self.conninfo, autocommit=False)
                # The session's staging table, once: every batch leaves it empty.
                await connection.execute(WRITER_STAGE_DDL)
                await connection.commit()
            self._connections[number] = connection
            self._stage_dead[number] = 0
            if not self._up[number]:
                log.info("batch writer %d connected to the database", number + 1)
            self._mark(number, up=True)
        return connection

    async def _vacuum_stage(self, number: int) -> None:
        """Vacuum the connection's staging table between two batches (VACUUM runs outside a
        transaction). Its file keeps its size: the next batches fill the pages freed here. A
        connection that fails here is dropped; the next batch connects anew, with a new table."""
        connection = self._connections[number]
        if connection is None or connection.closed:
            return
        try:
            async with asyncio.timeout(self.db_timeout_s):
                await connection.set_autocommit(True)
                await connection.execute(STAGE_VACUUM_SQL)
                await connection.set_autocommit(False)
            self._stage_dead[number] = 0
        except (*RETRYABLE, psycopg.Error) as error:
            log.warning("staging table not vacuumed (%s: %s); reconnecting", type(error).__name__, error)
            await self._drop(number, connection)

    async def _drop(self, number: int, connection: psycopg.AsyncConnection | None) -> None:
        """Connection trouble: count it, close the connection; the next batch connects anew."""
        self.metrics.errors["db_connection"] += 1
        self._mark(number, up=False)
        await db.close_quietly(connection)
        self._connections[number] = None

    def _mark(self, number: int, *, up: bool) -> None:
        self._up[number] = up
        self.metrics.db_up = int(any(self._up))

    async def _rollback(self, number: int) -> None:
        connection = self._connections[number]
        try:
            if connection is not None:
                async with asyncio.timeout(self.db_timeout_s):
                    await connection.rollback()
        except Exception:
            await db.close_quietly(connection)
            self._connections[number] = None

    def _account(self, result: BatchResult, entries: list[Entry], seconds: float) -> None:
        metrics = self.metrics
        metrics.pings_stored += result.stored
        metrics.pings_duplicate += result.duplicates
        metrics.pings_outlier += result.outliers
        metrics.alarms_dropped += result.alarms_dropped
        for _index, problem in result.rejected:
            metrics.pings_rejected[problem.code] += 1
        if entries:
            size = sum(len(entry[2].items) for entry in entries)
            metrics.batch_done(seconds, time.monotonic() - entries[0][4], size)

    def _deliver(self, entries: list[Entry]) -> None:
        by_target: dict[Any, list[bytes | None]] = {}
        for target, ack, _items, _alarms, _at in entries:
            if target is not None:
                acks = by_target.get(target)
                if acks is None:
                    by_target[target] = [ack]
                else:
                    acks.append(ack)
        for target, acks in by_target.items():
            try:
                target.deliver(acks)
            except Exception:  # a connection's failure must not keep the others' acks back
                self.metrics.errors["deliver"] += 1
                log.exception("delivering acks failed")

    # --- shutdown ------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Take no more messages; `run()` returns once what is queued is committed and acknowledged."""
        self._closing = True
        for lane in self._lanes:
            lane.has_work.set()
            lane.full.set()
