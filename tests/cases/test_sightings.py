"""Sightings of stolen bikes: one per movement episode, officers told once, webhooks delivered from
Celery with retries; notifications over the API and on a page.
"""

import datetime
import hashlib
import hmac

import pytest
from django.test import override_settings
from django.utils import timezone

from accounts.models import AuditEntry
from cases.alerts.webhooks import TransientFailure, webhook_attempt
from cases.models import Notification, Sighting, WebhookDelivery
from cases.tasks import deliver_webhook, requeue_webhooks
from cases.workflow.services import case_link
from ebike_registry.celery import app as celery_app
from tests import factories
from tests.cases.alerting import WebhookReceiver, path, report_theft, send
from tests.cases.casework import approved_case
from tests.tracking import factories as tf
from tracking import tasks
from tracking.derived import outbox_process
from tracking.ingest import BareAlarm, Incoming, ingest_fixes
from tracking.models import IngestOutbox

pytestmark = pytest.mark.django_db

BASE = timezone.now().replace(microsecond=0) - datetime.timedelta(hours=3)


@pytest.fixture
def stolen(officer):
    terminal = tf.terminal()
    report = report_theft(officer, terminal)
    return terminal, report


@pytest.fixture(autouse=True)
def _webhooks_to_the_local_receiver(settings, tmp_path):
    # The test receiver listens on plain http on this machine; the generated secret goes to tmp_path.
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_SECRET_KEY_FILE = tmp_path / "webhook-secret"


@pytest.fixture
def eager_celery():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_a_ride_of_a_stolen_bike_is_one_sighting_and_its_officer_is_told_once(officer, stolen):
    terminal, report = stolen
    send(terminal, *path(BASE, range(0, 3)))
    send(terminal, *path(BASE, range(3, 6), step_deg=0.002))  # the same ride, next batch

    sighting = Sighting.objects.get(report=report)
    assert sighting.positions == 6
    assert sighting.started_at == BASE and sighting.last_at == BASE + datetime.timedelta(minutes=5)
    assert sighting.first_point.x == pytest.approx(117.7390)
    assert sighting.last_point.x == pytest.approx(117.7390 + 0.002 * 2)  # the second batch's third fix
    assert sighting.terminal_id == terminal.pk and sighting.notified_at is not None

    [note] = Notification.objects.filter(user=officer)
    assert note.kind == "sighting" and report.number in note.body
    assert note.link == f"/reports/{report.pk}/"


def test_a_new_episode_starts_after_the_terminal_was_silent_for_the_gap(officer, stolen):
    terminal, report = stolen
    send(terminal, *path(BASE, range(0, 3)))
    send(terminal, *path(BASE, range(40, 42)))  # 38 minutes of silence (gap: 30)

    first, second = Sighting.objects.filter(report=report).order_by("started_at")
    assert (first.positions, second.positions) == (3, 2)
    assert second.started_at == BASE + datetime.timedelta(minutes=40)
    assert Notification.objects.filter(user=officer, kind="sighting").count() == 2


@override_settings(SIGHTING_EPISODE_GAP_MINUTES=20)
def test_a_parked_stolen_bike_that_moves_again_starts_a_new_episode(officer, stolen):
    terminal, report = stolen
    # Parked: a position every five minutes for 30 minutes, drifting a few metres, speed 0.
    parked = [tf.fix(m, base=BASE, lon=117.7390 + 0.00002 * (m % 2), speed=0) for m in range(0, 31, 5)]
    send(terminal, *parked)
    assert Sighting.objects.get(report=report).positions == 7
    send(terminal, *path(BASE, range(32, 35)))  # it rides away

    parked_episode, ride = Sighting.objects.filter(report=report).order_by("started_at")
    assert parked_episode.last_at == BASE + datetime.timedelta(minutes=30)
    assert ride.started_at == BASE + datetime.timedelta(minutes=32) and ride.positions == 3
    assert Notification.objects.filter(user=officer, kind="sighting").count() == 2


def test_an_alarm_without_a_fix_is_a_sighting_at_the_last_known_place(officer, stolen):
    terminal, report = stolen
    send(terminal, tf.fix(0, base=BASE))
    send(terminal, bare=(BareAlarm(terminal.pk, "power_cut", BASE + datetime.timedelta(minutes=50)),))

    _old, new = Sighting.objects.filter(report=report).order_by("started_at")
    assert new.started_at == BASE + datetime.timedelta(minutes=50)
    assert (new.first_point.y, new.first_point.x) == pytest.approx((39.8826, 117.7390))


def test_processing_an_outbox_batch_twice_changes_nothing(officer, stolen):
    terminal, report = stolen
    ingest_fixes([Incoming(terminal.pk, fix) for fix in path(BASE, range(0, 4))])
    assert outbox_process() == 1
    IngestOutbox.objects.update(processed_at=None)  # a worker died after committing: run again
    assert outbox_process() == 1

    assert Sighting.objects.get(report=report).positions == 4
    assert Notification.objects.filter(kind="sighting").count() == 1


def test_the_officers_on_the_case_are_told_not_the_receiving_officer(officer, stolen):
    terminal, report = stolen
    investigator = factories.user("officer")
    case = approved_case(filer=officer, number="玉公刑立字〔2026〕88号", kind="criminal", officers=[investigator])
    case_link(user=investigator, case_id=case.pk, report_id=report.pk)
    send(terminal, *path(BASE, range(0, 2)))

    assert Notification.objects.filter(user=investigator, kind="sighting").count() == 1
    assert not Notification.objects.filter(user=officer).exists()


def test_bikes_not_stolen_and_positions_before_the_theft_make_no_sighting(officer):
    terminal = tf.terminal()
    send(terminal, *path(BASE, range(0, 3)))
    assert not Sighting.objects.exists()
    report = report_theft(officer, terminal)
    send(terminal, tf.fix(0, base=report.last_seen_at - datetime.timedelta(hours=1)))  # a late, old fix
    assert not Sighting.objects.exists()


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
def test_with_redis_down_pings_are_stored_and_sightings_catch_up(officer, stolen):
    terminal, report = stolen
    for minute in range(3):  # three batches while the broker is unreachable
        ingest_fixes([Incoming(terminal.pk, tf.fix(minute, base=BASE, lon=117.739 + minute * 0.002))])
    assert IngestOutbox.objects.filter(processed_at__isnull=True).count() == 3
    assert not Sighting.objects.exists()

    assert tasks.process_outbox() == 3  # what beat runs once Redis is back
    assert Sighting.objects.get(report=report).positions == 3


def test_the_station_webhook_receives_the_sighting_as_json(
    officer, stolen, eager_celery, django_capture_on_commit_callbacks, settings
):
    settings.WEBHOOK_SECRET = "station-shared-secret"
    settings.PUBLIC_BASE_URL = "https://ebike.yutian.example"
    terminal, report = stolen
    with WebhookReceiver() as hook:
        officer.station.webhook_url = hook.url
        officer.station.save()
        with django_capture_on_commit_callbacks(execute=True):
            send(terminal, *path(BASE, range(0, 2)))

    [message] = hook.received
    assert message["event"] == "sighting.started" and message["station"] == officer.station.code
    assert message["data"]["report"] == report.number
    assert message["data"]["latitude"] == 39.88  # rounded to ~1 km: the exact place is behind the link
    assert "phone" not in str(message) and "王秀英" not in str(message)  # no personal data
    assert message["data"]["link"] == f"https://ebike.yutian.example/reports/{report.pk}/"
    delivery = WebhookDelivery.objects.get()
    assert hook.headers[0]["X-Webhook-Delivery"] == str(delivery.pk)
    expected = hmac.new(b"station-shared-secret", hook.bodies[0], hashlib.sha256).hexdigest()
    assert hook.headers[0]["X-Webhook-Signature"] == f"sha256={expected}"
    assert delivery.delivered_at is not None and delivery.attempts == 1


def test_webhook_delivery_retries_after_server_errors(officer, stolen, eager_celery):
    terminal, _report = stolen
    with WebhookReceiver(statuses=[500, 503, 200]) as hook:
        officer.station.webhook_url = hook.url
        officer.station.save()
        send(terminal, tf.fix(0, base=BASE))
        delivery = WebhookDelivery.objects.get()
        deliver_webhook.apply(args=[delivery.pk])

    assert len(hook.received) == 3
    delivery.refresh_from_db()
    assert delivery.attempts == 3 and delivery.delivered_at is not None


@override_settings(WEBHOOK_TIMEOUT_SECONDS=1)
def test_a_slow_or_refusing_receiver_does_not_hold_anything_up(officer, stolen):
    terminal, _report = stolen
    with WebhookReceiver(delay=3) as slow:
        officer.station.webhook_url = slow.url
        officer.station.save()
        send(terminal, tf.fix(0, base=BASE))
        delivery = WebhookDelivery.objects.get()
        started = timezone.now()
        with pytest.raises(TransientFailure):
            webhook_attempt(delivery.pk)
        assert (timezone.now() - started).total_seconds() < 2.5
    delivery.refresh_from_db()
    assert delivery.delivered_at is None and "timed out" in delivery.last_error.lower()

    with WebhookReceiver(statuses=[410]) as gone:
        delivery.url = gone.url
        delivery.save()
        assert webhook_attempt(delivery.pk) is False  # a 4xx is final: no retries
    delivery.refresh_from_db()
    assert delivery.gave_up_at is not None and delivery.last_error == "HTTP 410"


def test_a_delivery_lost_to_a_broker_outage_is_queued_again(officer, stolen, eager_celery):
    terminal, _report = stolen
    with WebhookReceiver() as hook:
        officer.station.webhook_url = hook.url
        officer.station.save()
        send(terminal, tf.fix(0, base=BASE))  # on-commit queueing never ran: as if Redis was down
        WebhookDelivery.objects.update(created_at=timezone.now() - datetime.timedelta(minutes=5))
        assert requeue_webhooks() == 1
        assert requeue_webhooks() == 0
    assert len(hook.received) == 1


# --- notifications over the API and on a page ----------------------------------------------------


def test_notification_api_lists_mine_counts_unread_and_marks_read(officer, officer_api, stolen):
    terminal, _report = stolen
    send(terminal, *path(BASE, range(0, 2)))
    send(terminal, *path(BASE, range(50, 52)))
    other = factories.user("officer")
    Notification.objects.create(user=other, kind="sighting", title="not yours")

    assert officer_api.get("/api/v1/notifications/unread-count").json() == {"unread": 2}
    listing = officer_api.get("/api/v1/notifications").json()
    assert listing["count"] == 2 and {n["kind"] for n in listing["results"]} == {"sighting"}
    first = listing["results"][0]["id"]

    response = officer_api.post(f"/api/v1/notifications/{first}/read")
    assert response.status_code == 200 and response.json()["read_at"]
    assert officer_api.get("/api/v1/notifications/unread-count").json() == {"unread": 1}
    assert officer_api.get("/api/v1/notifications?unread=1").json()["count"] == 1

    theirs = Notification.objects.get(user=other).pk
    assert officer_api.post(f"/api/v1/notifications/{theirs}/read").status_code == 404
    assert Notification.objects.get(pk=theirs).read_at is None
    assert officer_api.post("/api/v1/notifications/read-all").json() == {"marked": 1}


def test_notification_page_shows_the_unread_count_and_marks_read(client, officer, stolen):
    terminal, report = stolen
    send(terminal, *path(BASE, range(0, 2)))
    client.force_login(officer)
    page = client.get("/notifications/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "sighted" in html and report.number in html
    assert '<span class="badge badge-bad">1</span>' in html  # the bell in the navigation bar

    note = Notification.objects.get(user=officer)
    client.force_login(factories.user("officer"))
    assert client.post(f"/notifications/{note.pk}/read/").status_code == 404  # not theirs
    client.force_login(officer)
    response = client.post(f"/notifications/{note.pk}/read/", {"next": "link"})
    assert response.status_code == 302 and response.url == f"/reports/{report.pk}/"
    note.refresh_from_db()
    assert note.read_at is not None


def test_sightings_of_a_report_over_the_api(officer_api, stolen, api):
    terminal, report = stolen
    send(terminal, *path(BASE, range(0, 3)))
    response = officer_api.get(f"/api/v1/theft-reports/{report.pk}/sightings")
    assert response.status_code == 200
    [episode] = response.json()
    assert episode["positions"] == 3 and episode["first_position"]["latitude"] == pytest.approx(39.8826)
    assert api.get(f"/api/v1/theft-reports/{report.pk}/sightings").status_code in (401, 403)


def test_the_report_page_lists_the_sightings(client, officer, stolen):
    terminal, report = stolen
    send(terminal, *path(BASE, range(0, 3)))
    client.force_login(officer)
    html = client.get(f"/reports/{report.pk}/").content.decode()
    sighting = Sighting.objects.get()
    assert f'data-sighting="{sighting.pk}"' in html and "39.88260" in html


def test_clerks_see_the_report_but_not_where_the_stolen_bike_was_sighted(client, clerk, stolen):
    from rest_framework.test import APIClient

    terminal, report = stolen
    send(terminal, *path(BASE, range(0, 3)))
    client.force_login(clerk)
    page = client.get(f"/reports/{report.pk}/")
    assert page.status_code == 200  # the counter took it and may print its receipt
    html = page.content.decode()
    assert 'id="sightings"' not in html and "data-sighting=" not in html
    api = APIClient()
    api.force_authenticate(clerk)
    assert api.get(f"/api/v1/theft-reports/{report.pk}/sightings").status_code == 403
    assert AuditEntry.objects.get(action="sightings.view", user=clerk).query["refused"]
