"""The owner's and the vehicle's fields are declared once (vehicles.fields): the counter page and the
API accept the same lengths, and a number typed in its printed groups fits however it is entered."""

import pytest
from django import forms

from tests import factories
from vehicles.api import serializers as api
from vehicles.fields import OWNER, VEHICLE
from vehicles.forms import OwnerEditForm, OwnerForm, SearchForm, VehicleForm
from vehicles.models import Owner, Vehicle
from vehicles.services.owners import OwnerData
from vehicles.services.registration import VehicleData

pytestmark = pytest.mark.django_db

API = "/api/v1/registrations"
COUNTER = "/counter/"


def grouped_id_number() -> tuple[str, str]:
    """A resident ID number as stored, and as typed in its groups (region, birth date, sequence)."""
    number = factories.resident_id()
    return number, f"{number[:6]} {number[6:14]} {number[14:]}"


def counter_post(owner: dict, vehicle: dict) -> dict:
    data = {f"owner-{key}": str(value) for key, value in owner.items()}
    data.update({f"vehicle-{key}": str(value) for key, value in vehicle.items() if key != "conforming"})
    data.update({"vehicle-conforming": "on", "documents": ["id_card", "invoice"], "insurance_consent": "on"})
    return data


def test_numbers_typed_in_their_groups_register_by_api_and_at_the_counter(clerk_api, client, clerk):
    for register in ("api", "counter"):
        id_number, typed_id = grouped_id_number()
        frame = factories.frame_number()
        typed_frame = f"{frame[:4]} {frame[4]} {frame[5:7]} {frame[7:]}"  # maker, type, year, serial
        owner = factories.owner_data(id_number=typed_id, phone="0086 138-1234-5678")
        vehicle = factories.vehicle_data(frame_number=typed_frame)
        assert (len(typed_id), len(typed_frame)) == (20, 18)

        if register == "api":
            response = clerk_api.post(API, factories.registration_payload(owner=owner, vehicle=vehicle), format="json")
            assert response.status_code == 201, response.json()
        else:
            client.force_login(clerk)
            response = client.post(COUNTER, counter_post(owner, vehicle))
            assert response.status_code == 302, response.content.decode()[:2000]

        record = Vehicle.objects.select_related("owner").get(frame_number=frame)
        assert (record.owner.id_number, record.owner.phone) == (id_number, "13812345678")


def test_a_frame_number_longer_than_its_groups_allow_is_refused_alike(clerk_api, client, clerk):
    too_long = "1757 2 25 0000 0001 X"  # 21 characters
    payload = factories.registration_payload(vehicle=factories.vehicle_data(frame_number=too_long))
    response = clerk_api.post(API, payload, format="json")
    assert response.status_code == 400
    assert "frame_number" in response.json()["vehicle"]

    client.force_login(clerk)
    page = client.post(COUNTER, counter_post(factories.owner_data(), factories.vehicle_data(frame_number=too_long)))
    assert page.status_code == 200
    assert page.context["vehicle_form"].errors["frame_number"]
    assert not Vehicle.objects.exists() and not Owner.objects.exists()


def test_the_page_and_the_api_take_each_field_at_its_stored_length_plus_separators():
    pages = {**OwnerForm.base_fields, **VehicleForm.base_fields}
    inputs = {**api.OwnerInput().fields, **api.VehicleInput().fields}
    edits = {
        **api.OwnerChangeFields().fields,
        **api.VehicleCorrectionFields().fields,
        **api.VehicleChangeFields().fields,
    }
    for declared in (*OWNER, *VEHICLE):
        if declared.stored_length is None or declared.model_field.choices:
            continue  # a date, a price, a choice: no length to type
        assert declared.input_length >= declared.stored_length
        assert inputs[declared.name].max_length == declared.input_length, declared.name
        if declared.name in edits:
            assert edits[declared.name].max_length == declared.input_length, declared.name
        if isinstance(pages[declared.name], forms.CharField):
            assert pages[declared.name].max_length == declared.input_length, declared.name
    assert OwnerEditForm().fields["phone"].max_length == OWNER["phone"].input_length
    search = SearchForm.base_fields
    assert search["frame_number"].max_length == VEHICLE["frame_number"].input_length
    assert search["id_number"].max_length == OWNER["id_number"].input_length
    # The services' typed shapes name the same fields.
    assert set(VehicleData.__annotations__) == set(VEHICLE.names)
    assert set(OwnerData.__annotations__) == set(OWNER.names)
