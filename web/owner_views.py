"""Owner pages: my bikes, a bike's policy, where my bike is, my insurance claims, and reporting a
theft online (filled from a confirmed alarm when it starts from one).

An owner is the person whose Owner record has `user` set to their login (Owner.user, set by the
counter or an administrator when the owner asks for an account): the smallest link, no new model.
Every page reads only the logged-in owner's own records; another bike answers 403.
"""

import datetime
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from accounts.audit import audit_record, client_ip
from accounts.request_types import AuthedHttpRequest
from cases.alerts import duty_room as duty
from cases.claims import services as claims
from cases.models import CLOSED_STATUSES, MISSING_STATUSES, ClaimStep, DutyCall, InsuranceClaim, TheftReport
from cases.tracing import access
from cases.tracing.selectors import POINT_CAP_MAX
from cases.workflow import geocoding
from cases.workflow import services as case_services
from ebike_registry.forms import form_attempt, parsed_values
from tracking.coords import to_display
from tracking.map_tiles import map_config, map_strings
from tracking.models import Terminal
from vehicles.models import Owner, Plate, Vehicle
from vehicles.services.insurance import policy_payout_amount
from web.owner_forms import OwnerTheftReportForm


def _owner(request: AuthedHttpRequest) -> Owner:
    owner = Owner.objects.filter(user_id=request.user.pk).first()
    if owner is None:
        raise PermissionDenied(_("These pages are for bike owners whose login is linked to their registration."))
    return owner


def _own_vehicle(owner: Owner, vehicle_id: int) -> Vehicle:
    vehicle = get_object_or_404(Vehicle.objects.select_related("owner", "station"), pk=vehicle_id)
    if vehicle.owner_id != owner.pk:
        raise PermissionDenied(_("This bike is not registered to you."))
    return vehicle


def _plates(vehicle_ids: list[int]) -> dict[int, Plate]:
    return {p.vehicle_id: p for p in Plate.objects.filter(vehicle_id__in=vehicle_ids, status=Plate.Status.ISSUED)}


def _terminals(vehicle_ids: list[int]) -> dict[int | None, Terminal]:
    return {t.vehicle_id: t for t in Terminal.objects.filter(vehicle_id__in=vehicle_ids, active=True)}


@login_required
@require_GET
def my_bikes(request: AuthedHttpRequest) -> HttpResponse:
    """Each bike with what holds today: insurance through its whole life (in force, claimed with
    the amount and date, expired), arming, and any alarm still open."""
    owner = _owner(request)
    vehicles = list(owner.vehicles.exclude(status=Vehicle.Status.DEREGISTERED).order_by("registered_at"))
    bikes = _bike_rows(request, owner, vehicles)
    alarms = [b for b in bikes if b["alarm"] is not None]
    return render(request, "owner/bikes.html", {"owner": owner, "bikes": bikes, "alarms": alarms})


def _bike_rows(request: AuthedHttpRequest, owner: Owner, vehicles: list[Vehicle]) -> list[dict[str, Any]]:
    ids = [v.pk for v in vehicles]
    plates = _plates(ids)
    standing = claims.owner_policies_standing(owner_id=owner.pk, vehicle_ids=ids)
    terminals = _terminals(ids)
    reports = {
        r.vehicle_id: r for r in TheftReport.objects.filter(vehicle_id__in=ids).exclude(status__in=CLOSED_STATUSES)
    }
    calls = duty.owner_calls(request.user).filter(status__in=duty.OPEN_STATUSES)
    open_calls: dict[int, DutyCall] = {}
    for call in calls:  # newest first: the newest open call of each bike
        open_calls.setdefault(call.vehicle_id, call)
    return [
        {
            "vehicle": v,
            "plate": plates.get(v.pk),
            "insurance": standing[v.pk][0] if standing[v.pk] else None,
            "terminal": terminals.get(v.pk),
            "report": reports.get(v.pk),
            "alarm": open_calls.get(v.pk),
        }
        for v in vehicles
    ]


@login_required
@require_GET
def policy(request: AuthedHttpRequest, vehicle_id: int) -> HttpResponse:
    owner = _owner(request)
    vehicle = _own_vehicle(owner, vehicle_id)
    standing = claims.owner_policies_standing(owner_id=owner.pk, vehicle_ids=[vehicle.pk])[vehicle.pk]
    today = timezone.localdate()
    payouts = {
        s.policy.pk: policy_payout_amount(policy=s.policy, on=today)
        for s in standing
        if s.state == "in_force" and s.policy is not None
    }
    return render(
        request,
        "owner/policy.html",
        {
            "vehicle": vehicle,
            "plate": _plates([vehicle.pk]).get(vehicle.pk),
            "standing": [(s, payouts.get(s.policy.pk) if s.policy else None) for s in standing],
        },
    )


@login_required
@require_GET
def my_claims(request: AuthedHttpRequest) -> HttpResponse:
    """The owner's insurance claims, each with its steps, in the owner's language."""
    if not request.user.has_perm("cases.list_own_claims"):
        raise PermissionDenied(_("These pages are for bike owners whose login is linked to their registration."))
    owner = _owner(request)
    items = list(claims.owner_claims(owner_id=owner.pk))
    plates = _plates([c.policy.vehicle_id for c in items])
    rows = [
        {
            "claim": c,
            "plate": plates.get(c.policy.vehicle_id),
            "steps": [(step, claims.step_note_text(step)) for step in c.steps.all()],
            "rejection_reason": claims.reason_text(c.rejection_reason),
        }
        for c in items
    ]
    audit_record(request=request, action="claim.list", object_type="owner", object_id=owner.pk, result_count=len(rows))
    return render(request, "owner/claims.html", {"owner": owner, "rows": rows})


@login_required
@require_GET
def my_claim(request: AuthedHttpRequest, claim_id: int) -> HttpResponse:
    """One claim as its owner reads it: amount, status, steps, the documents to bring."""
    owner = _owner(request)
    claim = get_object_or_404(
        InsuranceClaim.objects.select_related("report__station", "policy__vehicle", "policy__scheme", "policy__owner"),
        pk=claim_id,
    )
    if not request.user.has_perm("cases.view_own_claim", claim):
        raise PermissionDenied(_("This claim is not about one of your policies."))
    audit_record(request=request, action="claim.view", object_type="insurance_claim", object_id=claim.pk)
    steps = ClaimStep.objects.filter(claim=claim).order_by("at", "pk")
    context = {
        "owner": owner,
        "claim": claim,
        "plate": _plates([claim.policy.vehicle_id]).get(claim.policy.vehicle_id),
        "steps": [(step, claims.step_note_text(step)) for step in steps],
        "documents": claims.document_names(claim.documents),
        "required_documents": claims.document_names(claims.REQUIRED_DOCUMENTS),
        "rejection_reason": claims.reason_text(claim.rejection_reason),
        "settlement_pending": claims.settlement_pending(claim),
    }
    return render(request, "owner/claim.html", context)


@login_required
@require_GET
def position(request: AuthedHttpRequest, vehicle_id: int) -> HttpResponse:
    """Where is my bike: the newest plausible fix, through the audited access rules."""
    owner = _owner(request)
    vehicle = _own_vehicle(owner, vehicle_id)
    view = access.vehicle_position_view(user=request.user, vehicle_id=vehicle.pk, ip=client_ip(request))
    config = map_config()
    context = {
        "vehicle": vehicle,
        "plate": _plates([vehicle.pk]).get(vehicle.pk),
        "position": view.position,
        "map_config": config,
        "map_strings": map_strings(),
        "has_terminal": Terminal.objects.filter(vehicle=vehicle).exists(),
    }
    return render(request, "owner/position.html", context | _marker(view.position, config["datum"]))


def _marker(position: Any, datum: str) -> dict[str, Any]:
    """The map's dot for the newest fix (None without one), and the place written out too: with no
    tile server the map is a dot on a grey field."""
    if position is None:
        return {"marker": None, "place": None}
    lat, lon = to_display(position.latitude, position.longitude, datum)
    place = geocoding.place_near(position.latitude, position.longitude)
    return {"marker": {"lat": round(lat, 6), "lon": round(lon, 6)}, "place": place}


@login_required
@require_http_methods(["GET", "POST"])
def report_theft(request: AuthedHttpRequest) -> HttpResponse:
    """Report a theft online: cases.workflow.services.report_take with channel "online"; every problem at
    once next to its field, what was typed kept."""
    owner = _owner(request)
    vehicles = list(owner.vehicles.filter(status=Vehicle.Status.REGISTERED).order_by("registered_at"))
    from_alarm, initial = _report_initial(request, owner)
    form = OwnerTheftReportForm(request.POST or None, vehicles=_bike_choices(vehicles), initial=initial)
    if request.method == "POST":
        user: Any = request.user
        values = _online_report(owner, vehicles, parsed_values(form))
        report = form_attempt(
            page=form,
            check=lambda: case_services.report_take_check(user=user, values=values),
            write=lambda: case_services.report_take(user=user, **case_services.report_take_arguments(values)),
        )
        if report is not None:
            return redirect("web:owner-report", report_id=report.pk)
    context = {"form": form, "owner": owner, "has_bikes": bool(vehicles), "from_alarm": from_alarm}
    return render(request, "owner/report_theft.html", context, status=400 if form.errors else 200)


def _bike_choices(vehicles: list[Vehicle]) -> list[tuple[int, str]]:
    plates = _plates([v.pk for v in vehicles])
    return [(v.pk, f"{plates[v.pk].number if v.pk in plates else '—'} · {v.brand} {v.model_name}") for v in vehicles]


def _report_initial(request: AuthedHttpRequest, owner: Owner) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The report form filled in: the owner's phone, the bike asked for, and what a confirmed alarm
    (?call=) tells of where and when (with that prompt, or None)."""
    initial: dict[str, Any] = {"reporter_phone": owner.phone}
    if request.GET.get("vehicle", "").isdigit():
        initial["vehicle"] = int(request.GET["vehicle"])
    from_alarm = None
    call_id = request.GET.get("call", "")
    if call_id.isdigit():
        from_alarm = _alarm_prompt(request, owner, int(call_id))
        if from_alarm is not None:
            initial.update(from_alarm["initial"])
    return from_alarm, initial


def _online_report(owner: Owner, vehicles: list[Vehicle], parsed: dict[str, Any]) -> dict[str, Any]:
    """The owner's form as a report's input on the online channel (the fields that parsed): the bike
    by its frame number, the owner as the reporter, the map point as latitude and longitude."""
    values = {
        key: value for key, value in parsed.items() if key not in ("vehicle", "place_latitude", "place_longitude")
    }
    vehicle = next((v for v in vehicles if v.pk == parsed.get("vehicle")), None)
    values.update(
        channel=TheftReport.Channel.ONLINE,
        plate="",
        frame_number=vehicle.frame_number if vehicle is not None else "",
        owner_id_number="",
        unregistered_description="",
        reporter_name=owner.name,
        reporter_id_number=owner.id_number if owner.kind == Owner.Kind.PERSON else "",
        latitude=parsed.get("place_latitude"),
        longitude=parsed.get("place_longitude"),
    )
    return values


def _alarm_prompt(request: AuthedHttpRequest, owner: Owner, call_id: int) -> dict[str, Any] | None:
    """What the system knows when the owner confirmed an armed bike's alarm as a theft: where and
    when the bike was parked (its last fix when it was armed, read through the audited access
    rules) and when the alarm went off. None for a call that is not this owner's confirmed one."""
    call = (
        DutyCall.objects.select_related("vehicle")
        .filter(
            pk=call_id,
            vehicle__owner=owner,
            kind=DutyCall.Kind.DISPLACEMENT,
            owner_answer=DutyCall.OwnerAnswer.CONFIRMED,
        )
        .first()
    )
    if call is None:
        return None
    prompt = duty.theft_report_prompt(call)
    parked_at = datetime.datetime.fromisoformat(prompt["last_seen_at"])
    parked = _parked_point(request, call.vehicle_id, parked_at)
    if parked is None and call.point is not None:
        parked = (call.point.y, call.point.x)
    initial: dict[str, Any] = {
        "vehicle": call.vehicle_id,
        "last_seen_at": parked_at,
        "missing_at": call.raised_at,
    }
    place = None
    if parked is not None:
        initial.update(place_latitude=round(parked[0], 6), place_longitude=round(parked[1], 6))
        place = geocoding.place_near(*parked)
        if place:
            initial["place_address"] = place
    return {"call": call, "parked": parked, "parked_at": parked_at, "place": place, "initial": initial}


def _parked_point(request: AuthedHttpRequest, vehicle_id: int, at: datetime.datetime) -> tuple[float, float] | None:
    """The bike's last valid fix at or before `at` (in the hour before it, and since the owner has
    the bike: earlier positions are not theirs to see), or None."""
    since = at - datetime.timedelta(hours=1)
    owned_since = access.ownership_start(Vehicle.objects.get(pk=vehicle_id))
    if owned_since is not None:
        since = max(since, owned_since)
    if since >= at:
        return None
    try:
        view = access.vehicle_trajectory_view(
            user=request.user,
            vehicle_id=vehicle_id,
            since=since,
            until=at + datetime.timedelta(seconds=1),
            point_cap=POINT_CAP_MAX,
            with_line=False,
            ip=client_ip(request),
        )
    except (PermissionDenied, ValidationError):
        return None
    fixes = [p for p in view.trajectory.points if p.valid and not p.outlier and p.time <= at]
    return (fixes[-1].latitude, fixes[-1].longitude) if fixes else None


@login_required
@require_GET
def report_receipt(request: AuthedHttpRequest, report_id: int) -> HttpResponse:
    """The owner's copy of an online report: number, status and the station that handles it."""
    owner = _owner(request)
    report = get_object_or_404(TheftReport.objects.select_related("station", "vehicle"), pk=report_id)
    if report.vehicle is None or report.vehicle.owner_id != owner.pk:
        raise PermissionDenied(_("This report is not about one of your bikes."))
    return render(
        request,
        "owner/report.html",
        {
            "report": report,
            "plate": _plates([report.vehicle.pk]).get(report.vehicle.pk),
            "missing": report.status in MISSING_STATUSES,
        },
    )
