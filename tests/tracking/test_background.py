import datetime

import pytest
from django.db import connection
from django.test import override_settings

from tests.tracking import factories as tf
from tracking import tasks
from tracking.derived import offline_alarms_raise, outbox_process
from tracking.ingest import Incoming, ingest_fixes
from tracking.models import Alarm, IngestOutbox, Terminal
from tracking.partitions import partition_create, partition_name, partitions_ensure, partitions_existing
from vehicles.services.registration import vehicle_mark_stolen

pytestmark = pytest.mark.django_db

TODAY = datetime.datetime.now(datetime.UTC).date()


def at(day: datetime.date, hour: int = 8) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour), tzinfo=datetime.UTC)


def test_partitions_are_created_ahead_and_take_rows_out_of_the_default_partition():
    term = tf.terminal()
    day = TODAY + datetime.timedelta(days=30)
    # A fix for a day without a partition lands in the default partition …
    ingest_fixes([Incoming(term.pk, tf.fix(0, base=at(TODAY - datetime.timedelta(days=30))))])
    old_day = TODAY - datetime.timedelta(days=30)
    assert old_day not in partitions_existing()
    # … and moves into its own partition when that is created.
    assert partition_create(old_day)
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM tracking_ping WHERE terminal_id = %s", [term.pk])
        assert cursor.fetchone()[0] == partition_name(old_day)
    created = partitions_ensure(today=day)
    assert partition_name(day + datetime.timedelta(days=7)) in created
    assert partitions_ensure(today=day) == []


def test_a_silent_terminal_raises_one_offline_alarm():
    term = tf.terminal(heartbeat_interval_s=60)
    ingest_fixes([Incoming(term.pk, tf.fix(0))])
    assert offline_alarms_raise() == 0
    Terminal.objects.filter(pk=term.pk).update(
        last_seen_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    )
    assert offline_alarms_raise() == 1
    assert offline_alarms_raise() == 0
    alarm = Alarm.objects.get(kind="offline")
    assert (alarm.terminal_id, alarm.vehicle_id, alarm.source) == (term.pk, term.vehicle_id, "derived")


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
def test_ingestion_needs_no_broker_and_derived_work_catches_up(officer):
    term = tf.terminal()
    vehicle_mark_stolen(officer=officer, vehicle_id=term.vehicle_id, reason="接警")
    for minute in range(3):  # three batches while the workers are away
        ingest_fixes([Incoming(term.pk, tf.fix(minute))])
    assert IngestOutbox.objects.filter(processed_at__isnull=True).count() == 3
    assert not Alarm.objects.filter(kind="stolen_sighting").exists()

    assert tasks.process_outbox() == 3  # what the beat schedule runs once Redis is back
    sighting = Alarm.objects.get(kind="stolen_sighting")
    assert (sighting.vehicle_id, sighting.source) == (term.vehicle_id, "derived")
    assert outbox_process() == 0
    # While that alarm is open, more positions do not pile up alarms.
    ingest_fixes([Incoming(term.pk, tf.fix(5))])
    tasks.process_outbox()
    assert Alarm.objects.filter(kind="stolen_sighting").count() == 1


def test_positions_of_bikes_not_stolen_raise_no_sighting():
    term = tf.terminal()
    ingest_fixes([Incoming(term.pk, tf.fix(0))])
    tasks.process_outbox()
    assert not Alarm.objects.exists()
