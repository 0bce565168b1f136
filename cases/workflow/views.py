"""Officer pages for theft reports and cases, the stated-reason review, and the public stolen check."""

import datetime
from collections.abc import Callable
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from accounts.audit import audit_record
from accounts.models import User
from accounts.request_types import AuthedHttpRequest
from accounts.roles import OFFICER
from cases.alerts import services as alerts
from cases.models import TRANSITIONS, Case, CaseLink, CaseStep, ReportStatus, ReportTransition, TheftReport
from cases.tracing import oversight
from cases.workflow import case_lists, selectors, services
from cases.workflow.forms import (
    CaseListForm,
    CloseForm,
    LinkForm,
    ReportForm,
    ReviewPeriodForm,
    SolveForm,
    StolenCheckForm,
    TransitionForm,
    UnlinkForm,
)
from cases.workflow.public_check import StolenCheckBudget
from ebike_registry.forms import form_attempt, parsed_values, place_problems, problem_dict
from ebike_registry.problems import Problems
from vehicles.identifiers import mask_phone

# The report form takes the map point as latitude and longitude.
REPORT_TARGETS: dict[str, str | None] = {"place_point": "latitude"}


@login_required
@permission_required("cases.add_theftreport", raise_exception=True)
@require_http_methods(["GET", "POST"])
def report_new(request: HttpRequest) -> HttpResponse:
    """接警登记: every problem at once, the typed values kept; a valid report is always accepted."""
    form = ReportForm(request.POST or None)
    if request.method == "POST":
        user: Any = request.user
        values = parsed_values(form)
        report = form_attempt(
            page=form,
            targets=REPORT_TARGETS,
            check=lambda: services.report_take_check(user=user, values=values),
            write=lambda: services.report_take(user=user, **services.report_take_arguments(values)),
        )
        if report is not None:
            return redirect("cases:receipt", report_id=report.pk)
    return render(request, "cases/report_new.html", {"form": form}, status=400 if form.errors else 200)


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


def _step_actor(report: TheftReport, step: ReportTransition) -> dict[str, Any]:
    """Who took a workflow step: an online report's first step is the owner's, named as such."""
    by = step.by
    if by is None:
        return {"name": "", "owner": False}
    vehicle = report.vehicle
    if vehicle is not None and vehicle.owner.user_id == by.pk:
        return {"name": vehicle.owner.name, "owner": True}
    return {"name": by.get_full_name() or by.get_username(), "owner": False}


def _filing_choices(user: Any) -> dict[str, Any]:
    """The officers of the user's station for a new case, and the cases the user may attach to."""
    officers = (
        User.objects.filter(station_id=user.station_id, groups__name=OFFICER, is_active=True)
        .exclude(pk=user.pk)
        .order_by("last_name", "first_name", "username")
        if user.station_id
        else []
    )
    cases = case_lists.cases_of_officer(user).filter(approved_by__isnull=False).exclude(status=Case.Status.CLOSED)
    return {"officers": list(officers), "cases": list(cases)}


def _filing(values: dict[str, Any]) -> services.CaseFiling:
    return services.CaseFiling(
        case_number=values.get("case_number", ""),
        officer_ids=tuple(values.get("officer_ids") or ()),
        summary=values.get("summary", ""),
        case_id=values.get("case_id"),
    )


@login_required
@require_http_methods(["GET", "POST"])
def report_detail(request: HttpRequest, report_id: int) -> HttpResponse:
    """The report, its steps and sightings, and the form that moves it on (filing it as a case)."""
    report = _report_allowed(request, report_id)
    can_move = request.user.has_perm("cases.handle_report", report)
    form = _transition_form(request, report, can_move=can_move)
    if request.method == "POST":
        if not can_move:
            return render(request, "403.html", status=403)
        if _report_move(request, report, form) is not None:
            return redirect("cases:report", report_id=report.pk)
    else:
        audit_record(request=request, action="theft_report.view", object_type="theft_report", object_id=report.pk)
    context = _report_context(request, report, form, can_move=can_move)
    return render(request, "cases/report_detail.html", context, status=400 if form.errors else 200)


def _transition_form(request: HttpRequest, report: TheftReport, *, can_move: bool) -> TransitionForm:
    """The steps open from the report's status; the officers and cases a filing may name."""
    form = TransitionForm(request.POST or None, **(_filing_choices(request.user) if can_move else {}))
    allowed = TRANSITIONS[report.status]
    choices = [(s, ReportStatus(s).label) for s in ReportStatus.values if s in allowed]
    cast(forms.ChoiceField, form.fields["to_status"]).choices = choices
    return form


def _report_move(request: HttpRequest, report: TheftReport, form: TransitionForm) -> TheftReport | None:
    """Check the step asked for (once its status parsed) and take it; None with the problems shown."""
    user: Any = request.user
    values = parsed_values(form)

    def check() -> Problems:
        if "to_status" not in values:
            return Problems()
        note = values.get("note", "")
        return services.report_transition_check(
            user=user, report=report, to_status=values["to_status"], note=note, filing=_filing(values)
        )

    return form_attempt(
        page=form,
        check=check,
        write=lambda: services.report_transition(
            user=user, report_id=report.pk, to_status=values["to_status"], note=values["note"], filing=_filing(values)
        ),
    )


def _report_context(request: HttpRequest, report: TheftReport, form: TransitionForm, *, can_move: bool) -> dict:
    user: Any = request.user
    transitions = report.transitions.all()
    return {
        "report": report,
        "plate": _plate_of(report),
        "form": form,
        "steps": [{"step": t, **_step_actor(report, t)} for t in transitions],
        "can_move": can_move and bool(TRANSITIONS[report.status]),
        "filing_statuses": sorted(services.FILING_KINDS),
        "decided": any(t.to_status in services.DECISION_STATUSES for t in transitions),
        "sightings": _report_sightings(request, report),
        "can_export": user.has_perm("cases.export_report_evidence", report),
    }


def _report_sightings(request: HttpRequest, report: TheftReport) -> list | None:
    """The report's sightings for whoever may see them (None otherwise); a look at them is audited."""
    if not request.user.has_perm("cases.view_report_sightings", report):
        return None
    sightings = alerts.report_sightings(report_id=report.pk)
    if sightings and request.method != "POST":
        audit_record(
            request=request,
            action="sightings.view",
            object_type="theft_report",
            object_id=report.pk,
            query={"page": "report"},
            result_count=len(sightings),
        )
    return sightings


# The leader's review period for a refusal to file (公安机关办理刑事案件程序规定 art. 179): the reporter
# may ask for reconsideration (复议) within 7 days of receiving the notice; the bureau answers in 30.
REVIEW_REQUEST_DAYS = 7
REVIEW_ANSWER_DAYS = 30


@login_required
@require_GET
def report_decision(request: HttpRequest, report_id: int) -> HttpResponse:
    """立案决定书 / 不予立案通知书: the written decision for the reporter, printable."""
    report = _report_allowed(request, report_id)
    decision = services.report_decision(report)
    if decision is None:
        raise Http404(_("The report is not decided yet: it has no decision notice."))
    link = report.case_links.first() if decision.to_status in services.FILING_KINDS else None
    audit_record(
        request=request, action="theft_report.decision_notice", object_type="theft_report", object_id=report.pk
    )
    context = {
        "report": report,
        "decision": decision,
        "filed": decision.to_status in services.FILING_KINDS,
        "case": link.case if link else None,
        "plate": _plate_of(report),
        "review_days": REVIEW_REQUEST_DAYS,
        "answer_days": REVIEW_ANSWER_DAYS,
    }
    return render(request, "cases/decision_notice.html", context)


def _case(case_id: int) -> Case:
    return get_object_or_404(
        Case.objects.select_related("station", "filed_by", "approved_by").prefetch_related(
            "officers",
            Prefetch(
                "links",
                queryset=CaseLink.objects.select_related("report", "vehicle", "linked_by", "unlinked_by").order_by(
                    "linked_at"
                ),
            ),
            Prefetch("steps", queryset=CaseStep.objects.select_related("by", "report", "vehicle")),
        ),
        pk=case_id,
    )


def _link_targets(values: dict[str, Any]) -> tuple[int | None, int | None, Problems]:
    """The report and the bike the link form names, by report number and by plate or frame number."""
    problems = Problems()
    report_id = vehicle_id = None
    number = values.get("report_number", "").strip()
    if number:
        found = TheftReport.objects.filter(number=number.upper()).values_list("pk", flat=True).first()
        report_id = found or 0  # 0: no such report, which the check names at the field
    identifier = values.get("vehicle", "").strip()
    if identifier:
        matches = services.vehicle_find(services.VehicleQuery(plate=identifier, frame_number=identifier))
        if len(matches) > 1:
            problems.add("vehicle_id", _("The plate and frame number match different bikes; give one of them."))
        vehicle_id = matches[0].pk if matches else 0
    return report_id, vehicle_id, problems


LINK_TARGETS: dict[str, str | None] = {"report_id": "report_number", "vehicle_id": "vehicle", "case": None}
CASE_ACTIONS = ("approve", "link", "unlink", "solve", "close")
CASE_ACTION_PERMS = {
    "link": "cases.link_to_case",
    "unlink": "cases.link_to_case",
    "solve": "cases.solve_case",
    "close": "cases.close_case",
}


def _case_action(request: HttpRequest, case: Case, forms: dict[str, Any]) -> bool:
    """Carry out the posted action on the case; False (errors at the form's fields) when refused."""
    user: Any = request.user
    action = request.POST.get("action", "")
    if action == "approve":
        return _case_approve(user, case, forms)
    form = forms.get(action)
    if form is None:
        return False
    services.case_action_refuse(user=user, perm=CASE_ACTION_PERMS[action], case=case)
    values = parsed_values(form)
    return CASE_ACTION_WRITES[action](user, case, form, values) is not None


def _case_approve(user: Any, case: Case, forms: dict[str, Any]) -> bool:
    try:
        services.case_approve(approver=user, case_id=case.pk)
    except ValidationError as exc:
        forms["approve_errors"] = [m for ms in exc.message_dict.values() for m in ms]
        return False
    return True


def _case_link(user: Any, case: Case, form: LinkForm, values: dict[str, Any]) -> CaseLink | None:
    report_id, vehicle_id, found = _link_targets(values)

    def check() -> Problems:
        reason = values.get("reason", "")
        found.merge(
            services.case_link_check(
                user=user, case=case, report_id=report_id, vehicle_id=vehicle_id, reason=reason
            ).by_field
        )
        return found

    return form_attempt(
        page=form,
        targets=LINK_TARGETS,
        check=check,
        write=lambda: services.case_link(
            user=user, case_id=case.pk, report_id=report_id, vehicle_id=vehicle_id, reason=values["reason"]
        ),
    )


def _case_unlink(user: Any, case: Case, form: UnlinkForm, values: dict[str, Any]) -> CaseLink | None:
    link = case.links.filter(pk=values.get("link_id")).select_related("case").first()  # type: ignore[misc]  # no id: no link

    def check() -> Problems:
        if link is None:
            missing = Problems()
            missing.add("link", _("This link does not exist."))
            return missing
        return services.case_unlink_check(user=user, link=link, reason=values.get("reason", ""))

    return form_attempt(
        page=form,
        check=check,
        write=lambda: services.case_unlink(user=user, link_id=values["link_id"], reason=values["reason"]),
    )


def _case_solve(user: Any, case: Case, form: SolveForm, values: dict[str, Any]) -> Case | None:
    return form_attempt(
        page=form,
        check=lambda: services.case_solve_check(user=user, case=case),
        write=lambda: services.case_solve(
            user=user, case_id=case.pk, with_positioning=values["with_positioning"], note=values["note"]
        ),
    )


def _case_close(user: Any, case: Case, form: CloseForm, values: dict[str, Any]) -> Case | None:
    return form_attempt(
        page=form,
        check=lambda: services.case_close_check(user=user, case=case, reason=values.get("reason", "")),
        write=lambda: services.case_close(user=user, case_id=case.pk, reason=values["reason"]),
    )


CASE_ACTION_WRITES: dict[str, Callable[..., Any]] = {
    "link": _case_link,
    "unlink": _case_unlink,
    "solve": _case_solve,
    "close": _case_close,
}


@login_required
@require_http_methods(["GET", "POST"])
def case_detail(request: HttpRequest, case_id: int) -> HttpResponse:
    """The case: what it links, its history, and the officers' and leader's actions on it."""
    case = _case(case_id)
    if not request.user.has_perm("cases.view_case_record", case):
        raise PermissionDenied(_("This case belongs to another station and you are not one of its officers."))
    posted = request.POST.get("action", "") if request.method == "POST" else ""
    forms = _case_forms(request, posted)
    if request.method == "POST":
        if posted not in CASE_ACTIONS:
            return HttpResponseBadRequest(_("Unknown action."))
        if _case_action(request, case, forms):
            return redirect("cases:case", case_id=case.pk)
    else:
        audit_record(request=request, action="case.view", object_type="case", object_id=case.pk)
    context = _case_context(request, case, forms, posted)
    return render(request, "cases/case_detail.html", context, status=400 if request.method == "POST" else 200)


def _case_forms(request: HttpRequest, posted: str) -> dict[str, Any]:
    """The case page's action forms, the posted one bound."""
    return {
        "link": LinkForm(request.POST if posted == "link" else None, prefix="link"),
        "unlink": UnlinkForm(request.POST if posted == "unlink" else None, prefix="unlink"),
        "solve": SolveForm(request.POST if posted == "solve" else None, prefix="solve"),
        "close": CloseForm(request.POST if posted == "close" else None, prefix="close"),
    }


def _case_context(request: HttpRequest, case: Case, forms: dict[str, Any], posted: str) -> dict[str, Any]:
    user: Any = request.user
    open_case = case.status != Case.Status.CLOSED
    unlink_form = forms["unlink"]
    posted_form = forms.get(posted)
    return {
        "posted_errors": [m for ms in posted_form.errors.values() for m in ms] if posted_form is not None else [],
        "case": case,
        "forms": forms,
        "failed_link_id": unlink_form.data.get("unlink-link_id") if unlink_form.is_bound else None,
        "failed_unlink_reason": unlink_form.data.get("unlink-reason", "") if unlink_form.is_bound else "",
        "approve_errors": forms.get("approve_errors", []),
        "can_link": open_case and user.has_perm("cases.link_to_case", case),
        "can_solve": case.status == Case.Status.OPEN and user.has_perm("cases.solve_case", case),
        "can_close": open_case and user.has_perm("cases.close_case", case),
        "can_approve": user.has_perm("cases.approve_case_record", case),
        "can_export": user.has_perm("cases.export_case_evidence", case),
    }


@login_required
@require_GET
def my_cases(request: HttpRequest) -> HttpResponse:
    """我的案件: the cases the officer is on."""
    if not request.user.has_perm("cases.list_my_cases"):
        raise PermissionDenied(_("Officers see the cases they are on."))
    cases = case_lists.cases_of_officer(request.user)[:500]
    return render(request, "cases/case_list.html", {"cases": cases, "mine": True})


@login_required
@require_GET
def case_list(request: HttpRequest) -> HttpResponse:
    """The station's cases (every station's for county leadership), by status."""
    user: Any = request.user
    if not user.has_perm("cases.list_station_cases"):
        raise PermissionDenied(_("The officers and the leader of a station see its cases."))
    form = CaseListForm(request.GET or None)
    status = form.cleaned_data["status"] if form.is_valid() else ""
    cases = case_lists.cases_of_station(user, status=status)[:500]
    context = {"cases": cases, "mine": False, "form": form, "station": user.station}
    return render(request, "cases/case_list.html", context)


@login_required
@require_GET
def reports_undecided(request: AuthedHttpRequest) -> HttpResponse:
    """Reports still waiting for the decision to file them past REPORT_DECISION_DAYS, for the leader."""
    user: Any = request.user
    if not user.has_perm("cases.list_overdue_reports"):
        raise PermissionDenied(_("The station's leader sees the reports waiting too long for a decision."))
    now = timezone.now()
    reports = list(case_lists.reports_undecided(user, now=now)[:500])
    for report in reports:
        report.overdue_days = (now - case_lists.decision_deadline(report)).days  # type: ignore[attr-defined]  # for the template
    context = {"reports": reports, "days": settings.REPORT_DECISION_DAYS, "station": user.station}
    return render(request, "cases/reports_undecided.html", context)


@require_GET
def stolen_check(request: HttpRequest) -> HttpResponse:
    """Public page for buyers and repair shops: is this bike reported stolen? No personal data."""
    form = StolenCheckForm(request.GET or None)
    result = None
    if request.GET:
        budget = StolenCheckBudget.take(request)
        if not budget.allowed:
            context = {"form": StolenCheckForm(), "throttled": budget, "limit": StolenCheckBudget.limit()}
            response = render(request, "cases/stolen_check.html", context, status=429)
            response["Retry-After"] = str(budget.retry_after)
            return response
    if request.GET and form.is_valid():
        try:
            result = selectors.stolen_check(plate=form.cleaned_data["plate"], frame_number=form.cleaned_data["frame"])
        except ValidationError as exc:
            place_problems(problem_dict(exc), page=form)
    return render(request, "cases/stolen_check.html", {"form": form, "result": result})


@login_required
@require_GET
def reason_reviews(request: AuthedHttpRequest) -> HttpResponse:
    """理由查询复核: the looks at positions the leader's station took on a stated reason alone."""
    if not request.user.has_perm("cases.review_stated_reasons"):
        raise PermissionDenied(_("Station leaders review the looks taken on a stated reason."))
    form = ReviewPeriodForm(request.GET or None)
    since_day, until_day = form.days()
    looks = _stated_reason_looks(request, since_day, until_day)
    audit_record(
        request=request,
        action="review.stated_reasons",
        object_type="station",
        object_id=request.user.station_id or "",
        query={"since": since_day.isoformat(), "until": until_day.isoformat()},
        result_count=len(looks),
    )
    context = {"form": form, "looks": looks, "since": since_day, "until": until_day}
    return render(request, "cases/reason_reviews.html", context, status=400 if form.errors else 200)


def _stated_reason_looks(request: AuthedHttpRequest, since_day: datetime.date, until_day: datetime.date) -> list[Any]:
    """The looks of the leader's station taken on a stated reason alone in these days, labelled."""
    since = timezone.make_aware(datetime.datetime.combine(since_day, datetime.time()))
    until = timezone.make_aware(datetime.datetime.combine(until_day + datetime.timedelta(days=1), datetime.time()))
    looks = list(oversight.stated_reason_looks(leader=request.user, since=since, until=until)[:500])
    for look in looks:
        look.label = oversight.look_label(look.action)  # type: ignore[attr-defined]  # for the template
    return looks
