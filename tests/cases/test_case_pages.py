"""The officer's case pages: filing a report as a case (a new case or an existing one) in one step,
the case page (link, unlink, solve, close, history), the case lists, the reports undecided past the
deadline for the leader, and the decision notice for the reporter."""

import datetime
import re

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEntry
from cases.models import Case, CaseLink, CaseStep, TheftReport
from cases.workflow.services import VehicleQuery, report_take
from tests import factories
from tests.cases.casework import approved_case, case_number, report_step, station_leader, walk_in_report
from vehicles.models import Plate
from vehicles.services.registration import vehicle_register

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def registered_bike(clerk):
    return vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=True
    ).vehicle


def errors_at(response, field: str) -> list[str]:
    return list(response.context["form"].errors.get(field, []))


@pytest.fixture
def scene(clerk, officer):
    """Two stolen bikes of the station, each reported; the station's leader."""
    first, second = registered_bike(clerk), registered_bike(clerk)
    return {
        "reports": [walk_in_report(officer, first), walk_in_report(officer, second)],
        "bikes": [first, second],
        "leader": station_leader(officer),
    }


# --- filing a report opens its case ----------------------------------------------------------------------


def test_filing_a_report_opens_a_new_case_linked_to_it_in_the_same_step(officer, scene):
    report = scene["reports"][0]
    colleague = factories.user("officer", first_name="伟", last_name="李")
    number = case_number()
    page = client_for(officer).post(
        f"/reports/{report.pk}/",
        {
            "to_status": "filed_criminal",
            "note": "价值 2999 元",
            "case_number": f" {number} ",
            "officer_ids": [colleague.pk],
        },
        follow=True,
    )
    assert page.status_code == 200
    case = Case.objects.get(number=number)
    assert (case.kind, case.station, case.filed_by) == ("criminal", officer.station, officer)
    assert set(case.officers.all()) == {officer, colleague}
    assert case.approved_by is None  # CASE_APPROVAL_BY_ANOTHER: it awaits the leader
    html = page.content.decode()
    assert f'<a href="/cases/{case.pk}/">{number}</a>' in html  # no more "Cases —"
    assert CaseLink.objects.get(case=case).report == report
    assert [s.action for s in case.steps.all()] == ["file", "link"]


def test_a_wrong_filing_names_every_problem_at_its_field_and_changes_nothing(officer, scene):
    report = scene["reports"][0]
    used = approved_case(filer=officer, number=case_number(), officers=[officer])
    clerk_account = factories.user("clerk")
    client = client_for(officer)
    bad = client.post(
        f"/reports/{report.pk}/",
        {"to_status": "filed_criminal", "case_number": "2026-17", "officer_ids": [clerk_account.pk]},
    )
    assert bad.status_code == 400
    assert "not a case number" in errors_at(bad, "case_number")[0]
    # The clerk is not offered as an officer, so the choice itself is refused at its field.
    assert errors_at(bad, "officer_ids")
    twice = client.post(
        f"/reports/{report.pk}/", {"to_status": "filed_criminal", "case_number": used.number, "case_id": used.pk}
    )
    assert "not both" in errors_at(twice, "case_id")[0]
    taken_number = client.post(f"/reports/{report.pk}/", {"to_status": "filed_criminal", "case_number": used.number})
    assert "already used" in errors_at(taken_number, "case_number")[0]
    nothing = client.post(f"/reports/{report.pk}/", {"to_status": "filed_criminal"})
    assert "enter the new case's number" in errors_at(nothing, "case_number")[0]
    # Not filing: the reason is owed to the reporter, and a case number makes no sense.
    refusal = client.post(f"/reports/{report.pk}/", {"to_status": "not_filed", "case_number": case_number()})
    assert errors_at(refusal, "note") and "only when the report is filed" in errors_at(refusal, "case_number")[0]
    assert 'value="not_filed" selected' in refusal.content.decode()  # the choice is kept
    report.refresh_from_db()
    assert report.status == "received" and Case.objects.count() == 1


def test_the_case_number_pattern_is_the_bureaus_setting(officer, scene, settings):
    settings.CASE_NUMBER_PATTERN = r"YT\d{8}"
    client = client_for(officer)
    report = scene["reports"][0]
    refused = client.post(f"/reports/{report.pk}/", {"to_status": "filed_criminal", "case_number": case_number()})
    assert "not a case number" in errors_at(refused, "case_number")[0]
    client.post(f"/reports/{report.pk}/", {"to_status": "filed_criminal", "case_number": "YT20260001"})
    assert Case.objects.get().number == "YT20260001"


def test_a_second_report_joins_an_existing_case_of_the_same_type(officer, scene):
    first, second = scene["reports"]
    case = approved_case(filer=officer, number=case_number(), officers=[officer])
    report_step(user=officer, report_id=first.pk, to_status="filed_criminal", case_id=case.pk)
    client = client_for(officer)
    form = client.get(f"/reports/{second.pk}/").content.decode()
    assert f'<option value="{case.pk}">{case.number}' in form  # the officer's open cases are offered
    wrong_kind = client.post(f"/reports/{second.pk}/", {"to_status": "filed_public_order", "case_id": case.pk})
    assert "criminal" in errors_at(wrong_kind, "case_id")[0]
    client.post(f"/reports/{second.pk}/", {"to_status": "filed_criminal", "case_id": case.pk})
    assert set(CaseLink.objects.filter(case=case).values_list("report", flat=True)) == {first.pk, second.pk}
    assert Case.objects.count() == 1


def test_an_officer_not_on_a_case_cannot_attach_a_report_to_it(officer, scene):
    other_officer = factories.user("officer")
    case = approved_case(filer=other_officer, number=case_number(), officers=[other_officer])
    report = scene["reports"][0]
    response = client_for(officer).post(f"/reports/{report.pk}/", {"to_status": "filed_criminal", "case_id": case.pk})
    assert response.status_code == 400
    assert "Only the officers of case" in errors_at(response, "case_id")[0]


# --- the case page -------------------------------------------------------------------------------------------


def filed_case(officer, report, leader) -> Case:
    report_step(user=officer, report_id=report.pk, to_status="filed_criminal", note="价值 3200 元")
    case = Case.objects.get(links__report=report)
    client_for(leader).post(f"/cases/{case.pk}/", {"action": "approve"})
    case.refresh_from_db()
    assert case.approved_by == leader
    return case


def test_officers_link_and_unlink_reports_and_bikes_with_a_reason(officer, scene):
    first, second = scene["reports"]
    case = filed_case(officer, first, scene["leader"])
    client = client_for(officer)
    page = client.get(f"/cases/{case.pk}/").content.decode()
    assert 'class="no-print case-link"' in page and "case-close" not in page  # officers do not close

    bike_without_reason = client.post(
        f"/cases/{case.pk}/",
        {"action": "link", "link-vehicle": Plate.objects.get(vehicle=scene["bikes"][1]).number},
    )
    assert bike_without_reason.status_code == 400
    assert "needs the reason" in bike_without_reason.context["forms"]["link"].errors["reason"][0]
    unknown = client.post(f"/cases/{case.pk}/", {"action": "link", "link-report_number": "JJ000"})
    assert "no such theft report" in unknown.context["forms"]["link"].errors["report_number"][0]
    already = client.post(f"/cases/{case.pk}/", {"action": "link", "link-report_number": first.number})
    assert "Already linked" in already.context["forms"]["link"].errors["report_number"][0]

    client.post(f"/cases/{case.pk}/", {"action": "link", "link-report_number": second.number.lower()})
    link = CaseLink.objects.get(case=case, report=second)
    no_reason = client.post(f"/cases/{case.pk}/", {"action": "unlink", "unlink-link_id": link.pk})
    assert no_reason.status_code == 400 and "Say why" in no_reason.content.decode()
    client.post(f"/cases/{case.pk}/", {"action": "unlink", "unlink-link_id": link.pk, "unlink-reason": "并案错误"})
    link.refresh_from_db()
    assert link.unlinked_by == officer and link.unlink_reason == "并案错误"
    history = client.get(f"/cases/{case.pk}/").content.decode()
    assert "并案错误" in history and history.count(second.number) >= 2  # the link and the unlink steps
    assert [s.action for s in case.steps.all()] == ["file", "link", "approve", "link", "unlink"]


def test_solving_marks_positioning_and_solves_the_linked_reports_then_the_leader_closes(officer, scene):
    first, second = scene["reports"]
    leader = scene["leader"]
    case = filed_case(officer, first, leader)
    report_step(user=officer, report_id=second.pk, to_status="filed_criminal", case_id=case.pk)
    client = client_for(officer)
    client.post(f"/cases/{case.pk}/", {"action": "solve", "solve-with_positioning": "on", "solve-note": "定位抓获"})
    case.refresh_from_db()
    assert case.status == "solved" and case.solved_with_positioning
    assert set(TheftReport.objects.filter(pk__in=[first.pk, second.pk]).values_list("status", flat=True)) == {"solved"}
    again = client.post(f"/cases/{case.pk}/", {"action": "solve"})
    assert again.status_code == 400 and "already solved" in again.content.decode()
    assert client.post(f"/cases/{case.pk}/", {"action": "close", "close-reason": "移送起诉"}).status_code == 403

    leader_client = client_for(leader)
    assert "case-close" in leader_client.get(f"/cases/{case.pk}/").content.decode()
    missing = leader_client.post(f"/cases/{case.pk}/", {"action": "close"})
    assert "Say why the case is closed" in missing.context["forms"]["close"].errors["reason"][0]
    leader_client.post(f"/cases/{case.pk}/", {"action": "close", "close-reason": "已移送审查起诉"})
    case.refresh_from_db()
    assert case.status == "closed"
    closed = client.get(f"/cases/{case.pk}/").content.decode()
    assert "no-print case-link" not in closed and "case-solve" not in closed  # nothing more to do on it
    assert CaseStep.objects.filter(case=case, action="close", by=leader, note="已移送审查起诉").exists()
    assert AuditEntry.objects.filter(action="case.close", object_id=str(case.pk), user=leader).exists()


def test_an_unsolved_case_is_closed_only_with_a_full_reason(officer, scene):
    case = filed_case(officer, scene["reports"][0], scene["leader"])
    short = client_for(scene["leader"]).post(f"/cases/{case.pk}/", {"action": "close", "close-reason": "撤销"})
    assert short.status_code == 400 and "dropped" in short.context["forms"]["close"].errors["reason"][0]


def test_another_stations_leader_neither_sees_nor_closes_the_case(officer, scene):
    case = filed_case(officer, scene["reports"][0], scene["leader"])
    stranger = factories.user("admin", station_code="13022902")
    client = client_for(stranger)
    assert client.get(f"/cases/{case.pk}/").status_code == 403
    assert client.post(f"/cases/{case.pk}/", {"action": "close", "close-reason": "已移送审查起诉"}).status_code == 403
    assert Case.objects.get(pk=case.pk).status == "open"


# --- lists -----------------------------------------------------------------------------------------------


def test_my_cases_and_the_station_list(officer, scene):
    mine = filed_case(officer, scene["reports"][0], scene["leader"])
    colleague = factories.user("officer")
    theirs = approved_case(filer=colleague, number=case_number(), officers=[colleague])
    elsewhere = factories.user("officer", station_code="13022902")
    far = approved_case(filer=elsewhere, number=case_number(), officers=[elsewhere])

    my_page = client_for(officer).get("/cases/mine/").content.decode()
    assert mine.number in my_page and theirs.number not in my_page
    station_page = client_for(scene["leader"]).get("/cases/").content.decode()
    assert mine.number in station_page and theirs.number in station_page and far.number not in station_page
    solved_only = client_for(scene["leader"]).get("/cases/", {"status": "solved"}).content.decode()
    assert mine.number not in solved_only
    nav = client_for(officer).get("/cases/mine/").content.decode()
    assert 'href="/cases/mine/" aria-current="page"' in nav


def test_reports_undecided_past_the_deadline_are_listed_for_the_station_leader(officer, scene, settings):
    settings.REPORT_DECISION_DAYS = 3
    late, decided = scene["reports"]
    fresh = walk_in_report(officer, description="绿色新日电动车")
    elsewhere = walk_in_report(factories.user("officer", station_code="13022902"), description="白色雅迪")
    old = timezone.now() - datetime.timedelta(days=4)
    TheftReport.objects.filter(pk__in=[late.pk, decided.pk, elsewhere.pk]).update(received_at=old)
    report_step(user=officer, report_id=decided.pk, to_status="not_filed", note="价值未达立案标准")

    leader_client = client_for(scene["leader"])
    home = leader_client.get("/cases/").content.decode()
    assert 'href="/reports/undecided/"' in home  # in the leader's navigation
    page = leader_client.get("/reports/undecided/").content.decode()
    assert late.number in page
    assert decided.number not in page and fresh.number not in page and elsewhere.number not in page
    assert 'href="/reports/undecided/"' not in client_for(officer).get("/cases/mine/").content.decode()
    assert client_for(officer).get("/reports/undecided/").status_code == 403


# --- the decision notice and the report's history ----------------------------------------------------------


def test_the_reporter_gets_a_notice_of_the_refusal_with_the_reason_and_how_to_ask_for_review(officer, scene):
    report = scene["reports"][0]
    client = client_for(officer)
    assert client.get(f"/reports/{report.pk}/decision/").status_code == 404  # not decided yet
    report_step(user=officer, report_id=report.pk, to_status="not_filed", note="经查系借用未还，不属盗窃")
    assert f'href="/reports/{report.pk}/decision/"' in client.get(f"/reports/{report.pk}/").content.decode()
    zh = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    zh.force_login(officer)
    notice = zh.get(f"/reports/{report.pk}/decision/").content.decode()
    assert "不予立案通知书" in notice and "经查系借用未还，不属盗窃" in notice
    assert "7 日以内" in notice and "申请复议" in notice and "复核" in notice
    assert report.reporter_name in notice
    assert AuditEntry.objects.filter(action="theft_report.decision_notice", object_id=str(report.pk)).exists()


def test_the_filing_decision_names_the_case(officer, scene):
    report = scene["reports"][0]
    number = case_number()
    report_step(user=officer, report_id=report.pk, to_status="filed_criminal", case_number=number)
    zh = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    zh.force_login(officer)
    notice = zh.get(f"/reports/{report.pk}/decision/").content.decode()
    assert "立案决定书" in notice and number in notice and "申请复议" not in notice


def test_an_online_reports_step_names_the_owner_not_their_login(clerk, officer, owner_user):
    bike = registered_bike(clerk)
    bike.owner.user = owner_user
    bike.owner.save(update_fields=["user"])
    now = timezone.now()
    report = report_take(
        user=owner_user,
        channel="online",
        vehicle_query=VehicleQuery(frame_number=bike.frame_number),
        reporter_name=bike.owner.name,
        reporter_phone=bike.owner.phone,
        last_seen_at=now - datetime.timedelta(hours=3),
        missing_at=now - datetime.timedelta(hours=1),
        place_address="玉田县无终街道",
    )
    page = client_for(officer).get(f"/reports/{report.pk}/").content.decode()
    workflow = re.search(r"<h2>Workflow</h2>(.*?)</table>", page, re.S).group(1)
    assert owner_user.username not in workflow
    assert f"{bike.owner.name} <span" in workflow and "owner, online" in workflow
