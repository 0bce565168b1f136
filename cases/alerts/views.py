"""Pages: my notifications, the station duty-room queue, and the owner's arming and alarms.

Thin: every change goes through cases.alerts.services / cases.alerts.duty_room, the same functions the API calls.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.audit import audit_record
from accounts.request_types import AuthedHttpRequest
from cases.alerts import duty_room as duty
from cases.alerts import notification_texts
from cases.alerts import services as alerts
from cases.models import DutyCall, Notification
from tracking.map_tiles import map_config, map_strings
from tracking.models import Terminal
from vehicles.models import Vehicle
from vehicles.selectors import can_see_full_identity, plate_numbers


def _errors(exc: ValidationError) -> str:
    return " ".join(m for messages_ in exc.message_dict.values() for m in messages_)


# --- notifications -------------------------------------------------------------------------------


@login_required
@require_GET
def notifications(request: AuthedHttpRequest) -> HttpResponse:
    items = list(alerts.notifications_for(request.user)[:100])
    for item in items:  # in the reader's language, whatever language the sender ran in
        item.shown_title, item.shown_body = notification_texts.notification_text(item)  # type: ignore[attr-defined]  # for the template
    unread = sum(1 for n in items if n.read_at is None)
    return render(request, "cases/notifications.html", {"items": items, "unread": unread})


@login_required
@require_POST
def notification_read(request: AuthedHttpRequest, notification_id: int) -> HttpResponse:
    try:
        notification = alerts.notification_mark_read(user=request.user, notification_id=notification_id)
    except Notification.DoesNotExist as exc:  # someone else's, or gone
        raise Http404 from exc
    target = request.POST.get("next") or ""
    if target == "link" and notification.link and url_has_allowed_host_and_scheme(notification.link, None):
        return redirect(notification.link)
    return redirect("alerts:notifications")


@login_required
@require_POST
def notifications_read_all(request: AuthedHttpRequest) -> HttpResponse:
    alerts.notifications_mark_all_read(user=request.user)
    return redirect("alerts:notifications")


# --- duty room -----------------------------------------------------------------------------------


@login_required
@permission_required("cases.change_dutycall", raise_exception=True)
@require_GET
def duty_room(request: AuthedHttpRequest) -> HttpResponse:
    include_closed = request.GET.get("closed") == "1"
    calls = list(duty.duty_queue(station=request.user.station, include_closed=include_closed)[:200])
    cards = duty.duty_call_cards(calls, full_identity=can_see_full_identity(request.user))
    audit_record(
        action="duty_queue.view",
        object_type="station",
        object_id=request.user.station_id or "",
        result_count=len(cards),
        request=request,
    )
    return _duty_page(request, cards, include_closed=include_closed)


def _duty_page(request: HttpRequest, cards: list[dict], *, include_closed: bool, status: int = 200) -> HttpResponse:
    """The queue, with its calls on a map (where each was raised, and the bike's latest position)."""
    calls = [
        {
            "id": c["id"],
            "kind": c["kind"],
            "title": f"{c['kind_display']} {c['plate'] or ''}".strip(),
            "alarm": c["alarm"],
            "status": c["status_display"],
            "at": [c["latitude"], c["longitude"]] if c["latitude"] is not None else None,
            "now": [c["now_latitude"], c["now_longitude"]] if c["now_latitude"] is not None else None,
        }
        for c in cards
    ]
    duty_map = {
        "config": map_config(),
        "strings": map_strings() | {"raised_here": _("raised here"), "now_here": _("the bike's latest position")},
        "calls": calls,
    }
    context = {"cards": cards, "include_closed": include_closed, "duty_map": duty_map}
    return render(request, "cases/duty.html", context, status=status)


@login_required
@permission_required("cases.change_dutycall", raise_exception=True)
@require_POST
def duty_step(request: AuthedHttpRequest, call_id: int, action: str) -> HttpResponse:
    try:
        duty.duty_call_act(
            user=request.user,
            call_id=call_id,
            action=action,
            note=request.POST.get("note", ""),
        )
    except DutyCall.DoesNotExist as exc:
        raise Http404 from exc
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        calls = list(duty.duty_queue(station=request.user.station, include_closed=True)[:200])
        cards = duty.duty_call_cards(calls, full_identity=can_see_full_identity(request.user))
        return _duty_page(request, cards, include_closed=True, status=400)
    messages.success(
        request, _("Call %(id)s: %(action)s recorded.") % {"id": call_id, "action": duty.ACTION_LABELS[action]}
    )
    return redirect("alerts:duty")


# --- owner ---------------------------------------------------------------------------------------


def _owner_page(request: AuthedHttpRequest, *, status: int = 200, contact_errors: dict | None = None) -> HttpResponse:
    owner = duty.owner_of(request.user)
    vehicles = list(owner.vehicles.exclude(status=Vehicle.Status.DEREGISTERED).order_by("registered_at"))
    terminals = {t.vehicle_id: t for t in Terminal.objects.filter(vehicle__in=vehicles, active=True)}
    plates = plate_numbers(v.pk for v in vehicles)
    bikes = [{"vehicle": v, "terminal": terminals.get(v.pk), "plate": plates.get(v.pk, "")} for v in vehicles]
    calls = list(duty.owner_calls(request.user)[:20])
    for call in calls:
        call.plate = plates.get(call.vehicle_id, "")  # type: ignore[attr-defined]  # for the template
    context = {
        "owner": owner,
        "bikes": bikes,
        "calls": calls,
        "open_statuses": duty.OPEN_STATUSES,
        "contact_errors": contact_errors or {},
        "contact": request.POST if contact_errors else None,
    }
    return render(request, "cases/owner_alarms.html", context, status=status)


@login_required
@require_GET
def owner_alarms(request: AuthedHttpRequest) -> HttpResponse:
    return _owner_page(request)


@login_required
@require_POST
def owner_arm(request: AuthedHttpRequest, vehicle_id: int) -> HttpResponse:
    armed = request.POST.get("armed")
    if armed not in ("0", "1"):
        messages.error(request, _("Choose arm or disarm."))
        return _owner_page(request, status=400)
    try:
        duty.vehicle_arm(user=request.user, vehicle_id=vehicle_id, armed=armed == "1")
    except Vehicle.DoesNotExist as exc:
        raise Http404 from exc
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return _owner_page(request, status=400)
    messages.success(request, _("Your bike is armed.") if armed == "1" else _("Your bike is disarmed."))
    return redirect("alerts:my-alarms")


@login_required
@require_POST
def owner_answer(request: AuthedHttpRequest, call_id: int) -> HttpResponse:
    answer = request.POST.get("answer", "")
    try:
        call = duty.duty_call_owner_answer(
            user=request.user,
            call_id=call_id,
            answer=answer,
            note=request.POST.get("note", ""),
        )
    except DutyCall.DoesNotExist as exc:
        raise Http404 from exc
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return _owner_page(request, status=400)
    if call.owner_answer == DutyCall.OwnerAnswer.CONFIRMED:
        messages.warning(request, _("The duty room has been told. Report the theft now so the case can start."))
        return _report_theft_redirect(call)
    messages.success(request, _("Alarm dismissed; your bike is disarmed."))
    return redirect("alerts:my-alarms")


def _report_theft_redirect(call: DutyCall) -> HttpResponse:
    """To the online theft report, which starts from what the alarm tells: where the bike was parked, when."""
    try:
        return redirect(f"{reverse('web:owner-report-theft')}?vehicle={call.vehicle_id}&call={call.pk}")
    except NoReverseMatch:
        return redirect("alerts:my-alarms")


@login_required
@require_POST
def owner_contact(request: AuthedHttpRequest) -> HttpResponse:
    try:
        duty.owner_emergency_contact_set(
            user=request.user,
            name=request.POST.get("name", ""),
            phone=request.POST.get("phone", ""),
        )
    except ValidationError as exc:
        return _owner_page(request, status=400, contact_errors=exc.message_dict)
    messages.success(request, _("Emergency contact saved."))
    return redirect("alerts:my-alarms")
