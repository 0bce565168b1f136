"""Admin pages with personal data are masked and audited; the superuser's every request is audited."""

import pytest
from django.test import Client

from accounts.models import AuditEntry, User
from tests import factories
from vehicles.services.registration import vehicle_register

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(clerk):
    return vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=True
    ).vehicle.owner


@pytest.fixture
def superuser_client():
    root = User.objects.create_superuser("root", password="correct-horse-battery-9")
    client = Client()
    client.force_login(root)
    return client, root


def test_the_owner_admin_masks_identity_and_audits_the_search_and_the_record(owner, superuser_client):
    client, root = superuser_client
    found = client.get("/admin/vehicles/owner/", {"q": owner.id_number})
    assert found.status_code == 200 and owner.name in found.content.decode()
    search = AuditEntry.objects.get(action="admin.list", user=root)
    assert search.object_type == "owner" and search.query == {"q": owner.id_number} and search.result_count == 1
    page = client.get(f"/admin/vehicles/owner/{owner.pk}/change/").content.decode()
    assert owner.id_number not in page and owner.phone not in page
    assert owner.id_number[:6] + "********" + owner.id_number[-4:] in page
    assert AuditEntry.objects.filter(action="admin.view", object_type="owner", object_id=str(owner.pk)).exists()


def test_every_request_of_the_superuser_is_audited_as_break_glass(superuser_client, client):
    su_client, root = superuser_client
    su_client.get("/search/", {"plate": "玉A00001"})
    entry = AuditEntry.objects.filter(action="breakglass.request", user=root).latest("id")
    assert entry.query["path"] == "/search/" and entry.query["params"] == ["plate"] and entry.query["status"] == 200
    officer = factories.user("officer")
    client.force_login(officer)
    client.get("/search/")
    assert not AuditEntry.objects.filter(action="breakglass.request", user=officer).exists()


def test_signed_in_pages_carry_a_watermark_of_the_viewer_and_the_time_but_not_the_owners_certificate(
    owner, client
):
    from django.utils import timezone

    officer = factories.user("officer")
    client.force_login(officer)
    vehicle = owner.vehicles.get()
    record = client.get(f"/vehicles/{vehicle.pk}/").content.decode()
    assert 'class="watermark"' in record
    assert f"{officer.username} · {timezone.localtime():%Y-%m-%d}" in record
    certificate = client.get(f"/certificates/{vehicle.pk}/").content.decode()
    assert 'class="watermark"' not in certificate
    assert 'class="watermark"' not in Client().get("/login/").content.decode()
