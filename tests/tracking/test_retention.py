"""Retention of every table holding positions or what is derived from them (issue 16, point 5).

On the real test database: rows past their table's period go and younger ones stay; a legal hold
keeps only its theft window; open duty calls and pending webhooks stay at any age; a second run
changes nothing; the runtime roles cannot delete any of it (the maintenance worker runs as the owner).
"""

import datetime
import itertools
from collections.abc import Callable

import psycopg
import pytest
from django.contrib.gis.geos import Point
from django.core.exceptions import ImproperlyConfigured
from django.db import ProgrammingError, connection

from accounts.models import Station
from cases.models import DutyCall, Notification, Sighting, TheftReport, WebhookDelivery
from cases.workflow.services import VehicleQuery, report_take, report_transition
from tests import factories
from tests.accounts.test_db_roles import django_connected_as, role_conninfo
from tests.tracking import factories as tf
from tracking import tasks
from tracking.ingest import Incoming, ingest_fixes
from tracking.models import (
    Alarm,
    IngestOutbox,
    LastPosition,
    LegalHold,
    Ping,
    PingCell,
    Terminal,
    TerminalInstallation,
)
from tracking.partitions import partition_create, partition_name, partitions_existing
from tracking.retention import retention_apply, retention_declared, retention_undeclared

pytestmark = pytest.mark.django_db

PLACE = Point(117.7390, 39.8826, srid=4326)
_numbers = itertools.count(1)


def ago(days: float = 0, **more: float) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(days=days, **more)


def fitted_terminal(*, since_days: int = 1000) -> Terminal:
    """A terminal on a registered bike, fitted `since_days` ago (pings are the bike's from then)."""
    term = tf.terminal()
    TerminalInstallation.objects.filter(terminal=term).update(installed_at=ago(since_days))
    return term


def ping(term: Terminal, at: datetime.datetime) -> None:
    ingest_fixes([Incoming(term.pk, tf.fix(0, base=at))])


def pings_of(term: Terminal) -> set[datetime.datetime]:
    return set(Ping.objects.filter(terminal_id=term.pk).values_list("device_time", flat=True))


def station() -> Station:
    return Station.objects.get(code="13022901")


def report_row(term: Terminal, last_seen: datetime.datetime) -> TheftReport:
    """A report stored as it is, without the hold report_take makes (the periods alone are tested)."""
    return TheftReport.objects.create(
        number=f"R{next(_numbers):06d}",
        channel="walk_in",
        station=station(),
        vehicle=term.vehicle,
        reporter_name="王秀英",
        reporter_phone="13812345678",
        last_seen_at=last_seen,
        missing_at=last_seen,
        place_address="玉田县无终街道兴隆路超市门口",
        status="closed",
    )


def alarm(term: Terminal, at: datetime.datetime, kind: str = "vibration") -> Alarm:
    return Alarm.objects.create(terminal=term, vehicle_id=term.vehicle_id, kind=kind, at=at, point=PLACE)


def sighting(term: Terminal, at: datetime.datetime, report: TheftReport | None = None) -> Sighting:
    return Sighting.objects.create(
        report=report or report_row(term, at),
        vehicle_id=term.vehicle_id,
        terminal_id=term.pk,
        started_at=at,
        last_at=at,
        first_point=PLACE,
        last_point=PLACE,
    )


def duty_call(term: Terminal, at: datetime.datetime, status: str = "closed") -> DutyCall:
    closed = status in {"closed", "dismissed"}
    return DutyCall.objects.create(
        kind="rescue",
        station=station(),
        alarm_id=alarm(term, at, kind="sos").pk,
        vehicle_id=term.vehicle_id,
        point=PLACE,
        raised_at=at,
        status=status,
        closed_at=at if closed else None,
    )


def webhook(at: datetime.datetime, *, delivered: bool = True) -> WebhookDelivery:
    row = WebhookDelivery.objects.create(
        station=station(),
        url="https://station.example.invalid/hook",
        event="sighting",
        payload={"lat": 39.88, "lon": 117.74},
        delivered_at=at if delivered else None,
    )
    WebhookDelivery.objects.filter(pk=row.pk).update(created_at=at)
    return row


# One row of each table at a given time; each returns a check that says whether that row is still there.
def _ping_row(term: Terminal, at: datetime.datetime) -> Callable[[], bool]:
    ping(term, at)
    return lambda: Ping.objects.filter(terminal_id=term.pk, device_time=at).exists()


def _cell_row(term: Terminal, at: datetime.datetime) -> Callable[[], bool]:
    row = PingCell.objects.create(cell=next(_numbers), hour=at.replace(minute=0, second=0), terminal_id=term.pk)
    return lambda: PingCell.objects.filter(cell=row.cell).exists()


def _last_position_row(term: Terminal, at: datetime.datetime) -> Callable[[], bool]:
    term = tf.terminal()  # one last position per terminal
    LastPosition.objects.create(terminal=term, device_time=at, received_at=at, point=PLACE, valid=True)
    return lambda: LastPosition.objects.filter(terminal=term).exists()


def _outbox_row(term: Terminal, at: datetime.datetime) -> Callable[[], bool]:
    row = IngestOutbox.objects.create(
        terminal_ids=[term.pk], first_device_time=at, last_device_time=at, processed_at=at
    )
    IngestOutbox.objects.filter(pk=row.pk).update(created_at=at)
    return lambda: IngestOutbox.objects.filter(pk=row.pk).exists()


def _notification_row(term: Terminal, at: datetime.datetime) -> Callable[[], bool]:
    row = Notification.objects.create(user=factories.user("officer"), kind="sighting", title="车辆移动")
    Notification.objects.filter(pk=row.pk).update(created_at=at)
    return lambda: Notification.objects.filter(pk=row.pk).exists()


def _exists(model, make):
    def row(term: Terminal, at: datetime.datetime) -> Callable[[], bool]:
        pk = make(term, at).pk
        return lambda: model.objects.filter(pk=pk).exists()

    return row


TABLES = {
    "tracking_ping": ("PING_RETENTION_DAYS", _ping_row),
    "tracking_pingcell": ("PING_RETENTION_DAYS", _cell_row),
    "tracking_lastposition": ("PING_RETENTION_DAYS", _last_position_row),
    "tracking_alarm": ("ALARM_RETENTION_DAYS", _exists(Alarm, alarm)),
    "tracking_ingestoutbox": ("OUTBOX_RETENTION_DAYS", _outbox_row),
    "cases_sighting": ("SIGHTING_RETENTION_DAYS", _exists(Sighting, sighting)),
    "cases_dutycall": ("DUTY_CALL_RETENTION_DAYS", _exists(DutyCall, duty_call)),
    "cases_notification": ("NOTIFICATION_RETENTION_DAYS", _notification_row),
    "cases_webhookdelivery": ("WEBHOOK_RETENTION_DAYS", _exists(WebhookDelivery, lambda term, at: webhook(at))),
}


@pytest.mark.parametrize("table", list(TABLES))
def test_rows_older_than_their_tables_period_go_and_younger_ones_stay(settings, table):
    setting, make = TABLES[table]
    # Each table goes by its own setting: the others are set far longer, so only this one can act.
    for other, _make in TABLES.values():
        setattr(settings, other, 3650)
    setattr(settings, setting, 20)
    term = fitted_terminal()
    older = make(term, ago(20, hours=1))
    younger = make(term, ago(19, hours=23))

    result = retention_apply()

    assert not older(), f"{table}: a row past {setting} is still there"
    assert younger(), f"{table}: a row within {setting} was deleted"
    assert result.deleted[table if table != "tracking_ping" else "tracking_ping_default"] >= 1


def test_the_periods_have_their_documented_defaults(settings):
    assert settings.PING_RETENTION_DAYS == 180
    assert settings.ALARM_RETENTION_DAYS == settings.SIGHTING_RETENTION_DAYS == 180
    assert settings.DUTY_CALL_RETENTION_DAYS == settings.NOTIFICATION_RETENTION_DAYS == 180
    assert (settings.WEBHOOK_RETENTION_DAYS, settings.OUTBOX_RETENTION_DAYS) == (30, 7)
    assert settings.LEGAL_HOLD_MARGIN_MINUTES == 60


def test_open_duty_calls_pending_webhooks_and_unprocessed_batches_stay_at_any_age():
    term = fitted_terminal()
    old = ago(400)
    open_call = duty_call(term, old, status="acknowledged")
    closed_call = duty_call(fitted_terminal(), old, status="dismissed")
    pending = webhook(old, delivered=False)
    given_up = webhook(old, delivered=False)
    WebhookDelivery.objects.filter(pk=given_up.pk).update(gave_up_at=old)
    batch = IngestOutbox.objects.create(terminal_ids=[term.pk], first_device_time=old, last_device_time=old)
    IngestOutbox.objects.filter(pk=batch.pk).update(created_at=old)

    retention_apply()

    assert DutyCall.objects.filter(pk=open_call.pk).exists()
    # The duty room still shows what raised the open call.
    assert Alarm.objects.filter(pk=open_call.alarm_id).exists()
    assert not DutyCall.objects.filter(pk=closed_call.pk).exists()
    assert not Alarm.objects.filter(pk=closed_call.alarm_id).exists()
    assert WebhookDelivery.objects.filter(pk=pending.pk).exists()  # the sweep will send it again
    assert not WebhookDelivery.objects.filter(pk=given_up.pk).exists()
    assert IngestOutbox.objects.filter(pk=batch.pk).exists()  # its derived work is not done yet


def test_a_legal_hold_keeps_the_theft_window_and_the_rest_of_the_bikes_history_goes(officer):
    held, other = fitted_terminal(), fitted_terminal()
    last_seen = ago(250)
    long_before = ago(400)
    before = last_seen - datetime.timedelta(hours=3)  # outside the window
    in_margin = last_seen - datetime.timedelta(minutes=30)  # within LEGAL_HOLD_MARGIN_MINUTES
    day_in_window = (last_seen + datetime.timedelta(days=2)).date()
    partition_create(day_in_window)  # a day partition among the default partition's rows
    in_partition = datetime.datetime.combine(day_in_window, datetime.time(8), tzinfo=datetime.UTC)
    later = ago(200)
    recent = ago(1)
    times = [long_before, before, in_margin, in_partition, later, recent]
    for term in (held, other):
        for at in times:
            ping(term, at)
    held_alarms = {at: alarm(held, at).pk for at in (before, later)}
    other_alarm = alarm(other, later).pk

    report = report_take(
        user=officer,
        channel="walk_in",
        vehicle_query=VehicleQuery(frame_number=held.vehicle.frame_number),
        reporter_name="王秀英",
        reporter_phone="13812345678",
        last_seen_at=last_seen,
        missing_at=last_seen + datetime.timedelta(hours=2),
        place_address="玉田县无终街道兴隆路超市门口",
    )
    assert LegalHold.objects.get(vehicle=held.vehicle).held_from == last_seen
    seen = sighting(held, later, report=report).pk

    result = retention_apply()

    # The held bike keeps its positions from an hour before it was last seen; the rest went.
    assert pings_of(held) == {in_margin, in_partition, later, recent}
    assert pings_of(other) == {recent}
    # Its day partition went whole; the held row of it now lives in the default partition.
    assert partition_name(day_in_window) in result.dropped
    assert result.moved == {partition_name(day_in_window): 1}
    assert day_in_window not in partitions_existing()
    hours = set(PingCell.objects.filter(terminal_id=held.pk).values_list("hour", flat=True))
    assert min(hours) == in_margin.replace(minute=0, second=0)
    assert PingCell.objects.filter(terminal_id=other.pk).count() == 1  # the recent hour
    assert set(Alarm.objects.filter(pk__in=[*held_alarms.values(), other_alarm]).values_list("at", flat=True)) == {
        later
    }
    assert Sighting.objects.filter(pk=seen).exists()

    # Closing the report releases the hold: the window is kept for the retention period from then …
    report_transition(user=officer, report_id=report.pk, to_status="withdrawn", note="车主自行找回")
    assert LegalHold.objects.get(vehicle=held.vehicle).released_at is not None
    retention_apply()
    assert pings_of(held) == {in_margin, in_partition, later, recent}
    # … and goes once the release is older than that.
    retention_apply(now=datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=181))
    assert pings_of(held) == set()
    assert not Alarm.objects.filter(pk__in=held_alarms.values()).exists()
    assert not Sighting.objects.filter(pk=seen).exists()


def test_a_terminals_pings_are_held_only_while_it_was_fitted_to_the_held_bike():
    term = fitted_terminal(since_days=200)
    first_bike = tf.terminal().vehicle  # the terminal was on this bike before
    fitting = TerminalInstallation.objects.get(terminal=term)
    TerminalInstallation.objects.create(
        terminal=term,
        vehicle=first_bike,
        installed_at=ago(1000),
        removed_at=ago(200),
        installed_by=fitting.installed_by,
        station=fitting.station,
    )
    on_first_bike, on_held_bike = ago(300), ago(190)
    for at in (on_first_bike, on_held_bike):
        ping(term, at)
    # A hold from before the theft windows existed keeps the bike's whole history, but no more.
    LegalHold.objects.create(vehicle=term.vehicle, reason="theft report R000001")

    retention_apply()

    assert pings_of(term) == {on_held_bike}


def test_a_second_run_finds_nothing_more_to_do():
    held, other = fitted_terminal(), fitted_terminal()
    times = [ago(400), ago(200), ago(1)]
    partition_create(times[1].date())
    for term in (held, other):
        for at in times:
            ping(term, at)
        alarm(term, ago(300))
    LegalHold.objects.create(vehicle=held.vehicle, reason="theft report", held_from=ago(210))
    webhook(ago(40))
    tasks.apply_retention()
    kept = {table: _count(table) for table in ("tracking_ping", "tracking_pingcell", "tracking_alarm")}

    result = tasks.apply_retention()

    assert result["dropped"] == [] and result["moved"] == {}
    assert set(result["deleted"].values()) == {0}
    assert {table: _count(table) for table in kept} == kept
    assert pings_of(held) == set(times[1:])
    assert pings_of(other) == set(times[2:])


def test_a_day_left_detached_by_a_run_that_stopped_is_dropped_by_the_next():
    day = ago(300).date()
    partition_create(day)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE tracking_ping DETACH PARTITION {partition_name(day)}")

    assert partition_name(day) in retention_apply().dropped

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [partition_name(day)])
        assert cursor.fetchone() == (None,)


def _count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
        return cursor.fetchone()[0]


def test_a_run_while_another_is_under_way_does_nothing():
    term = fitted_terminal()
    ping(term, ago(400))
    owner = connection.settings_dict
    with psycopg.connect(
        host=owner["HOST"] or "127.0.0.1",
        port=str(owner["PORT"] or 5432),
        dbname=owner["NAME"],
        user=owner["USER"],
        password=owner["PASSWORD"] or None,
        autocommit=True,
    ) as other:
        other.execute("SELECT pg_advisory_lock(hashtext('tracking.retention'))")
        result = retention_apply()
    assert result.skipped
    assert len(pings_of(term)) == 1
    assert retention_apply().deleted["tracking_ping_default"] == 1


def test_every_table_with_positions_is_declared():
    assert retention_undeclared() == []
    tables = {rule.table for rule in retention_declared().rules}
    assert tables >= set(TABLES)


def test_a_period_under_a_day_is_refused_naming_the_setting(settings):
    settings.WEBHOOK_RETENTION_DAYS = 0
    with pytest.raises(ImproperlyConfigured, match="WEBHOOK_RETENTION_DAYS"):
        retention_apply()


@pytest.fixture(scope="module")
def runtime_connections(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        conns = {key: psycopg.connect(**role_conninfo(key), autocommit=True) for key in ("app", "gateway")}
    yield conns
    for conn in conns.values():
        conn.close()


@pytest.mark.parametrize("role", ["app", "gateway"])
def test_the_runtime_roles_cannot_delete_what_retention_deletes(runtime_connections, role):
    day = partitions_existing()[0]  # made by migrate, committed: the roles' connections see it
    conn = runtime_connections[role]
    statements = [f"DELETE FROM {rule.table}" for rule in retention_declared().rules]  # noqa: S608
    statements += [
        "DELETE FROM tracking_ping_default",
        f"DELETE FROM {partition_name(day)}",  # noqa: S608
        f"ALTER TABLE tracking_ping DETACH PARTITION {partition_name(day)}",
        f"DROP TABLE {partition_name(day)}",
    ]
    for sql in statements:
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction(force_rollback=True):
            conn.execute(sql)


def test_retention_run_as_the_app_role_is_refused():
    # What would happen if the retention task reached the app role's worker instead of the maintenance one.
    with django_connected_as("app"), pytest.raises(ProgrammingError, match=r"must be owner|permission denied"):
        retention_apply(now=datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1000))
