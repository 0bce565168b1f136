import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from accounts.models import AuditEntry
from tests import factories
from vehicles.models import Owner
from vehicles.services.registration import vehicle_register
from web.owner_accounts import owner_login_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(clerk):
    data = factories.owner_data()
    vehicle_register(clerk=clerk, owner=data, vehicle=factories.vehicle_data(), insurance_consent=True)
    return Owner.objects.get(id_number=data["id_number"])


def test_it_links_a_new_owner_login_found_by_id_number(owner, admin_user, client):
    user = owner_login_create(
        by=admin_user, id_number=owner.id_number.lower(), username="wxy", password="Yutian-2026!x"
    )
    owner.refresh_from_db()
    assert owner.user == user and user.groups.filter(name="owner").exists()
    assert AuditEntry.objects.filter(action="owner.login_create", object_id=str(owner.pk)).exists()
    client.force_login(user)
    assert client.get("/my/").status_code == 200


def test_it_refuses_unknown_owners_second_logins_and_weak_passwords(owner):
    with pytest.raises(ValidationError):
        owner_login_create(by=None, id_number="11010519491231002X", username="x1", password="Yutian-2026!x")
    with pytest.raises(ValidationError):
        owner_login_create(by=None, id_number=owner.id_number, username="x2", password="123")
    owner_login_create(by=None, id_number=owner.id_number, username="x3", password="Yutian-2026!x")
    with pytest.raises(ValidationError):
        owner_login_create(by=None, id_number=owner.id_number, username="x4", password="Yutian-2026!x")


def test_the_command(owner, monkeypatch):
    monkeypatch.setenv("OWNER_LOGIN_PASSWORD", "Yutian-2026!x")
    call_command("owner_login", id_number=owner.id_number, username="wxy2")
    assert Owner.objects.get(pk=owner.pk).user.username == "wxy2"
    with pytest.raises(CommandError):
        call_command("owner_login", id_number=owner.id_number, username="wxy3")
