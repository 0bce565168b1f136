"""Every lifecycle write names every problem at once, the bike's state included (issue 18, point 7).

Before, the services checked the input, raised, and only on the next try said the bike was stolen,
frozen or deregistered. Each write now has one `…_check()` that the write (under the row lock), the
API and the counter page all call; these tests drive the service and the API with each combination
the issue names and check that one answer carries all of them and nothing was written.
"""

import datetime

import pytest
from django.core.exceptions import ValidationError

from tests import factories
from tests.vehicles.test_lifecycle import register, snapshot
from vehicles.models import Owner, Plate, RegistrationEvent, Vehicle
from vehicles.selectors import vehicle_operations
from vehicles.services import registration as reg

pytestmark = pytest.mark.django_db

AGENT_ID = "11010519491231002X"  # passes GB 11643 (docs/domain.md#identity-numbers)


def owner_on_file_under(name: str) -> dict:
    """New-owner data whose ID number is already on file under another person's name."""
    taken = factories.owner_data(name="张建国")
    Owner.objects.create(
        kind="person",
        name=taken["name"],
        id_number=taken["id_number"],
        phone=taken["phone"],
        address=taken["address"],
    )
    return factories.owner_data(name=name, id_number=taken["id_number"])


def api_transfer(clerk_api, vid, new_owner, **extra):
    payload = {"new_owner": factories.as_json(new_owner), "insurance_consent": False}
    payload.update(extra)
    return clerk_api.post(f"/api/v1/vehicles/{vid}/transfer", payload, format="json")


# --- the combinations the issue names -------------------------------------------------------------------


def test_transfer_of_a_stolen_bike_to_an_id_on_file_under_another_name_names_both_in_the_service(
    clerk_api, clerk, officer
):
    vid = register(clerk_api)
    reg.vehicle_mark_stolen(officer=officer, vehicle_id=vid, reason="接警登记")
    before = snapshot(vid)

    with pytest.raises(ValidationError) as refused:
        reg.vehicle_transfer(
            clerk=clerk,
            vehicle_id=vid,
            new_owner=owner_on_file_under("刘洋"),
            insurance_consent=False,
            previous_owner_consent="in_person",
        )

    problems = refused.value.message_dict
    assert set(problems) == {"new_owner.id_number", "vehicle"}
    assert "another name" in problems["new_owner.id_number"][0]
    assert "stolen" in problems["vehicle"][0]
    assert snapshot(vid) == before


def test_transfer_of_a_stolen_bike_to_an_id_on_file_under_another_name_names_both_in_the_api(clerk_api, officer):
    vid = register(clerk_api)
    reg.vehicle_mark_stolen(officer=officer, vehicle_id=vid, reason="接警登记")
    before = snapshot(vid)

    response = api_transfer(clerk_api, vid, owner_on_file_under("刘洋"), previous_owner_consent="in_person")

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"new_owner", "vehicle"}
    assert "another name" in body["new_owner"]["id_number"][0]
    assert "stolen" in body["vehicle"][0]
    assert snapshot(vid) == before


def test_change_of_a_frozen_bike_with_a_bad_frame_number_names_both(clerk_api, clerk):
    vid = register(clerk_api)
    reg.vehicle_freeze(user=clerk, vehicle_id=vid, reason="赔付后寻回")
    before = snapshot(vid)

    response = clerk_api.post(
        f"/api/v1/vehicles/{vid}/change", {"vehicle": {"frame_number": "12345"}, "reason": "换车架"}, format="json"
    )

    assert response.status_code == 400
    vehicle = response.json()["vehicle"]
    assert vehicle["frame_number"], "the bad frame number is named"
    assert "frozen" in vehicle["non_field_errors"][0]
    assert snapshot(vid) == before


def test_deregistration_of_a_stolen_bike_with_a_bad_reason_names_both(clerk_api, officer):
    vid = register(clerk_api)
    reg.vehicle_mark_stolen(officer=officer, vehicle_id=vid, reason="接警登记")
    before = snapshot(vid)

    response = clerk_api.post(
        f"/api/v1/vehicles/{vid}/deregister", {"reason": "sold", "plate_returned": True}, format="json"
    )

    assert response.status_code == 400
    assert set(response.json()) == {"reason", "vehicle"}
    assert "stolen" in response.json()["vehicle"][0]
    assert snapshot(vid) == before


def test_plate_replacement_with_no_reason_on_a_deregistered_bike_names_both(clerk_api, clerk):
    vid = register(clerk_api)
    reg.vehicle_deregister(clerk=clerk, vehicle_id=vid, reason="not_used", plate_returned=True)
    before = snapshot(vid)

    response = clerk_api.post(f"/api/v1/vehicles/{vid}/replace-plate", {"reason": ""}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"reason", "vehicle"}
    assert "deregistered" in response.json()["vehicle"][0]
    assert snapshot(vid) == before


def test_plate_replacement_service_without_a_reason_on_a_stolen_bike_names_both(clerk_api, clerk, officer):
    vid = register(clerk_api)
    reg.vehicle_mark_stolen(officer=officer, vehicle_id=vid, reason="接警登记")
    with pytest.raises(ValidationError) as refused:
        reg.plate_replace(clerk=clerk, vehicle_id=vid, reason="  ")
    assert set(refused.value.message_dict) == {"reason", "vehicle"}


def test_change_of_a_stolen_bike_with_a_bad_phone_and_no_reason_names_all_three(clerk_api, officer):
    vid = register(clerk_api)
    reg.vehicle_mark_stolen(officer=officer, vehicle_id=vid, reason="接警登记")
    response = clerk_api.post(
        f"/api/v1/vehicles/{vid}/change", {"owner": {"phone": "999"}, "reason": ""}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"owner", "reason", "vehicle"}
    assert "phone" in body["owner"]
    assert "stolen" in body["vehicle"][0]


def test_transfer_on_an_expired_temporary_plate_with_a_bad_phone_and_no_consent_names_all(clerk_api):
    vid = register(clerk_api, conforming=False, ccc_certificate_no="")
    Plate.objects.filter(vehicle_id=vid).update(expires_on=datetime.date(2025, 4, 30))
    response = api_transfer(clerk_api, vid, factories.owner_data(phone="12"))
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"new_owner", "previous_owner_consent", "vehicle"}
    assert "phone" in body["new_owner"]
    assert "expired" in body["vehicle"][0]


def test_transfer_of_temporary_plates_where_the_city_refuses_them_is_named_with_the_owner_problem(clerk_api, settings):
    settings.TEMPORARY_PLATE_TRANSFER_ALLOWED = False
    vid = register(clerk_api, conforming=False, ccc_certificate_no="")
    response = api_transfer(clerk_api, vid, owner_on_file_under("刘洋"), previous_owner_consent="in_person")
    assert response.status_code == 400
    assert set(response.json()) == {"new_owner", "vehicle"}
    assert "temporary plates" in response.json()["vehicle"][0]


# --- the previous owner's consent -------------------------------------------------------------------------


def test_a_transfer_without_the_previous_owners_consent_is_refused(clerk_api):
    vid = register(clerk_api)
    response = api_transfer(clerk_api, vid, factories.owner_data(name="刘洋"))
    assert response.status_code == 400
    assert set(response.json()) == {"previous_owner_consent"}


def test_an_agent_needs_a_name_a_valid_id_number_and_the_letter_of_authority_all_said_at_once(clerk_api):
    vid = register(clerk_api)
    before = snapshot(vid)
    response = api_transfer(
        clerk_api,
        vid,
        factories.owner_data(name="刘洋"),
        previous_owner_consent="agent",
        consent_agent_id_number="110105194912310021",  # wrong check character
        documents=["id_card"],
    )
    assert response.status_code == 400
    assert set(response.json()) == {"consent_agent_name", "consent_agent_id_number", "documents"}
    assert snapshot(vid) == before


def test_a_transfer_through_an_agent_records_the_power_of_attorney_on_the_event(clerk_api, clerk):
    vid = register(clerk_api)
    response = api_transfer(
        clerk_api,
        vid,
        factories.owner_data(name="刘洋"),
        previous_owner_consent="agent",
        consent_agent_name="陈志强",
        consent_agent_id_number=AGENT_ID.lower(),
        documents=["letter_of_authority", "agent_id_card", "transfer_agreement"],
    )
    assert response.status_code == 200, response.json()
    event = RegistrationEvent.objects.get(vehicle_id=vid, kind="transfer")
    assert (event.previous_owner_consent, event.consent_agent_name, event.consent_agent_id_number) == (
        "agent",
        "陈志强",
        AGENT_ID,
    )
    shown = response.json()["events"][-1]
    assert shown["previous_owner_consent"] == "agent" and shown["consent_agent_name"] == "陈志强"
    assert shown["consent_agent_id_number"] != AGENT_ID, "a clerk sees the agent's ID number masked"


def test_a_transfer_in_person_keeps_no_agent_details(clerk_api):
    vid = register(clerk_api)
    response = api_transfer(
        clerk_api,
        vid,
        factories.owner_data(name="刘洋"),
        previous_owner_consent="in_person",
        consent_agent_name="陈志强",
    )
    assert response.status_code == 200, response.json()
    event = RegistrationEvent.objects.get(vehicle_id=vid, kind="transfer")
    assert (event.previous_owner_consent, event.consent_agent_name) == ("in_person", "")


# --- the checks on their own, and the operations the record page offers ---------------------------------


def test_a_check_collects_without_writing_and_says_nothing_on_good_input(clerk_api, officer):
    vid = register(clerk_api)
    record = Vehicle.objects.select_related("owner").get(pk=vid)
    good = reg.vehicle_transfer_check(
        record=record, new_owner=factories.owner_data(name="刘洋"), previous_owner_consent="in_person"
    )
    assert not good
    reg.vehicle_mark_stolen(officer=officer, vehicle_id=vid, reason="接警登记")
    record.refresh_from_db()
    found = reg.vehicle_transfer_check(
        record=record, new_owner=factories.owner_data(name="刘洋"), previous_owner_consent="in_person"
    )
    assert list(found.by_field) == ["vehicle"]
    assert RegistrationEvent.objects.filter(vehicle_id=vid, kind="transfer").count() == 0


def test_the_record_page_operations_come_from_the_same_state_rules(clerk_api, clerk, officer):
    vid = register(clerk_api)
    record = Vehicle.objects.select_related("owner").get(pk=vid)
    offered = {op.code: op for op in vehicle_operations(user=clerk, vehicle=record)}
    assert list(offered) == ["change", "correction", "transfer", "replace_plate", "deregister"]
    assert all(op.allowed for op in offered.values())

    reg.vehicle_mark_stolen(officer=officer, vehicle_id=vid, reason="接警登记")
    record.refresh_from_db()
    offered = {op.code: op for op in vehicle_operations(user=clerk, vehicle=record)}
    assert [code for code, op in offered.items() if op.allowed] == ["correction"]
    assert offered["transfer"].refused == ["the bike is reported stolen"]
    assert (
        offered["transfer"].refused[0]
        in reg.vehicle_transfer_check(record=record, new_owner={}, previous_owner_consent="in_person").by_field[
            "vehicle"
        ][0]
    )
    assert vehicle_operations(user=officer, vehicle=record) == []  # officers do no counter work
