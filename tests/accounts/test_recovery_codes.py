"""Recovery codes are kept as SHA-256 digests only (accounts.models.RecoveryCodeDevice): issued, used
and counted as before, reset by the security administrator (audited), never shown in the admin; the
clear codes django-otp's otp_static kept are carried over as digests by migration 0008."""

import hashlib
import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.test import Client

from accounts.models import AuditEntry, RecoveryCode, RecoveryCodeDevice, User, recovery_code_digest
from accounts.signin import recovery_codes_issue, recovery_codes_left, second_factor_verify
from tests import factories

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"  # as set by factories.user


@pytest.fixture(autouse=True)
def _no_device_throttle(settings):
    settings.OTP_RECOVERY_CODE_THROTTLE_FACTOR = 0


def test_the_database_holds_digests_of_the_codes_and_never_a_code():
    officer = factories.user("officer")
    codes = recovery_codes_issue(user=officer)
    assert len(set(codes)) == 10
    assert all(len(code) == 19 and code.count("-") == 3 for code in codes)  # 16 base32 characters, 80 bits
    stored = list(RecoveryCode.objects.filter(device__user=officer).values_list("digest", flat=True))
    assert sorted(stored) == sorted(hashlib.sha256(code.replace("-", "").encode()).hexdigest() for code in codes)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM accounts_recoverycode WHERE digest = ANY(%s)", [codes])
        assert cursor.fetchone()[0] == 0


def test_a_code_signs_in_once_however_it_is_typed():
    officer = factories.user("officer")
    first, second, *_ = recovery_codes_issue(user=officer)
    client = Client(REMOTE_ADDR="203.0.113.20")
    client.post("/login/", {"username": officer.username, "password": PASSWORD})
    typed = " ".join(first.replace("-", "").upper()[i : i + 4] for i in range(0, 16, 4))  # "ABCD EFGH …"
    assert client.post("/login/second-factor/", {"otp_token": typed})["Location"] == "/"
    row = AuditEntry.objects.filter(action="auth.second_factor", user=officer).latest("pk")
    assert row.query == {"method": "recovery code", "recovery_codes_left": 9}
    assert second_factor_verify(user=officer, token=first) is None  # used up
    assert isinstance(second_factor_verify(user=officer, token=second), RecoveryCodeDevice)
    assert recovery_codes_left(user=officer) == 8


def test_new_codes_void_the_old_ones():
    officer = factories.user("officer")
    old = recovery_codes_issue(user=officer)
    new = recovery_codes_issue(user=officer)
    assert second_factor_verify(user=officer, token=old[0]) is None
    assert second_factor_verify(user=officer, token=new[0]) is not None
    assert RecoveryCodeDevice.objects.filter(user=officer).count() == 1


def test_the_security_administrator_resets_recovery_codes_in_the_admin_audited():
    security = User.objects.create_user("sec-recovery", password=PASSWORD)
    call_command("admin_role", "grant", "sec-recovery", "secadmin", "--by", "张科长")
    officer, clerk = factories.user("officer"), factories.user("clerk")
    codes = recovery_codes_issue(user=officer)
    recovery_codes_issue(user=clerk)
    device = RecoveryCodeDevice.objects.get(user=officer)
    client = Client()
    client.force_login(security)

    listing = client.get("/admin/accounts/recoverycodedevice/")
    assert listing.status_code == 200
    page = client.get(f"/admin/accounts/recoverycodedevice/{device.pk}/change/")
    assert page.status_code == 200
    for content in (listing.content.decode(), page.content.decode()):
        assert officer.username in content
        for code in codes:
            assert code not in content and recovery_code_digest(code) not in content
    assert client.get("/admin/accounts/recoverycodedevice/add/").status_code == 403  # issued to their account only

    client.post(f"/admin/accounts/recoverycodedevice/{device.pk}/delete/", {"post": "yes"})
    assert not RecoveryCodeDevice.objects.filter(user=officer).exists()
    assert not RecoveryCode.objects.filter(device__user=officer).exists()
    reset = AuditEntry.objects.get(action="security.device_reset", user=security)
    assert reset.query == {"username": officer.username, "device": "recovery_codes"}

    other = RecoveryCodeDevice.objects.get(user=clerk)  # the list's bulk delete is audited too
    client.post(
        "/admin/accounts/recoverycodedevice/",
        {"action": "delete_selected", "_selected_action": [other.pk], "post": "yes"},
    )
    assert not RecoveryCodeDevice.objects.filter(user=clerk).exists()
    assert AuditEntry.objects.filter(
        action="security.device_reset", user=security, query={"username": clerk.username, "device": "recovery_codes"}
    ).exists()


# --- migration 0008: otp_static's clear codes -------------------------------------------------------

migration = importlib.import_module("accounts.migrations.0008_recovery_codes_hashed")


def _legacy_otp_static(devices: dict[User, tuple[bool, list[str]]]) -> None:
    """otp_static's two tables as a database made before migration 0008 has them, with clear codes,
    its applied migrations, its content type and a role's permission on it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE otp_static_staticdevice (id serial PRIMARY KEY, name varchar(64) NOT NULL, "
            "confirmed boolean NOT NULL, user_id bigint NOT NULL REFERENCES accounts_user (id), "
            "throttling_failure_timestamp timestamptz, throttling_failure_count integer NOT NULL DEFAULT 0, "
            "created_at timestamptz, last_used_at timestamptz)"
        )
        cursor.execute(
            "CREATE TABLE otp_static_statictoken (id serial PRIMARY KEY, token varchar(16) NOT NULL, "
            "device_id integer NOT NULL REFERENCES otp_static_staticdevice (id))"
        )
        for user, (confirmed, tokens) in devices.items():
            cursor.execute(
                "INSERT INTO otp_static_staticdevice (name, confirmed, user_id) VALUES ('recovery codes', %s, %s) "
                "RETURNING id",
                [confirmed, user.pk],
            )
            device_id = cursor.fetchone()[0]
            for token in tokens:
                cursor.execute(
                    "INSERT INTO otp_static_statictoken (token, device_id) VALUES (%s, %s)", [token, device_id]
                )
        cursor.execute(
            "INSERT INTO django_migrations (app, name, applied) VALUES ('otp_static', '0001_initial', now()), "
            "('otp_static', '0003_add_timestamps', now())"
        )
    content_type = ContentType.objects.create(app_label="otp_static", model="staticdevice")
    permission = Permission.objects.create(
        content_type=content_type, codename="delete_staticdevice", name="Can delete static device"
    )
    Group.objects.get(name="secadmin").permissions.add(permission)


def _run_migration() -> None:
    with connection.schema_editor() as schema_editor:
        migration.static_tokens_hash(apps, schema_editor)


def test_clear_codes_of_otp_static_become_digests_and_its_tables_go():
    officer, leader, clerk = factories.user("officer"), factories.user("admin"), factories.user("clerk")
    _legacy_otp_static(
        {
            officer: (True, ["abcd2345", "efgh6723"]),
            leader: (False, ["unconfir"]),  # never confirmed: nothing to carry over
            clerk: (True, ["oldcode2"]),
        }
    )
    new_codes = recovery_codes_issue(user=clerk)  # issued since: the old one stays void

    _run_migration()

    tables = connection.introspection.table_names()
    assert "otp_static_staticdevice" not in tables and "otp_static_statictoken" not in tables
    assert sorted(RecoveryCode.objects.filter(device__user=officer).values_list("digest", flat=True)) == sorted(
        hashlib.sha256(code.encode()).hexdigest() for code in ("abcd2345", "efgh6723")
    )
    assert not RecoveryCodeDevice.objects.filter(user=leader).exists()
    assert second_factor_verify(user=clerk, token="oldcode2") is None
    assert recovery_codes_left(user=clerk) == len(new_codes)
    # The carried-over codes sign in, once each, as typed from the old sheet.
    assert second_factor_verify(user=officer, token="ABCD 2345") is not None
    assert second_factor_verify(user=officer, token="abcd2345") is None
    assert recovery_codes_left(user=officer) == 1
    # otp_static is gone from the migration records and the permissions.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM django_migrations WHERE app = 'otp_static'")
        assert cursor.fetchone()[0] == 0
    assert not ContentType.objects.filter(app_label="otp_static").exists()
    assert not Group.objects.get(name="secadmin").permissions.filter(content_type__app_label="otp_static").exists()


def test_a_new_database_migrates_without_otp_static_and_the_migration_has_nothing_to_do():
    # The test database was made by migrate from nothing, with otp_static no longer installed.
    assert not [t for t in connection.introspection.table_names() if t.startswith("otp_static_")]
    _run_migration()  # run again on it: nothing to carry over, nothing fails
    assert not RecoveryCodeDevice.objects.exists()
