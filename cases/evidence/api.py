"""Evidence export API: a signed JSON bundle or its printable PDF for a theft report or a case, the
public key to check bundles with, and a check of a bundle anyone may run."""

import datetime
from typing import NoReturn

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import client_ip
from accounts.request_types import AuthedRequest
from accounts.throttles import ClientBudget
from cases.evidence import services as evidence
from cases.evidence.pdf import render_pdf
from ebike_registry.api import has_perm, parse_or_raise
from ebike_registry.downloads import as_attachment

CanExport = has_perm("cases.export_evidence")
FILE_RESPONSES = {
    (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="the signed JSON bundle"),
    (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="the printable PDF"),
}


class ExportInput(serializers.Serializer):
    format = serializers.ChoiceField(choices=evidence.FORMATS, default="json")
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=200,
        help_text="Why the evidence is exported (court, procuratorate request …); required without a case duty.",
    )


class ReportExportInput(ExportInput):
    since = serializers.DateTimeField(required=False, allow_null=True, default=None)
    until = serializers.DateTimeField(required=False, allow_null=True, default=None)


class PublicKeyOutput(serializers.Serializer):
    algorithm = serializers.CharField()
    fingerprint = serializers.CharField()
    public_key_pem = serializers.CharField()


class VerifyOutput(serializers.Serializer):
    valid = serializers.BooleanField()
    subject = serializers.CharField()
    fingerprint = serializers.CharField()
    sections = serializers.IntegerField()
    problems = serializers.ListField(child=serializers.CharField())


def _file(bundle: evidence.Bundle, fmt: str, stem: str) -> HttpResponse:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    if fmt == "pdf":
        response = HttpResponse(render_pdf(bundle), content_type="application/pdf")
        name = f"evidence-{stem}-{stamp}.pdf"
    else:
        response = HttpResponse(bundle.json_bytes(), content_type="application/json; charset=utf-8")
        name = f"evidence-{stem}-{stamp}.json"
    response["X-Evidence-Manifest-SHA256"] = bundle.digest
    return as_attachment(response, name)


class ReportEvidenceApi(APIView):
    permission_classes = [CanExport]

    @extend_schema(request=ReportExportInput, responses=FILE_RESPONSES, operation_id="theft_report_evidence_export")
    def post(self, request: AuthedRequest, report_id: int) -> HttpResponse:
        v = parse_or_raise(ReportExportInput(), request.data)
        bundle = evidence.report_evidence_export(
            user=request.user,
            report_id=report_id,
            fmt=v["format"],
            reason=v["reason"],
            since=v["since"],
            until=v["until"],
            ip=client_ip(request),
        )
        return _file(bundle, v["format"], bundle.manifest["subject"]["number"])


class CaseEvidenceApi(APIView):
    permission_classes = [CanExport]

    @extend_schema(request=ExportInput, responses=FILE_RESPONSES, operation_id="case_evidence_export")
    def post(self, request: AuthedRequest, case_id: int) -> HttpResponse:
        v = parse_or_raise(ExportInput(), request.data)
        bundle = evidence.case_evidence_export(
            user=request.user, case_id=case_id, fmt=v["format"], reason=v["reason"], ip=client_ip(request)
        )
        return _file(bundle, v["format"], bundle.manifest["subject"]["number"])


class PublicKeyApi(APIView):
    """The key evidence bundles are signed with: what a court checks a bundle against."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: PublicKeyOutput}, operation_id="evidence_public_key")
    def get(self, request: Request) -> Response:
        key = evidence.server_public_key()
        return Response(
            {
                "algorithm": evidence.SIGNATURE_ALGORITHM,
                "fingerprint": evidence.fingerprint(key),
                "public_key_pem": evidence.public_key_pem(key),
            }
        )


class VerifyBudget(ClientBudget):
    budget_scope = "evidence_verify"
    limit_setting = "EVIDENCE_VERIFY_RATE_PER_MINUTE"


class VerifyApi(APIView):
    """Check a bundle (the request body) against this server's key; nothing is stored. Public, so
    budgeted per client address: each check reads and hashes a body of up to 2.5 MB."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [VerifyBudget]

    def throttled(self, request: Request, wait: float | None) -> NoReturn:
        VerifyBudget.refuse(wait)

    # Any body is checked: what is not a bundle is answered valid: false with the reason, not refused.
    @extend_schema(
        request={"application/json": OpenApiTypes.ANY},
        responses={200: VerifyOutput},
        operation_id="evidence_verify",
    )
    def post(self, request: Request) -> Response:
        result = evidence.bundle_verify(request.body, trusted=[evidence.server_public_key()])
        return Response(
            {
                "valid": result.valid,
                "subject": result.subject,
                "fingerprint": result.fingerprint,
                "sections": result.sections,
                "problems": result.problems,
            }
        )
