"""The idle timeout: real activity keeps a session, background polling does not."""

import time

import pytest
from django.test import Client

from accounts.middleware import LAST_ACTIVITY_KEY
from accounts.models import AuditEntry
from tests import factories

pytestmark = pytest.mark.django_db

POLL = {"HTTP_X_BACKGROUND_REQUEST": "1", "HTTP_ACCEPT": "application/json"}


@pytest.fixture
def officer_client():
    officer = factories.user("officer")
    client = Client()
    client.force_login(officer)
    assert client.get("/search/").status_code == 200  # real activity: the clock starts
    client.officer = officer
    return client


def idle_for(client: Client, minutes: float) -> int:
    session = client.session
    session[LAST_ACTIVITY_KEY] = int(time.time() - minutes * 60)
    session.save()
    return session[LAST_ACTIVITY_KEY]


def test_polling_does_not_extend_the_session(officer_client):
    last = idle_for(officer_client, 29)
    response = officer_client.get("/map/markers.json", **POLL)
    assert response.status_code == 200
    assert officer_client.session[LAST_ACTIVITY_KEY] == last  # the poll did not count
    response = officer_client.get("/duty/", {"auto_refresh": "1"})  # the duty room reloading itself
    assert response.status_code == 200
    assert officer_client.session[LAST_ACTIVITY_KEY] == last
    assert officer_client.get("/search/").status_code == 200  # a click does
    assert officer_client.session[LAST_ACTIVITY_KEY] > last


def test_after_the_idle_time_a_poll_gets_401_and_the_next_page_the_login_page(officer_client):
    idle_for(officer_client, 31)
    response = officer_client.get("/map/markers.json", **POLL)
    assert response.status_code == 401
    assert response.json()["code"] == "session_idle_timeout"
    response = officer_client.get("/search/")
    assert response.status_code == 302 and response["Location"] == "/login/?next=/search/"
    row = AuditEntry.objects.get(action="auth.idle_timeout")
    assert row.user == officer_client.officer and row.query["limit_minutes"] == 30


def test_an_idle_page_request_goes_to_the_login_page_with_a_message(officer_client):
    idle_for(officer_client, 45)
    response = officer_client.get("/search/", follow=True)
    assert response.redirect_chain[-1][0] == "/login/?next=/search/"
    assert "signed out after 30 minutes without activity" in response.content.decode()
    assert AuditEntry.objects.filter(action="auth.idle_timeout").count() == 1


def test_the_idle_time_is_a_setting(officer_client, settings):
    settings.SESSION_IDLE_MINUTES = 60
    idle_for(officer_client, 45)
    assert officer_client.get("/search/").status_code == 200


def test_the_duty_room_reloads_itself_marked_as_background(officer_client):
    page = officer_client.get("/duty/").content.decode()
    assert '<meta http-equiv="refresh" content="15; url=/duty/?auto_refresh=1">' in page
