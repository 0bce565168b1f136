"""Keeping positions only as long as allowed (PIPL: sensitive personal data, docs/domain.md#privacy).

Each app declares in `<app>/retention.py` the tables where it keeps positions or what derives from
them: `RETENTION` (a list of `Rule`: model, the field a row ages from, the setting with its days, how
a legal hold applies, which rows may go at all), `RETENTION_KEEP` and `RETENTION_EXEMPT`; a model
with a geometry field in none of them is named by `retention_undeclared()` and fails the tests.
A legal hold keeps a bike's theft window; day partitions past the period are detached and dropped,
their held rows first copied into the default partition. The maintenance worker runs
`retention_apply()` as the owner role. Legal holds and partitions: docs/architecture.md#retention.
"""

from __future__ import annotations

import datetime
import enum
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps as global_apps
from django.conf import settings
from django.contrib.gis.db.models.fields import GeometryField
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL

from accounts.security_policy import policy_current
from ebike_registry.app_declarations import app_declarations
from tracking.models import (
    Alarm,
    IngestOutbox,
    LastPosition,
    LegalHold,
    Ping,
    PingCell,
    TerminalInstallation,
    TerminalSession,
)
from tracking.partitions import partition_name, partitions_existing

logger = logging.getLogger(__name__)

BATCH_ROWS = 10_000  # rows deleted per transaction
LOCK_KEY = "tracking.retention"  # advisory lock: one run at a time


class Hold(enum.Enum):
    NONE = "none"  # the rows go at their age, held bike or not
    VEHICLE = "vehicle"  # `hold_field` names the vehicle
    TERMINAL = "terminal"  # `hold_field` names the terminal: held while it was fitted to the held bike


@dataclass(frozen=True)
class Rule:
    model: type[models.Model]
    time_field: str  # a row's age counts from this field
    days_setting: str  # the setting with the number of days rows are kept (the policy may override it)
    hold: Hold
    why: str  # what the rows say about people
    hold_field: str = ""
    only: Q | None = None  # the rows that may go at all; the others stay whatever their age
    span: datetime.timedelta = datetime.timedelta(0)  # a row stands for [time, time + span)

    def __post_init__(self) -> None:
        if (self.hold is Hold.NONE) != (not self.hold_field):
            raise ValueError(f"{self.model._meta.label}: a hold by vehicle or terminal names its field")

    @property
    def table(self) -> str:
        return self.model._meta.db_table


@dataclass(frozen=True)
class Keep:
    model: type[models.Model]
    rows: Callable[[], Q]
    why: str


@dataclass(frozen=True)
class Window:
    key: int  # vehicle or terminal
    since: datetime.datetime | None  # None: from the beginning
    until: datetime.datetime | None  # None: open-ended


@dataclass
class Declarations:
    rules: list[Rule] = field(default_factory=list)
    keeps: list[Keep] = field(default_factory=list)
    exempt: dict[str, str] = field(default_factory=dict)


@dataclass
class RetentionResult:
    dropped: list[str] = field(default_factory=list)  # day partitions dropped
    moved: dict[str, int] = field(default_factory=dict)  # partition -> held rows moved to the default one
    deleted: dict[str, int] = field(default_factory=dict)  # table -> rows deleted
    skipped: bool = False  # another run held the lock


HOUR = datetime.timedelta(hours=1)

RETENTION = [
    Rule(Ping, "device_time", "PING_RETENTION_DAYS", Hold.TERMINAL, "where a bike was", hold_field="terminal"),
    Rule(
        PingCell,
        "hour",
        "PING_RETENTION_DAYS",
        Hold.TERMINAL,
        "in which cell of the grid a bike was, hour by hour",
        hold_field="terminal_id",
        span=HOUR,
    ),
    Rule(
        LastPosition,
        "device_time",
        "PING_RETENTION_DAYS",
        Hold.TERMINAL,
        "where a silent terminal's bike was last",
        hold_field="terminal",
    ),
    Rule(Alarm, "at", "ALARM_RETENTION_DAYS", Hold.VEHICLE, "a bike's alarms, with its position", hold_field="vehicle"),
    # A session ages from when it was last heard (its end), so the session of every kept ping is kept
    # too; one not ended stays whatever its age (a dead node's sessions are ended by the next node).
    Rule(
        TerminalSession,
        "last_heard_at",
        "PING_RETENTION_DAYS",
        Hold.TERMINAL,
        "from which address a bike's terminal sent its positions",
        hold_field="terminal",
        only=Q(ended_at__isnull=False),
    ),
    Rule(
        IngestOutbox,
        "created_at",
        "OUTBOX_RETENTION_DAYS",
        Hold.NONE,
        "which terminals sent positions when (a processed batch is not needed again)",
        only=Q(processed_at__isnull=False),
    ),
]
RETENTION_EXEMPT: dict[str, str] = {}


def retention_declared(app_configs: Iterable[Any] | None = None) -> Declarations:
    """Every installed app's RETENTION, RETENTION_KEEP and RETENTION_EXEMPT (`<app>/retention.py`)."""
    declared = Declarations()
    for _name, module in app_declarations("retention", app_configs):
        declared.rules.extend(getattr(module, "RETENTION", []))
        declared.keeps.extend(getattr(module, "RETENTION_KEEP", []))
        declared.exempt.update(getattr(module, "RETENTION_EXEMPT", {}))
    labels = [rule.model._meta.label for rule in declared.rules]
    if twice := sorted({label for label in labels if labels.count(label) > 1}):
        raise ValueError(f"retention is declared twice for {twice}")
    return declared


def retention_undeclared() -> list[str]:
    """Models with a geometry field that no app retains or exempts."""
    declared = retention_declared()
    known = {rule.model._meta.label for rule in declared.rules} | set(declared.exempt)
    return sorted(
        model._meta.label
        for model in global_apps.get_models()
        if model._meta.label not in known and any(isinstance(f, GeometryField) for f in model._meta.concrete_fields)
    )


def retention_days(rule: Rule) -> int:
    """The rule's period: the security policy's (accounts.security_policy), else its setting's."""
    days = policy_current().retention_period(rule.days_setting)
    if not isinstance(days, int) or days < 1:
        raise ImproperlyConfigured(f"{rule.days_setting} must be a whole number of days, at least 1 (is {days!r})")
    return days


# --- legal holds -------------------------------------------------------------------------------------


def _merged(windows: Iterable[Window]) -> list[Window]:
    """Overlapping windows of one key become one (the copy of held pings must not take a row twice)."""
    low = datetime.datetime.min.replace(tzinfo=datetime.UTC)
    merged: list[Window] = []
    for w in sorted(windows, key=lambda w: (w.key, w.since or low)):
        last = merged[-1] if merged else None
        if last is not None and last.key == w.key and (last.until is None or (w.since or low) <= last.until):
            until = None if last.until is None or w.until is None else max(last.until, w.until)
            merged[-1] = Window(w.key, last.since, until)
        else:
            merged.append(w)
    return merged


def hold_windows(*, cutoff: datetime.datetime) -> list[Window]:
    """Per vehicle, the windows of the holds still open or released at `cutoff` or later."""
    margin = datetime.timedelta(minutes=settings.LEGAL_HOLD_MARGIN_MINUTES)
    holds = LegalHold.objects.filter(Q(released_at__isnull=True) | Q(released_at__gte=cutoff)).values_list(
        "vehicle_id", "held_from", "released_at"
    )
    return _merged(Window(vehicle, since - margin if since else None, until) for vehicle, since, until in holds)


def terminal_windows(vehicle_windows: list[Window]) -> list[Window]:
    """The vehicle windows as windows of the terminals fitted to those vehicles, while fitted."""
    by_vehicle: dict[int, list[Window]] = defaultdict(list)
    for window in vehicle_windows:
        by_vehicle[window.key].append(window)
    fittings = TerminalInstallation.objects.filter(vehicle_id__in=list(by_vehicle)).values_list(
        "terminal_id", "vehicle_id", "installed_at", "removed_at"
    )
    windows = []
    for terminal, vehicle, installed, removed in fittings:
        for window in by_vehicle[vehicle]:
            since = installed if window.since is None else max(installed, window.since)
            until = min((t for t in (removed, window.until) if t is not None), default=None)
            if until is None or since < until:
                windows.append(Window(terminal, since, until))
    return _merged(windows)


def held_sql(*, key: str, time: str, windows: list[Window], span: datetime.timedelta) -> tuple[str, list[Any]]:
    """A condition true for rows (`key` and `time`: column references) inside one of `windows`."""
    sql = (
        "EXISTS (SELECT 1 FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) AS w(key, since, until) "  # noqa: S608 (column names, from models)
        f"WHERE w.key = {key} AND {time} >= coalesce(w.since, '-infinity') AND {time} < coalesce(w.until, 'infinity'))"
    )
    return sql, [
        [w.key for w in windows],
        [w.since - span if w.since else None for w in windows],
        [w.until for w in windows],
    ]


# --- pings: day partitions and the default partition ---------------------------------------------------


@dataclass
class Retired:
    rows_kept: int  # rows inside a hold window, copied into the default partition
    locked_s: float  # how long ingestion waited: from DETACH (it locks tracking_ping) to commit


def partition_retire(day: datetime.date, *, windows: list[Window]) -> Retired:
    """Drop a day partition, keeping its rows inside `windows` (per terminal) in the default partition.

    First transaction: the held rows are read, each window by the primary key (terminal, device
    time), into a temporary table while only writers of this old day wait (SHARE lock on the
    partition); then DETACH takes tracking_ping's lock, the rows go into the default partition and
    it commits: ingestion waits only for that part. Second transaction: the detached table is
    dropped (unlinking its files takes a while; nobody waits for it). A run stopped in between
    leaves a detached table that `leftovers_drop` removes."""
    start = datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)
    end = start + datetime.timedelta(days=1)
    relevant = [w for w in windows if (w.since is None or w.since < end) and (w.until is None or w.until > start)]
    name = partition_name(day)
    kept = 0
    with transaction.atomic(), connection.cursor() as cursor:
        if relevant:
            cursor.execute(f"LOCK TABLE {name} IN SHARE MODE")
            cursor.execute(
                f"CREATE TEMPORARY TABLE retention_held AS SELECT p.* "  # noqa: S608
                "FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) AS w(key, since, until) "
                f"CROSS JOIN LATERAL (SELECT * FROM {name} q WHERE q.terminal_id = w.key "
                "AND q.device_time >= coalesce(w.since, '-infinity') "
                "AND q.device_time < coalesce(w.until, 'infinity')) p",
                [[w.key for w in relevant], [w.since for w in relevant], [w.until for w in relevant]],
            )
        locked = time.perf_counter()
        cursor.execute(f"ALTER TABLE tracking_ping DETACH PARTITION {name}")
        if relevant:
            cursor.execute("INSERT INTO tracking_ping SELECT * FROM retention_held")
            kept = cursor.rowcount
            cursor.execute("DROP TABLE retention_held")
    locked_s = time.perf_counter() - locked
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {name}")
    return Retired(rows_kept=kept, locked_s=locked_s)


def leftovers_drop() -> list[str]:
    """Drop day tables detached by a run that stopped before dropping them (their held rows are
    already in the default partition: the detaching transaction copied them)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND NOT c.relispartition "
            "AND c.relname ~ '^tracking_ping_p[0-9]{8}$'"
        )
        names = [row[0] for row in cursor.fetchall()]
        for name in names:
            cursor.execute(f"DROP TABLE {connection.ops.quote_name(name)}")
    return names


def partition_trim(day: datetime.date, *, windows: list[Window]) -> int:
    """The alternative `partition_retire` is measured against (bench/retention.py): delete the rows
    outside `windows` in place and keep the partition. Returns the rows deleted."""
    name = partition_name(day)
    held, params = held_sql(key="p.terminal_id", time="p.device_time", windows=windows, span=datetime.timedelta(0))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {name} p WHERE NOT {held}", params)  # noqa: S608
        return cursor.rowcount


def _batches_delete(table: str, select_sql: str, params: list[Any]) -> int:
    """Delete the rows whose ctid `select_sql` returns (it has a LIMIT), batch after batch, each in
    its own transaction, until a batch comes back short."""
    total = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE ctid = ANY(ARRAY({select_sql}))", params)  # noqa: S608
            total += cursor.rowcount
            if cursor.rowcount < BATCH_ROWS:
                return total


def _pings_apply(rule: Rule, *, cutoff: datetime.datetime, windows: list[Window], result: RetentionResult) -> None:
    result.dropped.extend(leftovers_drop())
    for day in partitions_existing():
        end = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), tzinfo=datetime.UTC)
        if end > cutoff:
            continue
        retired = partition_retire(day, windows=windows)
        result.dropped.append(partition_name(day))
        if retired.rows_kept:
            result.moved[partition_name(day)] = retired.rows_kept
    held, params = held_sql(key="p.terminal_id", time="p.device_time", windows=windows, span=rule.span)
    result.deleted["tracking_ping_default"] = _batches_delete(
        "tracking_ping_default",
        f"SELECT p.ctid FROM tracking_ping_default p WHERE p.device_time < %s AND NOT {held} LIMIT {BATCH_ROWS}",  # noqa: S608
        [cutoff, *params],
    )


# --- every other table -----------------------------------------------------------------------------


def _column(model: type[models.Model], name: str) -> str:
    """The column of a model's concrete field (a rule names fields; its SQL names columns)."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or not field.column:
        raise ImproperlyConfigured(f"{model.__name__}.{name} is not a concrete field")
    return field.column


def _rule_apply(rule: Rule, *, cutoff: datetime.datetime, windows: list[Window], keeps: list[Keep]) -> int:
    table = connection.ops.quote_name(rule.table)
    rows = rule.model._base_manager.filter(**{f"{rule.time_field}__lt": cutoff})
    if rule.only is not None:
        rows = rows.filter(rule.only)
    for keep in keeps:
        rows = rows.exclude(keep.rows())
    if rule.hold is not Hold.NONE and windows:
        column = connection.ops.quote_name
        sql, params = held_sql(
            key=f"{table}.{column(_column(rule.model, rule.hold_field))}",
            time=f"{table}.{column(_column(rule.model, rule.time_field))}",
            windows=windows,
            span=rule.span,
        )
        rows = rows.exclude(RawSQL(sql, params, output_field=models.BooleanField()))  # noqa: S611 (values are parameters)
    # The physical row address: one DELETE … WHERE ctid = ANY(…) per batch is a TID scan.
    row = RawSQL(f"{table}.ctid", [], output_field=models.TextField())  # noqa: S611
    select_sql, select_params = rows.order_by().values(_row=row)[:BATCH_ROWS].query.sql_with_params()
    return _batches_delete(table, f'SELECT doomed."_row" FROM ({select_sql}) AS doomed', list(select_params))  # noqa: S608


def retention_apply(*, now: datetime.datetime | None = None) -> RetentionResult:
    """Delete what every declared table keeps past its retention period, except rows inside a legal
    hold's window. Safe to run again at once (it then deletes nothing); a run that finds another
    one under way returns `skipped`."""
    now = now or datetime.datetime.now(datetime.UTC)
    declared = retention_declared()
    result = RetentionResult()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [LOCK_KEY])
        if not cursor.fetchone()[0]:
            logger.info("retention: another run is under way")
            result.skipped = True
            return result
    try:
        # Per cutoff and kind of hold: the periods apart, the same windows serve several tables.
        windows_by: dict[tuple[datetime.datetime, Hold], list[Window]] = {}
        for rule in declared.rules:
            cutoff = now - datetime.timedelta(days=retention_days(rule))
            if (cutoff, Hold.VEHICLE) not in windows_by:
                vehicle = hold_windows(cutoff=cutoff)
                windows_by[cutoff, Hold.NONE] = []
                windows_by[cutoff, Hold.VEHICLE] = vehicle
                windows_by[cutoff, Hold.TERMINAL] = terminal_windows(vehicle)
            windows = windows_by[cutoff, rule.hold]
            if rule.model is Ping:
                _pings_apply(rule, cutoff=cutoff, windows=windows, result=result)
                continue
            keeps = [keep for keep in declared.keeps if keep.model is rule.model]
            result.deleted[rule.table] = _rule_apply(rule, cutoff=cutoff, windows=windows, keeps=keeps)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [LOCK_KEY])
    if result.dropped or any(result.deleted.values()):
        logger.info(
            "retention: dropped %s, held rows moved %s, deleted %s",
            result.dropped,
            result.moved,
            {table: n for table, n in result.deleted.items() if n},
        )
    return result
