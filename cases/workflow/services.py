"""Theft reports (接警登记) and cases (立案): taking, moving through the workflow, linking.

Every report is accepted: a bike found in the registry is marked stolen (registry changes and
transfers refused) and its positions are put under legal hold in the same transaction; a bike not
in the registry is described by hand and flagged unregistered. Status changes are conditional
updates (`filter(status=old).update(...)`), so two officers cannot move one report twice.
"""

import datetime
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.gis.geos import Point
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from accounts.audit import audit_record
from accounts.models import Station, Township, User
from accounts.roles import OFFICER
from cases.claims.services import claims_on_bike_found
from cases.models import (
    CLOSED_STATUSES,
    MISSING_STATUSES,
    TRANSITIONS,
    Case,
    CaseLink,
    CaseStep,
    ReportStatus,
    ReportTransition,
    TheftReport,
)
from cases.workflow.geocoding import address_locate
from ebike_registry.problems import Problems
from tracking.models import LegalHold
from tracking.services import last_positions_flag_missing
from vehicles.identifiers import normalize_code, normalize_id_number, normalize_phone, phone_problem, text_problem
from vehicles.models import Plate, Vehicle
from vehicles.services.registration import vehicle_clear_stolen, vehicle_mark_stolen


@dataclass(frozen=True)
class VehicleQuery:
    plate: str = ""
    frame_number: str = ""
    owner_id_number: str = ""


MIN_LINK_REASON_LENGTH = 6  # "协查盗窃案件" is six characters


def hold_reason(report: TheftReport) -> str:
    return f"theft report {report.number}"


def vehicle_find(query: VehicleQuery) -> list[Vehicle]:
    """Registered bikes matching the identifiers the reporter gave (any of them)."""
    found: dict[int, Vehicle] = {}
    if query.plate:
        ids = Plate.objects.filter(number=query.plate.strip().upper()).values("vehicle_id")
        found.update({v.pk: v for v in Vehicle.objects.filter(pk__in=ids)})
    if query.frame_number:
        found.update({v.pk: v for v in Vehicle.objects.filter(frame_number=normalize_code(query.frame_number))})
    if query.owner_id_number and not found:
        owned = Vehicle.objects.filter(owner__id_number=normalize_id_number(query.owner_id_number))
        found.update({v.pk: v for v in owned.exclude(status=Vehicle.Status.DEREGISTERED)})
    return list(found.values())


def _report_number(station: Station, day: datetime.date) -> str:
    # The station row lock serialises numbering per station; numbers run per station and day.
    Station.objects.select_for_update().get(pk=station.pk)
    prefix = f"JJ{station.code}{day:%Y%m%d}"
    count = TheftReport.objects.filter(number__startswith=prefix).count()
    return f"{prefix}{count + 1:04d}"


# A report's times go back five years at most (the shortest prosecution limitation period, Criminal
# Law art. 87): a date such as 0001-01-01 is a typing slip.
REPORT_MAX_AGE_DAYS = 5 * 365
# Free text about the reporter and the place: refused with control or invisible characters.
REPORT_TEXT_FIELDS = ("reporter_name", "place_address", "unregistered_description")


def report_field_problems(values: dict[str, Any]) -> Problems:
    """Checks of a report's own fields, on whichever are present (the API runs it on the fields that
    parsed when others did not, so every problem is reported at once).
    """
    problems = Problems()
    if "channel" in values and values["channel"] not in TheftReport.Channel.values:
        problems.add("channel", _("Unknown channel."))
    if "reporter_name" in values and len(values["reporter_name"].strip()) < 2:
        problems.add("reporter_name", _("Enter the reporting person's name."))
    for key in REPORT_TEXT_FIELDS:
        if isinstance(values.get(key), str):
            problems.add(key, text_problem(values[key]))
    if "reporter_phone" in values:
        problems.add("reporter_phone", phone_problem(values["reporter_phone"]))
    last_seen, missing = values.get("last_seen_at"), values.get("missing_at")
    if last_seen and missing and last_seen > missing:
        problems.add("last_seen_at", _("The bike was last seen after it was found missing."))
    if missing and missing > timezone.now() + datetime.timedelta(minutes=5):
        problems.add("missing_at", _("The time the bike was found missing is in the future."))
    earliest = timezone.now() - datetime.timedelta(days=REPORT_MAX_AGE_DAYS)
    for key, moment in (("last_seen_at", last_seen), ("missing_at", missing)):
        if moment and moment < earliest:
            problems.add(key, _("A theft more than five years ago is past the limitation period; check the date."))
    if "place_address" in values and len(values["place_address"].strip()) < 2 and not values.get("place_point"):
        problems.add("place_address", _("Say where the bike was stolen (address or map point)."))
    point = values.get("place_point")
    if point is not None and not (-90 <= point[0] <= 90 and -180 <= point[1] <= 180):
        problems.add("place_point", _("The map point is outside the valid coordinate range."))
    code = values.get("township_code")
    if code and not Township.objects.filter(code=code).exists():
        problems.add("township_code", _("Unknown township code %(code)s.") % {"code": code})
    return problems


def _match_vehicle(
    query: VehicleQuery, unregistered_description: str, *, problems: Problems, owner: User | None = None
) -> Vehicle | None:
    """The registered bike a report is about, or None for an unregistered one; problems collected.

    `owner` is set for online reports: the bike must be theirs.
    """
    matches = vehicle_find(query)
    vehicle = None
    if len(matches) > 1:
        problems.add("vehicle", _("The identifiers given match different bikes; give one of them."))
    elif matches:
        vehicle = matches[0]
        if vehicle.status == Vehicle.Status.DEREGISTERED:
            problems.add("vehicle", _("This registration was deregistered; report the theft as an unregistered bike."))
        open_report = (
            TheftReport.objects.filter(vehicle=vehicle)
            .exclude(status__in=[*CLOSED_STATUSES, ReportStatus.RETURNED])
            .first()
        )
        if open_report is not None:
            problems.add(
                "vehicle",
                _("This bike already has an open theft report, %(number)s.") % {"number": open_report.number},
            )
        if owner is not None and vehicle.owner.user_id != owner.pk:
            raise PermissionDenied(_("Owners can report only their own bikes online."))
    elif not unregistered_description.strip():
        problems.add(
            "vehicle",
            _("No registered bike matches; describe the bike (brand, colour, frame number) to report it anyway."),
        )
    return vehicle


def report_vehicle_problems(query: VehicleQuery, unregistered_description: str) -> Problems:
    """The checks on which bike a report is about, for pages that also have field errors."""
    problems = Problems()
    _match_vehicle(query, unregistered_description, problems=problems)
    return problems


def _report_take_problems(*, user: User, values: dict[str, Any]) -> tuple[Problems, Vehicle | None]:
    problems = report_field_problems(values)
    online = values.get("channel") == TheftReport.Channel.ONLINE
    query = VehicleQuery(
        plate=values.get("plate", ""),
        frame_number=values.get("frame_number", ""),
        owner_id_number=values.get("owner_id_number", ""),
    )
    description = values.get("unregistered_description", "")
    vehicle = _match_vehicle(query, description, problems=problems, owner=user if online else None)
    if online and vehicle is None and not problems.has("vehicle"):
        problems.add("vehicle", _("Online reports are for registered bikes; report other thefts at a station."))
    return problems, vehicle


def report_take_check(*, user: User, values: dict[str, Any]) -> Problems:
    """Every problem with a report about to be taken: its fields (those given: a page or the API
    passes the ones that parsed) and the bike it is about, with that bike's state (deregistered,
    already reported, another owner's for an online report). The map point is "place_point", or
    "latitude" and "longitude" as the API and the officer page take it.
    """
    if "place_point" not in values:
        values = {**values, "place_point": report_point(values)}
    return _report_take_problems(user=user, values=values)[0]


def report_point(values: dict[str, Any]) -> tuple[float, float] | None:
    """The map point of a report's input given as "latitude" and "longitude" (None unless both are)."""
    if values.get("latitude") is None or values.get("longitude") is None:
        return None
    return (values["latitude"], values["longitude"])


def report_take_arguments(values: dict[str, Any]) -> dict[str, Any]:
    """report_take's arguments (but the user) from a report's input as the API and the officer page
    parse it: flat, the bike's identifiers side by side, the map point as latitude and longitude."""
    return {
        "channel": values["channel"],
        "vehicle_query": VehicleQuery(
            plate=values["plate"], frame_number=values["frame_number"], owner_id_number=values["owner_id_number"]
        ),
        "unregistered_description": values["unregistered_description"],
        "reporter_name": values["reporter_name"],
        "reporter_phone": values["reporter_phone"],
        "reporter_id_number": values["reporter_id_number"],
        "last_seen_at": values["last_seen_at"],
        "missing_at": values["missing_at"],
        "place_address": values["place_address"],
        "place_point": report_point(values),
        "township_code": values["township_code"],
        "locked": values["locked"],
        "narrative": values["narrative"],
    }


def report_take(
    *,
    user: User,
    channel: str,
    vehicle_query: VehicleQuery,
    unregistered_description: str = "",
    reporter_name: str,
    reporter_phone: str,
    reporter_id_number: str = "",
    last_seen_at: datetime.datetime,
    missing_at: datetime.datetime,
    place_address: str,
    place_point: tuple[float, float] | None = None,
    township_code: str = "",
    locked: bool | None = None,
    narrative: str = "",
) -> TheftReport:
    """接警登记. An officer takes it at a counter or by phone; an owner may start one online for
    their own bike. Every problem is reported at once; a valid report is always accepted.
    """
    online = channel == TheftReport.Channel.ONLINE
    if not online and not user.has_perm("cases.add_theftreport"):
        raise PermissionDenied(_("Only officers take theft reports; owners report online."))
    problems, vehicle = _report_take_problems(
        user=user,
        values={
            "channel": channel,
            "plate": vehicle_query.plate,
            "frame_number": vehicle_query.frame_number,
            "owner_id_number": vehicle_query.owner_id_number,
            "unregistered_description": unregistered_description,
            "reporter_name": reporter_name,
            "reporter_phone": reporter_phone,
            "last_seen_at": last_seen_at,
            "missing_at": missing_at,
            "place_address": place_address,
            "place_point": place_point,
            "township_code": township_code,
        },
    )
    problems.raise_if_any()
    township = Township.objects.filter(code=township_code).first() if township_code else None

    station = user.station if user.station_id else (vehicle.station if vehicle else None)
    if station is None:
        raise PermissionDenied(_("Your account is not assigned to a police station."))
    geocoded = False
    if place_point is None and (found := address_locate(place_address)) is not None:
        place_point, geocoded = found, True
    with transaction.atomic():
        report = TheftReport.objects.create(
            number=_report_number(station, timezone.localdate()),
            channel=channel,
            station=station,
            receiving_officer=None if online else user,
            vehicle=vehicle,
            unregistered_description=unregistered_description.strip() if vehicle is None else "",
            reporter_name=reporter_name.strip(),
            reporter_phone=normalize_phone(reporter_phone),
            reporter_id_number=normalize_id_number(reporter_id_number) if reporter_id_number else "",
            last_seen_at=last_seen_at,
            missing_at=missing_at,
            place_address=place_address.strip(),
            place_point=Point(place_point[1], place_point[0], srid=4326) if place_point else None,
            place_geocoded=geocoded,
            township=township,
            locked=locked,
            narrative=narrative.strip(),
        )
        ReportTransition.objects.create(report=report, from_status="", to_status=ReportStatus.RECEIVED, by=user)
        if vehicle is not None:
            if vehicle.status == Vehicle.Status.REGISTERED:
                vehicle_mark_stolen(officer=user, station=station, vehicle_id=vehicle.pk, reason=report.number)
                last_positions_flag_missing(vehicle_ids=[vehicle.pk])
            # The theft window: positions from the last-seen time on (tracking.retention).
            LegalHold.objects.create(vehicle=vehicle, reason=hold_reason(report), held_from=report.last_seen_at)
        audit_record(user=user, action="theft_report.take", object_type="theft_report", object_id=report.pk)
    return report


# --- a report's workflow -----------------------------------------------------------------------------

# Filing a report (docs/domain.md#theft-reports-and-cases) opens a case of this type, or attaches the
# report to one, in one step.
FILING_KINDS: dict[str, str] = {
    ReportStatus.FILED_CRIMINAL: Case.Kind.CRIMINAL,
    ReportStatus.FILED_PUBLIC_ORDER: Case.Kind.PUBLIC_ORDER,
}
# The decisions the reporter is notified of in writing (立案决定书 / 不予立案通知书).
DECISION_STATUSES = {*FILING_KINDS, ReportStatus.NOT_FILED}


@dataclass(frozen=True)
class CaseFiling:
    """Where a report filed as a case goes: a new case (its number as the bureau's case platform
    issued it, its officers besides the filer, a summary) or an existing case."""

    case_number: str = ""
    officer_ids: tuple[int, ...] = ()
    summary: str = ""
    case_id: int | None = None

    @property
    def given(self) -> bool:
        return bool(self.case_number.strip() or self.officer_ids or self.summary.strip() or self.case_id is not None)


def _existing_case_problems(problems: Problems, *, user: User, report: TheftReport, case_id: int, kind: str) -> None:
    case = Case.objects.filter(pk=case_id).first()
    if case is None:
        problems.add("case_id", _("There is no such case."))
        return
    if case.status == Case.Status.CLOSED:
        problems.add("case_id", _("Case %(n)s is closed.") % {"n": case.number})
    elif not user.has_perm("cases.link_to_case", case):
        problems.add(
            "case_id",
            _("Only the officers of case %(n)s attach reports to it, once its filing is approved.")
            % {"n": case.number},
        )
    if case.kind != kind:
        problems.add(
            "case_id",
            _("Case %(n)s is a %(kind)s case; file the report as one, or open a new case.")
            % {"n": case.number, "kind": case.get_kind_display()},
        )


def report_transition_check(
    *, user: User, report: TheftReport, to_status: str, note: str = "", filing: CaseFiling | None = None
) -> Problems:
    """Every problem with moving a report to `to_status`: the step itself from the report's state,
    the reason a refusal or withdrawal owes the reporter, and, for a filing, every problem with the
    case it opens (number, officers) or joins (closed, another's, of the other type)."""
    problems = Problems()
    if to_status not in ReportStatus.values:
        problems.add("to_status", _("Unknown status %(s)s.") % {"s": to_status})
    elif to_status not in TRANSITIONS[report.status]:
        problems.add(
            "to_status",
            _("A report that is %(old)s cannot become %(new)s.")
            % {"old": ReportStatus(report.status).label, "new": ReportStatus(to_status).label},
        )
    if to_status in {ReportStatus.NOT_FILED, ReportStatus.WITHDRAWN} and not note.strip():
        problems.add("note", _("Give the reason; it is notified to the reporter."))
    kind = FILING_KINDS.get(to_status)
    if kind is None:
        if filing is not None and filing.given:
            problems.add(
                "case_number",
                _("A case is opened only when the report is filed as a criminal or public-order case."),
            )
        return problems
    if filing is None or not (filing.case_number.strip() or filing.case_id is not None):
        problems.add(
            "case_number",
            _("Filing the report opens a case: enter the new case's number, or choose an existing case."),
        )
    elif filing.case_id is not None:
        if filing.case_number.strip():
            problems.add("case_id", _("Either open a new case or choose an existing one, not both."))
        _existing_case_problems(problems, user=user, report=report, case_id=filing.case_id, kind=kind)
    else:
        if not user.has_perm("cases.file_case"):
            problems.add("case_number", _("Only an officer of a police station files cases."))
        found = case_file_check(
            filer=user, number=filing.case_number, kind=kind, officer_ids=[user.pk, *filing.officer_ids]
        )
        for field, messages in found.by_field.items():
            problems.merge({{"number": "case_number"}.get(field, field): messages})
    return problems


def _report_move(*, user: User, report: TheftReport, to_status: str, note: str) -> None:
    """One step of a report, checked by the caller: the conditional update decides races."""
    old = report.status
    updated = TheftReport.objects.filter(pk=report.pk, status=old).update(
        status=to_status, status_changed_at=timezone.now()
    )
    if updated != 1:
        raise ValidationError({"to_status": _("The report was changed by someone else a moment ago; reload it.")})
    ReportTransition.objects.create(report=report, from_status=old, to_status=to_status, by=user, note=note)
    vehicle = report.vehicle
    if vehicle is not None:
        if old in MISSING_STATUSES and to_status not in MISSING_STATUSES and vehicle.status == Vehicle.Status.STOLEN:
            vehicle_clear_stolen(officer=user, station=report.station, vehicle_id=vehicle.pk, reason=report.number)
            last_positions_flag_missing(vehicle_ids=[vehicle.pk])
        if old in MISSING_STATUSES and to_status not in MISSING_STATUSES:
            claims_on_bike_found(user=user, report=report, to_status=to_status)
        if to_status in CLOSED_STATUSES:
            LegalHold.objects.filter(vehicle=vehicle, reason=hold_reason(report), released_at__isnull=True).update(
                released_at=timezone.now()
            )
    audit_record(
        user=user,
        action="theft_report.transition",
        object_type="theft_report",
        object_id=report.pk,
        query={"from": old, "to": to_status},
        reason=note[:200],
    )
    report.status = to_status


def report_transition(
    *, user: User, report_id: int, to_status: str, note: str = "", filing: CaseFiling | None = None
) -> TheftReport:
    """Move a report one step along the workflow; out-of-order steps are refused. Filing it as a
    criminal or public-order case opens its case (or attaches it to an existing one) in the same
    transaction: a filed report always has its case."""
    with transaction.atomic():
        report = TheftReport.objects.select_related("vehicle", "station").get(pk=report_id)
        if not user.has_perm("cases.handle_report", report):
            raise PermissionDenied(_("Only an officer of the report's station, or with a duty on it, moves it along."))
        report_transition_check(user=user, report=report, to_status=to_status, note=note, filing=filing).raise_if_any()
        _report_move(user=user, report=report, to_status=to_status, note=note)
        kind = FILING_KINDS.get(to_status)
        if kind is not None and filing is not None:
            if filing.case_id is None:
                officers = list(User.objects.filter(pk__in={user.pk, *filing.officer_ids}))
                case = _case_create(
                    filer=user, number=filing.case_number, kind=kind, officers=officers, summary=filing.summary
                )
            else:
                case = Case.objects.select_for_update().get(pk=filing.case_id)
                if case.status == Case.Status.CLOSED:
                    raise ValidationError({"case_id": _("Case %(n)s is closed.") % {"n": case.number}})
            if not CaseLink.objects.filter(case=case, report=report, unlinked_at__isnull=True).exists():
                _link_create(user=user, case=case, report_id=report.pk, vehicle_id=None, reason="")
        report.refresh_from_db()
        return report


def report_decision(report: TheftReport) -> ReportTransition | None:
    """The step that decided whether to file the report (filed / not filed), if it was decided."""
    return report.transitions.filter(to_status__in=DECISION_STATUSES).order_by("-at", "-id").first()


# --- cases ---------------------------------------------------------------------------------------------------


def officers_find(*, ids: list[int]) -> list[User]:
    """The active officers' accounts with these ids; a 400 on officer_ids when any id is not one."""
    officers = list(User.objects.filter(pk__in=ids, groups__name=OFFICER, is_active=True))
    if len(officers) != len(set(ids)):
        problems = Problems()
        problems.add("officer_ids", _("Every responsible officer must be an active officer's account."))
        problems.raise_if_any()
    return officers


def case_number_normalize(number: str) -> str:
    """The case number as typed, without spaces (a copied number often carries some)."""
    number = "".join(number.split())
    return "A" + number[1:] if number[:1] == "a" else number


def case_file_check(*, filer: User, number: str, kind: str, officer_ids: list[int]) -> Problems:
    """Every problem with filing a case: the number (the bureau's pattern, CASE_NUMBER_PATTERN, and
    not used before), the type, the responsible officers."""
    problems = Problems()
    number = case_number_normalize(number)
    if not number:
        problems.add("number", _("Enter the case number (立案编号) as the case platform issued it."))
    elif not re.fullmatch(settings.CASE_NUMBER_PATTERN, number):
        problems.add(
            "number",
            _("%(n)s is not a case number as the bureau's case platform issues it; copy it from the platform.")
            % {"n": number},
        )
    elif Case.objects.filter(number=number).exists():
        problems.add("number", _("Case number %(n)s is already used.") % {"n": number})
    if kind not in Case.Kind.values:
        problems.add("kind", _("The case type is criminal or public_order."))
    if not officer_ids:
        problems.add("officer_ids", _("Name at least one responsible officer."))
    else:
        found = User.objects.filter(pk__in=officer_ids, groups__name=OFFICER, is_active=True).distinct().count()
        if found != len(set(officer_ids)):
            problems.add("officer_ids", _("Every responsible officer must be an active officer's account."))
    return problems


def _step(
    *, case: Case, action: str, user: User, note: str = "", report_id: int | None = None, vehicle_id: int | None = None
) -> None:
    CaseStep.objects.create(
        case=case, action=action, by=user, note=note[:500], report_id=report_id, vehicle_id=vehicle_id
    )


def _case_create(*, filer: User, number: str, kind: str, officers: list[User], summary: str) -> Case:
    number = case_number_normalize(number)
    approved_now = not settings.CASE_APPROVAL_BY_ANOTHER
    try:
        with transaction.atomic():  # the unique index decides when two officers file one number at once
            case = Case.objects.create(  # type: ignore[misc]  # officers have a station (NOT NULL)
                number=number,
                kind=kind,
                station=filer.station,
                filed_on=timezone.localdate(),
                filed_by=filer,
                approved_by=filer if approved_now else None,
                approved_at=timezone.now() if approved_now else None,
                summary=summary.strip(),
            )
    except IntegrityError as exc:
        if "case_number_uniq" not in str(exc):
            raise
        raise ValidationError({"number": _("Case number %(n)s was filed a moment ago.") % {"n": number}}) from exc
    case.officers.set(officers)
    _step(case=case, action=CaseStep.Action.FILE, user=filer)
    audit_record(
        user=filer,
        action="case.file",
        object_type="case",
        object_id=case.pk,
        query={"officers": sorted(o.pk for o in officers), "approved": approved_now},
    )
    return case


def case_file(
    *,
    filer: User,
    number: str,
    kind: str,
    officers: list[User],
    summary: str = "",
) -> Case:
    """立案: a case with its number, type, handling station (the filer's) and officers, filed today.

    It cannot be backdated: the duty it gives its officers starts at filing. Where the bureau asks
    for approval by another person (CASE_APPROVAL_BY_ANOTHER), the case awaits a leader's approval
    and opens nothing until then; otherwise the filer's entry is its approval.
    """
    if not filer.has_perm("cases.file_case"):
        raise PermissionDenied(_("Only an officer of a police station files cases."))
    case_file_check(filer=filer, number=number, kind=kind, officer_ids=[o.pk for o in officers]).raise_if_any()
    with transaction.atomic():
        return _case_create(filer=filer, number=number, kind=kind, officers=officers, summary=summary)


def case_approve(*, approver: User, case_id: int) -> Case:
    """A leader of the case's station (or of the county), not its filer where the bureau asks so,
    approves the filing; from then on its officers have the case's duty."""
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case_id)
        if not approver.has_perm("cases.approve_case_record", case):
            if case.filed_by_id == approver.pk and settings.CASE_APPROVAL_BY_ANOTHER:
                raise PermissionDenied(_("A case is approved by another person than the officer who filed it."))
            if not approver.has_perm("cases.approve_cases"):
                raise PermissionDenied(_("Only a leader of the case's station approves its filing."))
            if case.approved_by_id is not None:
                raise ValidationError({"case": _("The case is already approved.")})
            raise PermissionDenied(_("Only a leader of the case's station approves its filing."))
        Case.objects.filter(pk=case.pk).update(approved_by=approver, approved_at=timezone.now())
        _step(case=case, action=CaseStep.Action.APPROVE, user=approver)
        audit_record(user=approver, action="case.approve", object_type="case", object_id=case.pk)
    return Case.objects.get(pk=case_id)


def report_assign(*, leader: User, report_id: int, officers: list[User]) -> TheftReport:
    """The station's leader gives a report's duty to officers (added to those already on it)."""
    with transaction.atomic():
        report = TheftReport.objects.select_for_update().get(pk=report_id)
        if not leader.has_perm("cases.assign_report", report):
            raise PermissionDenied(_("Only a leader of the report's station assigns officers to it."))
        if report.status in CLOSED_STATUSES:
            raise ValidationError({"report": _("The report is closed.")})
        if not officers:
            raise ValidationError({"officer_ids": _("Name at least one officer.")})
        report.assigned_officers.add(*officers)
        audit_record(
            user=leader,
            action="theft_report.assign",
            object_type="theft_report",
            object_id=report.pk,
            query={"officers": sorted(o.pk for o in officers)},
        )
    return report


CASE_ACTION_REFUSALS = {
    "cases.link_to_case": _lazy("Only the officers of an approved case link reports and bikes to it, or unlink them."),
    "cases.solve_case": _lazy("Only the officers of an approved case mark it solved."),
    "cases.close_case": _lazy("A leader of the case's station closes it."),
}


def case_action_refuse(*, user: User, perm: str, case: Case) -> None:
    """Refuse (403) whoever may not act on the case, before any check of the input: who cannot see
    the case learns nothing of it. On a closed case, or one awaiting approval, the officers' duty is
    not live: the check then names that state (400), and the rights are asked again after it."""
    if not user.has_perm("cases.view_case_record", case):
        raise PermissionDenied(_("This case belongs to another station and you are not one of its officers."))
    live = case.approved_by_id is not None and case.status != Case.Status.CLOSED
    if (live or perm == "cases.close_case") and not user.has_perm(perm, case):
        raise PermissionDenied(CASE_ACTION_REFUSALS[perm])


def _may(user: User, perm: str, case: Case) -> None:
    if not user.has_perm(perm, case):
        raise PermissionDenied(CASE_ACTION_REFUSALS[perm])


def case_link_check(
    *, user: User, case: Case, report_id: int | None = None, vehicle_id: int | None = None, reason: str = ""
) -> Problems:
    """Every problem with linking a report, or a bike without a report, to the case: what is
    linked, the reason a bike needs, the case's state and the report's."""
    problems = Problems()
    if (report_id is None) == (vehicle_id is None):
        problems.add("non_field_errors", _("Link either a report or a vehicle."))
    if vehicle_id is not None and len(reason.strip()) < MIN_LINK_REASON_LENGTH:
        problems.add(
            "reason",
            _(
                "A bike linked without a theft report needs the reason (at least %(n)d characters): "
                "it opens the bike's positions to the case's officers."
            )
            % {"n": MIN_LINK_REASON_LENGTH},
        )
    if case.status == Case.Status.CLOSED:
        problems.add("case", _("The case is closed."))
    elif case.approved_by_id is None:
        problems.add("case", _("The case awaits a leader's approval of its filing."))
    active = CaseLink.objects.filter(case=case, unlinked_at__isnull=True)
    if report_id is not None:
        report = TheftReport.objects.filter(pk=report_id).first()
        if report is None:
            problems.add("report_id", _("There is no such theft report."))
        elif report.status == ReportStatus.WITHDRAWN:
            problems.add("report_id", _("Report %(n)s was withdrawn.") % {"n": report.number})
        elif active.filter(report_id=report_id).exists():
            problems.add("report_id", _("Already linked to this case."))
    if vehicle_id is not None:
        if not Vehicle.objects.filter(pk=vehicle_id).exists():
            problems.add("vehicle_id", _("There is no such bike in the registry."))
        elif active.filter(vehicle_id=vehicle_id).exists():
            problems.add("vehicle_id", _("Already linked to this case."))
    return problems


def _link_create(*, user: User, case: Case, report_id: int | None, vehicle_id: int | None, reason: str) -> CaseLink:
    link = CaseLink.objects.create(case=case, report_id=report_id, vehicle_id=vehicle_id, linked_by=user, reason=reason)
    _step(case=case, action=CaseStep.Action.LINK, user=user, note=reason, report_id=report_id, vehicle_id=vehicle_id)
    audit_record(
        user=user,
        action="case.link",
        object_type="case",
        object_id=case.pk,
        query={"report": report_id, "vehicle": vehicle_id},
        reason=reason,
    )
    return link


def case_link(
    *, user: User, case_id: int, report_id: int | None = None, vehicle_id: int | None = None, reason: str = ""
) -> CaseLink:
    """Link a report, or a bike without a report, to a case: its officers only. A bike linked
    without a report opens its positions to the case's officers, so the linking officer states why."""
    reason = reason.strip()
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case_id)
        case_action_refuse(user=user, perm="cases.link_to_case", case=case)
        case_link_check(user=user, case=case, report_id=report_id, vehicle_id=vehicle_id, reason=reason).raise_if_any()
        _may(user, "cases.link_to_case", case)
        return _link_create(user=user, case=case, report_id=report_id, vehicle_id=vehicle_id, reason=reason)


def case_unlink_check(*, user: User, link: CaseLink, reason: str) -> Problems:
    problems = Problems()
    if not reason.strip():
        problems.add("reason", _("Say why the link is removed."))
    if link.unlinked_at is not None:
        problems.add("link", _("This link was already removed."))
    if link.case.status == Case.Status.CLOSED:
        problems.add("case", _("The case is closed."))
    elif link.case.approved_by_id is None:
        problems.add("case", _("The case awaits a leader's approval of its filing."))
    return problems


def case_unlink(*, user: User, link_id: int, reason: str) -> CaseLink:
    with transaction.atomic():
        link = CaseLink.objects.select_related("case").get(pk=link_id)
        case_action_refuse(user=user, perm="cases.link_to_case", case=link.case)
        case_unlink_check(user=user, link=link, reason=reason).raise_if_any()
        _may(user, "cases.link_to_case", link.case)
        updated = CaseLink.objects.filter(pk=link_id, unlinked_at__isnull=True).update(
            unlinked_at=timezone.now(), unlinked_by=user, unlink_reason=reason.strip()
        )
        if updated != 1:
            raise ValidationError({"link": _("This link does not exist or was already removed.")})
        _step(
            case=link.case,
            action=CaseStep.Action.UNLINK,
            user=user,
            note=reason.strip(),
            report_id=link.report_id,
            vehicle_id=link.vehicle_id,
        )
        audit_record(user=user, action="case.unlink", object_type="case", object_id=link.case_id, reason=reason)
        return CaseLink.objects.get(pk=link_id)


def case_solve_check(*, user: User, case: Case) -> Problems:
    problems = Problems()
    if case.status == Case.Status.CLOSED:
        problems.add("status", _("The case is closed."))
    elif case.status == Case.Status.SOLVED:
        problems.add("status", _("The case is already solved."))
    elif case.approved_by_id is None:
        problems.add("status", _("The case awaits a leader's approval of its filing."))
    return problems


def case_solve(*, user: User, case_id: int, with_positioning: bool, note: str = "") -> Case:
    """破案: the case solved, saying whether positioning data solved it (the statistics count those).
    Its linked reports filed as cases become solved with it."""
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case_id)
        case_action_refuse(user=user, perm="cases.solve_case", case=case)
        case_solve_check(user=user, case=case).raise_if_any()
        _may(user, "cases.solve_case", case)
        updated = Case.objects.filter(pk=case_id, status=Case.Status.OPEN).update(
            status=Case.Status.SOLVED, solved_with_positioning=with_positioning
        )
        if updated != 1:
            raise ValidationError({"status": _("Only a case under investigation can be solved.")})
        _step(case=case, action=CaseStep.Action.SOLVE, user=user, note=note)
        reports = TheftReport.objects.select_related("vehicle", "station").filter(
            case_links__case=case,
            case_links__unlinked_at__isnull=True,
            status__in=list(FILING_KINDS),
        )
        for report in reports:
            _report_move(user=user, report=report, to_status=ReportStatus.SOLVED, note=case.number)
        audit_record(user=user, action="case.solve", object_type="case", object_id=case_id, reason=note[:200])
        return Case.objects.get(pk=case_id)


def case_close_check(*, user: User, case: Case, reason: str) -> Problems:
    """A solved case is closed (结案) with its reason; an unsolved one only when it is dropped
    (撤销案件), with a fuller reason; a closed one stays closed."""
    problems = Problems()
    reason = reason.strip()
    if case.status == Case.Status.CLOSED:
        problems.add("status", _("The case is already closed."))
    if not reason:
        problems.add("reason", _("Say why the case is closed (for example: transferred for prosecution)."))
    elif case.status == Case.Status.OPEN and len(reason) < MIN_LINK_REASON_LENGTH:
        problems.add(
            "reason",
            _(
                "An unsolved case is closed only when it is dropped (撤销案件): "
                "give the reason in at least %(n)d characters."
            )
            % {"n": MIN_LINK_REASON_LENGTH},
        )
    return problems


def case_close(*, user: User, case_id: int, reason: str) -> Case:
    """结案 (or 撤销案件): a leader of the case's station closes it; its officers' duty on it ends."""
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case_id)
        case_action_refuse(user=user, perm="cases.close_case", case=case)
        case_close_check(user=user, case=case, reason=reason).raise_if_any()
        _may(user, "cases.close_case", case)
        updated = Case.objects.filter(pk=case_id, status__in=[Case.Status.OPEN, Case.Status.SOLVED]).update(
            status=Case.Status.CLOSED
        )
        if updated != 1:
            raise ValidationError({"status": _("The case was closed by someone else a moment ago.")})
        _step(case=case, action=CaseStep.Action.CLOSE, user=user, note=reason.strip())
        audit_record(
            user=user,
            action="case.close",
            object_type="case",
            object_id=case_id,
            query={"from": case.status},
            reason=reason.strip()[:200],
        )
        return Case.objects.get(pk=case_id)
