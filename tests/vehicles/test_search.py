import pytest
from django.db import connection
from django.db.utils import InternalError, ProgrammingError

from accounts.models import AuditEntry
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def registered(clerk_api):
    owner = factories.owner_data(name="陈志强", id_number="130229198503151230", phone="13812345678")
    vehicle = factories.vehicle_data(motor_number="YD48V20250001")
    body = clerk_api.post(
        "/api/v1/registrations", factories.registration_payload(owner=owner, vehicle=vehicle), format="json"
    ).json()
    # A second, unrelated bike that no search below should return.
    clerk_api.post("/api/v1/registrations", factories.registration_payload(), format="json")
    return {"owner": owner, "vehicle": vehicle, "id": body["vehicle"]["id"], "plate": body["plate"]["number"]}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("plate", lambda r: r["plate"]),
        ("plate_contains", lambda r: r["plate"][-4:]),
        ("frame_number", lambda r: r["vehicle"]["frame_number"]),
        ("motor_number", lambda r: r["vehicle"]["motor_number"].lower()),
        ("id_number", lambda r: r["owner"]["id_number"]),
        ("phone", lambda r: "+86 " + r["owner"]["phone"]),
        ("owner_name", lambda r: r["owner"]["name"]),
    ],
)
def test_each_identifier_finds_the_record(officer_api, registered, key, value):
    response = officer_api.get("/api/v1/vehicles", {key: value(registered), "reason": "核查"})
    assert response.status_code == 200, response.json()
    ids = [row["id"] for row in response.json()["results"]]
    assert registered["id"] in ids
    if key != "plate_contains":
        assert ids == [registered["id"]]


def test_clerk_sees_masked_identity_officer_sees_it_in_full(clerk_api, officer_api, registered):
    masked = clerk_api.get("/api/v1/vehicles", {"plate": registered["plate"]}).json()["results"][0]["owner"]
    full = officer_api.get("/api/v1/vehicles", {"plate": registered["plate"]}).json()["results"][0]["owner"]
    assert (masked["id_number"], masked["phone"]) == ("130229********1230", "138****5678")
    assert (full["id_number"], full["phone"]) == ("130229198503151230", "13812345678")


def test_masking_also_covers_the_history_of_a_record(clerk_api, registered):
    clerk_api.post(
        f"/api/v1/vehicles/{registered['id']}/change",
        {"owner": {"phone": "13900001111"}, "reason": "换号"},
        format="json",
    )
    events = clerk_api.get(f"/api/v1/vehicles/{registered['id']}").json()["events"]
    assert events[-1]["changes"]["owner.phone"] == ["138****5678", "139****1111"]


def test_every_search_and_record_view_is_audited(officer_api, officer, registered):
    officer_api.get("/api/v1/vehicles", {"id_number": registered["owner"]["id_number"], "reason": "案件核查"})
    officer_api.get(f"/api/v1/vehicles/{registered['id']}", {"reason": "案件核查"})

    search, view = AuditEntry.objects.filter(user=officer).order_by("id")
    assert (search.action, search.result_count, search.reason) == ("vehicle.search", 1, "案件核查")
    assert search.query == {"id_number": registered["owner"]["id_number"]}
    assert search.ip == "127.0.0.1"
    assert (view.action, view.object_id, view.reason) == ("vehicle.view_full", str(registered["id"]), "案件核查")


def test_a_search_with_no_hits_is_audited_too(officer_api, officer, registered):
    response = officer_api.get("/api/v1/vehicles", {"frame_number": "175722599999999"})
    assert response.json()["results"] == []
    assert AuditEntry.objects.get(user=officer).result_count == 0


def test_empty_and_too_short_queries_are_400_with_the_reason(officer_api, registered):
    empty = officer_api.get("/api/v1/vehicles")
    assert empty.status_code == 400 and "plate" in empty.json()["query"][0]
    short = officer_api.get("/api/v1/vehicles", {"plate_contains": "12"})
    assert short.status_code == 400 and "3" in short.json()["plate_contains"][0]
    assert not AuditEntry.objects.exists()


def test_owners_cannot_search_records(api, owner_user, registered):
    api.force_authenticate(owner_user)
    assert api.get("/api/v1/vehicles", {"plate": registered["plate"]}).status_code == 403
    assert api.get(f"/api/v1/vehicles/{registered['id']}").status_code == 403


def test_audit_entries_cannot_be_edited_or_deleted(officer_api, registered):
    officer_api.get("/api/v1/vehicles", {"plate": registered["plate"]})
    for statement in ("UPDATE accounts_auditentry SET reason = 'x'", "DELETE FROM accounts_auditentry"):
        with pytest.raises((InternalError, ProgrammingError)), connection.cursor() as cursor:
            cursor.execute("SAVEPOINT s")
            try:
                cursor.execute(statement)
            finally:
                cursor.execute("ROLLBACK TO SAVEPOINT s")
    assert AuditEntry.objects.count() == 1
