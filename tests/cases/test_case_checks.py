"""One `…_check()` per write of reports and cases: every problem at once, the state of the bike, the
report and the case among them, before anything is refused or written; and case_close."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import AuditEntry
from cases.models import Case, CaseLink, CaseStep
from cases.tracing import duties
from cases.workflow.services import (
    CaseFiling,
    case_close,
    case_close_check,
    case_file_check,
    case_link,
    case_link_check,
    case_solve,
    case_solve_check,
    case_unlink_check,
    report_take_check,
    report_transition_check,
)
from tests import factories
from tests.cases.casework import approved_case, case_number, report_step, station_leader, walk_in_report
from vehicles.services.registration import vehicle_deregister, vehicle_register

pytestmark = pytest.mark.django_db


@pytest.fixture
def bike(clerk):
    return vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=True
    ).vehicle


def test_report_take_check_names_the_bikes_state_with_the_field_problems(officer, clerk, bike):
    walk_in_report(officer, bike)
    gone = vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=True
    ).vehicle
    vehicle_deregister(clerk=clerk, vehicle_id=gone.pk, reason="destroyed", plate_returned=True)
    now = timezone.now()
    values = {"channel": "walk_in", "reporter_phone": "123", "last_seen_at": now, "missing_at": now}
    again = report_take_check(user=officer, values={**values, "frame_number": bike.frame_number})
    assert set(again.by_field) == {"reporter_phone", "vehicle"}
    assert "already has an open theft report" in again.by_field["vehicle"][0]
    deregistered = report_take_check(user=officer, values={**values, "frame_number": gone.frame_number})
    assert "deregistered" in deregistered.by_field["vehicle"][0] and deregistered.has("reporter_phone")


def test_report_transition_check_collects_the_step_the_reason_and_the_case(officer, bike):
    report = walk_in_report(officer, bike)
    closed = approved_case(filer=officer, number=case_number(), kind="public_order", officers=[officer])
    case_close(user=station_leader(officer), case_id=closed.pk, reason="不构成违法，撤销案件")
    out_of_order = report_transition_check(
        user=officer, report=report, to_status="returned", filing=CaseFiling(case_number=case_number())
    )
    assert set(out_of_order.by_field) == {"to_status", "case_number"}
    joining = report_transition_check(
        user=officer, report=report, to_status="filed_criminal", filing=CaseFiling(case_id=closed.pk)
    )
    messages = joining.by_field["case_id"]
    assert any("closed" in m for m in messages) and any("public order" in m for m in messages)
    new = report_transition_check(
        user=officer,
        report=report,
        to_status="filed_criminal",
        filing=CaseFiling(case_number="no. 17", officer_ids=(factories.user("clerk").pk,)),
    )
    assert set(new.by_field) == {"case_number", "officer_ids"}


def test_case_file_check_names_number_type_and_officers_at_once(officer):
    problems = case_file_check(filer=officer, number="17号", kind="theft", officer_ids=[])
    assert set(problems.by_field) == {"number", "kind", "officer_ids"}
    assert not case_file_check(
        filer=officer, number="a 1302290500002026120001", kind="criminal", officer_ids=[officer.pk]
    )


def test_case_link_check_names_the_case_and_the_report_state(officer, bike, clerk):
    report = walk_in_report(officer, bike)
    report_step(user=officer, report_id=report.pk, to_status="withdrawn", note="车主自行找回")
    case = approved_case(filer=officer, number=case_number(), officers=[officer])
    case_close(user=station_leader(officer), case_id=case.pk, reason="不构成犯罪，撤销案件")
    case.refresh_from_db()
    problems = case_link_check(user=officer, case=case, report_id=report.pk)
    assert set(problems.by_field) == {"case", "report_id"}
    both = case_link_check(user=officer, case=case, report_id=report.pk, vehicle_id=bike.pk)
    assert {"non_field_errors", "reason", "case", "report_id"} <= set(both.by_field)


def test_a_case_awaiting_approval_is_named_as_such_not_refused_blindly(officer, bike):
    report = walk_in_report(officer, bike)
    report_step(user=officer, report_id=report.pk, to_status="filed_criminal")
    case = Case.objects.get()
    assert case.approved_by is None
    assert "approval" in case_solve_check(user=officer, case=case).by_field["status"][0]
    with pytest.raises(ValidationError) as excinfo:
        case_link(user=officer, case_id=case.pk, vehicle_id=bike.pk, reason="同一团伙作案车辆")
    assert "approval" in excinfo.value.message_dict["case"][0]
    link = CaseLink.objects.get(case=case)
    assert "approval" in case_unlink_check(user=officer, link=link, reason="并案错误").by_field["case"][0]


def test_case_close_state_rules_who_may_and_the_record(officer, bike):
    leader = station_leader(officer)
    case = approved_case(filer=officer, number=case_number(), officers=[officer])
    report = walk_in_report(officer, bike)
    case_link(user=officer, case_id=case.pk, report_id=report.pk)
    with pytest.raises(PermissionDenied):
        case_close(user=officer, case_id=case.pk, reason="已移送审查起诉")  # officers do not close
    with pytest.raises(PermissionDenied):
        case_close(user=factories.user("admin", station_code="13022902"), case_id=case.pk, reason="已移送审查起诉")
    assert set(case_close_check(user=leader, case=case, reason="撤销").by_field) == {"reason"}
    case_solve(user=officer, case_id=case.pk, with_positioning=False)
    closed = case_close(user=leader, case_id=case.pk, reason="移送起诉")  # solved: a short reason will do
    assert closed.status == "closed"
    assert not duties.case_duty_holder(officer, closed)  # the case's duty ends with it
    again = case_close_check(user=leader, case=closed, reason="")
    assert set(again.by_field) == {"status", "reason"}
    with pytest.raises(ValidationError):
        case_close(user=leader, case_id=case.pk, reason="再次结案")
    assert list(CaseStep.objects.filter(case=case).values_list("action", flat=True)) == [
        "file",
        "approve",
        "link",
        "solve",
        "close",
    ]
    assert AuditEntry.objects.filter(action="case.close", user=leader, object_id=str(case.pk)).count() == 1


def test_the_filer_who_is_also_a_leader_does_not_close_their_own_case(officer):
    both = factories.user("officer")
    both.groups.add(*station_leader(officer).groups.all())
    case = approved_case(filer=both, number=case_number(), officers=[both])
    with pytest.raises(PermissionDenied):
        case_close(user=both, case_id=case.pk, reason="不构成犯罪，撤销案件")


def test_a_cases_steps_cannot_be_rewritten(officer):
    case = approved_case(filer=officer, number=case_number(), officers=[officer])
    for change in (
        lambda: CaseStep.objects.filter(case=case).update(note="edited"),
        lambda: CaseStep.objects.filter(case=case).delete(),
    ):
        with pytest.raises(Exception, match=r"append-only|permission denied"), transaction.atomic():
            change()


def test_cases_filed_before_steps_were_recorded_get_their_history_from_their_rows(officer, bike):
    import importlib

    from django.db import connection

    recorded = approved_case(filer=officer, number=case_number(), officers=[officer])
    leader = station_leader(officer)
    earlier = Case.objects.create(  # as such a case is in the database: rows, no steps
        number=case_number(),
        kind="criminal",
        station=officer.station,
        filed_on=timezone.localdate(),
        filed_by=officer,
    )
    Case.objects.filter(pk=earlier.pk).update(approved_by=leader, approved_at=timezone.now())
    report = walk_in_report(officer, bike)
    link = CaseLink.objects.create(case=earlier, report=report, linked_by=officer)
    CaseLink.objects.filter(pk=link.pk).update(
        unlinked_at=timezone.now(), unlinked_by=officer, unlink_reason="并案错误"
    )
    before = CaseStep.objects.filter(case=recorded).count()
    with connection.cursor() as cursor:
        cursor.execute(importlib.import_module("cases.migrations.0015_casestep_history_of_earlier_cases").FILL)
    steps = list(CaseStep.objects.filter(case=earlier).values_list("action", "by", "report", "note"))
    assert steps == [
        ("file", officer.pk, None, ""),
        ("approve", leader.pk, None, ""),
        ("link", officer.pk, report.pk, ""),
        ("unlink", officer.pk, report.pk, "并案错误"),
    ]
    assert CaseStep.objects.filter(case=recorded).count() == before  # cases with steps are left alone
