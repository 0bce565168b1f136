"""Who has a duty on a report, a case or a bike, and from when the duty opens the bike's positions.

- A report's duty belongs to its receiving officer and to the officers its station's leader assigned
  to it, while the report is open; it opens the bike's positions from the time the bike was last seen.
- A case's duty belongs to its officers from its approval (a case awaiting approval opens nothing)
  until it is closed; it opens the positions of its bikes from the earliest last-seen time of the
  reports linked to it (a case of bikes linked without a report: from the day it was filed).

The rules of cases.rules ask these; cases.tracing.access names the basis of each look with them.
"""

import datetime
from dataclasses import dataclass
from typing import Any

from django.db.models import Min, Q
from django.utils import timezone

from cases.models import CLOSED_STATUSES, Case, CaseLink, TheftReport


@dataclass(frozen=True)
class Duty:
    basis: str  # "open_report:<number>" or "case:<number>"
    since: datetime.datetime | None  # the positions it opens start here


def report_duty_holder(user: Any, report: TheftReport) -> bool:
    if not user.is_authenticated:
        return False
    if report.receiving_officer_id == user.pk:
        return True
    return report.assigned_officers.filter(pk=user.pk).exists()


def report_open(report: TheftReport) -> bool:
    return report.status not in CLOSED_STATUSES


def case_duty_holder(user: Any, case: Case) -> bool:
    """One of the case's officers, the case approved and not closed."""
    if not user.is_authenticated or case.approved_by_id is None or case.status == Case.Status.CLOSED:
        return False
    return case.officers.filter(pk=user.pk).exists()


def case_positions_since(case: Case) -> datetime.datetime:
    """The earliest last-seen time of the case's reports; without reports, the day it was filed."""
    links = CaseLink.objects.filter(case=case, unlinked_at__isnull=True, report__isnull=False)
    seen = links.aggregate(first=Min("report__last_seen_at"))["first"]
    filed = timezone.make_aware(datetime.datetime.combine(case.filed_on, datetime.time()))
    return min(seen, filed) if seen is not None else filed


def vehicle_report_duty(user: Any, vehicle_id: int) -> Duty | None:
    report = (
        TheftReport.objects.filter(vehicle_id=vehicle_id)
        .exclude(status__in=CLOSED_STATUSES)
        .filter(Q(receiving_officer_id=user.pk) | Q(assigned_officers=user.pk))
        .order_by("-received_at", "-id")
        .first()
    )
    return Duty(f"open_report:{report.number}", report.last_seen_at) if report else None


def vehicle_case_duty(user: Any, vehicle_id: int) -> Duty | None:
    """An approved, unclosed case of the user's with the bike linked, directly or through a report."""
    link = (
        CaseLink.objects.filter(unlinked_at__isnull=True, case__officers=user.pk, case__approved_by__isnull=False)
        .filter(Q(vehicle_id=vehicle_id) | Q(report__vehicle_id=vehicle_id))
        .exclude(case__status=Case.Status.CLOSED)
        .select_related("case")
        .order_by("-linked_at")
        .first()
    )
    if link is None:
        return None
    return Duty(f"case:{link.case.number}", case_positions_since(link.case))


def vehicle_duty(user: Any, vehicle_id: int, *, since: datetime.datetime | None = None) -> Duty | None:
    """The user's duty on the bike that covers positions from `since` (any duty when None)."""
    if not user.is_authenticated:
        return None
    for duty in (vehicle_report_duty(user, vehicle_id), vehicle_case_duty(user, vehicle_id)):
        if duty is None:
            continue
        if since is None or duty.since is None or since >= duty.since:
            return duty
    return None
