"""The case and report lists of the officer and leader pages: an officer's own cases, a station's
cases, and the reports still waiting for the decision to file them past REPORT_DECISION_DAYS.

Who may open each list is the policy's answer (cases.rules); these say what each user's list holds.
"""

import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from cases.models import Case, ReportStatus, TheftReport


def _with_counts(cases: QuerySet[Case]) -> QuerySet[Case]:
    active = Q(links__unlinked_at__isnull=True)
    return (
        cases.select_related("station", "approved_by")
        .annotate(
            reports=Count("links", filter=active & Q(links__report__isnull=False)),
            vehicles=Count("links", filter=active & Q(links__vehicle__isnull=False)),
        )
        .order_by("status", "-filed_on", "-id")
    )


def cases_of_officer(user: Any) -> QuerySet[Case]:
    """我的案件: the cases the officer is on, open ones first."""
    return _with_counts(Case.objects.filter(officers=user.pk))


def cases_of_station(user: Any, *, status: str = "") -> QuerySet[Case]:
    """The cases the user's station handles; county leadership (no station) sees every station's."""
    cases = Case.objects.all()
    if user.station_id:
        cases = cases.filter(station_id=user.station_id)
    if status:
        cases = cases.filter(status=status)
    return _with_counts(cases)


def decision_deadline(report: TheftReport) -> datetime.datetime:
    return report.received_at + datetime.timedelta(days=settings.REPORT_DECISION_DAYS)


def reports_undecided(user: Any, *, now: datetime.datetime | None = None) -> QuerySet[TheftReport]:
    """Reports received more than REPORT_DECISION_DAYS ago and still not decided (filed or not):
    the leader's station's, or every station's for county leadership. Oldest first."""
    now = now or timezone.now()
    reports = TheftReport.objects.filter(
        status=ReportStatus.RECEIVED, received_at__lt=now - datetime.timedelta(days=settings.REPORT_DECISION_DAYS)
    )
    if user.station_id:
        reports = reports.filter(station_id=user.station_id)
    return reports.select_related("station", "receiving_officer", "vehicle").order_by("received_at", "id")
