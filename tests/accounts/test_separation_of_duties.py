"""三员分立: the system, audit and security administrators, granted only by a command, one each."""

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import AuditEntry
from tests import factories

pytestmark = pytest.mark.django_db


def grant(username: str, role: str) -> None:
    call_command("admin_role", "grant", username, role, "--by", "张科长")


def plain_account(username: str):
    from accounts.models import User

    return User.objects.create_user(username=username, password="correct-horse-battery-9")


def test_each_administrator_role_is_granted_by_the_command_and_audited():
    plain_account("sys1")
    grant("sys1", "sysadmin")
    entry = AuditEntry.objects.get(action="admin_role.grant")
    assert entry.query == {"role": "sysadmin", "granted_by": "张科长"}


def test_no_account_holds_two_administrator_roles_or_one_beside_a_working_role():
    plain_account("adm1")
    grant("adm1", "auditadmin")
    with pytest.raises(CommandError, match="separation of duties"):
        grant("adm1", "secadmin")
    officer = factories.user("officer")
    with pytest.raises(CommandError, match="separation of duties"):
        grant(officer.username, "sysadmin")
    with pytest.raises(CommandError, match="No account"):
        grant("nobody", "sysadmin")


def test_the_audit_administrator_reads_the_audit_trail_and_nothing_else():
    auditor = plain_account("aud1")
    grant("aud1", "auditadmin")
    auditor.refresh_from_db()
    client = Client()
    client.force_login(auditor)
    assert client.get("/admin/accounts/auditentry/").status_code == 200
    assert client.get("/admin/accounts/user/").status_code == 403
    assert client.get("/search/").status_code == 403
    assert client.get("/api/v1/stations").status_code == 403
    assert not auditor.has_perm("cases.trace_with_reason") and not auditor.has_perm("cases.view_stolen_positions")


def test_the_system_administrator_manages_accounts_but_cannot_read_the_audit_trail():
    sysadmin = plain_account("sys2")
    grant("sys2", "sysadmin")
    client = Client()
    client.force_login(sysadmin)
    assert client.get("/admin/accounts/user/").status_code == 200
    assert client.get("/admin/accounts/station/").status_code == 200
    assert client.get("/admin/accounts/auditentry/").status_code == 403
    assert client.get("/search/").status_code == 403
    assert client.get("/stats/").status_code == 403
    # The user form offers the working roles only: administrator roles come from the command.
    page = client.get(f"/admin/accounts/user/{sysadmin.pk}/change/").content.decode()
    assert ">officer<" in page and ">auditadmin<" not in page and ">secadmin<" not in page


def test_the_leadership_sees_statistics_not_the_audit_trail_or_accounts(client):
    leader = factories.user("admin")
    client.force_login(leader)
    assert client.get("/stats/").status_code == 200
    assert client.get("/admin/accounts/auditentry/").status_code in (302, 403)


def test_the_security_administrator_lifts_a_lockout_and_resets_a_lost_authenticator_audited():
    from axes.models import AccessAttempt
    from django_otp.plugins.otp_totp.models import TOTPDevice

    security = plain_account("sec9")
    grant("sec9", "secadmin")
    officer = factories.user("officer")  # has an authenticator (tests.factories)
    attempt = AccessAttempt.objects.create(
        username=officer.username, ip_address="10.1.2.3", failures_since_start=5, get_data="", post_data=""
    )
    client = Client()
    client.force_login(security)
    assert client.get("/admin/axes/accessattempt/").status_code == 200
    client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert not AccessAttempt.objects.filter(pk=attempt.pk).exists()
    device = TOTPDevice.objects.get(user=officer)
    client.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"})
    assert not TOTPDevice.objects.filter(user=officer).exists()
    unlocked = AuditEntry.objects.get(action="security.unlock", user=security)
    assert unlocked.query == {"username": officer.username, "ip": "10.1.2.3"}
    reset = AuditEntry.objects.get(action="security.device_reset", user=security)
    assert reset.query == {"username": officer.username, "device": "totp"}
    # The security administrator reads neither the audit trail nor the accounts.
    assert client.get("/admin/accounts/auditentry/").status_code == 403
    assert client.get("/admin/accounts/user/").status_code == 403
