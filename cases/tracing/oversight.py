"""Oversight of the looks at positions and personal data (MLPS level 3 audit review).

- Looks taken on a stated reason alone (no duty on the bike) are listed for the station leader to
  review (`stated_reason_looks`, the review page) and summed up for each leader once a week.
- An account whose lookups in the last day far exceed its usual daily volume raises an alert to the
  security administrators, once a day per account.
"""

import datetime
import statistics

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone, translation

from accounts import roles
from accounts.audit import STATED_REASON, audit_record
from accounts.labels import audit_action_label
from accounts.models import AuditEntry, User
from cases.alerts.services import notifications_create
from cases.models import Notification

# Audit actions that are looks at personal data or positions (not changes, not sign-ins).
LOOK_ACTIONS = (
    Q(
        action__in=[
            "vehicle.search",
            "vehicle.view",
            "vehicle.view_full",
            "theft_report.view",
            "sightings.view",
            "photo.view",
            "terminal.find",
            "duty_queue.view",
            "duty_call.view",
            "case.view",
            "claim.list",
            "claim.view",
            "evidence.export",
            "admin.list",
            "admin.view",
        ]
    )
    | Q(action__startswith="trajectory.")
    | Q(action__startswith="stolen.")
)


def look_label(action: str) -> str:
    """What a kind of look is called on the review page: its audit action's name (accounts.labels)."""
    return audit_action_label(action)


def stated_reason_looks(*, leader: User, since: datetime.datetime, until: datetime.datetime) -> QuerySet[AuditEntry]:
    """Looks on a stated reason by the leader's station's staff (every station's for county leadership)."""
    looks = AuditEntry.objects.filter(at__gte=since, at__lt=until, query__basis=STATED_REASON).select_related(
        "user", "user__station"
    )
    if leader.station_id:
        looks = looks.filter(user__station_id=leader.station_id)
    return looks.order_by("-at", "-id")


def _leaders() -> QuerySet[User]:
    return User.objects.filter(is_active=True, groups__name=roles.LEADER).distinct().order_by("pk")


def reviews_weekly_summary(*, now: datetime.datetime | None = None) -> int:
    """Tell each leader how many looks on a stated reason the past week holds for review."""
    now = now or timezone.now()
    since = now - datetime.timedelta(days=7)
    told = 0
    with translation.override(settings.LANGUAGE_CODE):
        for leader in _leaders():
            count = stated_reason_looks(leader=leader, since=since, until=now).count()
            if not count:
                continue
            told += notifications_create(
                users=[leader],
                kind=Notification.Kind.REVIEW,
                message="reviews_weekly",
                params={"n": count},
                link=reverse("cases:reason-reviews") + f"?since={timezone.localdate(since).isoformat()}",
            )
    return told


def _daily_median(user_id: int, *, before: datetime.datetime, days: int) -> float:
    since = before - datetime.timedelta(days=days)
    per_day = dict(
        AuditEntry.objects.filter(LOOK_ACTIONS, user_id=user_id, at__gte=since, at__lt=before)
        .annotate(day=TruncDate("at"))
        .values_list("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    counts = list(per_day.values()) + [0] * (days - len(per_day))
    return float(statistics.median(counts))


def lookup_volume_alerts(*, now: datetime.datetime | None = None) -> list[int]:
    """Accounts whose looks in the last 24 hours number at least LOOKUP_ALERT_MIN and more than
    LOOKUP_ALERT_FACTOR times their daily median of the LOOKUP_BASELINE_DAYS before: one alert a day
    each, to every security administrator, and an audit row. Returns the accounts alerted."""
    now = now or timezone.now()
    day_ago = now - datetime.timedelta(days=1)
    busy = (
        AuditEntry.objects.filter(LOOK_ACTIONS, at__gte=day_ago, at__lt=now, user__isnull=False)
        .values("user_id")
        .annotate(n=Count("id"))
        .filter(n__gte=settings.LOOKUP_ALERT_MIN)
    )
    alerted = []
    admins = list(User.objects.filter(is_active=True, groups__name=roles.SECADMIN).distinct())
    for row in busy:
        user_id, count = row["user_id"], row["n"]
        median = _daily_median(user_id, before=day_ago, days=settings.LOOKUP_BASELINE_DAYS)
        if count <= settings.LOOKUP_ALERT_FACTOR * max(median, 1.0):
            continue
        already = AuditEntry.objects.filter(
            action="security.lookup_alert", object_type="user", object_id=str(user_id), at__gte=day_ago
        ).exists()
        if already:
            continue
        user = User.objects.get(pk=user_id)
        audit_record(
            user=None,
            action="security.lookup_alert",
            object_type="user",
            object_id=user_id,
            query={"lookups_24h": count, "daily_median": median},
            result_count=count,
        )
        notifications_create(
            users=admins,
            kind=Notification.Kind.SECURITY,
            message="lookup_alert",
            params={"user": user.username, "n": count, "median": median},
        )
        alerted.append(user_id)
    return alerted
