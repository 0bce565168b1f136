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


def test_a_jt808_fitting_records_what_its_register_must_name(clerk_client, vehicle):
    imei = tf.imei()
    fields = {"fit": "1", "imei": imei, "protocol": "jt808", "phone": "013922223333", "source": "aftermarket"}
    fields |= {"jt808_device_id": "A123456", "maker": "ZHXIN", "model_code": "ZX-808", "owner_consent": "on"}
    page = clerk_client.post(f"/vehicles/{vehicle.pk}/terminal/", fields, follow=True).content.decode()
    terminal = Terminal.objects.get(imei=imei)
    assert (terminal.jt808_device_id, terminal.maker, terminal.model_code) == ("A123456", "ZHXIN", "ZX-808")
    assert terminal.auth_code_digest == "" and "next register gets one" in page


def test_a_clerk_resets_the_auth_code_with_a_reason_and_it_is_audited(clerk_client, clerk):
    from accounts.models import AuditEntry
    from tracking.gateway.terminals import secret_digest

    term = tf.terminal(protocol="jt808", clerk=clerk)
    Terminal.objects.filter(pk=term.pk).update(auth_code_digest=secret_digest("old-code"))
    url = f"/vehicles/{term.vehicle_id}/terminal/identity/"
    refused = clerk_client.post(url, {"reset_code": "1", "identity-reason": ""})
    assert refused.status_code == 400 and "This field is required." in refused.content.decode()
    assert Terminal.objects.get(pk=term.pk).auth_code_digest == secret_digest("old-code")

    response = clerk_client.post(url, {"reset_code": "1", "identity-reason": "终端更换主板"})
    assert response.status_code == 302
    assert Terminal.objects.get(pk=term.pk).auth_code_digest == ""
    entry = AuditEntry.objects.get(action="terminal.auth_code_reset")
    assert (entry.user, entry.object_id, entry.reason, entry.query) == (
        clerk,
        str(term.pk),
        "终端更换主板",
        {"had_code": True},
    )
    assert entry.ip == "127.0.0.1"


def test_an_osmand_key_is_shown_once_kept_as_a_digest_and_can_be_replaced_or_removed(clerk_client, vehicle):
    from accounts.models import AuditEntry
    from tracking.gateway.terminals import secret_digest

    url = f"/vehicles/{vehicle.pk}/terminal/"
    imei = tf.imei()
    fields = {"fit": "1", "imei": imei, "protocol": "osmand", "source": "aftermarket", "owner_consent": "on"}
    shown = clerk_client.post(url, {**fields, "osmand_key": "on"})
    assert shown.status_code == 200
    key = shown.context["new_key"]
    assert len(key) == 20 and f"?key={key}" in shown.content.decode()
    terminal = Terminal.objects.get(imei=imei)
    assert terminal.osmand_key_digest == secret_digest(key)
    assert key not in clerk_client.get(url).content.decode()  # shown once

    identity = f"/vehicles/{vehicle.pk}/terminal/identity/"
    replaced = clerk_client.post(identity, {"issue_key": "1", "identity-reason": "车主换手机"})
    new_key = replaced.context["new_key"]
    assert new_key != key and Terminal.objects.get(pk=terminal.pk).osmand_key_digest == secret_digest(new_key)
    clerk_client.post(identity, {"remove_key": "1", "identity-reason": "车主不再使用"})
    assert Terminal.objects.get(pk=terminal.pk).osmand_key_digest == ""
    entries = AuditEntry.objects.filter(object_type="terminal", object_id=str(terminal.pk)).order_by("pk")
    actions = list(entries.values_list("action", flat=True))
    assert actions == ["terminal.osmand_key_issue", "terminal.osmand_key_issue", "terminal.osmand_key_remove"]


def test_a_key_for_a_gt06_terminal_or_a_reset_by_an_officer_is_refused(clerk_client, officer, vehicle):
    fields = {"fit": "1", "imei": tf.imei(), "protocol": "gt06", "source": "aftermarket", "owner_consent": "on"}
    response = clerk_client.post(f"/vehicles/{vehicle.pk}/terminal/", {**fields, "osmand_key": "on"})
    assert response.status_code == 400 and "Only OsmAnd terminals" in response.content.decode()
    term = tf.terminal(protocol="jt808")
    client = Client()
    client.force_login(officer)
    url = f"/vehicles/{term.vehicle_id}/terminal/identity/"
    assert client.post(url, {"reset_code": "1", "identity-reason": "x"}).status_code == 403
