"""The lifecycle counter pages (issue 18, point 1): change, correction, transfer, plate replacement and
deregistration, each one form with every problem at its field and the typed values kept, a printable
receipt after each, the history on the record page, and the record page offering exactly what the
bike's state allows and saying why the rest is refused."""

import html
import re

import pytest

from accounts.models import AuditEntry
from tests import factories
from tests.vehicles.test_lifecycle_checks import AGENT_ID, owner_on_file_under
from vehicles.models import Plate, RegistrationEvent, Vehicle
from vehicles.services import registration as reg

pytestmark = pytest.mark.django_db


def bike(clerk, **vehicle) -> Vehicle:
    return reg.vehicle_register(
        clerk=clerk,
        owner=factories.owner_data(),
        vehicle=factories.vehicle_data(**vehicle),
        insurance_consent=True,
        documents=["invoice"],
    ).vehicle


def text(response) -> str:
    return html.unescape(response.content.decode())


def error_at(page: str, field_id: str) -> str:
    """The messages shown under one field (templates/vehicles/_field.html), '' if none."""
    found = re.search(rf'id="{field_id}_error">(.*?)</div>', page, re.S)
    return re.sub(r"<[^>]+>", " ", found.group(1)) if found else ""


def problems_box(page: str) -> str:
    found = re.search(r'<section class="problems".*?</section>', page, re.S)
    return re.sub(r"<[^>]+>", " ", found.group(0)) if found else ""


def value_of(page: str, name: str) -> str | None:
    tag = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*>', page)
    value = re.search(r'value="([^"]*)"', tag.group(0)) if tag else None
    return value.group(1) if value else None


def transfer_post(new_owner: dict, **page) -> dict:
    data = {f"new_owner-{key}": str(value) for key, value in new_owner.items()}
    data.update(page)
    return data


# --- all at once, at the fields ---------------------------------------------------------------------------


def test_transfer_page_names_the_stolen_bike_and_the_owner_problem_at_once_and_keeps_what_was_typed(
    client, clerk, officer
):
    vehicle = bike(clerk)
    reg.vehicle_mark_stolen(officer=officer, vehicle_id=vehicle.pk, reason="接警登记")
    client.force_login(clerk)
    new_owner = owner_on_file_under("刘洋")

    response = client.post(
        f"/vehicles/{vehicle.pk}/transfer/",
        transfer_post(new_owner, previous_owner_consent="in_person", documents=["id_card"]),
    )

    assert response.status_code == 200
    page = text(response)
    assert "another name" in error_at(page, "id_new_owner-id_number")
    assert "stolen" in problems_box(page)
    assert "2 problems" in problems_box(page)
    assert value_of(page, "new_owner-name") == "刘洋"
    assert value_of(page, "new_owner-id_number") == new_owner["id_number"]
    assert re.search(r'name="previous_owner_consent" value="in_person"[^>]*checked', page)
    assert not RegistrationEvent.objects.filter(vehicle=vehicle, kind="transfer").exists()


def test_transfer_page_names_a_missing_consent_and_every_agent_problem_at_its_field(client, clerk):
    vehicle = bike(clerk)
    client.force_login(clerk)
    response = client.post(
        f"/vehicles/{vehicle.pk}/transfer/",
        transfer_post(
            factories.owner_data(name="刘洋", phone="12"),
            previous_owner_consent="agent",
            consent_agent_id_number="110105194912310021",
        ),
    )
    page = text(response)
    assert error_at(page, "id_new_owner-phone")
    assert error_at(page, "id_consent_agent_name")
    assert error_at(page, "id_consent_agent_id_number")
    assert "letter of authority" in error_at(page, "id_documents")
    assert value_of(page, "consent_agent_id_number") == "110105194912310021"


def test_change_page_names_the_frozen_record_and_the_bad_frame_number_at_once(client, clerk):
    vehicle = bike(clerk)
    reg.vehicle_freeze(user=clerk, vehicle_id=vehicle.pk, reason="赔付后寻回")
    client.force_login(clerk)
    data = {
        "vehicle-frame_number": "12345",
        "vehicle-motor_number": vehicle.motor_number,
        "vehicle-colour": vehicle.colour,
        "owner-name": vehicle.owner.name,
        "owner-address": vehicle.owner.address,
        "owner-township_code": vehicle.owner.township_id or "",
        "reason": "换车架",
    }

    response = client.post(f"/vehicles/{vehicle.pk}/change/", data)

    page = text(response)
    assert error_at(page, "id_vehicle-frame_number")
    assert "frozen" in problems_box(page)
    assert value_of(page, "vehicle-frame_number") == "12345"
    assert value_of(page, "reason") == "换车架"
    assert Vehicle.objects.get(pk=vehicle.pk).frame_number == vehicle.frame_number


def test_deregistration_page_names_the_stolen_bike_and_the_missing_reason_and_plate_answer(client, clerk, officer):
    vehicle = bike(clerk)
    reg.vehicle_mark_stolen(officer=officer, vehicle_id=vehicle.pk, reason="接警登记")
    client.force_login(clerk)
    response = client.post(f"/vehicles/{vehicle.pk}/deregister/", {})
    page = text(response)
    assert error_at(page, "id_reason")
    assert error_at(page, "id_plate_returned")
    assert "stolen" in problems_box(page)
    assert Vehicle.objects.get(pk=vehicle.pk).status == "stolen"


def test_plate_replacement_page_on_a_deregistered_bike_without_a_reason_names_both(client, clerk):
    vehicle = bike(clerk)
    reg.vehicle_deregister(clerk=clerk, vehicle_id=vehicle.pk, reason="not_used", plate_returned=False)
    client.force_login(clerk)
    get = text(client.get(f"/vehicles/{vehicle.pk}/replace-plate/"))
    assert "cannot be done now" in get and "deregistered" in get  # said before the clerk types anything
    page = text(client.post(f"/vehicles/{vehicle.pk}/replace-plate/", {}))
    assert error_at(page, "id_reason")
    assert "deregistered" in problems_box(page)


# --- success: receipts and history ------------------------------------------------------------------------


def test_a_transfer_through_an_agent_ends_on_a_receipt_and_shows_in_the_history(client, clerk):
    vehicle = bike(clerk)
    previous = vehicle.owner.name
    client.force_login(clerk)
    response = client.post(
        f"/vehicles/{vehicle.pk}/transfer/",
        transfer_post(
            factories.owner_data(name="刘洋"),
            previous_owner_consent="agent",
            consent_agent_name="陈志强",
            consent_agent_id_number=AGENT_ID,
            documents=["letter_of_authority", "agent_id_card", "transfer_agreement"],
            insurance_consent="on",
        ),
    )
    event = RegistrationEvent.objects.get(vehicle=vehicle, kind="transfer")
    assert response.status_code == 302
    assert response["Location"] == f"/vehicles/{vehicle.pk}/events/{event.pk}/receipt/"
    assert Vehicle.objects.get(pk=vehicle.pk).owner.name == "刘洋"

    receipt = text(client.get(response["Location"]))
    for expected in (previous, "刘洋", "陈志强", "Letter of authority", clerk.station.name, event.plate.number):
        assert expected in receipt
    assert AGENT_ID not in receipt, "a clerk sees the agent's ID number masked"
    for line in ("Agent of the previous owner (signature)", "New owner (signature)", "Clerk (signature)"):
        assert line in receipt
    assert 'class="signatures"' in receipt and "data-print" in receipt

    history = text(client.get(f"/vehicles/{vehicle.pk}/"))
    assert "through an agent with a power of attorney" in history
    assert "陈志强" in history
    assert f"/vehicles/{vehicle.pk}/events/{event.pk}/receipt/" in history


def test_a_change_through_the_page_sends_only_what_changed_and_the_receipt_shows_it(client, clerk):
    vehicle = bike(clerk, colour="白")
    owner = vehicle.owner
    client.force_login(clerk)
    form = text(client.get(f"/vehicles/{vehicle.pk}/change/"))
    assert value_of(form, "vehicle-colour") == "白"
    assert value_of(form, "owner-phone") in (None, ""), "the phone on file is not written into the form"
    data = {
        "vehicle-frame_number": vehicle.frame_number,
        "vehicle-motor_number": vehicle.motor_number,
        "vehicle-colour": "红",
        "owner-name": owner.name,
        "owner-phone": "",
        "owner-address": owner.address,
        "owner-township_code": owner.township_id or "",
        "reason": "车身重新喷漆",
    }
    response = client.post(f"/vehicles/{vehicle.pk}/change/", data)
    assert response.status_code == 302, problems_box(text(response))
    event = RegistrationEvent.objects.get(vehicle=vehicle, kind="change")
    assert event.changes == {"colour": ["白", "红"]}
    owner.refresh_from_db()
    assert owner.phone != ""  # left empty: kept
    receipt = text(client.get(response["Location"]))
    assert "车身重新喷漆" in receipt and "白" in receipt and "红" in receipt and "Owner (signature)" in receipt


def test_a_change_that_changes_nothing_is_refused(client, clerk):
    vehicle = bike(clerk)
    client.force_login(clerk)
    data = {
        "vehicle-frame_number": vehicle.frame_number,
        "vehicle-motor_number": vehicle.motor_number,
        "vehicle-colour": vehicle.colour,
        "owner-name": vehicle.owner.name,
        "owner-address": vehicle.owner.address,
        "owner-township_code": vehicle.owner.township_id or "",
        "reason": "核对",
    }
    page = text(client.post(f"/vehicles/{vehicle.pk}/change/", data))
    assert "Nothing to change" in problems_box(page)


def test_a_correction_on_a_stolen_bike_goes_through(client, clerk, officer):
    vehicle = bike(clerk)
    reg.vehicle_mark_stolen(officer=officer, vehicle_id=vehicle.pk, reason="接警登记")
    client.force_login(clerk)
    form = text(client.get(f"/vehicles/{vehicle.pk}/correct/"))
    data = {
        name: value_of(form, name) or ""
        for name in re.findall(r'name="((?:vehicle|owner)-[a-z_]+)"', form)
        if name != "owner-township_code"
    }
    data.update(
        {"vehicle-model_name": "TDT2313Z", "owner-township_code": vehicle.owner.township_id, "reason": "录入错误"}
    )
    response = client.post(f"/vehicles/{vehicle.pk}/correct/", data)
    assert response.status_code == 302, problems_box(text(response))
    assert RegistrationEvent.objects.get(vehicle=vehicle, kind="correction").changes == {
        "model_name": ["TDT2312Z", "TDT2313Z"]
    }


@pytest.mark.parametrize("keeps", [False, True])
def test_a_plate_replacement_offers_the_new_certificate(client, clerk, settings, keeps):
    settings.PLATE_REPLACE_KEEPS_NUMBER = keeps
    vehicle = bike(clerk)
    old = Plate.objects.get(vehicle=vehicle).number
    client.force_login(clerk)
    form = text(client.get(f"/vehicles/{vehicle.pk}/replace-plate/"))
    assert ("keeps the same number" in form) is keeps
    response = client.post(f"/vehicles/{vehicle.pk}/replace-plate/", {"reason": "damaged"})
    assert response.status_code == 302
    new = Plate.objects.get(vehicle=vehicle, status="issued").number
    assert (new == old) is keeps
    receipt = text(client.get(response["Location"]))
    assert f'href="/certificates/{vehicle.pk}/"' in receipt and "Print the new certificate" in receipt
    assert "Plate damaged" in receipt and new in receipt


def test_deregistration_shows_its_reason_by_name_in_the_receipt_and_the_history(client, clerk):
    vehicle = bike(clerk)
    plate = Plate.objects.get(vehicle=vehicle).number
    client.force_login(clerk)
    response = client.post(f"/vehicles/{vehicle.pk}/deregister/", {"reason": "destroyed", "plate_returned": "yes"})
    assert response.status_code == 302
    assert Vehicle.objects.get(pk=vehicle.pk).status == "deregistered"
    assert Plate.objects.get(number=plate).status == "recovered"
    receipt = text(client.get(response["Location"]))
    assert "Destroyed or scrapped" in receipt and plate in receipt and "plate handed back" in receipt.lower()
    history = text(client.get(f"/vehicles/{vehicle.pk}/"))
    assert "Destroyed or scrapped" in history
    assert ">destroyed<" not in history


# --- the record page offers what the state allows -----------------------------------------------------------


def test_the_record_page_offers_every_operation_for_a_registered_bike(client, clerk):
    vehicle = bike(clerk)
    client.force_login(clerk)
    page = text(client.get(f"/vehicles/{vehicle.pk}/"))
    for path in ("change", "correct", "transfer", "replace-plate", "deregister"):
        assert f'href="/vehicles/{vehicle.pk}/{path}/"' in page
    assert "not available" not in page


def test_the_record_page_of_a_stolen_bike_offers_only_a_correction_and_says_why(client, clerk, officer):
    vehicle = bike(clerk)
    reg.vehicle_mark_stolen(officer=officer, vehicle_id=vehicle.pk, reason="接警登记")
    client.force_login(clerk)
    page = text(client.get(f"/vehicles/{vehicle.pk}/"))
    assert f'href="/vehicles/{vehicle.pk}/correct/"' in page
    for path in ("change", "transfer", "replace-plate", "deregister"):
        assert f'href="/vehicles/{vehicle.pk}/{path}/"' not in page
    assert page.count("not available: the bike is reported stolen") == 4


def test_the_record_page_in_chinese_says_why_a_transfer_is_refused(client, clerk, officer, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    vehicle = bike(clerk)
    reg.vehicle_mark_stolen(officer=officer, vehicle_id=vehicle.pk, reason="接警登记")
    client.force_login(clerk)
    page = re.sub(r"<[^>]+>", "", text(client.get(f"/vehicles/{vehicle.pk}/")))
    assert "转移登记 — 不可办理：该车已报失窃" in page
    form = text(client.get(f"/vehicles/{vehicle.pk}/transfer/"))
    for label in ("转移登记", "新车主", "原车主同意", "委托代理人"):
        assert label in form


def test_officers_see_no_counter_operations_and_cannot_open_them(client, clerk, officer):
    vehicle = bike(clerk)
    client.force_login(officer)
    assert "Counter operations" not in text(client.get(f"/vehicles/{vehicle.pk}/"))
    for path in ("change", "correct", "transfer", "replace-plate", "deregister"):
        assert client.get(f"/vehicles/{vehicle.pk}/{path}/").status_code == 403
    event = RegistrationEvent.objects.get(vehicle=vehicle)
    assert client.get(f"/vehicles/{vehicle.pk}/events/{event.pk}/receipt/").status_code == 403


def test_finding_the_new_owner_by_id_number_fills_the_form_and_is_audited(client, clerk):
    vehicle = bike(clerk)
    buyer = bike(clerk).owner  # a person already on file
    client.force_login(clerk)
    response = client.post(f"/vehicles/{vehicle.pk}/transfer/", {"new_owner-id_number": buyer.id_number, "lookup": "1"})
    page = text(response)
    assert value_of(page, "new_owner-name") == buyer.name
    assert value_of(page, "new_owner-address") == buyer.address
    assert value_of(page, "new_owner-phone") in (None, ""), "the clerk asks for the phone"
    assert not problems_box(page)
    entry = AuditEntry.objects.get(action="owner.lookup")
    assert (entry.object_id, entry.result_count) == (str(buyer.pk), 1)
    assert buyer.id_number not in str(entry.query)
    assert not RegistrationEvent.objects.filter(kind="transfer").exists()
