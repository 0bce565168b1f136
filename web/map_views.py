"""The officer map: stolen bikes' last positions (clustered in the browser), a card per bike, the
trace of one bike with a replay, and a small JSON endpoint the page polls for new positions.

Who may look is decided by the policy (cases.rules: every officer sees bikes under an open report,
their patrol duty; a trace follows the trajectory rules) and every look is audited there or here.
"""

import datetime
import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from accounts.audit import audit_record, client_ip
from accounts.models import User
from cases import trajectory_access as access
from vehicles.models import Vehicle
from web.map_forms import MarkerFilterForm
from web.map_selectors import MARKER_FIELDS, MarkerFilter, marker_card, stolen_markers, stolen_markers_json
from web.map_tiles import map_config, map_strings

# A poll asks for positions received since its previous answer; positions of a batch committed a
# moment after that answer was computed carry an earlier receive time, so each poll looks back a
# little further (a marker sent twice is just updated in place).
POLL_OVERLAP = datetime.timedelta(seconds=10)


def _may_state_reason(user: User) -> bool:
    """Officers and leaders may look at a trajectory without a duty by stating why (cases.rules);
    nobody else may look at all."""
    return user.has_perm("cases.trace_with_reason")


def _officer(request: HttpRequest) -> None:
    """Stolen bikes' positions are for those handling theft reports (PermissionDenied otherwise)."""
    access.stolen_near_access(user=request.user)  # type: ignore[arg-type]


@login_required
@require_GET
def map_page(request: HttpRequest) -> HttpResponse:
    _officer(request)
    form = MarkerFilterForm(request.GET or None)
    if form.is_bound:
        form.is_valid()
    page = {
        "urls": {
            "markers": reverse("web:map-markers"),
            "card": reverse("web:map-card", args=[0]),
        },
        "strings": map_strings()
        | {
            "count": _("%(n)s stolen bikes with a position"),
            "loading": _("Loading…"),
            "no_plate": _("no plate"),
            "last_fix": _("Last position"),
            "report": _("Theft report"),
            "reported_at": _("Reported at"),
            "station": _("Station"),
            "status": _("Status"),
            "cases": _("Cases"),
            "no_case": _("not linked to a case"),
            "trace": _("Trace and replay"),
            "record": _("Filing record"),
            "bad_filter": _("Check the filters."),
        },
    }
    return render(request, "maps/map.html", {"form": form, "map_config": map_config(), "page": page})


@login_required
@require_GET
def map_markers(request: HttpRequest) -> HttpResponse:
    """{"fields": [...], "rows": [[...], ...], "cursor": ...}; with ?since=<cursor>, only bikes whose
    position arrived (or whose report was taken) since then."""
    try:
        _officer(request)
    except PermissionDenied as exc:
        return JsonResponse({"detail": str(exc)}, status=403)
    form = MarkerFilterForm(request.GET)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    data = form.cleaned_data
    now = timezone.now()
    since = data["since"] - POLL_OVERLAP if data["since"] else None
    datum = map_config()["datum"]
    filters = MarkerFilter(
        station_id=data["station"].pk if data["station"] else None,
        reported_from=data["reported_from"],
        reported_to=data["reported_to"],
        changed_since=since,
    )
    if datum == "wgs84":  # as stored: PostgreSQL writes the rows' JSON
        count, rows_json = stolen_markers_json(filters=filters)
    else:  # converted for GCJ-02 tiles in Python
        rows = stolen_markers(filters=filters, datum=datum)
        count, rows_json = len(rows), json.dumps(rows, separators=(",", ":"))
    if since is None or count:  # a full load, or a poll that revealed positions
        audit_record(
            user=request.user,  # type: ignore[arg-type]
            action="stolen.map",
            query={
                "basis": "open_reports",
                "station": data["station"].pk if data["station"] else None,
                "from": str(data["reported_from"] or ""),
                "to": str(data["reported_to"] or ""),
                "since": since.isoformat() if since else None,
            },
            result_count=count,
            ip=client_ip(request),
        )
    head = json.dumps({"datum": datum, "fields": MARKER_FIELDS, "cursor": now.isoformat()}, separators=(",", ":"))
    return HttpResponse(f'{head[:-1]},"rows":{rows_json}}}', content_type="application/json")


@login_required
@require_GET
def map_card(request: HttpRequest, vehicle_id: int) -> JsonResponse:
    try:
        _officer(request)
    except PermissionDenied as exc:
        return JsonResponse({"detail": str(exc)}, status=403)
    try:
        card = marker_card(vehicle_id=vehicle_id)
    except Vehicle.DoesNotExist:
        return JsonResponse({"detail": _("No such vehicle.")}, status=404)
    vehicle, report = card.vehicle, card.report
    # The map shows bikes under an open report: their card is patrol duty. Any other bike's card
    # only for an officer with a duty on it.
    if report is None and not request.user.has_perm("cases.trace_vehicle", vehicle):
        audit_record(
            user=request.user,  # type: ignore[arg-type]
            action="stolen.card",
            object_type="vehicle",
            object_id=vehicle.pk,
            query={"refused": "not under an open report"},
            ip=client_ip(request),
        )
        return JsonResponse({"detail": _("This bike is not under an open theft report.")}, status=403)
    audit_record(
        user=request.user,  # type: ignore[arg-type]
        action="stolen.card",
        object_type="vehicle",
        object_id=vehicle.pk,
        query={"basis": "open_reports" if report is not None else "duty"},
        result_count=1,
        ip=client_ip(request),
    )
    return JsonResponse(
        {
            "vehicle": vehicle.pk,
            "plate": card.plate,
            "description": f"{vehicle.brand} {vehicle.model_name} · {vehicle.colour}",
            "frame_number": vehicle.frame_number,
            "status": vehicle.get_status_display(),
            "record_url": reverse("vehicles:detail", args=[vehicle.pk]),
            "trace_url": reverse("web:trace", args=[vehicle.pk]),
            "report": None
            if report is None
            else {
                "number": report.number,
                "url": reverse("cases:report", args=[report.pk]),
                "status": report.get_status_display(),
                "received_at": timezone.localtime(report.received_at).strftime("%Y-%m-%d %H:%M"),
                "station": report.station.name,
                "place": report.place_address,
            },
            "cases": [{"number": c.number, "url": reverse("cases:case", args=[c.pk])} for c in card.cases],
        }
    )


@login_required
@require_GET
def trace_page(request: HttpRequest, vehicle_id: int) -> HttpResponse:
    """The trajectory since the theft with a replay slider, and the stops. The page loads the data
    from the tracing API, which checks access again and audits every look."""
    vehicle = Vehicle.objects.select_related("owner").filter(pk=vehicle_id).first()
    if vehicle is None:
        raise Http404(_("No such vehicle."))
    reason = request.GET.get("reason", "")[:200]
    try:
        try:
            basis = access.trajectory_access(user=request.user, vehicle=vehicle, reason=reason)  # type: ignore[arg-type]
        except ValidationError as exc:  # a reason too short to be a legal basis
            raise PermissionDenied(" ".join(exc.messages)) from exc
    except PermissionDenied as exc:
        audit_record(
            user=request.user,  # type: ignore[arg-type]
            action="trajectory.view",
            object_type="vehicle",
            object_id=vehicle.pk,
            query={"refused": str(exc), "page": "trace"},
            reason=reason,
            ip=client_ip(request),
        )
        if not _may_state_reason(request.user):  # type: ignore[arg-type]
            raise
        # An officer without a case duty for this bike may still look, stating the legal basis.
        return render(
            request,
            "maps/trace_reason.html",
            {"vehicle": vehicle, "message": str(exc), "reason": reason, "min_length": access.MIN_REASON_LENGTH},
            status=403,
        )
    card = marker_card(vehicle_id=vehicle.pk)
    page = {
        "urls": {
            "trajectory": reverse("vehicle-trajectory", args=[vehicle.pk]),
            "stops": reverse("vehicle-stops", args=[vehicle.pk]),
            "reason": reason,
        },
        # Where the owner last saw the bike, when the report has a map point (WGS-84, [lat, lon]).
        "theft_place": (
            [card.report.place_point.y, card.report.place_point.x]
            if card.report is not None and card.report.place_point is not None
            else None
        ),
        "strings": map_strings()
        | {
            "play": _("Play"),
            "pause": _("Pause"),
            "speed": _("%(v)s km/h"),
            "start": _("First position since the theft"),
            "stop": _("Stop"),
            "minutes": _("%(n)s min"),
            "no_stops": _("No stops of 5 minutes or more."),
            "theft_place": _("Place of the theft"),
        },
    }
    return render(
        request,
        "maps/trace.html",
        {"vehicle": vehicle, "card": card, "basis": basis.basis, "map_config": map_config(), "page": page},
    )
