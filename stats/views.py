"""Admin pages: the statistics dashboard and the plate-rate estimates (form and CSV upload)."""

from functools import wraps
from typing import Any, cast
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext
from django.views.decorators.http import require_http_methods

from accounts.labels import alarm_label
from accounts.models import Station, Township
from accounts.request_types import AuthedHttpRequest
from ebike_registry.forms import place_problems, problem_dict
from stats import selectors, services
from stats.models import EstimateMethod, PlateEstimate, RollupState
from stats.params import GRANULARITIES, parse_filters
from stats.permissions import is_stats_admin
from tracking.map_tiles import map_config, map_strings

TOP_CELLS = 20  # rows of the hotspot table on the page and in its export
MAP_CELLS = 2_000  # cells drawn on the hotspot map: at 500 m, more than the county's area


def stats_admin_required(view: Any) -> Any:
    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_stats_admin(request.user):
            raise PermissionDenied(_("Statistics are for administrators."))
        return view(request, *args, **kwargs)

    return wrapped


class FilterForm(forms.Form):
    start = forms.DateField(label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    station = forms.ChoiceField(label=gettext_lazy("Station"), required=False)
    granularity = forms.ChoiceField(
        label=gettext_lazy("Registrations by"),
        required=False,
        choices=[("day", gettext_lazy("day")), ("week", gettext_lazy("week")), ("month", gettext_lazy("month"))],
    )
    cell_m = forms.IntegerField(label=gettext_lazy("Hotspot cell (m)"), required=False, min_value=100, max_value=5000)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["station"]).choices = [("", _("All stations"))] + [
            (s.code, s.name) for s in Station.objects.order_by("code")
        ]


def _exports(name: str, query: dict[str, str]) -> dict[str, str]:
    base = reverse(name)
    return {fmt: f"{base}?{urlencode({**query, 'format': fmt})}" for fmt in ("csv", "xlsx")}


@stats_admin_required
@require_http_methods(["GET"])
def dashboard(request: HttpRequest) -> HttpResponse:
    """The dashboard: every figure for the period, station and granularity asked for, with exports."""
    form = FilterForm(request.GET or None, initial={"granularity": "month"})
    filters, query = _dashboard_filters(request, form)
    year = timezone.localdate().year
    tables = _dashboard_tables(filters, year=year)
    hotspots = selectors.theft_hotspots(filters, limit=MAP_CELLS)
    registrations = selectors.registrations_folded(tables["registrations"])
    registrations["note"] = _quiet_note(registrations)
    state = RollupState.objects.filter(name="plated").first()
    context = {"form": form, "filters": filters, "year": year, "tables": tables, "registrations": registrations}
    context.update(hotspots=hotspots, hotspot_rows=hotspots["features"][:TOP_CELLS], hotspot_map=_hotspot_map(hotspots))
    context.update(exports=_dashboard_exports(query), charts=_dashboard_charts(tables), granularities=GRANULARITIES)
    context["plated_as_of"] = state.refreshed_at if state else None
    return render(request, "stats/dashboard.html", context)


def _dashboard_filters(request: HttpRequest, form: FilterForm) -> tuple[Any, dict[str, Any]]:
    """The filters asked for and the query the export links repeat. Filters that do not parse are
    shown at their fields and the default period's figures are given."""
    query = {k: v for k, v in request.GET.items() if k in form.fields and v}
    try:
        return parse_filters(request.GET), query
    except ValidationError as exc:
        place_problems(problem_dict(exc), page=form, beside_parse_errors=True)
        return parse_filters({}), {}


def _dashboard_tables(filters: Any, *, year: int) -> dict[str, Any]:
    return {
        "townships": selectors.plate_rate_townships(year=year),
        "stations": selectors.plate_rate_stations(year=year),
        "registrations": selectors.registrations_series(filters),
        "thefts": selectors.thefts_monthly(filters),
        "alarms": selectors.alarms_by_kind(filters),
        "cases": selectors.cases_monthly(filters),
        "rescues": selectors.rescues_monthly(filters),
    }


def _dashboard_exports(query: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {
        "townships": _exports("stats-plate-rate-townships", {}),
        "stations": _exports("stats-plate-rate-stations", {}),
        "registrations": _exports("stats-registrations", query),
        "thefts": _exports("stats-thefts", query),
        "alarms": _exports("stats-alarms", query),
        "cases": _exports("stats-cases", query),
        "rescues": _exports("stats-rescues", query),
        "hotspots": _exports("stats-hotspots", {**query, "limit": str(TOP_CELLS)}),
    }


def _dashboard_charts(tables: dict[str, Any]) -> dict[str, Any]:
    """Chart data: county totals per bucket (registrations), per month (thefts), per kind (alarms)."""
    reg_by_period: dict[str, dict[str, int]] = {}
    for row in tables["registrations"].rows:
        bucket = reg_by_period.setdefault(row["period"], {"registered": 0, "plates": 0})
        bucket["registered"] += row["registered"]
        bucket["plates"] += row["plates_cumulative"]
    theft_months = [r for r in tables["thefts"].rows if r["month"] and r["station"] is None]
    alarm_kinds = [r for r in tables["alarms"].rows if r["month"] is None]
    return {
        "registrations": {
            "labels": list(reg_by_period),
            "registered": [v["registered"] for v in reg_by_period.values()],
            "plates": [v["plates"] for v in reg_by_period.values()],
        },
        "thefts": {
            "labels": [r["month"] for r in theft_months],
            "reported": [r["reported"] for r in theft_months],
            "recovered": [r["recovered"] for r in theft_months],
        },
        "alarms": {
            "labels": [alarm_label(r["kind"]) for r in alarm_kinds],
            "alarms": [r["alarms"] for r in alarm_kinds],
        },
        "names": {
            "registered": _("registrations"),
            "plates": _("plates on the road"),
            "reported": _("thefts reported"),
            "recovered": _("recovered"),
            "alarms": pgettext("statistics", "alarms"),
        },
    }


def _hotspot_map(hotspots: dict[str, Any]) -> dict[str, Any]:
    strings = {
        "rank": _("Rank"),
        "reports": _("Thefts reported"),
        "cell": _("Grid cell"),
        "legend": _("Thefts per cell"),
    }
    features = hotspots["features"]
    return {
        "config": map_config(),
        "strings": map_strings() | strings,
        "cells": {"type": "FeatureCollection", "features": features},
    }


def _quiet_note(folded: dict[str, Any]) -> str:
    """'No registration … in 7 other months: 2025-05 to 2025-09, 2026-01.' — what the table leaves out."""
    n = folded["quiet"]
    if not n:
        return ""
    runs = pgettext("list separator", ", ").join(
        first if first == last else _("%(first)s to %(last)s") % {"first": first, "last": last}
        for first, last in folded["quiet_runs"]
    )
    if folded["granularity"] == "day":
        text = ngettext(
            "No registration, deregistration, transfer or plate replacement on %(n)s other day: %(runs)s.",
            "No registration, deregistration, transfer or plate replacement on %(n)s other days: %(runs)s.",
            n,
        )
    elif folded["granularity"] == "week":
        text = ngettext(
            "No registration, deregistration, transfer or plate replacement in %(n)s other week: %(runs)s.",
            "No registration, deregistration, transfer or plate replacement in %(n)s other weeks: %(runs)s.",
            n,
        )
    else:
        text = ngettext(
            "No registration, deregistration, transfer or plate replacement in %(n)s other month: %(runs)s.",
            "No registration, deregistration, transfer or plate replacement in %(n)s other months: %(runs)s.",
            n,
        )
    return text % {"n": n, "runs": runs}


class EstimateForm(forms.Form):
    township_code = forms.ChoiceField(label=gettext_lazy("Township"))
    year = forms.IntegerField(label=gettext_lazy("Year"), min_value=2000, max_value=2100)
    estimated_bikes = forms.IntegerField(label=gettext_lazy("Estimated bikes in use"), min_value=1)
    method = forms.ChoiceField(label=gettext_lazy("Estimation method"), choices=EstimateMethod.choices)
    note = forms.CharField(label=gettext_lazy("Note"), required=False, max_length=200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["township_code"]).choices = [
            (t.code, f"{t.code} {t.name}") for t in Township.objects.all()
        ]


class UploadForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("CSV file"))


@stats_admin_required
@require_http_methods(["GET", "POST"])
def estimates(request: AuthedHttpRequest) -> HttpResponse:
    """The estimated bikes in use per township and year (the plate rate's denominator): one typed in,
    or a CSV file of them."""
    form = EstimateForm(initial={"year": timezone.localdate().year})
    upload = UploadForm()
    upload_errors: list[str] = []
    if request.method == "POST" and "file" in request.FILES:
        upload = UploadForm(request.POST, request.FILES)
        imported, upload_errors = _estimates_import(request, upload)
        if imported:
            return redirect("stats:estimates")
    elif request.method == "POST":
        form = EstimateForm(request.POST)
        if form.is_valid() and _estimate_save(request, form):
            return redirect("stats:estimates")
    rows = PlateEstimate.objects.select_related("township", "entered_by").order_by("-year", "township_id")
    context = {"form": form, "upload": upload, "upload_errors": upload_errors, "estimates": rows}
    return render(request, "stats/estimates.html", context)


def _estimates_import(request: AuthedHttpRequest, upload: UploadForm) -> tuple[bool, list[str]]:
    """Import a valid upload (its success message queued): whether it was, and the rows' problems."""
    if not upload.is_valid():
        return False, []
    try:
        data = upload.cleaned_data["file"].read(services.MAX_CSV_BYTES + 1)
        result = services.estimates_import_csv(user=request.user, data=data)
    except ValidationError as exc:
        return False, _row_messages(exc)
    counts = {"c": result.created, "u": result.updated}
    messages.success(request, _("Imported: %(c)s new, %(u)s replaced.") % counts)
    return True, []


def _estimate_save(request: AuthedHttpRequest, form: EstimateForm) -> bool:
    try:
        services.estimate_set(user=request.user, values=form.cleaned_data)
    except ValidationError as exc:
        place_problems(problem_dict(exc), page=form)
        return False
    messages.success(request, _("Estimate saved."))
    return True


def _row_messages(exc: ValidationError) -> list[str]:
    """ "rows.3.year" -> "Row 3, year: …" for the page."""
    out: list[str] = []
    for key, problems in sorted(exc.message_dict.items(), key=lambda kv: _row_key(kv[0])):
        parts = key.split(".")
        where = _("Row %(n)s, %(field)s") % {"n": parts[1], "field": parts[2]} if parts[0] == "rows" else key
        out.extend(f"{where}: {problem}" for problem in problems)
    return out


def _row_key(key: str) -> tuple[int, str]:
    parts = key.split(".")
    return (int(parts[1]), key) if parts[0] == "rows" and parts[1].isdigit() else (0, key)
