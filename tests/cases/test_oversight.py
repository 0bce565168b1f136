"""Oversight: looks on a stated reason reviewed by the station leader; unusual lookup volumes alerted."""

import datetime

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEntry, User
from accounts.services import administrator_role_grant
from cases.models import Notification
from cases.tracing import oversight
from cases.workflow.services import VehicleQuery, report_take
from tests import factories
from tests.tracking import factories as tf

pytestmark = pytest.mark.django_db


@pytest.fixture
def looked(officer):
    """An officer without a duty looks at a bike's trajectory on a stated reason (through the API)."""
    from rest_framework.test import APIClient

    terminal = tf.terminal()
    api = APIClient()
    api.force_authenticate(officer)
    refused = api.get(f"/api/v1/vehicles/{terminal.vehicle_id}/trajectory")
    assert refused.status_code == 403
    allowed = api.get(f"/api/v1/vehicles/{terminal.vehicle_id}/trajectory", {"reason": "协查邻县盗窃线索"})
    assert allowed.status_code == 200
    return terminal.vehicle_id


def test_the_station_leader_reviews_the_looks_taken_on_a_stated_reason(looked, officer, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    leader = factories.user("admin")
    elsewhere = factories.user("admin", station_code="13022902")
    client = Client()
    client.force_login(leader)
    page = client.get("/reviews/stated-reasons/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "协查邻县盗窃线索" in html and officer.username in html and "轨迹" in html
    assert AuditEntry.objects.filter(action="review.stated_reasons", user=leader, result_count=1).exists()
    # Another station's leader does not see this station's looks; an officer cannot open the page.
    client.force_login(elsewhere)
    assert "协查邻县盗窃线索" not in client.get("/reviews/stated-reasons/").content.decode()
    client.force_login(officer)
    assert client.get("/reviews/stated-reasons/").status_code == 403


def test_a_period_that_ends_before_it_starts_is_refused_on_the_page(looked):
    client = Client()
    client.force_login(factories.user("admin"))
    response = client.get("/reviews/stated-reasons/", {"since": "2026-03-10", "until": "2026-03-01"})
    assert response.status_code == 400 and "before its start" in response.content.decode()


def test_each_leader_hears_of_the_weeks_looks_once_a_week(looked):
    leader = factories.user("admin")
    factories.user("admin", station_code="13022902")  # nothing at that station: not told
    assert oversight.reviews_weekly_summary() == 1
    [note] = Notification.objects.filter(kind="review")
    assert note.user == leader and note.link.startswith("/reviews/stated-reasons/")


def _looks(user: User, n: int, at: datetime.datetime) -> None:
    """n searches by the user at a given past time (the trail is append-only: inserted as of then)."""
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO accounts_auditentry (at, user_id, action, object_type, object_id, query, reason)"
            " VALUES (%s, %s, 'vehicle.search', 'vehicle', '', '{}', '')",
            [(at, user.pk)] * n,
        )


def test_an_account_looking_up_far_more_than_usual_is_reported_to_the_security_administrators(settings):
    settings.LOOKUP_ALERT_MIN = 20
    settings.LOOKUP_ALERT_FACTOR = 5
    User.objects.create_user("sec1", password="correct-horse-battery-9")
    administrator_role_grant(username="sec1", role="secadmin", granted_by="test")
    curious, steady = factories.user("clerk"), factories.user("clerk")
    now = timezone.now()
    for days_ago in range(2, 20):  # a usual day: 5 lookups for the first, 30 for the second
        _looks(curious, 5, now - datetime.timedelta(days=days_ago))
        _looks(steady, 30, now - datetime.timedelta(days=days_ago, minutes=5))
    _looks(curious, 40, now - datetime.timedelta(hours=1))  # 8x usual
    _looks(steady, 40, now - datetime.timedelta(hours=1, minutes=5))  # within its usual volume
    assert oversight.lookup_volume_alerts(now=now) == [curious.pk]
    [alert] = Notification.objects.filter(kind="security")
    assert alert.user.username == "sec1" and curious.username in alert.title
    entry = AuditEntry.objects.get(action="security.lookup_alert")
    assert entry.object_id == str(curious.pk) and entry.query["lookups_24h"] == 40
    assert oversight.lookup_volume_alerts(now=now) == []  # once a day per account


def test_reports_taken_nearby_do_not_count_as_looks(officer):
    bike = tf.terminal().vehicle
    report_take(
        user=officer,
        channel="walk_in",
        vehicle_query=VehicleQuery(frame_number=bike.frame_number),
        reporter_name="王秀英",
        reporter_phone="13812345678",
        last_seen_at=timezone.now() - datetime.timedelta(hours=2),
        missing_at=timezone.now() - datetime.timedelta(hours=1),
        place_address="玉田县无终街道",
    )
    assert not AuditEntry.objects.filter(oversight.LOOK_ACTIONS, user=officer).exists()
