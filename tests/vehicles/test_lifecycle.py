import datetime

import pytest
from django.db import connection
from django.db.utils import InternalError, ProgrammingError

from tests import factories
from vehicles.models import InsurancePolicy, Plate, RegistrationEvent, Vehicle
from vehicles.selectors import vehicle_state_from_events
from vehicles.services import registration as reg

pytestmark = pytest.mark.django_db


def register(clerk_api, **vehicle):
    response = clerk_api.post(
        "/api/v1/registrations",
        factories.registration_payload(vehicle=factories.vehicle_data(**vehicle)),
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()["vehicle"]["id"]


def snapshot(vehicle_id):
    """Everything a failed operation must leave untouched."""
    vehicle = Vehicle.objects.values().get(pk=vehicle_id)
    vehicle.pop("updated_at")
    return (
        vehicle,
        list(Plate.objects.filter(vehicle_id=vehicle_id).values_list("number", "status").order_by("id")),
        list(InsurancePolicy.objects.filter(vehicle_id=vehicle_id).values_list("number", "status").order_by("id")),
        RegistrationEvent.objects.filter(vehicle_id=vehicle_id).count(),
    )


def test_full_lifecycle_keeps_history_and_state_in_step(clerk_api, clerk):
    vid = register(clerk_api, colour="白")
    base = f"/api/v1/vehicles/{vid}"

    changed = clerk_api.post(
        f"{base}/change",
        {"vehicle": {"colour": "红"}, "owner": {"phone": "13911112222"}, "reason": "换色，车主换号"},
        format="json",
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["colour"] == "红"

    new_owner = factories.owner_data(name="刘洋")
    transferred = clerk_api.post(
        f"{base}/transfer",
        {"new_owner": factories.as_json(new_owner), "insurance_consent": True, "previous_owner_consent": "in_person"},
        format="json",
    )
    assert transferred.status_code == 200, transferred.json()
    assert transferred.json()["owner"]["name"] == "刘洋"
    old_plate = transferred.json()["plate"]["number"]

    replaced = clerk_api.post(f"{base}/replace-plate", {"reason": "号牌丢失"}, format="json")
    assert replaced.status_code == 200, replaced.json()
    new_plate = replaced.json()["plate"]["number"]

    corrected = clerk_api.post(
        f"{base}/correct", {"vehicle": {"model_name": "TDT2313Z"}, "reason": "录入错误"}, format="json"
    )
    assert corrected.status_code == 200, corrected.json()

    gone = clerk_api.post(f"{base}/deregister", {"reason": "destroyed", "plate_returned": True}, format="json")
    assert gone.status_code == 200, gone.json()
    assert gone.json()["status"] == "deregistered"
    assert gone.json()["plate"] is None

    kinds = [e["kind"] for e in gone.json()["events"]]
    assert kinds == ["register", "change", "transfer", "replace_plate", "correction", "deregister"]
    assert all(e["clerk"] == clerk.username and e["station"] == clerk.station.name for e in gone.json()["events"])

    plates = dict(Plate.objects.filter(vehicle_id=vid).values_list("number", "status"))
    assert old_plate != new_plate  # default: a replacement plate takes the next number
    assert plates[old_plate] == "void"
    assert Plate.objects.filter(vehicle_id=vid, status="recovered").count() == 1
    # Transfer cancelled the first owner's policy and gave the new owner one; deregistration ended it.
    assert list(InsurancePolicy.objects.filter(vehicle_id=vid).order_by("id").values_list("status", flat=True)) == [
        "cancelled",
        "cancelled",
    ]

    # The record is the projection of its history.
    vehicle = Vehicle.objects.get(pk=vid)
    state = vehicle_state_from_events(vid)
    assert state["colour"] == vehicle.colour == "红"
    assert state["model_name"] == vehicle.model_name == "TDT2313Z"
    assert state["owner_id"] == vehicle.owner_id
    assert state["status"] == vehicle.status
    assert state["plate"] is None
    assert vehicle.owner.phone == new_owner["phone"]


def test_replacement_gives_a_new_number_and_voids_the_old_plate(clerk_api, settings):
    settings.PLATE_REPLACE_KEEPS_NUMBER = False
    vid = register(clerk_api)
    old = Plate.objects.get(vehicle_id=vid)
    body = clerk_api.post(f"/api/v1/vehicles/{vid}/replace-plate", {"reason": "损坏"}, format="json").json()
    assert body["plate"]["number"] != old.number
    old.refresh_from_db()
    assert old.status == "void" and old.ended_at is not None


def test_replacement_can_keep_the_number(clerk_api, settings):
    settings.PLATE_REPLACE_KEEPS_NUMBER = True
    vid = register(clerk_api)
    old = Plate.objects.get(vehicle_id=vid)
    body = clerk_api.post(f"/api/v1/vehicles/{vid}/replace-plate", {"reason": "丢失"}, format="json").json()
    assert body["plate"]["number"] == old.number
    assert list(Plate.objects.filter(vehicle_id=vid).order_by("id").values_list("status", flat=True)) == [
        "void",
        "issued",
    ]


@pytest.mark.parametrize(
    ("operation", "payload"),
    [
        ("change", {"vehicle": {"colour": "黑"}, "reason": "换色"}),
        ("transfer", {"new_owner": None, "insurance_consent": True, "previous_owner_consent": "in_person"}),
        ("replace-plate", {"reason": "丢失"}),
        ("deregister", {"reason": "not_used", "plate_returned": True}),
    ],
)
@pytest.mark.parametrize("state", ["stolen", "deregistered"])
def test_operations_on_stolen_or_deregistered_bikes_are_refused_and_change_nothing(
    clerk_api, clerk, officer, operation, payload, state
):
    vid = register(clerk_api)
    if state == "stolen":
        reg.vehicle_mark_stolen(officer=officer, vehicle_id=vid, reason="接警登记")
    else:
        reg.vehicle_deregister(clerk=clerk, vehicle_id=vid, reason="not_used", plate_returned=True)
    if payload.get("new_owner", 0) is None:
        payload = {**payload, "new_owner": factories.as_json(factories.owner_data())}
    before = snapshot(vid)

    response = clerk_api.post(f"/api/v1/vehicles/{vid}/{operation}", payload, format="json")

    assert response.status_code == 400
    message = response.json()["vehicle"][0]
    assert ("stolen" if state == "stolen" else "deregistered") in message
    assert snapshot(vid) == before


def test_registering_a_stolen_bike_again_tells_the_clerk_to_hold_it(clerk_api, officer):
    data = factories.vehicle_data()
    vid = register(clerk_api, **data)
    reg.vehicle_mark_stolen(officer=officer, vehicle_id=vid, reason="接警登记")
    response = clerk_api.post("/api/v1/registrations", factories.registration_payload(vehicle=data), format="json")
    assert response.status_code == 400
    assert "stolen" in response.json()["vehicle"]["frame_number"][0]


def test_correction_is_allowed_on_a_stolen_bike_and_needs_a_reason(clerk_api, officer):
    vid = register(clerk_api)
    reg.vehicle_mark_stolen(officer=officer, vehicle_id=vid, reason="接警登记")
    no_reason = clerk_api.post(f"/api/v1/vehicles/{vid}/correct", {"vehicle": {"colour": "蓝"}}, format="json")
    assert no_reason.status_code == 400 and "reason" in no_reason.json()
    ok = clerk_api.post(
        f"/api/v1/vehicles/{vid}/correct", {"vehicle": {"colour": "蓝"}, "reason": "录入错误"}, format="json"
    )
    assert ok.status_code == 200 and ok.json()["colour"] == "蓝"


def test_change_refuses_fields_that_need_another_operation_and_bad_values(clerk_api):
    vid = register(clerk_api)
    response = clerk_api.post(
        f"/api/v1/vehicles/{vid}/change",
        {"vehicle": {"motor_number": "!!"}, "owner": {"phone": "999"}, "reason": "x"},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()) == {"vehicle", "owner"}
    assert "motor_number" in response.json()["vehicle"] and "phone" in response.json()["owner"]


def test_change_to_another_bikes_frame_number_is_refused(clerk_api):
    first = register(clerk_api)
    second = register(clerk_api)
    taken = Vehicle.objects.get(pk=first).frame_number
    response = clerk_api.post(
        f"/api/v1/vehicles/{second}/change", {"vehicle": {"frame_number": taken}, "reason": "换车架"}, format="json"
    )
    assert response.status_code == 400
    assert "already registered" in response.json()["vehicle"]["frame_number"][0]


def test_transfer_to_the_current_owner_is_refused(clerk_api):
    owner = factories.owner_data()
    response = clerk_api.post("/api/v1/registrations", factories.registration_payload(owner=owner), format="json")
    vid = response.json()["vehicle"]["id"]
    response = clerk_api.post(
        f"/api/v1/vehicles/{vid}/transfer",
        {"new_owner": factories.as_json(owner), "insurance_consent": False},
        format="json",
    )
    assert response.status_code == 400
    assert "current owner" in response.json()["new_owner"]["id_number"][0]


def test_expired_temporary_plate_shows_expired_and_blocks_transfer(clerk_api):
    vid = register(clerk_api, conforming=False, ccc_certificate_no="")
    Plate.objects.filter(vehicle_id=vid).update(expires_on=datetime.date(2025, 4, 30))
    detail = clerk_api.get(f"/api/v1/vehicles/{vid}")
    assert detail.status_code == 200
    assert detail.json()["plate"]["expired"] is True
    response = clerk_api.post(
        f"/api/v1/vehicles/{vid}/transfer",
        {"new_owner": factories.as_json(factories.owner_data()), "insurance_consent": False},
        format="json",
    )
    assert response.status_code == 400
    assert "expired" in response.json()["vehicle"][0]


def test_temporary_plates_are_refused_after_the_transition_end(clerk_api, settings):
    settings.TEMPORARY_PLATE_END_DATE = "2025-04-30"
    response = clerk_api.post(
        "/api/v1/registrations",
        factories.registration_payload(vehicle=factories.vehicle_data(conforming=False, ccc_certificate_no="")),
        format="json",
    )
    assert response.status_code == 400
    assert "2025-04-30" in response.json()["vehicle"]["conforming"][0]


def test_unknown_vehicle_is_404(clerk_api):
    assert clerk_api.post("/api/v1/vehicles/999999/replace-plate", {"reason": "丢失"}, format="json").status_code == 404


def test_history_rows_cannot_be_rewritten_even_with_sql(clerk_api):
    vid = register(clerk_api)
    with pytest.raises((InternalError, ProgrammingError)), connection.cursor() as cursor:
        cursor.execute("UPDATE vehicles_registrationevent SET reason = 'x' WHERE vehicle_id = %s", [vid])
