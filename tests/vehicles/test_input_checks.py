"""Input that means something: implausible dates, unknown document codes and names with invisible
or direction-changing characters are refused with the field named, and nothing is stored."""

import pytest

from tests import factories
from tests.vehicles.test_pages import form_post
from vehicles.models import InsurancePolicy, Owner, Plate, RegistrationEvent, Vehicle

pytestmark = pytest.mark.django_db

URL = "/api/v1/registrations"


def row_counts():
    return {m.__name__: m.objects.count() for m in (Owner, Vehicle, Plate, RegistrationEvent, InsurancePolicy)}


def register(api, *, owner=None, vehicle=None, documents=None):
    payload = factories.registration_payload(owner=owner, vehicle=vehicle)
    if documents is not None:
        payload["documents"] = documents
    return api.post(URL, payload, format="json")


@pytest.mark.parametrize(
    ("field", "value"),
    [("production_date", "0001-01-01"), ("production_date", "1989-12-31"), ("purchase_date", "1985-06-01")],
)
def test_dates_before_1990_are_refused(clerk_api, field, value):
    before = row_counts()
    response = register(clerk_api, vehicle=factories.vehicle_data(**{field: value}))
    assert response.status_code == 400
    assert response.json()["vehicle"][field] == ["E-bikes on the road were made after 1990-01-01; check the date."]
    assert row_counts() == before


def test_a_date_on_the_bound_is_accepted(clerk_api):
    vehicle = factories.vehicle_data(production_date="1990-01-01", purchase_date="1990-02-01")
    assert register(clerk_api, vehicle=vehicle).status_code == 201


def test_document_codes_outside_the_closed_list_are_refused(clerk_api):
    before = row_counts()
    response = register(clerk_api, documents=["invoice", "<script>alert(1)</script>"])
    assert response.status_code == 400
    assert response.json()["documents"][0].startswith("Unknown document; choose from: id_card, business_licence")
    assert row_counts() == before


def test_a_document_list_longer_than_the_closed_list_is_refused_before_its_codes_are_read(clerk_api):
    before = row_counts()
    response = register(clerk_api, documents=["ccc_certificate"] + [f"doc{n}" for n in range(10_000)])
    assert response.status_code == 400
    assert response.json()["documents"] == ["Ensure this field has no more than 8 elements."]
    assert row_counts() == before


def test_documents_are_kept_once_each(clerk_api):
    response = register(clerk_api, documents=["invoice", "invoice", "ccc_certificate", "invoice"])
    assert response.status_code == 201
    assert RegistrationEvent.objects.get().documents == ["invoice", "ccc_certificate"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "王\u202e英秀"),  # right-to-left override
        ("name", "王秀\u200b英"),  # zero-width space
        ("name", "王\u2066秀英\u2069"),  # bidi isolate
        ("name", "王秀英\x07"),  # a control character
        ("address", "玉田县兴隆路\n12号"),
        ("address", "玉田县\u200d兴隆路12号"),  # zero-width joiner
    ],
)
def test_owner_text_with_control_or_invisible_characters_is_refused(clerk_api, field, value):
    before = row_counts()
    response = register(clerk_api, owner=factories.owner_data(**{field: value}))
    assert response.status_code == 400
    assert "invisible characters" in response.json()["owner"][field][0]
    assert row_counts() == before


def test_vehicle_text_with_a_direction_override_is_refused(clerk_api):
    response = register(clerk_api, vehicle=factories.vehicle_data(brand="雅迪\u202e"))
    assert response.status_code == 400
    assert "invisible characters" in response.json()["vehicle"]["brand"][0]


def test_names_are_stored_in_nfc(clerk_api):
    decomposed = "Jose\u0301 Garci\u0301a"
    assert register(clerk_api, owner=factories.owner_data(name=decomposed)).status_code == 201
    assert Owner.objects.get().name == "José García"


def test_transfer_refuses_unknown_documents_and_an_invisible_name(clerk_api):
    vehicle_id = register(clerk_api).json()["vehicle"]["id"]
    before = row_counts()
    new_owner = factories.as_json(factories.owner_data(name="刘\u200b洋"))
    response = clerk_api.post(
        f"/api/v1/vehicles/{vehicle_id}/transfer",
        {
            "new_owner": new_owner,
            "insurance_consent": True,
            "previous_owner_consent": "in_person",
            "documents": ["<b>x</b>"],
        },
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()) == {"new_owner", "documents"}
    assert row_counts() == before


def test_the_counter_page_says_why_at_the_field(client, clerk):
    client.force_login(clerk)
    before = row_counts()
    owner = factories.owner_data(name="王\u202e英秀")
    vehicle = factories.vehicle_data(production_date="0001-01-01")
    page = client.post("/counter/", form_post(owner, vehicle), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Remove the control or invisible characters" in body
    assert "E-bikes on the road were made after 1990-01-01" in body
    assert row_counts() == before
