import pytest
from django.test import Client

from tests import factories
from tests.tracking import factories as tf
from tracking.models import Terminal, TerminalInstallation
from vehicles.services.registration import vehicle_register

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk_client(clerk):
    client = Client()
    client.force_login(clerk)
    return client


@pytest.fixture
def vehicle(clerk):
    return vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=True
    ).vehicle


def test_clerk_fits_a_new_terminal_right_after_registration(clerk_client, vehicle, clerk):
    url = f"/vehicles/{vehicle.pk}/terminal/"
    assert clerk_client.get(url).status_code == 200
    imei = tf.imei()
    response = clerk_client.post(
        url, {"fit": "1", "imei": imei, "protocol": "gt06", "source": "aftermarket", "owner_consent": "on"}, follow=True
    )
    assert response.status_code == 200
    assert imei in response.content.decode()
    terminal = Terminal.objects.get(imei=imei)
    assert terminal.vehicle_id == vehicle.pk
    assert TerminalInstallation.objects.get(terminal=terminal).installed_by == clerk
    detail = clerk_client.get(f"/vehicles/{vehicle.pk}/")
    assert imei in detail.content.decode()


def test_fitting_without_consent_or_with_a_bad_imei_shows_the_errors_and_keeps_the_input(clerk_client, vehicle):
    response = clerk_client.post(
        f"/vehicles/{vehicle.pk}/terminal/",
        {"fit": "1", "imei": "864717003283582", "protocol": "gt06", "source": "aftermarket"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Luhn" in page and 'value="864717003283582"' in page
    assert not Terminal.objects.exists()


def test_removing_a_terminal_needs_a_reason(clerk_client, clerk):
    term = tf.terminal(clerk=clerk)
    url = f"/vehicles/{term.vehicle_id}/terminal/"
    assert clerk_client.post(url, {"remove": "1", "reason": ""}).status_code == 400
    clerk_client.post(url, {"remove": "1", "reason": "车主要求拆除"})
    assert Terminal.objects.get(pk=term.pk).vehicle_id is None


def test_officers_cannot_fit_terminals(officer, vehicle):
    client = Client()
    client.force_login(officer)
    assert client.get(f"/vehicles/{vehicle.pk}/terminal/").status_code == 403
