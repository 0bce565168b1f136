"""Cases as the bureau files them: an officer files, a leader of the station approves."""

import datetime
import itertools
from typing import Any

from django.utils import timezone

from accounts.models import User
from cases.models import Case, TheftReport
from cases.workflow.services import (
    FILING_KINDS,
    CaseFiling,
    VehicleQuery,
    case_approve,
    case_file,
    report_take,
    report_transition,
)
from tests import factories

_serials = itertools.count(1)


def case_number() -> str:
    """A fresh number as the case platform issues them: A, 12-digit unit code, year-month, serial."""
    return f"A130229050000{timezone.localdate():%Y%m}{next(_serials):04d}"


def station_leader(officer: User) -> User:
    """A leader (the `admin` group) of the officer's station."""
    return factories.user("admin", station_code=officer.station.code if officer.station_id else None)


def approved_case(*, filer: User, number: str, officers: list[User], kind: str = "criminal", summary: str = "") -> Case:
    case = case_file(filer=filer, number=number, kind=kind, officers=officers, summary=summary)
    if case.approved_by_id is None:
        case = case_approve(approver=station_leader(filer), case_id=case.pk)
    return case


def report_step(*, user: User, report_id: int, to_status: str, note: str = "", **filing: Any) -> TheftReport:
    """report_transition; a step that files the report opens a new case (or joins `case_id`)."""
    if to_status in FILING_KINDS:
        filing.setdefault("case_number", "" if filing.get("case_id") else case_number())
        return report_transition(
            user=user, report_id=report_id, to_status=to_status, note=note, filing=CaseFiling(**filing)
        )
    return report_transition(user=user, report_id=report_id, to_status=to_status, note=note)


def walk_in_report(
    officer: User,
    bike: Any = None,
    *,
    description: str = "",
    missing_hours_ago: float = 1,
    seen_hours_before: float = 4,
) -> TheftReport:
    """A walk-in theft report of a registered bike, found by its frame number (or of a bike not in
    the registry, by its description), missing an hour ago and last seen four hours before that."""
    missing = timezone.now() - datetime.timedelta(hours=missing_hours_ago)
    return report_take(
        user=officer,
        channel="walk_in",
        vehicle_query=VehicleQuery(frame_number=bike.frame_number) if bike else VehicleQuery(),
        unregistered_description=description,
        reporter_name="赵敏",
        reporter_phone="13700001111",
        last_seen_at=missing - datetime.timedelta(hours=seen_hours_before),
        missing_at=missing,
        place_address="玉田县亮甲店镇中学门口",
    )
