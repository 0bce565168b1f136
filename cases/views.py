"""Officer pages for theft reports and cases, the stated-reason review, and the public stolen check."""

import datetime

from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from accounts.audit import audit_record, client_ip
from cases import alerts, oversight, selectors, services
from cases.forms import ReportForm, ReviewPeriodForm, StolenCheckForm, TransitionForm
from cases.models import TRANSITIONS, Case, CaseLink, ReportStatus, ReportTransition, TheftReport
from cases.public_check import stolen_check_budget_take
from vehicles.identifiers import mask_phone


def _place(form: ReportForm | TransitionForm | StolenCheckForm, exc: ValidationError) -> None:
    for field, messages in exc.message_dict.items():
        target = {"place_point": "latitude", "vehicle": None, "query": None}.get(field, field)
        form.add_error(target if target in form.fields else None, messages)


@login_required
@permission_required("cases.add_theftreport", raise_exception=True)
@require_http_methods(["GET", "POST"])
def report_new(request: HttpRequest) -> HttpResponse:
    """接警登记: every problem at once, the typed values kept; a valid report is always accepted."""
    form = ReportForm(request.POST or None)
    if request.method == "POST":
        form.is_valid()
        values = {k: v for k, v in form.cleaned_data.items() if k not in form.errors}
        domain = services.report_field_problems(
            {**values, "place_point": _point(values)} if "latitude" in values else values
        )
        if form.errors or domain:
            query = services.VehicleQuery(
                plate=values.get("plate", ""),
                frame_number=values.get("frame_number", ""),
                owner_id_number=values.get("owner_id_number", ""),
            )
            domain.merge(services.report_vehicle_problems(query, values.get("unregistered_description", "")).by_field)
        for field, messages in domain.by_field.items():
            if field not in form.errors:
                form.add_error(field if field in form.fields else None, messages)
        if not form.errors:
            try:
                report = services.report_take(
                    user=request.user,  # type: ignore[arg-type]
                    channel=values["channel"],
                    vehicle_query=services.VehicleQuery(
                        plate=values["plate"],
                        frame_number=values["frame_number"],
                        owner_id_number=values["owner_id_number"],
                    ),
                    unregistered_description=values["unregistered_description"],
                    reporter_name=values["reporter_name"],
                    reporter_phone=values["reporter_phone"],
                    reporter_id_number=values["reporter_id_number"],
                    last_seen_at=values["last_seen_at"],
                    missing_at=values["missing_at"],
                    place_address=values["place_address"],
                    place_point=_point(values),
                    township_code=values["township_code"],
                    locked=values["locked"],
                    narrative=values["narrative"],
                )
            except ValidationError as exc:
                _place(form, exc)
            else:
                return redirect("cases:receipt", report_id=report.pk)
    return render(request, "cases/report_new.html", {"form": form}, status=400 if form.errors else 200)


def _point(values: dict) -> tuple[float, float] | None:
    if values.get("latitude") is None or values.get("longitude") is None:
        return None
    return (values["latitude"], values["longitude"])


def _report(report_id: int) -> TheftReport:
    return get_object_or_404(
        TheftReport.objects.select_related("station", "receiving_officer", "vehicle", "township").prefetch_related(
            Prefetch("transitions", queryset=ReportTransition.objects.select_related("by")),
            Prefetch("case_links", queryset=CaseLink.objects.filter(unlinked_at__isnull=True).select_related("case")),
        ),
        pk=report_id,
    )


def _report_allowed(request: HttpRequest, report_id: int) -> TheftReport:
    report = _report(report_id)
    if not request.user.has_perm("cases.view_report", report):
        raise PermissionDenied(_("This report belongs to another station and you have no duty on it."))
    return report


@login_required
@require_GET
def receipt(request: HttpRequest, report_id: int) -> HttpResponse:
    """接报案回执: printable, for the reporter."""
    report = _report_allowed(request, report_id)
    context = {"report": report, "phone": mask_phone(report.reporter_phone), "plate": _plate_of(report)}
    return render(request, "cases/receipt.html", context)


def _plate_of(report: TheftReport) -> str:
    """The reported bike's plate, as the reporter and the officer know it."""
    return alerts.plate_number(report.vehicle_id) if report.vehicle_id else ""


@login_required
@require_http_methods(["GET", "POST"])
def report_detail(request: HttpRequest, report_id: int) -> HttpResponse:
    report = _report_allowed(request, report_id)
    can_move = request.user.has_perm("cases.handle_report", report)
    allowed = TRANSITIONS[report.status]
    form = TransitionForm(request.POST or None)
    form.fields["to_status"].choices = [(s, ReportStatus(s).label) for s in ReportStatus.values if s in allowed]
    if request.method == "POST":
        if not can_move:
            return render(request, "403.html", status=403)
        if form.is_valid():
            try:
                services.report_transition(
                    user=request.user,  # type: ignore[arg-type]
                    report_id=report.pk,
                    to_status=form.cleaned_data["to_status"],
                    note=form.cleaned_data["note"],
                )
            except ValidationError as exc:
                _place(form, exc)
            else:
                return redirect("cases:report", report_id=report.pk)
    else:
        audit_record(
            user=request.user,  # type: ignore[arg-type]
            action="theft_report.view",
            object_type="theft_report",
            object_id=report.pk,
            ip=client_ip(request),
        )
    sightings = None
    if request.user.has_perm("cases.view_report_sightings", report):
        sightings = alerts.report_sightings(report_id=report.pk)
        if sightings and request.method != "POST":
            audit_record(
                user=request.user,  # type: ignore[arg-type]
                action="sightings.view",
                object_type="theft_report",
                object_id=report.pk,
                query={"page": "report"},
                result_count=len(sightings),
                ip=client_ip(request),
            )
    context = {
        "report": report,
        "plate": _plate_of(report),
        "form": form,
        "can_move": can_move and bool(allowed),
        "sightings": sightings,
        "can_export": request.user.has_perm("cases.export_report_evidence", report),
    }
    return render(request, "cases/report_detail.html", context, status=400 if form.errors else 200)


@login_required
@require_GET
def case_detail(request: HttpRequest, case_id: int) -> HttpResponse:
    case = get_object_or_404(
        Case.objects.select_related("station", "filed_by", "approved_by").prefetch_related(
            "officers",
            Prefetch(
                "links",
                queryset=CaseLink.objects.select_related("report", "vehicle", "linked_by", "unlinked_by").order_by(
                    "linked_at"
                ),
            ),
        ),
        pk=case_id,
    )
    if not request.user.has_perm("cases.view_case_record", case):
        raise PermissionDenied(_("This case belongs to another station and you are not one of its officers."))
    audit_record(user=request.user, action="case.view", object_type="case", object_id=case.pk, ip=client_ip(request))  # type: ignore[arg-type]
    context = {"case": case, "can_export": request.user.has_perm("cases.export_case_evidence", case)}
    return render(request, "cases/case_detail.html", context)


@require_GET
def stolen_check(request: HttpRequest) -> HttpResponse:
    """Public page for buyers and repair shops: is this bike reported stolen? No personal data."""
    form = StolenCheckForm(request.GET or None)
    result = None
    if request.GET:
        budget = stolen_check_budget_take(client=client_ip(request))
        if not budget.allowed:
            context = {"form": StolenCheckForm(), "throttled": budget, "limit": settings.STOLEN_CHECK_RATE_PER_MINUTE}
            response = render(request, "cases/stolen_check.html", context, status=429)
            response["Retry-After"] = str(budget.retry_after)
            return response
    if request.GET and form.is_valid():
        try:
            result = selectors.stolen_check(plate=form.cleaned_data["plate"], frame_number=form.cleaned_data["frame"])
        except ValidationError as exc:
            _place(form, exc)
    return render(request, "cases/stolen_check.html", {"form": form, "result": result})


@login_required
@require_GET
def reason_reviews(request: HttpRequest) -> HttpResponse:
    """理由查询复核: the looks at positions the leader's station took on a stated reason alone."""
    if not request.user.has_perm("cases.review_stated_reasons"):
        raise PermissionDenied(_("Station leaders review the looks taken on a stated reason."))
    form = ReviewPeriodForm(request.GET or None)
    today = timezone.localdate()
    since_day, until_day = today - datetime.timedelta(days=6), today
    if form.is_bound and form.is_valid():
        since_day = form.cleaned_data["since"] or since_day
        until_day = form.cleaned_data["until"] or until_day
    since = timezone.make_aware(datetime.datetime.combine(since_day, datetime.time()))
    until = timezone.make_aware(datetime.datetime.combine(until_day + datetime.timedelta(days=1), datetime.time()))
    looks = list(oversight.stated_reason_looks(leader=request.user, since=since, until=until)[:500])  # type: ignore[arg-type]
    for look in looks:
        look.label = oversight.look_label(look.action)  # type: ignore[attr-defined]
    audit_record(
        user=request.user,  # type: ignore[arg-type]
        action="review.stated_reasons",
        object_type="station",
        object_id=request.user.station_id or "",  # type: ignore[union-attr]
        query={"since": since_day.isoformat(), "until": until_day.isoformat()},
        result_count=len(looks),
        ip=client_ip(request),
    )
    context = {"form": form, "looks": looks, "since": since_day, "until": until_day}
    return render(request, "cases/reason_reviews.html", context, status=400 if form.errors else 200)
