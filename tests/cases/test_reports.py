import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.models import AuditEntry
from cases.models import ReportTransition, TheftReport
from cases.workflow.services import VehicleQuery, case_link, case_solve, case_unlink, report_take, report_transition
from tests import factories
from tests.cases.casework import approved_case, report_step
from tracking.models import LegalHold
from vehicles.models import Plate, Vehicle
from vehicles.services.registration import vehicle_deregister, vehicle_register, vehicle_transfer

pytestmark = pytest.mark.django_db

NOW = timezone.now()


@pytest.fixture
def bike(clerk):
    return vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=True
    ).vehicle


def take(user, **overrides):
    data = {
        "channel": "walk_in",
        "vehicle_query": VehicleQuery(),
        "reporter_name": "王秀英",
        "reporter_phone": "13812345678",
        "last_seen_at": NOW - datetime.timedelta(hours=10),
        "missing_at": NOW - datetime.timedelta(hours=2),
        "place_address": "玉田县无终街道兴隆路超市门口",
        "place_point": (39.8830, 117.7380),
    }
    data.update(overrides)
    return report_take(user=user, **data)


def test_a_report_marks_the_bike_stolen_and_holds_its_positions(officer, bike, clerk):
    plate = Plate.objects.get(vehicle=bike).number
    report = take(officer, vehicle_query=VehicleQuery(plate=plate))
    assert report.number.startswith(f"JJ{officer.station.code}{timezone.localdate():%Y%m%d}")
    assert report.vehicle == bike and report.registered
    bike.refresh_from_db()
    assert bike.status == Vehicle.Status.STOLEN
    assert LegalHold.objects.get(vehicle=bike, released_at__isnull=True)
    assert [t.to_status for t in ReportTransition.objects.filter(report=report)] == ["received"]
    assert AuditEntry.objects.filter(action="theft_report.take", object_id=str(report.pk)).exists()
    # Registry operations on the stolen bike are refused.
    with pytest.raises(ValidationError):
        vehicle_transfer(clerk=clerk, vehicle_id=bike.pk, new_owner=factories.owner_data(), insurance_consent=False)


def test_report_numbers_run_per_station_and_day(officer, clerk):
    first = take(officer, unregistered_description="红色爱玛，无牌")
    second = take(officer, unregistered_description="白色雅迪，无牌")
    assert int(second.number[-4:]) == int(first.number[-4:]) + 1


def test_a_bike_not_in_the_registry_is_accepted_and_flagged(officer):
    report = take(
        officer,
        vehicle_query=VehicleQuery(frame_number="175722599999999"),
        unregistered_description="黑色小牛 N1s，车架号 175722599999999",
    )
    assert not report.registered and "小牛" in report.unregistered_description


def test_without_a_match_or_a_description_the_officer_is_told_what_is_missing(officer):
    with pytest.raises(ValidationError) as excinfo:
        take(
            officer,
            vehicle_query=VehicleQuery(plate="玉Z99999"),
            reporter_phone="123",
            place_address="",
            place_point=None,
        )
    assert set(excinfo.value.message_dict) == {"vehicle", "reporter_phone", "place_address"}
    assert not TheftReport.objects.exists()


def test_reports_against_a_deregistered_record_or_a_bike_already_reported_are_refused(officer, clerk, bike):
    frame = VehicleQuery(frame_number=bike.frame_number)
    first = take(officer, vehicle_query=frame)
    with pytest.raises(ValidationError) as excinfo:
        take(officer, vehicle_query=frame)
    assert first.number in excinfo.value.message_dict["vehicle"][0]

    other = vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=False
    ).vehicle
    vehicle_deregister(clerk=clerk, vehicle_id=other.pk, reason="not_used", plate_returned=True)
    with pytest.raises(ValidationError) as excinfo:
        take(officer, vehicle_query=VehicleQuery(frame_number=other.frame_number))
    assert "deregistered" in excinfo.value.message_dict["vehicle"][0]
    assert TheftReport.objects.count() == 1


def test_times_out_of_order_are_refused(officer, bike):
    with pytest.raises(ValidationError) as excinfo:
        take(
            officer,
            vehicle_query=VehicleQuery(frame_number=bike.frame_number),
            last_seen_at=NOW,
            missing_at=NOW - datetime.timedelta(hours=1),
        )
    assert "last_seen_at" in excinfo.value.message_dict
    bike.refresh_from_db()
    assert bike.status == Vehicle.Status.REGISTERED


def test_the_workflow_runs_in_order_and_keeps_every_step(officer, bike):
    report = take(officer, vehicle_query=VehicleQuery(frame_number=bike.frame_number))
    for status in ("filed_criminal", "solved", "recovered", "returned", "closed"):
        report = report_step(user=officer, report_id=report.pk, to_status=status, note=f"{status} 备注")
    steps = list(ReportTransition.objects.filter(report=report).values_list("from_status", "to_status", "by"))
    assert [s[1] for s in steps] == ["received", "filed_criminal", "solved", "recovered", "returned", "closed"]
    assert all(s[2] == officer.pk for s in steps)
    bike.refresh_from_db()
    assert bike.status == Vehicle.Status.REGISTERED  # cleared at recovery
    assert LegalHold.objects.get(vehicle=bike).released_at is not None  # released at closing
    assert list(bike.events.values_list("kind", flat=True)) == ["register", "mark_stolen", "clear_stolen"]


@pytest.mark.parametrize(
    ("steps", "bad"),
    [((), "solved"), ((), "returned"), (("filed_criminal",), "closed"), (("withdrawn",), "received")],
)
def test_steps_out_of_order_are_refused_and_change_nothing(officer, bike, steps, bad):
    report = take(officer, vehicle_query=VehicleQuery(frame_number=bike.frame_number))
    for status in steps:
        report_step(user=officer, report_id=report.pk, to_status=status, note="x")
    before = (TheftReport.objects.get(pk=report.pk).status, ReportTransition.objects.count())
    with pytest.raises(ValidationError) as excinfo:
        report_transition(user=officer, report_id=report.pk, to_status=bad)
    assert "cannot become" in excinfo.value.message_dict["to_status"][0]
    assert (TheftReport.objects.get(pk=report.pk).status, ReportTransition.objects.count()) == before


def test_not_filing_needs_a_reason_and_keeps_the_bike_marked(officer, bike):
    report = take(officer, vehicle_query=VehicleQuery(frame_number=bike.frame_number))
    with pytest.raises(ValidationError):
        report_transition(user=officer, report_id=report.pk, to_status="not_filed")
    report_transition(user=officer, report_id=report.pk, to_status="not_filed", note="价值未达立案标准")
    bike.refresh_from_db()
    assert bike.status == Vehicle.Status.STOLEN


def test_withdrawal_clears_the_mark_and_releases_the_hold(officer, bike):
    report = take(officer, vehicle_query=VehicleQuery(frame_number=bike.frame_number))
    report_transition(user=officer, report_id=report.pk, to_status="withdrawn", note="车主自行找回")
    bike.refresh_from_db()
    assert bike.status == Vehicle.Status.REGISTERED
    assert LegalHold.objects.get(vehicle=bike).released_at is not None


def test_owners_report_their_own_bike_online_only(owner_user, clerk):
    mine = vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=False
    ).vehicle
    mine.owner.user = owner_user
    mine.owner.save()
    report = take(owner_user, channel="online", vehicle_query=VehicleQuery(frame_number=mine.frame_number))
    assert report.receiving_officer is None and report.station == mine.station
    other = vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=False
    ).vehicle
    with pytest.raises(PermissionDenied):
        take(owner_user, channel="online", vehicle_query=VehicleQuery(frame_number=other.frame_number))
    with pytest.raises(PermissionDenied):
        take(owner_user, channel="walk_in", vehicle_query=VehicleQuery(frame_number=other.frame_number))


def test_a_case_links_reports_and_vehicles_once_and_records_unlinking(officer, bike, clerk):
    report = take(officer, vehicle_query=VehicleQuery(frame_number=bike.frame_number))
    case = approved_case(filer=officer, number="玉公刑立字〔2026〕0153号", kind="criminal", officers=[officer])
    link = case_link(user=officer, case_id=case.pk, report_id=report.pk)
    with pytest.raises(ValidationError) as excinfo:
        case_link(user=officer, case_id=case.pk, vehicle_id=bike.pk)  # a bike without its report: why?
    assert "reason" in excinfo.value.message_dict
    case_link(user=officer, case_id=case.pk, vehicle_id=bike.pk, reason="同一团伙作案车辆")
    with pytest.raises(ValidationError) as excinfo:
        case_link(user=officer, case_id=case.pk, report_id=report.pk)
    assert "Already linked" in excinfo.value.message_dict["report_id"][0]
    with pytest.raises(ValidationError):
        case_unlink(user=officer, link_id=link.pk, reason="")
    case_unlink(user=officer, link_id=link.pk, reason="并案错误")
    case_link(user=officer, case_id=case.pk, report_id=report.pk)  # may be linked again afterwards
    with pytest.raises(ValidationError):
        approved_case(filer=officer, number=case.number, kind="criminal", officers=[officer])
    solved = case_solve(user=officer, case_id=case.pk, with_positioning=True)
    assert solved.solved_with_positioning
    with pytest.raises(ValidationError):
        case_solve(user=officer, case_id=case.pk, with_positioning=True)


def test_a_reports_workflow_steps_cannot_be_rewritten_by_any_role(officer, bike):
    from django.db import transaction

    from cases.models import ReportTransition

    report = take(officer, vehicle_query=VehicleQuery(frame_number=bike.frame_number))
    for change in (
        lambda: ReportTransition.objects.filter(report=report).update(note="edited"),
        lambda: ReportTransition.objects.filter(report=report).delete(),
    ):
        # The owner role meets the trigger; the application's role has no UPDATE or DELETE at all.
        with pytest.raises(Exception, match=r"append-only|permission denied"), transaction.atomic():
            change()
    assert ReportTransition.objects.get(report=report).note == ""


def test_holds_taken_before_theft_windows_get_their_reports_last_seen_time(officer, bike):
    import importlib

    from django.db import connection

    from tracking.models import LegalHold

    report = take(officer, vehicle_query=VehicleQuery(frame_number=bike.frame_number))
    LegalHold.objects.filter(vehicle=bike).update(held_from=None)  # as the migration finds them
    other = LegalHold.objects.create(vehicle=bike, reason="court order 2026-17")  # not a report's: left
    fill = importlib.import_module("cases.migrations.0011_legal_holds_from_last_seen").FILL
    with connection.cursor() as cursor:
        cursor.execute(fill)
    assert LegalHold.objects.get(vehicle=bike, reason=f"theft report {report.number}").held_from == report.last_seen_at
    other.refresh_from_db()
    assert other.held_from is None
