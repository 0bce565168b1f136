"""The officer map: stolen bikes' last positions (clustered in the browser), a card per bike, the
trace of one bike with a replay, its stops and the other stolen bikes seen at them (rings), the
crime-scene search (伴随分析), and a small JSON endpoint the page polls for new positions.

Who may look is decided by the policy (cases.rules: every officer sees bikes under an open report,
their patrol duty; a trace follows the trajectory rules) and every look is audited there or here.
"""

import datetime
import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from accounts.audit import audit_record, client_ip
from accounts.models import User
from accounts.request_types import AuthedHttpRequest
from cases.tracing import access
from cases.tracing import origins as trace_origins
from cases.tracing import selectors as tracing
from ebike_registry.forms import place_problems, problem_dict
from tracking.coords import to_display
from tracking.map_tiles import map_config, map_strings
from vehicles.models import Vehicle
from web.map_forms import CrimeSceneForm, MarkerFilterForm, StopsForm
from web.map_selectors import (
    MARKER_FIELDS,
    MarkerFilter,
    marker_card,
    scene_results,
    stolen_markers,
    stolen_markers_json,
    stop_rings,
)

# A poll asks for positions received since its previous answer; positions of a batch committed a
# moment after that answer was computed carry an earlier receive time, so each poll looks back a
# little further (a marker sent twice is just updated in place).
POLL_OVERLAP = datetime.timedelta(seconds=10)


def _may_state_reason(user: User) -> bool:
    """Officers and leaders may look at a trajectory without a duty by stating why (cases.rules);
    nobody else may look at all."""
    return user.has_perm("cases.trace_with_reason")


def _officer(request: AuthedHttpRequest) -> None:
    """Stolen bikes' positions are for those handling theft reports (PermissionDenied otherwise)."""
    access.stolen_near_access(user=request.user)


@login_required
@require_GET
def map_page(request: AuthedHttpRequest) -> HttpResponse:
    """The map of stolen bikes' last positions; the page loads them (and each card) as JSON."""
    _officer(request)
    form = MarkerFilterForm(request.GET or None)
    if form.is_bound:
        form.is_valid()
    page = {
        "urls": {
            "markers": reverse("web:map-markers"),
            "card": reverse("web:map-card", args=[0]),
        },
        "strings": map_strings() | _map_page_strings(),
    }
    return render(request, "maps/map.html", {"form": form, "map_config": map_config(), "page": page})


def _map_page_strings() -> dict[str, str]:
    return {
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
        "coordinates": _("Coordinates (WGS-84)"),
        "bad_filter": _("Check the filters."),
    }


@login_required
@require_GET
def map_markers(request: AuthedHttpRequest) -> HttpResponse:
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
    count, rows_json = _marker_rows(data, since=since, datum=datum)
    if since is None or count:  # a full load, or a poll that revealed positions
        audit_record(request=request, action="stolen.map", query=_markers_query(data, since), result_count=count)
    head = json.dumps({"datum": datum, "fields": MARKER_FIELDS, "cursor": now.isoformat()}, separators=(",", ":"))
    return HttpResponse(f'{head[:-1]},"rows":{rows_json}}}', content_type="application/json")


def _marker_rows(data: dict[str, Any], *, since: datetime.datetime | None, datum: str) -> tuple[int, str]:
    """How many markers, and their rows as JSON."""
    filters = MarkerFilter(
        station_id=data["station"].pk if data["station"] else None,
        reported_from=data["reported_from"],
        reported_to=data["reported_to"],
        changed_since=since,
    )
    if datum == "wgs84":  # as stored: PostgreSQL writes the rows' JSON
        return stolen_markers_json(filters=filters)
    rows = stolen_markers(filters=filters, datum=datum)  # converted for GCJ-02 tiles in Python
    return len(rows), json.dumps(rows, separators=(",", ":"))


def _markers_query(data: dict[str, Any], since: datetime.datetime | None) -> dict[str, Any]:
    """The map's filters as the audit records them."""
    return {
        "basis": "open_reports",
        "station": data["station"].pk if data["station"] else None,
        "from": str(data["reported_from"] or ""),
        "to": str(data["reported_to"] or ""),
        "since": since.isoformat() if since else None,
    }


@login_required
@require_GET
def map_card(request: AuthedHttpRequest, vehicle_id: int) -> JsonResponse:
    """One bike's card on the map: plate, report, cases and its newest position."""
    try:
        _officer(request)
    except PermissionDenied as exc:
        return JsonResponse({"detail": str(exc)}, status=403)
    try:
        card = marker_card(vehicle_id=vehicle_id, with_position=True)
    except Vehicle.DoesNotExist:
        return JsonResponse({"detail": _("No such vehicle.")}, status=404)
    vehicle, report = card.vehicle, card.report
    # The map shows bikes under an open report: their card is patrol duty. Any other bike's card
    # only for an officer with a duty on it.
    if report is None and not request.user.has_perm("cases.trace_vehicle", vehicle):
        refused = {"refused": "not under an open report"}
        audit_record(request=request, action="stolen.card", object_type="vehicle", object_id=vehicle.pk, query=refused)
        return JsonResponse({"detail": _("This bike is not under an open theft report.")}, status=403)
    basis = {"basis": "open_reports" if report is not None else "duty"}
    audit_record(
        request=request, action="stolen.card", object_type="vehicle", object_id=vehicle.pk, query=basis, result_count=1
    )
    return JsonResponse(_card_data(card))


def _card_data(card: Any) -> dict[str, Any]:
    vehicle, report = card.vehicle, card.report
    return {
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
        # Written out as well as drawn: with no tile server the dot is on a grey field.
        "position": None
        if card.position is None
        else {
            "latitude": card.position.latitude,
            "longitude": card.position.longitude,
            "text": coordinates_text(card.position.latitude, card.position.longitude),
            "time": timezone.localtime(card.position.device_time).strftime("%Y-%m-%d %H:%M"),
        },
    }


def coordinates_text(latitude: float, longitude: float) -> str:
    """Written as "39.882600, 117.739000": latitude first (as GPS devices and 110 dispatch write them), WGS-84,
    six decimals (a decimetre)."""
    return f"{latitude:.6f}, {longitude:.6f}"


def _search_param(request: HttpRequest) -> int | None:
    raw = request.GET.get("search", "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise BadRequest(_("search: not a search number."))
    return int(raw)


@login_required
@require_GET
def trace_page(request: AuthedHttpRequest, vehicle_id: int) -> HttpResponse:
    """The trajectory with a replay slider (loaded by the page from the tracing API, which checks
    access again and audits every look), and the stops for an adjustable minimum stay and radius,
    each with the other stolen bikes seen there (officers), read here through the same access layer.

    Opened from a search (?search=<audit row>: a crime-scene search or the rings of another trace),
    the trace reads on that search's reason and within its window (cases.tracing.origins)."""
    vehicle = Vehicle.objects.select_related("owner").filter(pk=vehicle_id).first()
    if vehicle is None:
        raise Http404(_("No such vehicle."))
    search = _search_param(request)
    try:
        basis, origin, reason = _trace_footing(request, vehicle, search)
    except PermissionDenied as exc:
        if search is not None or not _may_state_reason(request.user):
            raise
        # An officer without a case duty for this bike may still look, stating the legal basis.
        return _trace_reason_page(request, vehicle, exc)
    stated = reason if search is None else ""
    form = StopsForm.from_query(request.GET)
    stops_view, rings = _trace_stops(request, vehicle, form, reason=stated, search=search)
    context = _trace_context(
        request, vehicle, form=form, stops_view=stops_view, rings=rings, reason=stated, search=search
    )
    context.update(basis=basis.basis, origin=origin)
    return render(request, "maps/trace.html", context)


def _trace_footing(request: AuthedHttpRequest, vehicle: Vehicle, search: int | None) -> tuple[Any, Any, str]:
    """On which footing the trace is read (access.trajectory_access's basis), from which search (or
    None), on which reason: the search's, or the one stated. A refusal is audited and raised."""
    user: User = request.user
    reason = request.GET.get("reason", "")
    origin = None
    try:
        try:
            if search is not None:
                origin = trace_origins.search_origin(user=user, entry_id=search, vehicle_id=vehicle.pk)
                reason = origin.reason
            basis = access.trajectory_access(
                user=user, vehicle=vehicle, since=origin.since if origin else None, reason=reason
            )
        except ValidationError as exc:  # a reason too short or too long to be a legal basis
            raise ReasonRefused(" ".join(exc.messages)) from exc
    except PermissionDenied as exc:
        audit_record(
            request=request,
            action="trajectory.view",
            object_type="vehicle",
            object_id=vehicle.pk,
            query={"refused": str(exc), "page": "trace"} | ({"search": search} if search is not None else {}),
            reason=reason,
        )
        raise
    return basis, origin, reason


class ReasonRefused(PermissionDenied):
    """A look refused for its stated reason itself (too short or too long), not for a missing duty."""


def _trace_reason_page(request: HttpRequest, vehicle: Vehicle, refusal: PermissionDenied) -> HttpResponse:
    """The refusal, with the form to state the legal basis of the look; a refused reason comes back
    in the field, with what is wrong with it beside it."""
    context = {
        "vehicle": vehicle,
        "message": str(refusal),
        "reason": request.GET.get("reason", ""),
        "reason_problem": str(refusal) if isinstance(refusal, ReasonRefused) else "",
        "min_length": access.MIN_REASON_LENGTH,
        "max_length": access.MAX_REASON_LENGTH,
    }
    return render(request, "maps/trace_reason.html", context, status=403)


def _trace_stops(
    request: AuthedHttpRequest, vehicle: Vehicle, form: StopsForm, *, reason: str, search: int | None
) -> tuple[Any, dict[int, Any]]:
    """The bike's stops for the form's minimum stay and radius, and each stop's rings (the other
    stolen bikes seen there); (None, {}) with the problems at the form's fields."""
    if not form.is_valid():
        return None, {}
    user: User = request.user
    try:
        stops_view = access.vehicle_stops_view(
            user=user,
            vehicle_id=vehicle.pk,
            min_minutes=form.cleaned_data["min_minutes"],
            radius_m=form.cleaned_data["radius"],
            nearby_stolen=user.has_perm("cases.search_near_place"),
            reason=reason,
            search=search,
            ip=client_ip(request),
        )
    except ValidationError as exc:
        place_problems(problem_dict(exc), page=form)
        return None, {}
    return stops_view, stop_rings(user=user, view=stops_view)


def _trace_context(
    request: HttpRequest,
    vehicle: Vehicle,
    *,
    form: StopsForm,
    stops_view: Any,
    rings: dict[int, Any],
    reason: str,
    search: int | None,
) -> dict[str, Any]:
    stops = [
        {
            "stop": stop,
            "minutes": round(stop.dwell_seconds / 60),
            "rings": rings.get(stop.rank, []),
            "ring_checked": stop.rank in stops_view.nearby,
        }
        for stop in (stops_view.stops.stops if stops_view else [])
    ]
    card = marker_card(vehicle_id=vehicle.pk)
    return {
        "vehicle": vehicle,
        "card": card,
        "form": form,
        "stops_view": stops_view,
        "stops": stops,
        "ring_stops": access.NEARBY_STOPS_MAX,
        "may_search_places": request.user.has_perm("cases.search_near_place"),
        "map_config": map_config(),
        "page": _trace_page_data(vehicle, card=card, stops=stops, reason=reason, search=search),
    }


def _trace_page_data(
    vehicle: Vehicle, *, card: Any, stops: list[dict[str, Any]], reason: str, search: int | None
) -> dict[str, Any]:
    """What the page's script reads: the trajectory's address, the theft place and the stops to draw."""
    datum = map_config()["datum"]
    return {
        "urls": {
            "trajectory": reverse("vehicle-trajectory", args=[vehicle.pk]),
            "reason": reason,
            "search": search,
        },
        # Where the owner last saw the bike, when the report has a map point (WGS-84, [lat, lon]).
        "theft_place": (
            [card.report.place_point.y, card.report.place_point.x]
            if card.report is not None and card.report.place_point is not None
            else None
        ),
        # The stops listed on the page, drawn on the map in the tiles' datum ([lat, lon]).
        "stops": [
            {"rank": row["stop"].rank, "at": to_display(row["stop"].latitude, row["stop"].longitude, datum)}
            for row in stops
        ],
        "strings": map_strings()
        | {
            "play": _("Play"),
            "pause": _("Pause"),
            "speed": _("%(v)s km/h"),
            "start": _("First position since the theft"),
            "stop": _("Stop"),
            "theft_place": _("Place of the theft"),
        },
    }


def _scene_initial() -> dict[str, object]:
    now = timezone.localtime().replace(second=0, microsecond=0)
    return {"since": now - datetime.timedelta(hours=2), "until": now, "radius": 200}


@login_required
@require_GET
def crime_scene_page(request: AuthedHttpRequest) -> HttpResponse:
    """伴随分析: which bikes had a fix within a radius of a point in a time window. The search itself,
    its bounds, its reason and its audit row are cases.tracing.access's (as for the API); each
    bike found links to the pages the viewer may open, its trace on this search's footing."""
    if not request.user.has_perm("cases.search_near_place"):
        raise PermissionDenied(_("Only officers search which bikes were near a place."))
    searched = any(name in request.GET for name in CrimeSceneForm.base_fields)
    form = CrimeSceneForm(request.GET if searched else None, initial=_scene_initial())
    view, results = _scene_search(request, form) if searched else (None, None)
    context = {
        "form": form,
        "view": view,
        "results": results,
        "pad_hours": int(trace_origins.SEARCH_WINDOW_PAD.total_seconds() // 3600),
        "max_hours": int(tracing.NEAR_MAX_SPAN.total_seconds() // 3600),
        "map_config": map_config(),
        "page": {"strings": map_strings() | {"scene": _("Crime scene")}},
    }
    return render(request, "maps/crime_scene.html", context)


def _scene_search(request: AuthedHttpRequest, form: CrimeSceneForm) -> tuple[Any, Any]:
    """The search the form asks for and the bikes it found; (None, None) with the problems at the
    form's fields (the reason the rules ask for at its own)."""
    if not form.is_valid():
        return None, None
    user: User = request.user
    data = form.cleaned_data
    try:
        view = access.vehicles_near_view(
            user=user,
            latitude=data["lat"],
            longitude=data["lon"],
            radius_m=data["radius"],
            since=data["since"],
            until=data["until"],
            reason=data["reason"],
            ip=client_ip(request),
        )
    except ValidationError as exc:
        place_problems(problem_dict(exc), page=form)
        return None, None
    except PermissionDenied as exc:
        form.add_error("reason", str(exc))
        return None, None
    return view, scene_results(user=user, view=view)
