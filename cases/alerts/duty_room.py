"""The station duty room (值班室): displacement calls for armed bikes and rescue calls.

`duty_calls_raise`, an INGEST_HANDLERS entry run from the ingestion outbox, raises a call from
committed rows, so an alarm reaches the bike's registering station within seconds, even after a
Redis or worker outage: displacement (an armed bike moved far from where it was armed, reported
"movement", "stolen" or "power_cut"), rescue ("sos", "fall", "collision", "rollover") and conflict
(someone may be sending as that bike). Arming is the owner's (`vehicle_arm`) or the terminal's own
defence mode, whichever came first. One open call per bike and kind (a database constraint); alarms
replayed from a terminal's buffer are history, not calls. Steps are conditional updates. The rules
in full: docs/architecture.md#sightings-and-the-duty-room.
"""

import datetime
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Max, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.audit import audit_record
from accounts.models import Station, User
from cases.alerts import services as alerts
from cases.alerts import webhooks
from cases.models import DutyCall, Notification
from ebike_registry.problems import Problems
from tracking.alarm_kinds import alarm_label
from tracking.derived import Batch, displacement_alarms_raise
from tracking.models import Alarm, Terminal
from tracking.selectors.alarms import BatchAlarm, armed_terminals, batch_alarms
from vehicles.identifiers import normalize_phone, phone_problem
from vehicles.models import Owner, Vehicle

RESCUE_ALARMS = ["sos", "fall", "collision", "rollover"]
# Sent by a terminal only in its own defence mode: a displacement whatever our armed flag says.
DEFENCE_ALARMS = ["movement", "stolen"]
# A displacement only while the owner has armed the bike (an unarmed bike's battery is swapped daily).
ARMED_ALARMS = ["power_cut"]
CONFLICT_ALARMS = ["terminal_conflict"]

OPEN_STATUSES = [
    DutyCall.Status.NEW,
    DutyCall.Status.ACKNOWLEDGED,
    DutyCall.Status.CONFIRMED,
    DutyCall.Status.DISPATCHED,
]
# Duty-officer steps: action -> (statuses it may start from, status it leads to; None keeps it).
ACTIONS: dict[str, tuple[set[str], str | None]] = {
    "acknowledge": ({DutyCall.Status.NEW, DutyCall.Status.CONFIRMED}, None),
    "dispatch": ({DutyCall.Status.ACKNOWLEDGED, DutyCall.Status.CONFIRMED}, DutyCall.Status.DISPATCHED),
    "close": (
        {DutyCall.Status.ACKNOWLEDGED, DutyCall.Status.CONFIRMED, DutyCall.Status.DISPATCHED},
        DutyCall.Status.CLOSED,
    ),
}

# How the steps read on pages and in messages (the API takes the codes).
ACTION_LABELS = {
    "acknowledge": gettext_lazy("Acknowledge"),
    "dispatch": gettext_lazy("Dispatch"),
    "close": gettext_lazy("Close"),
}


# --- raising calls from the outbox ---------------------------------------------------------------

# A call for each alarm of the batch (tracking.selectors.alarms.batch_alarms, with its bike's
# station and registered state) that the rules below make one, the earliest per bike and kind.
_CALLS_SQL = """
INSERT INTO cases_dutycall (kind, station_id, alarm_id, vehicle_id, point, raised_at, status, note, created_at,
                            owner_answer)
SELECT DISTINCT ON (a.vehicle_id, k.kind)
       k.kind, a.station_id, a.id, a.vehicle_id, ST_SetSRID(ST_MakePoint(a.lon, a.lat), 4326)::geography, a.at, 'new',
       CASE WHEN k.kind = 'conflict' THEN a.note ELSE '' END, now(), ''
FROM unnest(%(alarm)s::bigint[], %(vehicle)s::bigint[], %(station)s::bigint[], %(registered)s::boolean[],
            %(kind)s::text[], %(source)s::text[], %(at)s::timestamptz[], %(received)s::timestamptz[],
            %(note)s::text[], %(lon)s::float8[], %(lat)s::float8[], %(armed_before)s::boolean[])
     AS a(id, vehicle_id, station_id, registered, kind, source, at, received_at, note, lon, lat, armed_before)
CROSS JOIN LATERAL (
    SELECT CASE WHEN a.kind = ANY(%(rescue)s) THEN 'rescue'
                WHEN a.kind = ANY(%(conflict)s) THEN 'conflict' ELSE 'displacement' END AS kind
) k
WHERE (a.at >= a.received_at - %(max_age)s OR a.kind = ANY(%(conflict)s))
  AND (
      (a.source = 'terminal' AND a.kind = ANY(%(rescue)s))
      OR a.kind = ANY(%(conflict)s)
      OR (a.registered AND (
          (a.source = 'derived' AND a.kind = 'displacement')
          OR (a.source = 'terminal' AND a.kind = ANY(%(defence)s))
          OR (a.source = 'terminal' AND a.kind = ANY(%(armed)s) AND a.armed_before)))
  )
  AND NOT EXISTS (SELECT 1 FROM cases_dutycall d WHERE d.alarm_id = a.id)
  AND NOT EXISTS (
      SELECT 1 FROM cases_dutycall c
      WHERE c.vehicle_id = a.vehicle_id AND c.kind = k.kind
        AND c.raised_at <= a.at AND (c.closed_at IS NULL OR c.closed_at >= a.at))
ORDER BY a.vehicle_id, k.kind, a.at
ON CONFLICT DO NOTHING
RETURNING id
"""


def duty_calls_raise(batch: Batch) -> list[int]:
    """INGEST_HANDLERS entry: displacement and rescue calls from the batch's positions and alarms."""
    with transaction.atomic():
        _displacements_raise(batch)
        ids = _calls_insert(
            batch_alarms(terminal_ids=batch.terminal_ids, first=batch.first_device_time, last=batch.last_device_time)
        )
        for call in DutyCall.objects.filter(pk__in=ids).select_related("vehicle__owner", "station").order_by("pk"):
            _announce(call)
    return ids


def _displacements_raise(batch: Batch) -> None:
    """The derived displacement alarms (tracking.derived.displacement_alarms_raise) of the batch's
    armed registered bikes without an open displacement call, each compared with where it was when
    armed or when its last displacement call was closed."""
    armed = armed_terminals(batch.terminal_ids)
    if not armed:
        return
    registered = set(
        Vehicle.objects.filter(pk__in=armed.values(), status=Vehicle.Status.REGISTERED).values_list("pk", flat=True)
    )
    calls = DutyCall.objects.filter(vehicle_id__in=registered, kind=DutyCall.Kind.DISPLACEMENT).order_by()
    calling = set(calls.filter(status__in=OPEN_STATUSES).values_list("vehicle_id", flat=True))
    closed = dict(calls.values("vehicle_id").annotate(last=Max("closed_at")).values_list("vehicle_id", "last"))
    floors = {t: closed.get(v) for t, v in armed.items() if v in registered and v not in calling}
    displacement_alarms_raise(batch, since_floors=floors, metres=settings.ARMED_DISPLACEMENT_METRES)


def _calls_insert(alarms: list[BatchAlarm]) -> list[int]:
    """The calls _CALLS_SQL raises from these alarms; their ids."""
    if not alarms:
        return []
    bikes = {
        pk: (station_id, status == Vehicle.Status.REGISTERED)
        for pk, station_id, status in Vehicle.objects.filter(pk__in={a.vehicle_id for a in alarms}).values_list(
            "pk", "station_id", "status"
        )
    }
    params: dict[str, Any] = {
        "alarm": [a.id for a in alarms],
        "vehicle": [a.vehicle_id for a in alarms],
        "station": [bikes[a.vehicle_id][0] for a in alarms],
        "registered": [bikes[a.vehicle_id][1] for a in alarms],
        "kind": [a.kind for a in alarms],
        "source": [a.source for a in alarms],
        "at": [a.at for a in alarms],
        "received": [a.received_at for a in alarms],
        "note": [a.note for a in alarms],
        "lon": [a.longitude for a in alarms],
        "lat": [a.latitude for a in alarms],
        "armed_before": [a.armed_before for a in alarms],
        "rescue": RESCUE_ALARMS,
        "defence": DEFENCE_ALARMS,
        "armed": ARMED_ALARMS,
        "conflict": CONFLICT_ALARMS,
        "max_age": datetime.timedelta(minutes=settings.DUTY_ALARM_MAX_AGE_MINUTES),
    }
    with connection.cursor() as cursor:
        cursor.execute(_CALLS_SQL, params)
        return [row[0] for row in cursor.fetchall()]


def duty_officers(station_id: int) -> list[User]:
    return list(alerts.users_with_perm("cases.change_dutycall").filter(station_id=station_id))


def _announce(call: DutyCall) -> None:
    plate = alerts.plate_number(call.vehicle_id) or call.vehicle.frame_number
    alarm_kind = Alarm.objects.filter(pk=call.alarm_id).values_list("kind", flat=True).first() or ""
    link = reverse("alerts:duty")
    if call.kind == DutyCall.Kind.RESCUE:
        kind, message = Notification.Kind.RESCUE, "rescue"
    elif call.kind == DutyCall.Kind.CONFLICT:
        kind, message = Notification.Kind.CONFLICT, "conflict"
    else:
        kind, message = Notification.Kind.DISPLACEMENT, "displacement"
    params = {"plate": plate, "alarm": alarm_kind, "time": call.raised_at.isoformat()}
    alerts.notifications_create(
        users=duty_officers(call.station_id), kind=kind, message=message, params=params, link=link
    )
    owner_user = call.vehicle.owner.user
    if call.kind == DutyCall.Kind.DISPLACEMENT and owner_user is not None and owner_user.is_active:
        alerts.notifications_create(
            users=[owner_user],
            kind=kind,
            message="displacement_owner",
            params={"plate": plate},
            link=reverse("alerts:my-alarms"),
        )
    webhooks.webhook_queue(
        station=call.station,
        event=f"duty_call.{call.kind}",
        data={
            "call": call.pk,
            "kind": call.kind,
            "alarm": alarm_kind,
            "plate": plate,
            "raised_at": call.raised_at.isoformat(),
            "latitude": call.point.y if call.point else None,
            "longitude": call.point.x if call.point else None,
            "link": link,
        },
    )


# --- the duty officer's steps --------------------------------------------------------------------


def _station_call(user: User, call_id: int, *, lock: bool = False) -> DutyCall:
    if not user.has_perm("cases.change_dutycall"):
        raise PermissionDenied(_("Only duty officers handle duty-room calls."))
    qs = DutyCall.objects.select_for_update() if lock else DutyCall.objects
    call = qs.get(pk=call_id)
    if call.station_id != user.station_id:
        raise PermissionDenied(_("This call belongs to another station's duty room."))
    return call


NOTE_LENGTH = 500  # a note on a call, by the duty room or the owner


def call_note_check(note: str) -> str:
    """The note stripped; one too long to keep whole is refused, never cut."""
    note = note.strip()
    if len(note) > NOTE_LENGTH:
        raise ValidationError({"note": _("Keep the note under 500 characters.")})
    return note


def duty_call_act(*, user: User, call_id: int, action: str, note: str = "") -> DutyCall:
    """Acknowledge, dispatch or close a call. Steps out of order are refused naming the action."""
    if action not in ACTIONS:
        raise ValidationError(
            {"action": _("Unknown action %(a)s; use acknowledge, dispatch or close.") % {"a": action}}
        )
    note = call_note_check(note)
    with transaction.atomic():
        call = _station_call(user, call_id, lock=True)
        _sources, target = ACTIONS[action]
        if not _allowed(call, action):
            raise ValidationError(
                {
                    "action": _("A call that is %(status)s cannot be given the step %(action)s.")
                    % {"status": call.get_status_display(), "action": ACTION_LABELS[action]}
                }
            )
        if action == "close" and not note:
            raise ValidationError({"note": _("Say how the call ended before closing it.")})
        now = timezone.now()
        changes: dict[str, Any] = {"handled_by": user}
        if action == "acknowledge":
            changes["acknowledged_at"] = now
            changes["status"] = DutyCall.Status.ACKNOWLEDGED if call.status == DutyCall.Status.NEW else call.status
        elif action == "dispatch":
            changes.update(status=target, dispatched_at=now)
        else:
            changes.update(status=target, closed_at=now)
        if note:
            stamp = f"[{timezone.localtime(now):%Y-%m-%d %H:%M} {user.get_username()} {action}] {note}"
            changes["note"] = f"{call.note}\n{stamp}".strip()
        updated = DutyCall.objects.filter(pk=call.pk, status=call.status).update(**changes)
        if updated != 1:
            raise ValidationError({"action": _("The call was changed by someone else a moment ago; reload it.")})
        alarm_status = Alarm.Status.CLOSED if action == "close" else Alarm.Status.ACKNOWLEDGED
        Alarm.objects.filter(pk=call.alarm_id).exclude(status=Alarm.Status.CLOSED).update(
            status=alarm_status, handled_by=user, handled_at=now
        )
        audit_record(user=user, action=f"duty_call.{action}", object_type="duty_call", object_id=call.pk)
        call.refresh_from_db()
        return call


def duty_queue(*, station: Station | None, include_closed: bool = False) -> QuerySet[DutyCall]:
    """A station's calls, newest first; open ones only unless asked, and then the calls closed in
    the last DUTY_CLOSED_DAYS days only: the duty room is today's work, not an archive of owners."""
    qs = DutyCall.objects.filter(station=station).select_related(
        "vehicle__owner", "vehicle__terminal__last_position", "handled_by"
    )
    if include_closed:
        recent = timezone.now() - datetime.timedelta(days=settings.DUTY_CLOSED_DAYS)
        qs = qs.filter(Q(status__in=OPEN_STATUSES) | Q(closed_at__gte=recent))
    else:
        qs = qs.filter(status__in=OPEN_STATUSES)
    return qs.order_by("-created_at", "-pk")


@dataclass(frozen=True)
class ResponseTimes:
    acknowledged_s: float | None
    closed_s: float | None


def response_times(call: DutyCall) -> ResponseTimes:
    def since(moment: datetime.datetime | None) -> float | None:
        return None if moment is None else round((moment - call.created_at).total_seconds(), 1)

    return ResponseTimes(acknowledged_s=since(call.acknowledged_at), closed_s=since(call.closed_at))


# --- the owner's side ----------------------------------------------------------------------------


def owner_of(user: User) -> Owner:
    owner = Owner.objects.filter(user_id=user.pk).first()
    if owner is None:
        raise PermissionDenied(_("Only a bike owner whose login is linked to their registration can do this."))
    return owner


def vehicle_arm(*, user: User, vehicle_id: int, armed: bool) -> Terminal:
    """设防 / 撤防. Only the owner, only their own bike with a terminal; re-arming moves the anchor."""
    owner = owner_of(user)
    vehicle = Vehicle.objects.get(pk=vehicle_id)
    if vehicle.owner_id != owner.pk:
        raise PermissionDenied(_("Owners can arm only their own bikes."))
    terminal = Terminal.objects.filter(vehicle=vehicle, active=True).first()
    if terminal is None:
        raise ValidationError({"vehicle": _("This bike has no anti-theft terminal; a counter can fit one.")})
    if armed and vehicle.status != Vehicle.Status.REGISTERED:
        raise ValidationError(
            {"armed": _("A bike that is %(status)s cannot be armed.") % {"status": vehicle.get_status_display()}}
        )
    if armed and not terminal.positioning_enabled:
        raise ValidationError(
            {"armed": _("Positioning is switched off on this bike's terminal; switch it on to arm the bike.")}
        )
    if terminal.armed == armed:
        return terminal
    with transaction.atomic():
        updated = Terminal.objects.filter(pk=terminal.pk, armed=not armed).update(
            armed=armed, armed_changed_at=timezone.now()
        )
        if updated != 1:
            raise ValidationError({"armed": _("The bike was armed or disarmed a moment ago; reload the page.")})
        audit_record(
            user=user,
            action="terminal.arm" if armed else "terminal.disarm",
            object_type="vehicle",
            object_id=vehicle.pk,
        )
    terminal.refresh_from_db()
    return terminal


def owner_calls(user: User) -> QuerySet[DutyCall]:
    """The owner's displacement calls, newest first."""
    owner = owner_of(user)
    return (
        DutyCall.objects.filter(vehicle__owner=owner, kind=DutyCall.Kind.DISPLACEMENT)
        .select_related("vehicle")
        .order_by("-created_at", "-pk")
    )


def duty_call_owner_answer(*, user: User, call_id: int, answer: str, note: str = "") -> DutyCall:
    """The owner confirms a displacement (a theft: report it next) or dismisses it (it was them:
    the bike is disarmed so it does not fire again).
    """
    owner = owner_of(user)
    if answer not in DutyCall.OwnerAnswer.values:
        raise ValidationError({"answer": _("Answer confirmed or dismissed.")})
    note = call_note_check(note)
    with transaction.atomic():
        call = DutyCall.objects.select_for_update(of=("self",)).select_related("vehicle", "station").get(pk=call_id)
        if call.vehicle.owner_id != owner.pk:
            raise PermissionDenied(_("This alarm is about someone else's bike."))
        if call.kind != DutyCall.Kind.DISPLACEMENT:
            raise ValidationError({"answer": _("Only displacement alarms are answered by the owner.")})
        if call.owner_answer:
            raise ValidationError({"answer": _("You already answered this alarm.")})
        if call.status not in OPEN_STATUSES:
            raise ValidationError({"answer": _("The duty room already closed this alarm.")})
        now = timezone.now()
        changes: dict[str, Any] = {"owner_answer": answer, "owner_answered_at": now}
        if call.status in (DutyCall.Status.NEW, DutyCall.Status.ACKNOWLEDGED):
            if answer == DutyCall.OwnerAnswer.CONFIRMED:
                changes["status"] = DutyCall.Status.CONFIRMED
            else:
                changes.update(status=DutyCall.Status.DISMISSED, closed_at=now)
        if note:
            stamp = f"[{timezone.localtime(now):%Y-%m-%d %H:%M} owner {answer}] {note}"
            changes["note"] = f"{call.note}\n{stamp}".strip()
        DutyCall.objects.filter(pk=call.pk, owner_answer="").update(**changes)
        if answer == DutyCall.OwnerAnswer.DISMISSED:
            Terminal.objects.filter(vehicle_id=call.vehicle_id, armed=True).update(armed=False, armed_changed_at=now)
        plate = alerts.plate_number(call.vehicle_id) or call.vehicle.frame_number
        alerts.notifications_create(
            users=duty_officers(call.station_id),
            kind=Notification.Kind.DISPLACEMENT,
            message="owner_confirmed" if answer == DutyCall.OwnerAnswer.CONFIRMED else "owner_dismissed",
            params={"plate": plate},
            link=reverse("alerts:duty"),
        )
        webhooks.webhook_queue(
            station=call.station, event="duty_call.owner_answer", data={"call": call.pk, "answer": answer}
        )
        audit_record(user=user, action=f"duty_call.owner_{answer}", object_type="duty_call", object_id=call.pk)
        call.refresh_from_db()
        return call


def theft_report_prompt(call: DutyCall) -> dict[str, Any]:
    """What an online theft report after a confirmed displacement starts from (POST theft-reports)."""
    terminal = Terminal.objects.filter(vehicle_id=call.vehicle_id).first()
    last_seen = terminal.armed_changed_at if terminal and terminal.armed_changed_at else call.raised_at
    return {
        "channel": "online",
        "plate": alerts.plate_number(call.vehicle_id),
        "frame_number": call.vehicle.frame_number,
        "last_seen_at": min(last_seen, call.raised_at).isoformat(),
        "missing_at": call.raised_at.isoformat(),
        "latitude": call.point.y if call.point else None,
        "longitude": call.point.x if call.point else None,
    }


def owner_emergency_contact_set(*, user: User, name: str, phone: str) -> Owner:
    """The person the duty room calls after a rescue alarm. Both empty clears it."""
    owner = owner_of(user)
    name, phone = name.strip(), normalize_phone(phone)
    problems = Problems()
    if phone and not name:
        problems.add("name", _("Give the emergency contact's name."))
    if len(name) > 50:
        problems.add("name", _("Keep the name under 50 characters."))
    if name and not phone:
        problems.add("phone", _("Give the emergency contact's mobile number."))
    elif phone:
        problems.add("phone", phone_problem(phone))
        if phone == owner.phone:
            problems.add("phone", _("Give someone else's number, not your own."))
    problems.raise_if_any()
    Owner.objects.filter(pk=owner.pk).update(emergency_contact_name=name, emergency_contact_phone=phone)
    audit_record(user=user, action="owner.emergency_contact", object_type="owner", object_id=owner.pk)
    owner.refresh_from_db()
    return owner


def duty_call_cards(calls: list[DutyCall], *, full_identity: bool) -> list[dict[str, Any]]:
    """What the duty room sees of each call: plate, alarm, positions, the owner and their emergency
    contact (phones in full for officers allowed to see them, else masked), response times.
    """
    from vehicles.identifiers import mask_phone
    from vehicles.models import Plate

    vehicle_ids = {c.vehicle_id for c in calls}
    issued = Plate.objects.filter(vehicle_id__in=vehicle_ids, status=Plate.Status.ISSUED)
    plates: dict[int, str] = {}
    plate_kinds: dict[int, str] = {}
    for vehicle_id, number, kind in issued.values_list("vehicle_id", "number", "kind"):
        plates[vehicle_id], plate_kinds[vehicle_id] = number, kind
    alarm_kinds = dict(Alarm.objects.filter(pk__in=[c.alarm_id for c in calls]).values_list("pk", "kind"))

    def phone(value: str, call: DutyCall) -> str:
        shown = full_identity and call.status in OPEN_STATUSES  # a closed call needs no phoning
        return value if shown or not value else mask_phone(value)

    cards = []
    for call in calls:
        owner = call.vehicle.owner
        terminal = getattr(call.vehicle, "terminal", None)
        # Where the bike is now, only while the call is open: a closed call is no duty to follow it.
        is_open = call.status in OPEN_STATUSES
        last = getattr(terminal, "last_position", None) if terminal is not None and is_open else None
        times = response_times(call)
        cards.append(
            {
                "call": call,
                "id": call.pk,
                "kind": call.kind,
                "kind_display": call.get_kind_display(),
                "status": call.status,
                "status_display": call.get_status_display(),
                "alarm": alarm_label(alarm_kinds.get(call.alarm_id, "")),
                "alarm_kind": alarm_kinds.get(call.alarm_id, ""),
                "plate": plates.get(call.vehicle_id, ""),
                "plate_kind": plate_kinds.get(call.vehicle_id, ""),  # drawn in the plate's colours
                "vehicle_id": call.vehicle_id,
                "vehicle": f"{call.vehicle.brand} {call.vehicle.model_name} {call.vehicle.colour}",
                "raised_at": call.raised_at,
                "created_at": call.created_at,
                "acknowledged_at": call.acknowledged_at,
                "dispatched_at": call.dispatched_at,
                "closed_at": call.closed_at,
                "latitude": call.point.y if call.point else None,
                "longitude": call.point.x if call.point else None,
                "now_latitude": last.point.y if last else None,
                "now_longitude": last.point.x if last else None,
                "now_at": last.device_time if last else None,
                "owner_name": owner.name,
                "owner_phone": phone(owner.phone, call),
                "emergency_contact_name": owner.emergency_contact_name,
                "emergency_contact_phone": phone(owner.emergency_contact_phone, call),
                "owner_answer": call.owner_answer,
                "owner_answered_at": call.owner_answered_at,
                "handled_by": call.handled_by.get_username() if call.handled_by else "",
                "note": call.note,
                "acknowledged_after_s": times.acknowledged_s,
                "closed_after_s": times.closed_s,
                "actions": [action for action in ACTIONS if _allowed(call, action)],
            }
        )
    return cards


def _allowed(call: DutyCall, action: str) -> bool:
    """Whether the step may be taken now: from its statuses, and acknowledging comes first."""
    sources, _target = ACTIONS[action]
    if call.status not in sources:
        return False
    if action == "acknowledge":
        return call.acknowledged_at is None
    return call.acknowledged_at is not None
