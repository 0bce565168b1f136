"""Owner pages: my bikes, a bike's policy, where my bike is, and reporting a theft online.

An owner is the person whose Owner record has `user` set to their login (Owner.user, set by the
counter or an administrator when the owner asks for an account): the smallest link, no new model.
Every page reads only the logged-in owner's own records; another bike answers 403.
"""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from accounts.audit import client_ip
from cases import services as case_services
from cases import trajectory_access as access
from cases.models import CLOSED_STATUSES, MISSING_STATUSES, TheftReport
from tracking.models import Terminal
from vehicles.models import InsurancePolicy, Owner, Plate, Vehicle
from web.coords import to_display
from web.map_tiles import map_config, map_strings
from web.owner_forms import OwnerTheftReportForm


def _owner(request: HttpRequest) -> Owner:
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


@login_required
@require_GET
def my_bikes(request: HttpRequest) -> HttpResponse:
    owner = _owner(request)
    vehicles = list(owner.vehicles.exclude(status=Vehicle.Status.DEREGISTERED).order_by("registered_at"))
    ids = [v.pk for v in vehicles]
    plates = _plates(ids)
    policies = {
        p.vehicle_id: p
        for p in InsurancePolicy.objects.filter(vehicle_id__in=ids, status=InsurancePolicy.Status.ACTIVE)
    }
    terminals = {t.vehicle_id: t for t in Terminal.objects.filter(vehicle_id__in=ids)}
    reports = {
        r.vehicle_id: r for r in TheftReport.objects.filter(vehicle_id__in=ids).exclude(status__in=CLOSED_STATUSES)
    }
    bikes = [
        {
            "vehicle": v,
            "plate": plates.get(v.pk),
            "policy": policies.get(v.pk),
            "terminal": terminals.get(v.pk),
            "report": reports.get(v.pk),
        }
        for v in vehicles
    ]
    return render(request, "owner/bikes.html", {"owner": owner, "bikes": bikes})


@login_required
@require_GET
def policy(request: HttpRequest, vehicle_id: int) -> HttpResponse:
    owner = _owner(request)
    vehicle = _own_vehicle(owner, vehicle_id)
    policies = vehicle.policies.filter(owner=owner).select_related("scheme").order_by("-starts_on")
    return render(
        request,
        "owner/policy.html",
        {"vehicle": vehicle, "plate": _plates([vehicle.pk]).get(vehicle.pk), "policies": policies},
    )


@login_required
@require_GET
def position(request: HttpRequest, vehicle_id: int) -> HttpResponse:
    """Where is my bike: the newest plausible fix, through the audited access rules."""
    owner = _owner(request)
    vehicle = _own_vehicle(owner, vehicle_id)
    view = access.vehicle_position_view(user=request.user, vehicle_id=vehicle.pk, ip=client_ip(request))  # type: ignore[arg-type]
    config = map_config()
    marker: dict[str, Any] | None = None
    if view.position is not None:
        lat, lon = to_display(view.position.latitude, view.position.longitude, config["datum"])
        marker = {"lat": round(lat, 6), "lon": round(lon, 6)}
    return render(
        request,
        "owner/position.html",
        {
            "vehicle": vehicle,
            "plate": _plates([vehicle.pk]).get(vehicle.pk),
            "position": view.position,
            "marker": marker,
            "map_config": config,
            "map_strings": map_strings(),
            "has_terminal": Terminal.objects.filter(vehicle=vehicle).exists(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def report_theft(request: HttpRequest) -> HttpResponse:
    """Report a theft online: cases.services.report_take with channel "online"; every problem at
    once next to its field, what was typed kept."""
    owner = _owner(request)
    vehicles = list(owner.vehicles.filter(status=Vehicle.Status.REGISTERED).order_by("registered_at"))
    plates = _plates([v.pk for v in vehicles])
    choices = [(v.pk, f"{plates[v.pk].number if v.pk in plates else '—'} · {v.brand} {v.model_name}") for v in vehicles]
    initial = {"reporter_phone": owner.phone}
    if request.GET.get("vehicle", "").isdigit():
        initial["vehicle"] = int(request.GET["vehicle"])
    form = OwnerTheftReportForm(request.POST or None, vehicles=choices, initial=initial)
    if request.method == "POST":
        form.is_valid()
        values = {k: v for k, v in form.cleaned_data.items() if k not in form.errors}
        domain = case_services.report_field_problems(values)
        for field, messages in domain.by_field.items():
            if field not in form.errors:
                form.add_error(field if field in form.fields else None, messages)
        if not form.errors:
            vehicle = next(v for v in vehicles if v.pk == values["vehicle"])
            try:
                report = case_services.report_take(
                    user=request.user,  # type: ignore[arg-type]
                    channel=TheftReport.Channel.ONLINE,
                    vehicle_query=case_services.VehicleQuery(frame_number=vehicle.frame_number),
                    reporter_name=owner.name,
                    reporter_phone=values["reporter_phone"],
                    reporter_id_number=owner.id_number if owner.kind == Owner.Kind.PERSON else "",
                    last_seen_at=values["last_seen_at"],
                    missing_at=values["missing_at"],
                    place_address=values["place_address"],
                    township_code=values["township_code"],
                    locked=values["locked"],
                    narrative=values["narrative"],
                )
            except ValidationError as exc:
                for field, messages in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, messages)
            else:
                return redirect("web:owner-report", report_id=report.pk)
    return render(
        request,
        "owner/report_theft.html",
        {"form": form, "owner": owner, "has_bikes": bool(vehicles)},
        status=400 if form.errors else 200,
    )


@login_required
@require_GET
def report_receipt(request: HttpRequest, report_id: int) -> HttpResponse:
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
            "plate": _plates([report.vehicle_id]).get(report.vehicle_id),
            "missing": report.status in MISSING_STATUSES,
        },
    )
