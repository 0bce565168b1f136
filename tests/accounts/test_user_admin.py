"""The stock user admin: only a superuser sets superuser, staff status or user permissions."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import User
from accounts.roles import ADMINISTRATOR_ROLES
from tests import factories

pytestmark = pytest.mark.django_db


def change_form(account: User, **changes) -> dict:
    data = {
        "username": account.username,
        "first_name": account.first_name,
        "last_name": account.last_name,
        "email": account.email,
        "is_active": "on",
        "date_joined_0": account.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": account.date_joined.strftime("%H:%M:%S"),
        # The administrator roles are not in this form (granted by `manage.py admin_role` only).
        "groups": [str(g.pk) for g in account.groups.exclude(name__in=ADMINISTRATOR_ROLES)],
        "station": str(account.station_id or ""),
        "registration_point": "",
        "phone": account.phone,
    }
    data.update(changes)
    return data


@pytest.fixture
def account_manager():
    manager = factories.user("sysadmin", is_staff=True)
    client = Client()
    client.force_login(manager)
    client.manager = manager
    return client


def test_an_account_manager_cannot_make_itself_superuser(account_manager):
    manager = account_manager.manager
    perm = Permission.objects.get(codename="delete_auditentry")
    url = f"/admin/accounts/user/{manager.pk}/change/"
    page = account_manager.get(url).content.decode()
    assert 'name="is_superuser"' not in page and 'name="user_permissions"' not in page
    response = account_manager.post(
        url, change_form(manager, is_superuser="on", is_staff="on", user_permissions=[str(perm.pk)], first_name="改")
    )
    assert response.status_code == 302  # saved: the other fields
    manager.refresh_from_db()
    assert manager.first_name == "改"
    assert not manager.is_superuser and not manager.user_permissions.exists()


def test_an_account_manager_cannot_open_the_admin_to_a_clerk(account_manager):
    clerk = factories.user("clerk")
    response = account_manager.post(f"/admin/accounts/user/{clerk.pk}/change/", change_form(clerk, is_staff="on"))
    assert response.status_code == 302
    clerk.refresh_from_db()
    assert not clerk.is_staff


def test_an_account_manager_cannot_change_the_superuser(account_manager):
    root = User.objects.create_superuser("root", password="correct-horse-battery-9")
    response = account_manager.post(f"/admin/accounts/user/{root.pk}/change/", change_form(root, is_superuser=""))
    assert response.status_code == 403
    root.refresh_from_db()
    assert root.is_superuser


def test_a_superuser_still_can(client):
    root = User.objects.create_superuser("root", password="correct-horse-battery-9")
    clerk = factories.user("clerk")
    client.force_login(root)
    response = client.post(f"/admin/accounts/user/{clerk.pk}/change/", change_form(clerk, is_staff="on"))
    assert response.status_code == 302
    clerk.refresh_from_db()
    assert clerk.is_staff


def test_the_admin_never_shows_an_authenticator_key_or_a_recovery_code(client):
    from accounts.models import RecoveryCodeDevice, recovery_code_digest
    from accounts.signin import recovery_codes_issue

    root = User.objects.create_superuser("root", password="correct-horse-battery-9")
    officer = factories.user("officer")
    device = officer.totpdevice_set.get()
    codes = recovery_codes_issue(user=officer)
    recovery = RecoveryCodeDevice.objects.get(user=officer)
    client.force_login(root)
    page = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/").content.decode()
    assert client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/").status_code == 200
    assert device.key not in page and "qrcode" not in page
    response = client.get(f"/admin/accounts/recoverycodedevice/{recovery.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert not [code for code in codes if code in page or recovery_code_digest(code) in page]
