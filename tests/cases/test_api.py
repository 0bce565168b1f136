import datetime

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEntry
from tests import factories
from tests.cases.casework import approved_case, case_number
from vehicles.models import Plate

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


@pytest.fixture
def bike(clerk_api):
    body = clerk_api.post("/api/v1/registrations", factories.registration_payload(), format="json").json()
    return body["vehicle"]


def report_payload(**overrides):
    now = timezone.now()
    data = {
        "channel": "call_110",
        "reporter_name": "李建国",
        "reporter_phone": "13900001111",
        "last_seen_at": (now - datetime.timedelta(hours=5)).isoformat(),
        "missing_at": (now - datetime.timedelta(hours=1)).isoformat(),
        "place_address": "玉田县虹桥镇集市",
        "latitude": 39.87,
        "longitude": 117.80,
    }
    data.update(overrides)
    return data


def test_officer_takes_a_report_and_moves_it_along(officer_api, bike):
    taken = officer_api.post("/api/v1/theft-reports", report_payload(plate=bike["plate"]["number"]), format="json")
    assert taken.status_code == 201, taken.json()
    report = taken.json()
    assert report["registered"] and report["vehicle"] == bike["id"] and report["status"] == "received"
    assert (report["latitude"], report["longitude"]) == (39.87, 117.80)

    step = officer_api.post(
        f"/api/v1/theft-reports/{report['id']}/transition",
        {"to_status": "filed_criminal", "note": "价值 2999 元", "case_number": case_number()},
        format="json",
    )
    assert step.status_code == 200 and step.json()["status"] == "filed_criminal"
    bad = officer_api.post(f"/api/v1/theft-reports/{report['id']}/transition", {"to_status": "returned"}, format="json")
    assert bad.status_code == 400 and "cannot become" in bad.json()["to_status"][0]
    assert officer_api.get(f"/api/v1/theft-reports/{report['id']}").json()["status"] == "filed_criminal"


def test_bad_report_input_is_listed_at_once(officer_api):
    response = officer_api.post(
        "/api/v1/theft-reports",
        report_payload(reporter_phone="12", missing_at="not a time", plate="玉Z00000"),
        format="json",
    )
    assert response.status_code == 400
    assert {"reporter_phone", "missing_at"} <= set(response.json())


def test_clerk_cannot_move_reports_and_owner_cannot_take_walk_in_reports(clerk_api, api, owner_user, bike):
    taken = clerk_api.post("/api/v1/theft-reports", report_payload(frame_number=bike["frame_number"]), format="json")
    assert taken.status_code == 201
    moved = clerk_api.post(
        f"/api/v1/theft-reports/{taken.json()['id']}/transition", {"to_status": "filed_criminal"}, format="json"
    )
    assert moved.status_code == 403
    api.force_authenticate(owner_user)
    response = api.post("/api/v1/theft-reports", report_payload(unregistered_description="红色电动车"), format="json")
    assert response.status_code == 403


def test_case_api_files_awaits_approval_links_and_solves(officer_api, officer, bike):
    report = officer_api.post(
        "/api/v1/theft-reports", report_payload(frame_number=bike["frame_number"]), format="json"
    ).json()
    yesterday = str(timezone.localdate() - datetime.timedelta(days=1))
    case = officer_api.post(
        "/api/v1/cases",
        {"number": "玉公刑立字〔2026〕0201号", "kind": "criminal", "officer_ids": [officer.pk], "filed_on": yesterday},
        format="json",
    )
    assert case.status_code == 201, case.json()
    body = case.json()
    # No backdating: a case is filed the day it is entered; it awaits a leader's approval.
    assert body["filed_on"] == str(timezone.localdate()) and body["filed_by"] == officer.username
    assert body["approved_by"] is None
    case_id = body["id"]
    link = officer_api.post(f"/api/v1/cases/{case_id}/links", {"report_id": report["id"]}, format="json")
    assert link.status_code == 400  # an unapproved case gives no duty: the state is named
    assert "approval" in link.json()["case"][0]
    assert officer_api.post(f"/api/v1/cases/{case_id}/approve").status_code == 403  # not his own
    leader = APIClient()
    leader.force_authenticate(factories.user("admin"))
    approved = leader.post(f"/api/v1/cases/{case_id}/approve")
    assert approved.status_code == 200 and approved.json()["approved_by"]
    assert leader.post(f"/api/v1/cases/{case_id}/approve").status_code == 400  # approved once
    assert (
        officer_api.post(f"/api/v1/cases/{case_id}/links", {"report_id": report["id"]}, format="json").status_code
        == 201
    )
    twice = officer_api.post(f"/api/v1/cases/{case_id}/links", {"report_id": report["id"]}, format="json")
    assert twice.status_code == 400
    solved = officer_api.post(f"/api/v1/cases/{case_id}/solve", {"with_positioning": True}, format="json")
    assert solved.json()["status"] == "solved" and solved.json()["solved_with_positioning"] is True
    actions = list(AuditEntry.objects.filter(action__startswith="case.").values_list("action", flat=True))
    assert sorted(actions) == ["case.approve", "case.file", "case.link", "case.solve"]


def test_only_the_cases_officers_link_to_it_and_a_bike_without_a_report_needs_a_reason(officer_api, officer, bike):
    case = approved_case(filer=officer, number="玉公刑立字〔2026〕0202号", officers=[officer])
    other = APIClient()
    other.force_authenticate(factories.user("officer"))  # same station, not on the case
    refused = other.post(f"/api/v1/cases/{case.pk}/links", {"vehicle_id": bike["id"], "reason": "团伙作案车辆"})
    assert refused.status_code == 403
    silent = officer_api.post(f"/api/v1/cases/{case.pk}/links", {"vehicle_id": bike["id"]}, format="json")
    assert silent.status_code == 400 and "reason" in silent.json()
    linked = officer_api.post(
        f"/api/v1/cases/{case.pk}/links", {"vehicle_id": bike["id"], "reason": "团伙作案车辆"}, format="json"
    )
    assert linked.status_code == 201 and linked.json()["reason"] == "团伙作案车辆"
    assert AuditEntry.objects.get(action="case.link").reason == "团伙作案车辆"


def test_an_officer_without_a_station_cannot_file_a_case(api, officer):
    api.force_authenticate(factories.user("officer", station_code=None))
    response = api.post(
        "/api/v1/cases", {"number": "X-1", "kind": "criminal", "officer_ids": [officer.pk]}, format="json"
    )
    assert response.status_code == 403


def test_public_stolen_check_answers_without_personal_data(api, officer_api, bike):
    plate = bike["plate"]["number"]
    before = api.get("/api/v1/public/stolen-check", {"plate": plate})
    assert before.json() == {"registered": True, "stolen": False, "reported_on": None}
    officer_api.post("/api/v1/theft-reports", report_payload(plate=plate), format="json")
    after = api.get("/api/v1/public/stolen-check", {"frame": bike["frame_number"]})
    assert after.json() == {"registered": True, "stolen": True, "reported_on": str(timezone.localdate())}
    assert api.get("/api/v1/public/stolen-check", {"plate": "玉Z99999"}).json()["registered"] is False
    assert api.get("/api/v1/public/stolen-check").status_code == 400


def test_public_check_is_rate_limited(api, bike):
    codes = [api.get("/api/v1/public/stolen-check", {"plate": bike["plate"]["number"]}).status_code for _ in range(31)]
    assert codes[:30] == [200] * 30 and codes[30] == 429


def test_unknown_plate_in_the_registry_but_plate_void_still_finds_the_bike(api, clerk_api, bike):
    clerk_api.post(f"/api/v1/vehicles/{bike['id']}/replace-plate", {"reason": "丢失"}, format="json")
    old = bike["plate"]["number"]
    assert Plate.objects.get(number=old).status == "void"
    assert api.get("/api/v1/public/stolen-check", {"plate": old}).json()["registered"] is True


def test_an_officer_without_a_station_is_told_so_when_taking_a_walk_in_report(api):
    api.force_authenticate(factories.user("officer", station_code=None))
    response = api.post("/api/v1/theft-reports", report_payload(unregistered_description="红色电动车"), format="json")
    assert response.status_code == 403 and "station" in response.json()["detail"]
    from cases.models import TheftReport

    assert not TheftReport.objects.exists()
