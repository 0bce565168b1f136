"""Signing in to MLPS level 3: lockout, the audit of every sign-in, the second factor."""

import base64
import datetime
import re

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AuditEntry, RecoveryCode, recovery_code_digest
from tests import factories

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"  # as set by factories.user


@pytest.fixture(autouse=True)
def _lockout_settings(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = datetime.timedelta(minutes=15)
    # django-otp slows down guessing by itself too (1 s, 2 s, 4 s … after wrong codes); these tests
    # look at the lockout, which counts every wrong code whatever the device's own throttle says.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_RECOVERY_CODE_THROTTLE_FACTOR = 0


def browser(address: str = "203.0.113.10") -> Client:
    return Client(REMOTE_ADDR=address)


def sign_in(client: Client, username: str, password: str = PASSWORD, path: str = "/login/"):
    return client.post(path, {"username": username, "password": password})


# --- Lockout -------------------------------------------------------------------------------------


def test_after_the_limit_even_the_right_password_is_refused_with_when_to_try_again():
    clerk = factories.user("clerk")
    client = browser()
    client.cookies["django_language"] = "en"
    for _ in range(2):
        assert sign_in(client, clerk.username, "wrong-password-1").status_code == 200
    assert sign_in(client, clerk.username, "wrong-password-1").status_code == 429  # the limit: locked
    response = sign_in(client, clerk.username)
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed sign-in attempts" in page
    until = timezone.localtime() + datetime.timedelta(minutes=15)
    assert until.strftime("%Y-%m-%d %H:") in page  # blocked until about 15 minutes from now
    assert int(response["Retry-After"]) > 14 * 60
    assert "_auth_user_id" not in client.session


def test_the_lockout_message_is_in_chinese_by_default(settings):
    settings.LANGUAGE_CODE = "zh-hans"
    clerk = factories.user("clerk")
    client = browser()
    for _ in range(4):
        response = sign_in(client, clerk.username, "wrong-password-1")
    assert response.status_code == 429
    assert "登录失败次数过多" in response.content.decode()


def test_a_locked_account_does_not_lock_another_account_from_another_address():
    clerk, other = factories.user("clerk"), factories.user("clerk")
    attacker = browser("203.0.113.10")
    for _ in range(3):
        sign_in(attacker, clerk.username, "wrong-password-1")
    assert sign_in(attacker, clerk.username).status_code == 429
    colleague = browser("198.51.100.7")
    response = sign_in(colleague, other.username)
    assert response.status_code == 302 and response["Location"] == "/"


def test_the_account_is_locked_from_every_address_and_the_address_for_every_account():
    clerk, other = factories.user("clerk"), factories.user("clerk")
    for n in range(3):  # one account guessed from three addresses
        sign_in(browser(f"203.0.113.{n + 1}"), clerk.username, "wrong-password-1")
    assert sign_in(browser("198.51.100.7"), clerk.username).status_code == 429
    guesser = browser("192.0.2.50")  # one address guessing three accounts
    for name in ("nobody1", "nobody2", "nobody3"):
        sign_in(guesser, name, "wrong-password-1")
    assert sign_in(guesser, other.username).status_code == 429


def test_the_lockout_ends_after_the_cool_off():
    clerk = factories.user("clerk")
    client = browser()
    for _ in range(3):
        sign_in(client, clerk.username, "wrong-password-1")
    assert sign_in(client, clerk.username).status_code == 429
    # 16 minutes later (the cool-off runs from the latest failed attempt):
    AccessAttempt.objects.update(attempt_time=timezone.now() - datetime.timedelta(minutes=16))
    response = sign_in(client, clerk.username)
    assert response.status_code == 302 and response["Location"] == "/"


def test_the_admin_login_is_locked_out_too():
    admin = factories.user("sysadmin", is_staff=True)
    client = browser()
    for _ in range(2):
        assert sign_in(client, admin.username, "wrong-password-1", path="/admin/login/").status_code == 200
    assert sign_in(client, admin.username, "wrong-password-1", path="/admin/login/").status_code == 429
    response = sign_in(client, admin.username, path="/admin/login/")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


# --- Audit ---------------------------------------------------------------------------------------


def test_sign_in_failure_lockout_and_sign_out_are_audited_without_the_password():
    clerk = factories.user("clerk")
    client = browser("203.0.113.10")
    sign_in(client, clerk.username)
    client.post("/logout/")
    for _ in range(3):
        sign_in(client, clerk.username, "wrong-password-1")
    sign_in(client, clerk.username)  # refused: locked out

    rows = list(AuditEntry.objects.filter(action__startswith="auth.").order_by("pk"))
    assert [row.action for row in rows] == [
        "auth.login",
        "auth.logout",
        "auth.login_failed",
        "auth.login_failed",
        "auth.lockout",  # the third failure locks out (recorded as it is counted)
        "auth.login_failed",
        "auth.lockout",  # the right password during the lockout: refused, and the lockout extended
        "auth.login_failed",
    ]
    login, logout, failed = rows[0], rows[1], rows[2]
    assert login.user == clerk and login.ip == "203.0.113.10"
    assert logout.user == clerk
    assert failed.user is None and failed.object_id == clerk.username and failed.query == {"username": clerk.username}
    assert failed.reason == "wrong username or password" and failed.ip == "203.0.113.10"
    assert rows[-1].reason == "refused: locked out"
    for row in rows:
        assert "wrong-password-1" not in f"{row.query} {row.reason} {row.object_id}"
        assert PASSWORD not in f"{row.query} {row.reason} {row.object_id}"


def test_a_failed_sign_in_records_an_unknown_username_as_tried():
    sign_in(browser(), "no-such-user", "whatever-12345")
    row = AuditEntry.objects.get(action="auth.login_failed")
    assert row.object_id == "no-such-user" and row.user is None


# --- Second factor -------------------------------------------------------------------------------


def test_an_officer_gives_the_code_after_the_password():
    officer = factories.user("officer")
    client = browser()
    response = sign_in(client, officer.username)
    assert response.status_code == 302 and response["Location"].startswith("/login/second-factor/")
    page = client.get(response["Location"])
    assert page.status_code == 200 and 'name="otp_token"' in page.content.decode()
    # Until then no page:
    assert client.get("/search/")["Location"] == "/login/second-factor/?next=%2Fsearch%2F"
    response = client.post("/login/second-factor/", {"otp_token": factories.totp_code(officer), "next": "/search/"})
    assert response.status_code == 302 and response["Location"] == "/search/"
    assert client.get("/search/").status_code == 200
    assert AuditEntry.objects.filter(action="auth.second_factor", user=officer).get().query == {
        "method": "authenticator"
    }


def test_a_wrong_code_is_refused_and_counts_towards_the_lockout():
    officer = factories.user("officer")
    client = browser()
    sign_in(client, officer.username)
    response = client.post("/login/second-factor/", {"otp_token": "000000"})
    assert response.status_code == 200
    assert "That code is wrong" in response.content.decode()
    assert client.get("/search/").status_code == 302  # still not signed in
    client.post("/login/second-factor/", {"otp_token": "000001"})
    response = client.post("/login/second-factor/", {"otp_token": "000002"})
    assert response.status_code == 429  # the third wrong code locks the account out
    assert "_auth_user_id" not in client.session  # and ends the half-signed-in session
    assert sign_in(client, officer.username).status_code == 429
    failed = AuditEntry.objects.filter(action="auth.login_failed", object_id=officer.username)
    assert [row.reason for row in failed.order_by("pk")][:3] == ["wrong one-time code"] * 3
    assert AuditEntry.objects.filter(action="auth.lockout", object_id=officer.username).exists()


def test_a_code_is_accepted_once():
    officer = factories.user("officer")
    code = factories.totp_code(officer)
    first = browser()
    sign_in(first, officer.username)
    assert first.post("/login/second-factor/", {"otp_token": code})["Location"] == "/"
    second = browser()
    sign_in(second, officer.username)
    assert second.post("/login/second-factor/", {"otp_token": code}).status_code == 200  # replayed: refused


def test_a_recovery_code_works_once():
    officer = factories.user("officer")
    codes = _enrol(browser(), officer)  # a new authenticator, with its recovery codes
    assert len(codes) == 10 and len(set(codes)) == 10
    client = browser()
    sign_in(client, officer.username)
    response = client.post("/login/second-factor/", {"otp_token": codes[0].upper()})
    assert response.status_code == 302 and response["Location"] == "/"
    row = AuditEntry.objects.filter(action="auth.second_factor", user=officer).latest("pk")
    assert row.query == {"method": "recovery code", "recovery_codes_left": 9}

    again = browser()
    sign_in(again, officer.username)
    assert again.post("/login/second-factor/", {"otp_token": codes[0]}).status_code == 200
    assert again.get("/search/").status_code == 302


def test_a_required_role_without_a_device_is_led_through_enrolment_and_reaches_nothing_before():
    officer = factories.user("officer")
    TOTPDevice.objects.filter(user=officer).delete()
    client = browser()
    response = sign_in(client, officer.username)
    response = client.get(response["Location"])  # the code step sends it to enrolment
    assert response.status_code == 302 and response["Location"].startswith("/login/second-factor/enrol/")
    response = client.get("/search/")
    assert response.status_code == 302 and response["Location"].startswith("/login/second-factor/")
    api = client.get("/api/v1/vehicles", {"plate": "玉A00001"})
    assert api.status_code == 403
    assert api.json()["code"] == "second_factor_required" and "second factor" in api.json()["detail"]

    codes = _enrol(client, officer, signed_in=True)
    assert len(codes) == 10
    assert client.get("/search/").status_code == 200
    assert AuditEntry.objects.filter(action="auth.second_factor_enrolled", user=officer).exists()


def test_the_enrolment_shows_a_new_secret_each_time_and_never_after():
    officer = factories.user("officer")
    TOTPDevice.objects.filter(user=officer).delete()
    client = browser()
    sign_in(client, officer.username)
    first = _secret(client.get("/login/second-factor/enrol/"))
    second = _secret(client.get("/login/second-factor/enrol/"))
    assert first != second
    assert TOTPDevice.objects.filter(user=officer).count() == 1  # the first, unconfirmed key is gone


def test_a_half_signed_in_session_cannot_replace_the_device():
    officer = factories.user("officer")
    client = browser()
    sign_in(client, officer.username)
    response = client.get("/login/second-factor/enrol/")
    assert response.status_code == 302 and response["Location"].startswith("/login/second-factor/?")


def test_a_signed_in_session_cannot_replace_the_device_either(client):
    officer = factories.user("officer")
    client.force_login(officer)
    response = client.get("/login/second-factor/enrol/", follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert "To replace it, ask an administrator to reset it." in response.content.decode()
    assert TOTPDevice.objects.filter(user=officer).count() == 1


def test_a_clerk_signs_in_with_the_password_alone_and_may_enrol():
    clerk = factories.user("clerk")
    client = browser()
    response = sign_in(client, clerk.username)
    assert response["Location"] == "/"
    assert client.get("/search/").status_code == 200
    codes = _enrol(client, clerk, signed_in=True)
    assert len(codes) == 10
    client.post("/logout/")
    response = sign_in(client, clerk.username)  # enrolled: the code is asked from now on
    assert response["Location"].startswith("/login/second-factor/")


def test_test_client_sessions_of_required_roles_count_as_verified(client):
    officer = factories.user("officer")
    client.force_login(officer)
    assert client.get("/search/").status_code == 200


def _secret(response) -> str:
    assert response.status_code == 200
    return re.search(r'id="totp-secret">([A-Z2-7]+)<', response.content.decode()).group(1)


def _enrol(client: Client, account, *, signed_in: bool = False) -> list[str]:
    """Set up a new authenticator through the pages and return the recovery codes shown. An account
    that has one already has it reset first (by an administrator, in the admin)."""
    if not signed_in:
        TOTPDevice.objects.filter(user=account).delete()
        sign_in(client, account.username)
    secret = _secret(client.get("/login/second-factor/enrol/"))
    device = TOTPDevice.objects.get(user=account, confirmed=False)
    assert device.bin_key == base64.b32decode(secret)
    response = client.post("/login/second-factor/enrol/", {"otp_token": factories.device_code(device)})
    assert response.status_code == 200, response.content.decode()[:500]
    codes = re.findall(r"<li>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</li>", response.content.decode())
    stored = RecoveryCode.objects.filter(device__user=account).values_list("digest", flat=True)
    assert sorted(stored) == sorted(recovery_code_digest(code) for code in codes)  # digests, never the codes
    return codes
