"""API tokens (django-rest-knox): only for a completed sign-in, expiring, stored as a digest, revocable."""

import datetime

import pytest
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import AuditEntry
from tests import factories

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"
URL = "/api/v1/auth/token"


@pytest.fixture(autouse=True)
def _no_device_throttle(settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0


def test_a_signed_in_session_gets_a_token_that_opens_the_api():
    officer = factories.user("officer")
    session = Client()
    session.force_login(officer)  # a verified session (tests.factories)
    response = session.post(URL)
    assert response.status_code == 201
    token = response.json()["token"]
    expiry = datetime.datetime.fromisoformat(response.json()["expiry"])
    assert datetime.timedelta(hours=7, minutes=59) < expiry - timezone.now() <= datetime.timedelta(hours=8)

    api = APIClient(REMOTE_ADDR="198.51.100.5")
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/stations").status_code == 200
    row = AuditEntry.objects.get(action="auth.token_issued")
    assert row.user == officer and row.query["via"] == "session"


def test_the_database_keeps_a_digest_not_the_token():
    clerk = factories.user("clerk")
    response = APIClient().post(URL, {"username": clerk.username, "password": PASSWORD}, format="json")
    assert response.status_code == 201
    token = response.json()["token"]
    stored = AuthToken.objects.get(user=clerk)
    assert token not in (stored.digest, stored.token_key) and len(stored.digest) == 128
    assert stored.token_key == token[:15]  # only a lookup prefix


def test_an_officer_needs_the_code_for_a_token():
    officer = factories.user("officer")
    api = APIClient()
    response = api.post(URL, {"username": officer.username, "password": PASSWORD}, format="json")
    assert response.status_code == 400 and "otp_token" in response.json()
    response = api.post(URL, {"username": officer.username, "password": PASSWORD, "otp_token": "000000"}, format="json")
    assert response.status_code == 400 and "otp_token" in response.json()
    assert AuditEntry.objects.filter(action="auth.login_failed", reason="wrong one-time code").count() == 1
    code = factories.totp_code(officer)
    response = api.post(URL, {"username": officer.username, "password": PASSWORD, "otp_token": code}, format="json")
    assert response.status_code == 201
    assert not AuthToken.objects.exclude(user=officer).exists()


def test_wrong_passwords_for_a_token_count_towards_the_lockout(settings):
    settings.AXES_FAILURE_LIMIT = 3
    clerk = factories.user("clerk")
    api = APIClient()
    for _ in range(2):
        response = api.post(URL, {"username": clerk.username, "password": "wrong-password-1"}, format="json")
        assert response.status_code == 400
    api.post(URL, {"username": clerk.username, "password": "wrong-password-1"}, format="json")
    response = api.post(URL, {"username": clerk.username, "password": PASSWORD}, format="json")
    assert response.status_code == 429 and response.json()["code"] == "locked_out"
    assert not AuthToken.objects.exists()


def test_an_expired_token_is_refused():
    clerk = factories.user("clerk")
    token = APIClient().post(URL, {"username": clerk.username, "password": PASSWORD}, format="json").json()["token"]
    AuthToken.objects.update(expiry=timezone.now() - datetime.timedelta(seconds=1))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = api.get("/api/v1/stations")
    assert response.status_code in (401, 403) and response.json()["detail"] == "Invalid token."


def test_logout_revokes_the_token():
    clerk = factories.user("clerk")
    token = APIClient().post(URL, {"username": clerk.username, "password": PASSWORD}, format="json").json()["token"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.post("/api/v1/auth/logout").status_code == 204
    assert api.get("/api/v1/stations").status_code in (401, 403)
    assert not AuthToken.objects.exists()
    assert AuditEntry.objects.filter(action="auth.token_revoked", user=clerk).exists()


def test_a_token_cannot_mint_another_token():
    clerk = factories.user("clerk")
    token = APIClient().post(URL, {"username": clerk.username, "password": PASSWORD}, format="json").json()["token"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = api.post(URL, {}, format="json")
    assert response.status_code == 400 and "username" in response.json()
    assert AuthToken.objects.count() == 1


def test_logout_without_a_token_says_what_it_revokes(clerk_api):
    response = clerk_api.post("/api/v1/auth/logout")
    assert response.status_code == 400 and "Authorization: Token" in response.json()["detail"]


def test_the_body_is_checked_also_from_a_session(client):
    clerk = factories.user("clerk")
    client.force_login(clerk)
    response = client.post(URL, {"otp_token": "0" * 33})
    assert response.status_code == 400 and "otp_token" in response.json()
    assert not AuthToken.objects.exists()
