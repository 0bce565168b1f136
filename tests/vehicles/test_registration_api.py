import pytest

from tests import factories
from vehicles.models import InsurancePolicy, Owner, Plate, PlateSeries, RegistrationEvent, Vehicle

pytestmark = pytest.mark.django_db

URL = "/api/v1/registrations"


def row_counts():
    return {m.__name__: m.objects.count() for m in (Owner, Vehicle, Plate, RegistrationEvent, InsurancePolicy)}


def test_counter_registration_issues_plate_policy_and_history(clerk_api, clerk):
    series = PlateSeries.objects.get(station=clerk.station, kind="green")
    first = series.next_number

    response = clerk_api.post(URL, factories.registration_payload(), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["plate"]["number"] == f"{series.prefix}{first:05d}"
    assert body["plate"]["kind"] == "green"
    assert body["policy"]["status"] == "active"
    assert body["policy"]["starts_on"] < body["policy"]["ends_on"]
    assert body["certificate_url"].endswith(f"/certificates/{body['vehicle']['id']}/")
    event = RegistrationEvent.objects.get(pk=body["event_id"])
    assert (event.kind, event.clerk, event.station) == ("register", clerk, clerk.station)
    assert event.changes["plate"] == [None, body["plate"]["number"]]
    series.refresh_from_db()
    assert series.next_number == first + 1


def test_without_consent_there_is_no_policy_but_registration_goes_ahead(clerk_api):
    response = clerk_api.post(URL, factories.registration_payload(insurance_consent=False), format="json")
    assert response.status_code == 201
    assert response.json()["policy"] is None
    assert InsurancePolicy.objects.count() == 0


def test_commercial_bike_gets_yellow_and_nonconforming_bike_temporary_white_plate(clerk_api):
    yellow = clerk_api.post(
        URL, factories.registration_payload(vehicle=factories.vehicle_data(use_type="commercial")), format="json"
    ).json()
    white = clerk_api.post(
        URL,
        factories.registration_payload(vehicle=factories.vehicle_data(conforming=False, ccc_certificate_no="")),
        format="json",
    ).json()
    assert yellow["plate"]["kind"] == "yellow" and "Y" in yellow["plate"]["number"]
    assert white["plate"]["kind"] == "white" and "临" in white["plate"]["number"]
    assert white["plate"]["expires_on"] is not None and white["plate"]["expired"] is False


def test_second_bike_of_the_same_owner_reuses_the_owner_record(clerk_api):
    owner = factories.owner_data()
    clerk_api.post(URL, factories.registration_payload(owner=owner), format="json")
    response = clerk_api.post(URL, factories.registration_payload(owner=owner), format="json")
    assert response.status_code == 201
    assert Owner.objects.filter(id_number=owner["id_number"]).count() == 1
    assert Vehicle.objects.filter(owner__id_number=owner["id_number"]).count() == 2


def test_every_problem_is_reported_at_once_and_nothing_is_written(clerk_api):
    taken = factories.vehicle_data()
    clerk_api.post(URL, factories.registration_payload(vehicle=taken), format="json")
    before = row_counts()
    series_next = list(PlateSeries.objects.order_by("id").values_list("next_number", flat=True))

    bad = factories.registration_payload(
        owner=factories.owner_data(id_number="130229198503151231", phone="12345"),
        vehicle=factories.vehicle_data(frame_number=taken["frame_number"], production_date="2025-02-30"),
    )
    response = clerk_api.post(URL, bad, format="json")

    assert response.status_code == 400
    errors = response.json()
    assert "check digit" in errors["owner"]["id_number"][0]
    assert "11 digits" in errors["owner"]["phone"][0]
    assert "already registered" in errors["vehicle"]["frame_number"][0]
    assert errors["vehicle"]["production_date"]  # malformed date, reported with the others
    assert row_counts() == before
    assert list(PlateSeries.objects.order_by("id").values_list("next_number", flat=True)) == series_next


def test_missing_sections_are_named(clerk_api):
    response = clerk_api.post(URL, {"insurance_consent": True}, format="json")
    assert response.status_code == 400
    assert set(response.json()) >= {"owner", "vehicle"}


def test_id_number_on_file_under_another_name_is_refused(clerk_api):
    owner = factories.owner_data()
    clerk_api.post(URL, factories.registration_payload(owner=owner), format="json")
    impostor = {**owner, "name": "李建国"}
    response = clerk_api.post(URL, factories.registration_payload(owner=impostor), format="json")
    assert response.status_code == 400
    assert "another name" in response.json()["owner"]["id_number"][0]


def test_organisation_needs_credit_code_and_agent(clerk_api):
    org = factories.owner_data(kind="organisation", name="玉田县快送物流有限公司", id_number="91350100M000100Y43")
    response = clerk_api.post(URL, factories.registration_payload(owner=org), format="json")
    assert response.status_code == 400
    assert set(response.json()["owner"]) == {"agent_name", "agent_id_number"}

    org.update(agent_name="赵磊", agent_id_number=factories.resident_id())
    response = clerk_api.post(
        URL,
        factories.registration_payload(owner=org, vehicle=factories.vehicle_data(use_type="commercial")),
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["vehicle"]["owner"]["kind"] == "organisation"


def test_exhausted_series_is_a_clear_error_and_writes_nothing(clerk_api, clerk):
    PlateSeries.objects.filter(station=clerk.station, kind="green").update(first_number=1, last_number=1, next_number=2)
    before = row_counts()
    response = clerk_api.post(URL, factories.registration_payload(), format="json")
    assert response.status_code == 400
    assert "no" in response.json()["plate_kind"][0] and clerk.station.name in response.json()["plate_kind"][0]
    assert row_counts() == before


def test_roles_without_the_counter_permission_are_refused(api, officer, owner_user):
    for user in (officer, owner_user):
        api.force_authenticate(user)
        assert api.post(URL, factories.registration_payload(), format="json").status_code == 403
    api.force_authenticate(None)
    assert api.post(URL, factories.registration_payload(), format="json").status_code == 403
    assert Vehicle.objects.count() == 0


def test_clerk_without_station_is_refused(api):
    clerk = factories.user("clerk", station_code=None)
    api.force_authenticate(clerk)
    response = api.post(URL, factories.registration_payload(), format="json")
    assert response.status_code == 403
    assert "station" in response.json()["detail"]
