"""How long the cases app keeps positions and what is derived from them (tracking.retention runs it)."""

from django.db.models import Q

from cases.alerts.duty_room import OPEN_STATUSES
from cases.models import DutyCall, Notification, Sighting, WebhookDelivery
from tracking.models import Alarm
from tracking.retention import Hold, Keep, Rule

RETENTION = [
    Rule(
        Sighting,
        "last_at",
        "SIGHTING_RETENTION_DAYS",
        Hold.VEHICLE,
        "where a stolen bike was seen moving",
        hold_field="vehicle",
    ),
    Rule(
        DutyCall,
        "raised_at",
        "DUTY_CALL_RETENTION_DAYS",
        Hold.VEHICLE,
        "where an armed bike moved or a rider called for help",
        hold_field="vehicle",
        only=~Q(status__in=OPEN_STATUSES),  # an open call stays until the duty room closes it
    ),
    Rule(
        Notification,
        "created_at",
        "NOTIFICATION_RETENTION_DAYS",
        Hold.NONE,
        "a sighting or alarm told to an officer, with its place",
    ),
    Rule(
        WebhookDelivery,
        "created_at",
        "WEBHOOK_RETENTION_DAYS",
        Hold.NONE,
        "a sighting or call sent to a station's system, with its rounded position",
        # A message still pending is sent again by the beat sweep: it stays.
        only=Q(delivered_at__isnull=False) | Q(gave_up_at__isnull=False),
    ),
]

RETENTION_KEEP = [
    Keep(
        Alarm,
        lambda: Q(pk__in=DutyCall.objects.filter(status__in=OPEN_STATUSES).values("alarm_id")),
        "the duty room shows the alarm of an open call",
    ),
]

RETENTION_EXEMPT = {
    "cases.TheftReport": (
        "the place of the theft as the reporter told it is part of the report, kept with the case file; "
        "it is no trace of the bike"
    ),
}
