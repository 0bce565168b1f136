from typing import NoReturn

from django.db.models import Model, Prefetch
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import audit_record
from accounts.request_types import AuthedRequest
from cases.models import Case, CaseLink, CaseStep, ReportTransition, TheftReport
from cases.workflow import selectors, services
from cases.workflow import serializers as s
from cases.workflow.public_check import StolenCheckBudget
from ebike_registry.api import has_perm, parse_or_raise
from ebike_registry.problems import Problems

CanViewReports = has_perm("cases.view_theftreport")
CanHandleReports = has_perm("cases.change_theftreport")
CanFileCases = has_perm("cases.add_case")
CanViewCases = has_perm("cases.view_case")


def _filing(v: dict) -> services.CaseFiling:
    return services.CaseFiling(
        case_number=v.get("case_number", ""),
        officer_ids=tuple(v.get("officer_ids") or ()),
        summary=v.get("summary", ""),
        case_id=v.get("case_id"),
    )


def _transition_check(request: AuthedRequest, report: TheftReport, v: dict) -> Problems:
    """The step's problems, once the status asked for parsed."""
    if "to_status" not in v:
        return Problems()
    return services.report_transition_check(
        user=request.user, report=report, to_status=v["to_status"], note=v.get("note", ""), filing=_filing(v)
    )


def _file_check(request: AuthedRequest, v: dict) -> Problems:
    return services.case_file_check(
        filer=request.user, number=v.get("number", ""), kind=v.get("kind", ""), officer_ids=v.get("officer_ids", [])
    )


def _report(report_id: int) -> TheftReport:
    return (
        TheftReport.objects.select_related("station", "receiving_officer")
        .prefetch_related(
            "assigned_officers", Prefetch("transitions", queryset=ReportTransition.objects.select_related("by"))
        )
        .get(pk=report_id)
    )


def _case(case_id: int) -> Case:
    return (
        Case.objects.select_related("station", "filed_by", "approved_by")
        .prefetch_related("officers", "links", Prefetch("steps", queryset=CaseStep.objects.select_related("by")))
        .get(pk=case_id)
    )


def _allowed(request: Request, perm: str, obj: Model | None) -> None:
    """Ask the policy; a refusal is a 403 naming what is missing."""
    if not request.user.has_perm(perm, obj):
        raise PermissionDenied(_("Your account has no duty on this record (%(perm)s).") % {"perm": perm})


CanTakeReports = has_perm("cases.take_report")


class ReportCreateApi(APIView):
    """Officers and clerks take reports; an owner may start one online (channel "online")."""

    permission_classes = [CanTakeReports]

    @extend_schema(request=s.ReportInput, responses={201: s.ReportOutput}, operation_id="theft_report_take")
    def post(self, request: AuthedRequest) -> Response:
        v = parse_or_raise(
            s.ReportInput(), request.data, check=lambda v: services.report_take_check(user=request.user, values=v)
        )
        report = services.report_take(user=request.user, **services.report_take_arguments(v))
        return Response(s.ReportOutput(_report(report.pk)).data, status=status.HTTP_201_CREATED)


class ReportDetailApi(APIView):
    permission_classes = [CanViewReports]

    @extend_schema(responses={200: s.ReportOutput}, operation_id="theft_report_detail")
    def get(self, request: AuthedRequest, report_id: int) -> Response:
        report = _report(report_id)
        _allowed(request, "cases.view_report", report)
        audit_record(
            action="theft_report.view",
            object_type="theft_report",
            object_id=report.pk,
            request=request,
        )
        return Response(s.ReportOutput(report).data)


class ReportTransitionApi(APIView):
    permission_classes = [CanHandleReports]

    @extend_schema(request=s.TransitionInput, responses={200: s.ReportOutput}, operation_id="theft_report_transition")
    def post(self, request: AuthedRequest, report_id: int) -> Response:
        report = TheftReport.objects.get(pk=report_id)
        _allowed(request, "cases.handle_report", report)
        v = parse_or_raise(s.TransitionInput(), request.data, check=lambda v: _transition_check(request, report, v))
        services.report_transition(
            user=request.user, report_id=report_id, to_status=v["to_status"], note=v["note"], filing=_filing(v)
        )
        return Response(s.ReportOutput(_report(report_id)).data)


class ReportAssignApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=s.AssignInput, responses={200: s.ReportOutput}, operation_id="theft_report_assign")
    def post(self, request: AuthedRequest, report_id: int) -> Response:
        _allowed(request, "cases.assign_report", TheftReport.objects.get(pk=report_id))
        v = parse_or_raise(s.AssignInput(), request.data)
        officers = services.officers_find(ids=v["officer_ids"])
        services.report_assign(leader=request.user, report_id=report_id, officers=officers)
        return Response(s.ReportOutput(_report(report_id)).data)


class CaseCreateApi(APIView):
    permission_classes = [CanFileCases]

    @extend_schema(request=s.CaseInput, responses={201: s.CaseOutput}, operation_id="case_file")
    def post(self, request: AuthedRequest) -> Response:
        _allowed(request, "cases.file_case", None)
        v = parse_or_raise(s.CaseInput(), request.data, check=lambda v: _file_check(request, v))
        case = services.case_file(
            filer=request.user,
            number=v["number"],
            kind=v["kind"],
            officers=services.officers_find(ids=v["officer_ids"]),
            summary=v["summary"],
        )
        return Response(s.CaseOutput(_case(case.pk)).data, status=status.HTTP_201_CREATED)


class CaseDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: s.CaseOutput}, operation_id="case_detail")
    def get(self, request: Request, case_id: int) -> Response:
        case = _case(case_id)
        _allowed(request, "cases.view_case_record", case)
        return Response(s.CaseOutput(case).data)


class CaseApproveApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: s.CaseOutput}, operation_id="case_approve")
    def post(self, request: AuthedRequest, case_id: int) -> Response:
        services.case_approve(approver=request.user, case_id=case_id)
        return Response(s.CaseOutput(_case(case_id)).data)


class CaseLinkApi(APIView):
    permission_classes = [CanFileCases]

    @extend_schema(request=s.LinkInput, responses={201: s.LinkOutput}, operation_id="case_link")
    def post(self, request: AuthedRequest, case_id: int) -> Response:
        case = Case.objects.get(pk=case_id)
        services.case_action_refuse(user=request.user, perm="cases.link_to_case", case=case)
        v = parse_or_raise(
            s.LinkInput(), request.data, check=lambda v: services.case_link_check(user=request.user, case=case, **v)
        )
        link = services.case_link(user=request.user, case_id=case_id, **v)
        return Response(s.LinkOutput(link).data, status=status.HTTP_201_CREATED)


class CaseUnlinkApi(APIView):
    permission_classes = [CanFileCases]

    @extend_schema(request=s.UnlinkInput, responses={200: s.LinkOutput}, operation_id="case_unlink")
    def post(self, request: AuthedRequest, link_id: int) -> Response:
        link = CaseLink.objects.select_related("case").get(pk=link_id)
        services.case_action_refuse(user=request.user, perm="cases.link_to_case", case=link.case)
        v = parse_or_raise(
            s.UnlinkInput(),
            request.data,
            check=lambda v: services.case_unlink_check(user=request.user, link=link, reason=v.get("reason", "")),
        )
        return Response(s.LinkOutput(services.case_unlink(user=request.user, link_id=link_id, **v)).data)


class CaseSolveApi(APIView):
    permission_classes = [CanFileCases]

    @extend_schema(request=s.SolveInput, responses={200: s.CaseOutput}, operation_id="case_solve")
    def post(self, request: AuthedRequest, case_id: int) -> Response:
        case = Case.objects.get(pk=case_id)
        services.case_action_refuse(user=request.user, perm="cases.solve_case", case=case)
        v = parse_or_raise(
            s.SolveInput(), request.data, check=lambda v: services.case_solve_check(user=request.user, case=case)
        )
        services.case_solve(user=request.user, case_id=case_id, **v)
        return Response(s.CaseOutput(_case(case_id)).data)


class CaseCloseApi(APIView):
    """结案 / 撤销案件: a leader of the case's station closes it, with the reason."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=s.CloseInput, responses={200: s.CaseOutput}, operation_id="case_close")
    def post(self, request: AuthedRequest, case_id: int) -> Response:
        case = Case.objects.get(pk=case_id)
        services.case_action_refuse(user=request.user, perm="cases.close_case", case=case)
        v = parse_or_raise(
            s.CloseInput(),
            request.data,
            check=lambda v: services.case_close_check(user=request.user, case=case, reason=v.get("reason", "")),
        )
        services.case_close(user=request.user, case_id=case_id, reason=v["reason"])
        return Response(s.CaseOutput(_case(case_id)).data)


class StolenCheckApi(APIView):
    """Public: is this plate or frame number reported stolen? No personal data, rate-limited."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [StolenCheckBudget]  # the page's budget as well

    def throttled(self, request: Request, wait: float | None) -> NoReturn:
        StolenCheckBudget.refuse(wait)

    @extend_schema(
        parameters=[s.StolenCheckQuery],
        responses={200: s.StolenCheckOutput},
        operation_id="public_stolen_check",
    )
    def get(self, request: Request) -> Response:
        query = parse_or_raise(s.StolenCheckQuery(), request.query_params)
        result = selectors.stolen_check(plate=query["plate"], frame_number=query["frame"])
        return Response(s.StolenCheckOutput(result).data)
