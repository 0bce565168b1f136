"""Derived work that a bad row cannot stall (issue 19, point 5): a fix whose handler raises, in a
batch among 1,000, leaves every other fix handled in the same run (SOS calls included); the bad
terminal alone is retried with backoff, then set aside as dead, shown to the system administrator
in the admin, and run again by `manage.py outbox_rerun` once the handler is fixed.

The poison is a handler of the test's own (settings.INGEST_HANDLERS, between the duty room's and the
sightings'), raising for the terminals in POISONED: a bug that only some data triggers.
"""

import datetime

import pytest
from django.core.management import CommandError, call_command
from django.db import InterfaceError, connection
from django.utils import timezone

from accounts.models import AuditEntry
from cases.models import DutyCall
from tests import factories
from tests.tracking import factories as tf
from tracking import tasks
from tracking.derived import Batch, outbox_backlog, outbox_process
from tracking.ingest import Incoming, ingest_fixes
from tracking.models import IngestOutbox, Terminal

pytestmark = pytest.mark.django_db

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
POISONED: set[int] = set()


def poison(batch: Batch) -> None:
    bad = POISONED & set(batch.terminal_ids)
    if bad:
        raise ValueError(f"cannot handle the fix of terminal {min(bad)}")


def record_handled(batch: Batch) -> None:
    """The last handler: which terminals' work went through (rolled back with the others on failure)."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO handled (terminal_id) SELECT unnest(%s::bigint[])", [batch.terminal_ids])


def handled() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT terminal_id FROM handled")
        return {row[0] for row in cursor.fetchall()}


@pytest.fixture
def handlers(settings):
    settings.INGEST_HANDLERS = [
        "tracking.derived.stolen_bike_sightings",
        "cases.alerts.duty_room.duty_calls_raise",
        "tests.tracking.test_outbox_isolation.poison",
        "cases.alerts.services.sightings_record",
        "tests.tracking.test_outbox_isolation.record_handled",
    ]
    settings.OUTBOX_RETRY_BASE_SECONDS = 5
    settings.OUTBOX_RETRY_MAX_SECONDS = 300
    settings.OUTBOX_MAX_ATTEMPTS = 3
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE handled (terminal_id bigint)")
    POISONED.clear()
    yield
    POISONED.clear()


@pytest.fixture
def fleet():
    """1,000 terminals: 20 bikes whose fix carries an SOS, 980 unbound terminals reporting."""
    clerk = factories.user("clerk")
    bikes = [tf.terminal(clerk=clerk) for _ in range(20)]
    others = Terminal.objects.bulk_create(Terminal(imei=tf.imei(), protocol="gt06") for _ in range(980))
    return bikes, others


def due_now(row_id: int) -> None:
    """The backoff's wait, passed (instead of sleeping through it)."""
    IngestOutbox.objects.filter(pk=row_id).update(next_attempt_at=timezone.now())


def rescue_calls() -> set[int]:
    return set(DutyCall.objects.filter(kind="rescue").values_list("vehicle_id", flat=True))


def test_a_poisoned_fix_among_1000_holds_back_nothing_else_then_is_retried_set_aside_and_rerun(handlers, fleet, client):
    bikes, others = fleet
    terminals = list(others)
    for i, bike in enumerate(bikes):  # the SOS bikes spread over the ten batches
        terminals.insert(i * 50 + 25, bike)
    bad = bikes[7]
    POISONED.add(bad.pk)
    at = timezone.now().replace(microsecond=0) - datetime.timedelta(minutes=1)
    sos = {t.pk for t in bikes}
    # Ten ingestion batches of 100 fixes: ten outbox rows, all due in one run.
    for start in range(0, 1000, 100):
        items = [
            Incoming(t.pk, tf.fix(0, base=at, alarms=("sos",) if t.pk in sos else ()))
            for t in terminals[start : start + 100]
        ]
        ingest_fixes(items)
    rows = list(IngestOutbox.objects.order_by("id").values_list("id", flat=True))
    assert len(rows) == 10
    bad_row = IngestOutbox.objects.get(terminal_ids__contains=bad.pk).pk

    before = timezone.now()
    assert tasks.process_outbox() == 10  # what beat runs every 2 s
    after = timezone.now()

    # Every other fix was handled, every other SOS reached the duty room …
    assert handled() == {t.pk for t in terminals} - {bad.pk}
    assert rescue_calls() == {t.vehicle_id for t in bikes} - {bad.vehicle_id}
    assert IngestOutbox.objects.filter(processed_at__isnull=False).count() == 9
    # … and the bad row keeps only its bad terminal, with the error, waiting for a retry.
    row = IngestOutbox.objects.get(pk=bad_row)
    assert (row.processed_at, row.dead_at, row.terminal_ids, row.attempts) == (None, None, [bad.pk], 1)
    assert f"terminal {bad.pk}: tests.tracking.test_outbox_isolation.poison: ValueError" in row.last_error
    assert before < row.next_attempt_at - datetime.timedelta(seconds=5) < after
    assert outbox_backlog()["retrying"] == 1

    # New positions are not held back while it waits.
    new_bike = bikes[0]
    ingest_fixes([Incoming(new_bike.pk, tf.fix(1, base=at))])
    assert outbox_process() == 1
    assert IngestOutbox.objects.filter(processed_at__isnull=True).values_list("pk", flat=True).get() == bad_row

    # Retried once due, with the wait doubled; set aside as dead on the third failure.
    due_now(bad_row)
    before = timezone.now()
    assert outbox_process() == 1
    after = timezone.now()
    row.refresh_from_db()
    assert row.attempts == 2 and row.dead_at is None
    assert before < row.next_attempt_at - datetime.timedelta(seconds=10) < after
    due_now(bad_row)
    assert outbox_process() == 1
    row.refresh_from_db()
    assert row.attempts == 3 and row.dead_at is not None and row.next_attempt_at is None
    due_now(bad_row)
    assert outbox_process() == 0  # dead: not claimed again
    assert outbox_backlog() == {
        "pending": 0,
        "retrying": 0,
        "dead": 1,
        "oldest_pending_age_s": None,
    }
    assert bad.vehicle_id not in rescue_calls()

    # The system administrator sees it in the admin, in Chinese, read-only.
    client.force_login(factories.user("sysadmin", is_staff=True))
    page = client.get("/admin/tracking/ingestoutbox/?state=dead", **ZH).content.decode()
    assert "已搁置" in page and "ValueError" in page and f">{bad_row}<" in page
    detail = client.get(f"/admin/tracking/ingestoutbox/{bad_row}/change/", **ZH).content.decode()
    assert "outbox_rerun --by" in detail and f"terminal {bad.pk}" in detail
    assert client.post(f"/admin/tracking/ingestoutbox/{bad_row}/delete/", {"post": "yes"}).status_code == 403
    assert IngestOutbox.objects.filter(pk=bad_row).exists()

    # A re-run before the fix fails again and stays dead (audited all the same) …
    with pytest.raises(CommandError, match="1 of 1 rows failed again"):
        call_command("outbox_rerun", "--all", by="李工", reason="查看是否仍失败")
    row.refresh_from_db()
    assert row.dead_at is not None and row.attempts == 4 and row.processed_at is None

    # … after the fix it goes through: the SOS reaches the duty room.
    POISONED.clear()
    call_command("outbox_rerun", str(bad_row), by="李工", reason="修复已部署 (v1.4.2)")
    row.refresh_from_db()
    assert row.processed_at is not None
    assert bad.vehicle_id in rescue_calls() and bad.pk in handled()
    audit = list(AuditEntry.objects.filter(action="outbox.rerun").order_by("pk").values("object_id", "reason", "query"))
    assert [(a["object_id"], a["query"]["result"]) for a in audit] == [
        (str(bad_row), "failed"),
        (str(bad_row), "processed"),
    ]
    assert audit[1]["reason"] == "修复已部署 (v1.4.2)" and audit[1]["query"]["by"] == "李工"


def test_rerun_needs_who_and_why_and_runs_dead_rows_oldest_first(handlers, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 1
    terms = [tf.terminal(bound=False) for _ in range(3)]
    POISONED.update(t.pk for t in terms)
    for term in terms:  # three batches, one terminal each
        ingest_fixes([Incoming(term.pk, tf.fix(0))])
    assert outbox_process() == 3
    dead = list(IngestOutbox.objects.filter(dead_at__isnull=False).order_by("id").values_list("pk", flat=True))
    assert len(dead) == 3  # out of attempts at the first failure

    with pytest.raises(CommandError, match="--by and --reason are required"):
        call_command("outbox_rerun", "--all", by="李工")
    with pytest.raises(CommandError, match="ids"):
        call_command("outbox_rerun", by="李工", reason="修复")

    POISONED.clear()
    call_command("outbox_rerun", str(dead[2]), str(dead[0]), by="李工", reason="修复已部署")
    assert [e["object_id"] for e in AuditEntry.objects.filter(action="outbox.rerun").order_by("pk").values()] == [
        str(dead[0]),
        str(dead[2]),
    ]
    assert list(IngestOutbox.objects.filter(processed_at__isnull=True).values_list("pk", flat=True)) == [dead[1]]


def test_a_lost_database_connection_blames_no_row(handlers, monkeypatch):
    """A failure that takes the connection with it (the primary went away: rolling back to the
    savepoint fails too) is nobody's row: the run stops with the error, no attempt is counted and
    every row waits for the next run."""
    term = tf.terminal(bound=False)
    ingest_fixes([Incoming(term.pk, tf.fix(0))])
    POISONED.add(term.pk)
    real_rollback = connection.savepoint_rollback
    calls = []

    def rollback_fails_once(sid: str) -> None:
        calls.append(sid)
        if len(calls) == 1:
            raise InterfaceError("connection already closed")
        real_rollback(sid)

    monkeypatch.setattr(connection, "savepoint_rollback", rollback_fails_once)
    with pytest.raises(ValueError, match="cannot handle"):
        outbox_process()
    monkeypatch.undo()
    row = IngestOutbox.objects.get()
    assert (row.processed_at, row.attempts, row.last_error, row.terminal_ids) == (None, 0, "", [term.pk])
