"""The case API: a report filed as a case gets its case in the same call, every problem at once;
closing a case (POST /api/v1/cases/{id}/close)."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from cases.models import Case
from tests import factories
from tests.cases.casework import approved_case, case_number, station_leader
from tests.cases.test_api import report_payload

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def report(officer_api, clerk_api):
    bike = clerk_api.post("/api/v1/registrations", factories.registration_payload(), format="json").json()
    taken = officer_api.post("/api/v1/theft-reports", report_payload(plate=bike["plate"]["number"]), format="json")
    assert taken.status_code == 201, taken.json()
    return taken.json()


def test_filing_through_the_api_opens_the_case_and_names_it_on_the_report(officer_api, officer, report):
    colleague = factories.user("officer")
    number = case_number()
    filed = officer_api.post(
        f"/api/v1/theft-reports/{report['id']}/transition",
        {"to_status": "filed_public_order", "case_number": number, "officer_ids": [colleague.pk], "summary": "集市"},
        format="json",
    )
    assert filed.status_code == 200, filed.json()
    case = Case.objects.get(number=number)
    assert filed.json()["cases"] == [{"id": case.pk, "number": number}]
    assert case.kind == "public_order" and set(case.officers.all()) == {officer, colleague}


def test_a_bad_filing_is_one_400_with_every_field(officer_api, report):
    response = officer_api.post(
        f"/api/v1/theft-reports/{report['id']}/transition",
        {"to_status": "filed_criminal", "case_number": "第17号", "officer_ids": ["x", 999999]},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert "not a case number" in body["case_number"][0] and "officer_ids" in body
    assert officer_api.get(f"/api/v1/theft-reports/{report['id']}").json()["status"] == "received"
    missing = officer_api.post(
        f"/api/v1/theft-reports/{report['id']}/transition", {"to_status": "filed_criminal"}, format="json"
    )
    assert missing.status_code == 400 and "case_number" in missing.json()


def test_the_station_leader_closes_a_case_through_the_api(officer, officer_api):
    case = approved_case(filer=officer, number=case_number(), officers=[officer])
    leader_api = api_for(station_leader(officer))
    assert (
        officer_api.post(f"/api/v1/cases/{case.pk}/close", {"reason": "已移送审查起诉"}, format="json").status_code
        == 403
    )
    short = leader_api.post(f"/api/v1/cases/{case.pk}/close", {"reason": "撤销"}, format="json")
    assert short.status_code == 400 and "dropped" in short.json()["reason"][0]
    closed = leader_api.post(f"/api/v1/cases/{case.pk}/close", {"reason": "不构成犯罪，撤销案件"}, format="json")
    assert closed.status_code == 200, closed.json()
    body = closed.json()
    assert body["status"] == "closed" and body["steps"][-1]["action"] == "close"
    again = leader_api.post(f"/api/v1/cases/{case.pk}/close", {"reason": "不构成犯罪，撤销案件"}, format="json")
    assert again.status_code == 400 and "already closed" in again.json()["status"][0]
    # The officers' duty ended: linking to the closed case names the state.
    linked = officer_api.post(f"/api/v1/cases/{case.pk}/links", {"report_id": 999999}, format="json")
    assert linked.status_code == 400
    assert "closed" in linked.json()["case"][0] and "no such theft report" in linked.json()["report_id"][0]
