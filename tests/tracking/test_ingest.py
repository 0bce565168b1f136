import datetime

import pytest
from django.contrib.gis.geos import Point

from tests.tracking import factories as tf
from tracking.ingest import BareAlarm, Incoming, ingest_fixes
from tracking.models import Alarm, IngestOutbox, LastPosition, Ping
from tracking.protocols.common import Fix

pytestmark = pytest.mark.django_db

BASE = datetime.datetime.now(datetime.UTC).replace(second=0, microsecond=0) - datetime.timedelta(hours=2)


def test_a_batch_is_stored_with_last_position_and_outbox():
    term = tf.terminal()
    fixes = [tf.fix(m, base=BASE, lat=39.8826 + m * 0.001) for m in range(5)]
    result = ingest_fixes([Incoming(term.pk, f) for f in fixes])
    assert (result.stored, result.duplicates, result.rejected) == (5, 0, [])
    stored = list(Ping.objects.filter(terminal_id=term.pk).order_by("device_time"))
    assert [p.device_time for p in stored] == [f.time for f in fixes]
    assert stored[-1].point.y == pytest.approx(39.8866) and stored[-1].point.x == pytest.approx(117.7390)
    last = LastPosition.objects.get(terminal=term)
    assert last.device_time == fixes[-1].time
    assert IngestOutbox.objects.get().terminal_ids == [term.pk]


def test_a_retried_batch_is_stored_once():
    term = tf.terminal()
    batch = [Incoming(term.pk, tf.fix(m, base=BASE)) for m in range(3)]
    ingest_fixes(batch)
    again = ingest_fixes(batch)
    assert (again.stored, again.duplicates) == (0, 3)
    assert Ping.objects.filter(terminal_id=term.pk).count() == 3


def test_out_of_order_fixes_are_stored_and_do_not_move_the_last_position_back():
    term = tf.terminal()
    ingest_fixes([Incoming(term.pk, tf.fix(10, base=BASE, lat=39.90))])
    result = ingest_fixes([Incoming(term.pk, tf.fix(1, base=BASE, lat=39.85))])
    assert result.stored == 1
    last = LastPosition.objects.get(terminal=term)
    assert last.device_time == BASE + datetime.timedelta(minutes=10)
    assert last.point.y == pytest.approx(39.90)


def test_an_impossible_jump_is_flagged_kept_and_not_the_last_position():
    term = tf.terminal()
    home = tf.fix(0, base=BASE)
    # 1 minute later 50 km away: 3,000 km/h.
    jump = tf.fix(1, base=BASE, lat=home.latitude + 0.45)
    back = tf.fix(2, base=BASE, lat=home.latitude + 0.001)
    result = ingest_fixes([Incoming(term.pk, f) for f in (home, jump, back)])
    assert result.outliers == 1
    flags = dict(Ping.objects.filter(terminal_id=term.pk).values_list("device_time", "outlier"))
    assert flags == {home.time: False, jump.time: True, back.time: False}
    assert LastPosition.objects.get(terminal=term).device_time == back.time


def test_a_van_at_highway_speed_is_not_an_outlier():
    term = tf.terminal()
    start = tf.fix(0, base=BASE)
    # 1.8 km in one minute: 108 km/h, a stolen bike in a van.
    later = tf.fix(1, base=BASE, lat=start.latitude + 0.0162)
    assert ingest_fixes([Incoming(term.pk, start), Incoming(term.pk, later)]).outliers == 0


def test_bad_fixes_are_rejected_with_a_reason_and_the_rest_stored():
    term = tf.terminal()
    future = tf.fix(0, base=datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=2))
    null_island = tf.fix(1, base=BASE, lat=0.0, lon=0.0)
    no_time = tf.fix(2, base=BASE).__class__(time=None, latitude=39.9, longitude=117.7, valid=True)
    good = tf.fix(3, base=BASE)
    result = ingest_fixes([Incoming(term.pk, f) for f in (future, null_island, no_time, good)])
    reasons = dict(result.rejected)
    assert "ahead of the server clock" in reasons[0]
    assert "(0, 0)" in reasons[1]
    assert "no device time" in reasons[2]
    assert result.stored == 1


def test_every_field_is_stored_as_sent_nulls_and_odd_alarm_names_kept_as_other():
    term = tf.terminal()
    full = Fix(
        time=BASE.replace(microsecond=250000),
        latitude=39.8826,
        longitude=117.739,
        valid=False,
        speed_kmh=12.5,
        course=271.0,
        altitude=-3.25,
        satellites=7,
        battery=99.6,
        alarms=("sos", "odd\\name\twith tab"),
    )
    bare = Fix(time=BASE + datetime.timedelta(minutes=1), latitude=39.8827, longitude=117.7391, valid=True)
    ingest_fixes([Incoming(term.pk, full), Incoming(term.pk, bare)])
    first, second = Ping.objects.filter(terminal_id=term.pk).order_by("device_time")
    assert (first.device_time, first.valid, first.speed_kmh, first.course, first.altitude) == (
        full.time,
        False,
        12.5,
        271.0,
        -3.25,
    )
    assert (first.satellites, first.battery, first.alarms, first.outlier) == (7, 100, ["sos", "other"], False)
    # A name outside the vocabulary is an `other` alarm keeping its text (unprintable characters as "?").
    other = Alarm.objects.get(terminal=term, kind="other")
    assert other.note == "odd\\name?with tab"
    assert (first.point.x, first.point.y) == (117.739, 39.8826)
    assert (second.speed_kmh, second.course, second.altitude, second.satellites, second.battery, second.alarms) == (
        None,
        None,
        None,
        None,
        None,
        [],
    )


def test_terminal_alarms_become_alarm_rows_once():
    term = tf.terminal()
    batch = [Incoming(term.pk, tf.fix(0, base=BASE, alarms=("power_cut", "vibration")))]
    ingest_fixes(batch)
    ingest_fixes(batch)
    alarms = Alarm.objects.filter(terminal=term).order_by("kind")
    assert [a.kind for a in alarms] == ["power_cut", "vibration"]
    assert all(a.vehicle_id == term.vehicle_id and a.point == Point(117.7390, 39.8826, srid=4326) for a in alarms)


def test_alarms_without_a_position_are_stored_too():
    term = tf.terminal()
    ingest_fixes([], bare_alarms=[BareAlarm(term.pk, "low_battery", BASE)])
    alarm = Alarm.objects.get(terminal=term)
    assert (alarm.kind, alarm.point, alarm.at) == ("low_battery", None, BASE)


def test_fixes_land_in_the_day_partition_or_the_default_one():
    term = tf.terminal()
    old = tf.fix(0, base=datetime.datetime(2024, 5, 1, 8, tzinfo=datetime.UTC))
    ingest_fixes([Incoming(term.pk, old), Incoming(term.pk, tf.fix(0, base=BASE))])
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text, device_time FROM tracking_ping ORDER BY device_time")
        where = [row[0] for row in cursor.fetchall()]
    assert where[0] == "tracking_ping_default"
    assert where[1] == f"tracking_ping_p{BASE:%Y%m%d}"


def _plan_queries(items, **kwargs):
    """Run a batch plan on the test database; return its result and the SQL it sent."""
    from django.db import connection, transaction

    from tracking.ingest import batch_plan, run_sync

    sent = []

    def spy(execute, sql, params, many, context):
        sent.append(sql)
        return execute(sql, params, many, context)

    with transaction.atomic(), connection.cursor() as cursor, connection.execute_wrapper(spy):
        result = run_sync(cursor, batch_plan(items, **kwargs))
    return result, sent


def test_a_writer_that_knows_the_last_positions_is_not_asked_again_and_gets_them_back():
    """The gateway's writer remembers what its commits left in tracking_lastposition."""
    from tracking.ingest import LAST_SQL, SEEN_SQL

    term = tf.terminal()
    first = tf.fix(0, base=BASE)
    result, sent = _plan_queries([Incoming(term.pk, first)])
    assert LAST_SQL in sent and SEEN_SQL in sent
    assert result.latest == {term.pk: (first.time.timestamp(), first.latitude, first.longitude)}
    last = LastPosition.objects.get(terminal=term)
    assert (last.device_time, round(last.point.y, 6)) == (first.time, round(first.latitude, 6))

    # Known: no lookup, and the check uses what it was told (100 km away a minute before: outlier).
    jump = tf.fix(2, base=BASE)
    far = (jump.time.timestamp() - 60, first.latitude + 0.9, first.longitude)
    result, sent = _plan_queries([Incoming(term.pk, jump)], last_known={term.pk: far}.get, liveness=[])
    assert LAST_SQL not in sent and SEEN_SQL not in sent  # no liveness due either
    assert result.outliers == 1 and result.latest == {term.pk: far}
    # Unknown to the writer: read from the table as before.
    result, sent = _plan_queries([Incoming(term.pk, tf.fix(3, base=BASE))], last_known={}.get)
    assert LAST_SQL in sent and result.outliers == 0


def test_a_writer_behind_another_never_moves_the_last_position_back():
    """The gateway's memory of a last position can be older than the table (an HTTP batch stored a
    newer fix meanwhile): its older fix is stored, and the newer position stays."""
    term = tf.terminal()
    newer = tf.fix(10, base=BASE, lat=39.90)
    ingest_fixes([Incoming(term.pk, newer)])
    older = tf.fix(5, base=BASE, lat=39.89)
    remembered = (tf.fix(4, base=BASE).time.timestamp(), 39.89, older.longitude)
    result, _sent = _plan_queries([Incoming(term.pk, older)], last_known={term.pk: remembered}.get)
    assert result.stored == 1 and result.outliers == 0
    last = LastPosition.objects.get(terminal=term)
    assert last.device_time == newer.time and last.point.y == pytest.approx(39.90)
    assert Ping.objects.filter(terminal_id=term.pk).count() == 2
