"""Sightings of stolen bikes and in-app notifications.

A sighting is one movement episode of a bike under an open theft report, not one ping: a new one
starts after the terminal was silent, or the bike still, for SIGHTING_EPISODE_GAP_MINUTES, and the
officers on the report are notified once, when it starts (in the app, and by the station's webhook).
Moving means SIGHTING_MOVING_KMH or SIGHTING_STILL_METRES from the episode's latest place; less is
GPS drift. `sightings_record` runs from the ingestion outbox and reads only positions newer than the
episode it extends, so a batch processed twice changes nothing.
See docs/architecture.md#sightings-and-the-duty-room.
"""

import datetime
import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Permission
from django.contrib.gis.geos import Point
from django.db import transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from geopy.distance import great_circle

from accounts.models import User
from cases.alerts import notification_texts, webhooks
from cases.models import MISSING_STATUSES, Case, CaseLink, Notification, Sighting, TheftReport
from tracking.derived import Batch
from tracking.selectors.positions import Seen, terminal_seen, terminal_vehicles
from vehicles.models import Plate, Vehicle

logger = logging.getLogger(__name__)


def episode_gap() -> datetime.timedelta:
    return datetime.timedelta(minutes=settings.SIGHTING_EPISODE_GAP_MINUTES)


def _moved(seen: Seen, sighting: Sighting) -> bool:
    if seen.speed_kmh is not None and seen.speed_kmh >= settings.SIGHTING_MOVING_KMH:
        return True
    last = (sighting.last_point.y, sighting.last_point.x)
    return great_circle(last, (seen.latitude, seen.longitude)).meters >= settings.SIGHTING_STILL_METRES


def episodes_apply(sighting: Sighting | None, seen: Iterable[Seen], *, report: TheftReport) -> list[Sighting]:
    """Fold time-ordered moments into episodes. Returns the episodes started or extended, unsaved;
    those without a pk are new.
    """
    touched: list[Sighting] = []
    gap = episode_gap()
    for item in seen:
        point = Point(item.longitude, item.latitude, srid=4326)
        still_too_long = sighting is not None and item.at - (sighting.moved_at or sighting.started_at) >= gap
        if sighting is None or item.at - sighting.last_at >= gap or (still_too_long and _moved(item, sighting)):
            sighting = Sighting(
                report=report,
                vehicle_id=report.vehicle_id,  # type: ignore[misc]  # a sighted report names a bike
                terminal_id=0,
                started_at=item.at,
                last_at=item.at,
                first_point=point,
                last_point=point,
                positions=1,
                moved_at=item.at,
            )
            touched.append(sighting)
            continue
        if _moved(item, sighting):
            sighting.moved_at = item.at
        sighting.last_at = item.at
        sighting.last_point = point
        sighting.positions += 1
        if sighting not in touched:
            touched.append(sighting)
    return touched


def report_sightings(*, report_id: int, limit: int = 20) -> list[Sighting]:
    """Movement episodes of a report's stolen bike, newest first (the caller asked the policy)."""
    return list(Sighting.objects.filter(report_id=report_id).order_by("-started_at")[:limit])


def sightings_record(batch: Batch) -> None:
    """INGEST_HANDLERS entry: episodes for the stolen bikes among the batch's terminals."""
    terminal_of = {vehicle_id: terminal_id for terminal_id, vehicle_id in terminal_vehicles(batch.terminal_ids).items()}
    reports = (
        TheftReport.objects.filter(
            vehicle_id__in=terminal_of, vehicle__status=Vehicle.Status.STOLEN, status__in=MISSING_STATUSES
        )
        .order_by("pk")
        .values_list("pk", "vehicle_id")
    )
    for report_id, vehicle_id in reports:
        _record_one(terminal_of[vehicle_id], report_id, batch)


def _record_one(terminal_id: int, report_id: int, batch: Batch) -> None:
    with transaction.atomic():
        # The report row lock serialises two workers holding batches of the same bike.
        report = (
            TheftReport.objects.select_for_update(of=("self",)).select_related("vehicle", "station").get(pk=report_id)
        )
        current = Sighting.objects.filter(report=report).order_by("-last_at").first()
        after = max(current.last_at, report.last_seen_at) if current else report.last_seen_at
        seen = terminal_seen(
            terminal_id=terminal_id, first=batch.first_device_time, last=batch.last_device_time, after=after
        )
        if not seen:
            return
        for sighting in episodes_apply(current, seen, report=report):
            new = sighting.pk is None
            sighting.terminal_id = terminal_id
            sighting.save()
            if new:
                _notify_sighting(sighting, report)


def case_officers(report: TheftReport) -> list[User]:
    """Who is told about a sighting: the officers of the open cases the report or its bike is linked
    to; before a case is filed, the officer who took the report, else the station's officers.
    """
    links = CaseLink.objects.filter(unlinked_at__isnull=True).filter(Q(report=report) | Q(vehicle=report.vehicle_id))
    cases = Case.objects.filter(pk__in=links.values("case_id")).exclude(status=Case.Status.CLOSED)
    officers = list(User.objects.filter(cases__in=cases, is_active=True).distinct().order_by("pk"))
    if officers:
        return officers
    officer = report.receiving_officer
    if officer is not None and officer.is_active:
        return [officer]
    return list(users_with_perm("cases.change_theftreport").filter(station=report.station_id))


def users_with_perm(perm: str) -> QuerySet[User]:
    """Active users holding `perm` through a role (group) or directly; superusers are not paged."""
    app_label, codename = perm.split(".")
    permission = Permission.objects.get(content_type__app_label=app_label, codename=codename)
    return (
        User.objects.filter(is_active=True)
        .filter(Q(groups__permissions=permission) | Q(user_permissions=permission))
        .distinct()
        .order_by("pk")
    )


def plate_number(vehicle_id: int) -> str:
    plate = Plate.objects.filter(vehicle_id=vehicle_id, status=Plate.Status.ISSUED).only("number").first()
    return plate.number if plate else ""


def _notify_sighting(sighting: Sighting, report: TheftReport) -> None:
    plate = plate_number(report.vehicle_id) or report.vehicle.frame_number  # type: ignore[arg-type,union-attr]  # a sighted report names a bike
    params = {
        "plate": plate,
        "number": report.number,
        "time": notification_texts.param_time(sighting.started_at),
        "lat": sighting.first_point.y,
        "lon": sighting.first_point.x,
    }
    link = reverse("cases:report", args=[report.pk])
    notifications_create(
        users=case_officers(report), kind=Notification.Kind.SIGHTING, message="sighting", params=params, link=link
    )
    Sighting.objects.filter(pk=sighting.pk).update(notified_at=timezone.now())
    webhooks.webhook_queue(
        station=report.station,
        event="sighting.started",
        data={
            "sighting": sighting.pk,
            "report": report.number,
            "plate": plate,
            "started_at": sighting.started_at.isoformat(),
            "latitude": sighting.first_point.y,
            "longitude": sighting.first_point.x,
            "link": link,
        },
    )


# --- notifications -------------------------------------------------------------------------------


def notifications_create(
    *, users: Iterable[User], kind: str, message: str, params: dict[str, Any] | None = None, link: str = ""
) -> int:
    """One notification per user: a message key of cases.alerts.notification_texts and its parameters,
    rendered in each reader's language when shown; the site-language text is kept as a fallback."""
    params = params or {}
    title, body = notification_texts.site_text(message, params)
    rows = [
        Notification(
            user=user, kind=kind, message=message, params=params, title=title[:200], body=body, link=link[:200]
        )
        for user in users
    ]
    Notification.objects.bulk_create(rows)
    return len(rows)


def notifications_for(user: User, *, unread_only: bool = False) -> QuerySet[Notification]:
    qs = Notification.objects.filter(user=user)
    return qs.filter(read_at__isnull=True) if unread_only else qs


def notifications_unread_count(user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def notification_mark_read(*, user: User, notification_id: int) -> Notification:
    """Mark one of the user's own notifications read; another user's is "not found"."""
    notification = Notification.objects.get(pk=notification_id, user=user)
    if notification.read_at is None:
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=timezone.now())
        notification.refresh_from_db()
    return notification


def notifications_mark_all_read(*, user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())
