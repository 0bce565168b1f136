"""The security administrator sets the security policy (issue 16, separation of duties): lockout,
the roles that sign in with a second factor, retention periods; within bounds, audited, append-only."""

import datetime

import psycopg
import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import ProgrammingError, transaction
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEntry, SecurityPolicy, Station, User
from accounts.security_policy import policy_current, retention_settings, security_policy_set
from accounts.services import administrator_role_grant
from cases.models import WebhookDelivery
from tests import factories
from tests.accounts.test_db_roles import role_conninfo
from tracking.retention import retention_apply, retention_days, retention_declared

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"  # as set by factories.user
PAGE = "/security/policy/"


def administrator(role: str) -> User:
    account = User.objects.create_user(username=f"policy-{role}", password=PASSWORD)
    administrator_role_grant(username=account.username, role=role, granted_by="test")
    return account


@pytest.fixture
def secadmin() -> User:
    return administrator("secadmin")


@pytest.fixture
def secadmin_client(secadmin) -> Client:
    client = Client()
    client.force_login(secadmin)
    return client


def form(**changes) -> dict:
    """The page's form as it comes with the defaults in force, with `changes`."""
    data = {
        "version": "",
        "login_failure_limit": django_settings.LOGIN_FAILURE_LIMIT,
        "lockout_cooloff_minutes": django_settings.LOGIN_COOLOFF_MINUTES,
        "second_factor_roles": list(django_settings.OTP_REQUIRED_ROLES),
        "reason": "等保测评整改：收紧登录失败锁定",
        **{setting: getattr(django_settings, setting) for setting in retention_settings()},
    }
    data.update(changes)
    return data


def service_values(**changes) -> dict:
    values = {
        "based_on": None,
        "login_failure_limit": 5,
        "lockout_cooloff_minutes": 15,
        "second_factor_roles": list(django_settings.OTP_REQUIRED_ROLES),
        "retention_days": {setting: getattr(django_settings, setting) for setting in retention_settings()},
        "reason": "年度安全策略复核",
    }
    values.update(changes)
    return values


def sign_in(client: Client, username: str, password: str = PASSWORD):
    return client.post("/login/", {"username": username, "password": password})


# --- Lockout ---------------------------------------------------------------------------------------


def test_the_secadmin_sets_a_limit_of_three_and_the_third_failure_locks_the_account(secadmin_client):
    clerk = factories.user("clerk")
    assert policy_current().login_failure_limit == 5  # the default, now in the cache

    response = secadmin_client.post(PAGE, form(login_failure_limit=3, lockout_cooloff_minutes=30))
    assert response.status_code == 302 and response["Location"] == PAGE
    assert policy_current().login_failure_limit == 3  # in force at once, the cache notwithstanding

    browser = Client(REMOTE_ADDR="203.0.113.20")
    for _ in range(2):
        assert sign_in(browser, clerk.username, "wrong-password-1").status_code == 200
    assert sign_in(browser, clerk.username, "wrong-password-1").status_code == 429  # the third, not the fifth
    response = sign_in(browser, clerk.username)
    assert response.status_code == 429
    assert "(30 minutes after the last attempt)" in response.content.decode()
    assert int(response["Retry-After"]) > 29 * 60
    assert "_auth_user_id" not in browser.session


def test_the_lockout_bounds_are_refused_naming_the_field(secadmin_client):
    response = secadmin_client.post(PAGE, form(login_failure_limit=2, lockout_cooloff_minutes=2000))
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_login_failure_limit_error"' in page and "a whole number from 3 to 10" in page
    assert 'id="id_lockout_cooloff_minutes_error"' in page and "from 5 to 1440 (a day)" in page
    assert not SecurityPolicy.objects.exists()


# --- Second factor ---------------------------------------------------------------------------------


def test_the_second_factor_cannot_be_dropped_below_the_floor(secadmin_client, secadmin):
    roles = [role for role in django_settings.OTP_REQUIRED_ROLES if role != "officer"]
    response = secadmin_client.post(PAGE, form(second_factor_roles=roles))
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_second_factor_roles_error"' in page
    assert "The second factor cannot be dropped for officer" in page
    assert not SecurityPolicy.objects.exists()
    with pytest.raises(ValidationError) as refused:
        security_policy_set(user=secadmin, **service_values(second_factor_roles=[]))
    assert "second_factor_roles" in refused.value.message_dict


def test_adding_clerks_leads_a_clerk_without_an_authenticator_to_enrolment_at_sign_in(secadmin_client):
    clerk = factories.user("clerk")  # a clerk needs no second factor by default: none is set up
    before = Client(REMOTE_ADDR="203.0.113.21")
    assert sign_in(before, clerk.username)["Location"] == "/"

    roles = [*django_settings.OTP_REQUIRED_ROLES, "clerk"]
    assert secadmin_client.post(PAGE, form(second_factor_roles=roles)).status_code == 302

    browser = Client(REMOTE_ADDR="203.0.113.22")
    response = sign_in(browser, clerk.username)
    assert response["Location"].startswith("/login/second-factor/")
    response = browser.get(response["Location"])
    assert response.status_code == 302 and response["Location"].startswith("/login/second-factor/enrol/")
    response = browser.get("/search/")  # nothing before the enrolment
    assert response.status_code == 302 and response["Location"].startswith("/login/second-factor/")


# --- Retention -------------------------------------------------------------------------------------


def _webhook(age: datetime.timedelta) -> int:
    at = timezone.now() - age
    row = WebhookDelivery.objects.create(
        station=Station.objects.get(code="13022901"),
        url="https://station.example.invalid/hook",
        event="sighting",
        payload={"lat": 39.88, "lon": 117.74},
        delivered_at=at,
    )
    WebhookDelivery.objects.filter(pk=row.pk).update(created_at=at)
    return row.pk


def test_a_retention_period_the_secadmin_sets_is_what_retention_applies(secadmin):
    rule = next(r for r in retention_declared().rules if r.model is WebhookDelivery)
    assert retention_days(rule) == 30  # WEBHOOK_RETENTION_DAYS, the default
    periods = service_values()["retention_days"] | {"WEBHOOK_RETENTION_DAYS": 10}
    security_policy_set(user=secadmin, **service_values(retention_days=periods))
    assert retention_days(rule) == 10

    past, within = _webhook(datetime.timedelta(days=10, hours=1)), _webhook(datetime.timedelta(days=9, hours=23))
    retention_apply()
    assert not WebhookDelivery.objects.filter(pk=past).exists()
    assert WebhookDelivery.objects.filter(pk=within).exists()


def test_every_declared_retention_setting_is_on_the_page_and_bounded(secadmin_client):
    declared = {rule.days_setting for rule in retention_declared().rules}
    assert set(retention_settings()) == declared
    page = secadmin_client.get(PAGE).content.decode()
    for setting in declared:
        assert f'name="{setting}"' in page
    response = secadmin_client.post(PAGE, form(PING_RETENTION_DAYS=5, OUTBOX_RETENTION_DAYS=4000))
    assert response.status_code == 400
    page = response.content.decode()
    assert "PING_RETENTION_DAYS is a whole number of days from 7 to 3650." in page
    assert 'id="id_OUTBOX_RETENTION_DAYS_error"' in page


# --- Who, the audit and the versions ---------------------------------------------------------------


@pytest.mark.parametrize("role", ["clerk", "officer", "admin", "owner", "sysadmin", "auditadmin"])
def test_other_roles_are_refused_the_page(role):
    if role in ("sysadmin", "auditadmin"):
        account = administrator(role)
    else:
        account = factories.user(role, station_code=None if role == "owner" else "13022901")
    client = Client()
    client.force_login(account)
    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, form(login_failure_limit=10)).status_code == 403
    assert not SecurityPolicy.objects.exists()
    assert "/security/policy/" not in client.get("/").content.decode()  # no link either


def test_the_superuser_break_glass_passes_like_everywhere_else_and_is_audited(client):
    root = User.objects.create_superuser("root", password=PASSWORD)
    client.force_login(root)
    assert client.get(PAGE).status_code == 200
    assert AuditEntry.objects.filter(user=root, action="breakglass.request", query__path=PAGE).exists()


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_change_is_audited_with_the_old_and_new_values_and_the_reason(secadmin_client, secadmin):
    secadmin_client.post(PAGE, form(login_failure_limit=4, WEBHOOK_RETENTION_DAYS=60), REMOTE_ADDR="198.51.100.9")
    version = SecurityPolicy.objects.get()
    entry = AuditEntry.objects.get(action="security.policy_changed")
    assert entry.user == secadmin and entry.ip == "198.51.100.9"
    assert entry.object_type == "security_policy" and entry.object_id == str(version.pk)
    assert entry.reason == "等保测评整改：收紧登录失败锁定"
    old, new = entry.query["old"], entry.query["new"]
    assert (old["login_failure_limit"], new["login_failure_limit"]) == (5, 4)
    webhook_days = (old["retention_days"]["WEBHOOK_RETENTION_DAYS"], new["retention_days"]["WEBHOOK_RETENTION_DAYS"])
    assert webhook_days == (30, 60)
    assert new["second_factor_roles"] == sorted(django_settings.OTP_REQUIRED_ROLES)
    assert entry.query["previous_version"] is None


def test_a_reason_is_required_and_each_change_is_a_new_version_shown_in_the_history(secadmin_client):
    response = secadmin_client.post(PAGE, form(reason=" "))
    assert response.status_code == 400 and 'id="id_reason_error"' in response.content.decode()

    secadmin_client.post(PAGE, form(login_failure_limit=4, reason="第一次调整"))
    first = SecurityPolicy.objects.get()
    secadmin_client.post(PAGE, form(version=first.pk, login_failure_limit=6, reason="第二次调整"))
    assert list(SecurityPolicy.objects.values_list("login_failure_limit", flat=True)) == [6, 4]  # newest first
    assert policy_current().login_failure_limit == 6

    page = secadmin_client.get(PAGE).content.decode()
    assert "第一次调整" in page and "第二次调整" in page
    assert f'name="version" value="{SecurityPolicy.objects.first().pk}"' in page


def test_a_change_made_from_an_outdated_version_is_refused_with_the_newer_one_shown(secadmin_client):
    assert secadmin_client.post(PAGE, form(login_failure_limit=4)).status_code == 302
    response = secadmin_client.post(PAGE, form(login_failure_limit=8))  # still from the defaults
    assert response.status_code == 400
    page = response.content.decode()
    assert "changed the policy at" in page and "policy-secadmin" in page
    assert SecurityPolicy.objects.count() == 1
    newest = SecurityPolicy.objects.get()
    assert f'name="version" value="{newest.pk}"' in page  # the next submission is made from it


def test_the_page_is_in_chinese_by_default(secadmin_client, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    page = secadmin_client.get(PAGE, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "安全策略" in page and "登录失败锁定次数" in page


# --- Append-only -----------------------------------------------------------------------------------


def test_the_runtime_role_adds_versions_but_cannot_rewrite_them(secadmin):
    version = security_policy_set(user=secadmin, **service_values(login_failure_limit=4))
    with psycopg.connect(**role_conninfo("app"), autocommit=True) as conn:
        for sql in (
            "UPDATE accounts_securitypolicy SET login_failure_limit = 10",
            "DELETE FROM accounts_securitypolicy",
        ):
            try:
                with conn.transaction(force_rollback=True):
                    conn.execute(sql)
            except psycopg.errors.InsufficientPrivilege as error:
                assert "permission denied" in str(error)
            else:
                pytest.fail(f"the app role was allowed: {sql}")
        with conn.transaction(force_rollback=True):
            conn.execute(
                "INSERT INTO accounts_securitypolicy (set_at, set_by_id, reason, login_failure_limit, "
                "lockout_cooloff_minutes, second_factor_roles, retention_days) "
                "VALUES (now(), %s, 'test', 5, 15, '{officer}', '{}')",
                [secadmin.pk],
            )
            assert conn.execute("SELECT count(*) FROM accounts_securitypolicy").fetchone()[0] >= 1
    # Not even the owner rewrites a version: the trigger refuses it.
    with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic():
        SecurityPolicy.objects.filter(pk=version.pk).update(login_failure_limit=10)
    with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic():
        SecurityPolicy.objects.filter(pk=version.pk).delete()
