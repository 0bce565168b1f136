"""Insurance claims API: list and read claims, and one operation per step of the lifecycle.

Every step calls the same service as the counter pages (cases.claims.services); a refused step is HTTP 400
naming the field and the reason (all problems at once), a missing right is 403.
"""

from typing import Any

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import audit_record
from accounts.models import User
from accounts.request_types import AuthedRequest
from cases.claims import services as claims
from cases.models import ClaimStep, InsuranceClaim
from ebike_registry.api import Pagination, has_perm, parse_or_raise, query_flag
from ebike_registry.problems import Problems
from ebike_registry.schema import paginated

CanViewClaims = has_perm("cases.view_insuranceclaim")


class StepOutput(serializers.ModelSerializer):
    by: "serializers.SlugRelatedField[User]" = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ClaimStep
        fields = ["action", "from_status", "to_status", "at", "by", "note"]


class ClaimOutput(serializers.ModelSerializer):
    report_number = serializers.CharField(source="report.number", read_only=True)
    report_status = serializers.CharField(source="report.status", read_only=True)
    policy_number = serializers.CharField(source="policy.number", read_only=True)
    vehicle = serializers.IntegerField(source="policy.vehicle_id", read_only=True)
    decided_by: "serializers.SlugRelatedField[User]" = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    settlement_pending = serializers.SerializerMethodField()
    steps = StepOutput(many=True, read_only=True)

    class Meta:
        model = InsuranceClaim
        fields = [
            "id",
            "report",
            "report_number",
            "report_status",
            "policy_number",
            "vehicle",
            "status",
            "amount",
            "eligible_at",
            "submitted_at",
            "documents",
            "decided_at",
            "decided_by",
            "rejection_reason",
            "paid_at",
            "after_recovery",
            "after_recovery_at",
            "settlement_pending",
            "steps",
        ]

    def get_settlement_pending(self, claim: InsuranceClaim) -> bool:
        return claims.settlement_pending(claim)


class SubmitInput(serializers.Serializer):
    documents = serializers.ListField(
        child=serializers.CharField(max_length=40),
        max_length=len(claims.DOCUMENTS),
        help_text="Codes of the documents presented: "
        + ", ".join(claims.DOCUMENTS)
        + "; all but invoice are required.",
    )
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=claims.NOTE_LENGTH)


class NoteInput(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=claims.NOTE_LENGTH)


class RejectInput(serializers.Serializer):
    reason = serializers.CharField(max_length=claims.REJECTION_LENGTH)


class SettleInput(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=sorted(claims.SETTLEMENTS))
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=claims.SETTLE_NOTE_LENGTH)


def claims_queryset() -> QuerySet[InsuranceClaim]:
    return InsuranceClaim.objects.select_related("report", "policy", "decided_by").prefetch_related(
        Prefetch("steps", queryset=ClaimStep.objects.select_related("by"))
    )


class ClaimListApi(APIView):
    permission_classes = [CanViewClaims]

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=InsuranceClaim.Status.values),
            OpenApiParameter("report", int, description="theft report id"),
            OpenApiParameter("settlement_pending", bool),
        ],
        responses={200: paginated(ClaimOutput, "PaginatedClaimList")},
        operation_id="insurance_claim_list",
    )
    def get(self, request: Request) -> Response:
        queryset = _claims_listed(request)
        paginator = Pagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        query = {key: value[:40] for key, value in request.query_params.items()}
        audit_record(
            request=request,
            action="claim.list",
            object_type="insurance_claim",
            query=query,
            result_count=len(page or []),
        )
        return paginator.get_paginated_response(ClaimOutput(page, many=True).data)


def _claims_listed(request: Request) -> QuerySet[InsuranceClaim]:
    """The claims the query asks for (status, report, settlement_pending); 400 naming every bad one."""
    problems = Problems()
    queryset = claims_queryset().order_by("-eligible_at", "-id")
    status_ = request.query_params.get("status", "")
    if status_:
        if status_ not in InsuranceClaim.Status.values:
            problems.add("status", "Unknown status; one of: {}.".format(", ".join(InsuranceClaim.Status.values)))
        queryset = queryset.filter(status=status_)
    report = request.query_params.get("report", "")
    if report:
        if not report.isdigit():
            problems.add("report", "A theft report id is a whole number.")
        else:
            queryset = queryset.filter(report_id=int(report))
    if query_flag(request, "settlement_pending"):
        queryset = queryset.filter(status=InsuranceClaim.Status.PAID, after_recovery="").exclude(
            report__status__in=claims.MISSING_STATUSES
        )
    problems.raise_if_any()
    return queryset


class ClaimDetailApi(APIView):
    permission_classes = [CanViewClaims]

    @extend_schema(responses={200: ClaimOutput}, operation_id="insurance_claim_detail")
    def get(self, request: AuthedRequest, claim_id: int) -> Response:
        claim = claims_queryset().get(pk=claim_id)
        audit_record(
            action="claim.view",
            object_type="insurance_claim",
            object_id=claim.pk,
            request=request,
        )
        return Response(ClaimOutput(claim).data)


class _StepApi(APIView):
    input_class: type[serializers.Serializer] = NoteInput

    def step(self, request: AuthedRequest, claim_id: int, values: dict[str, Any]) -> InsuranceClaim:
        raise NotImplementedError

    def post(self, request: AuthedRequest, claim_id: int) -> Response:
        InsuranceClaim.objects.get(pk=claim_id)  # 404 before 400
        values = parse_or_raise(self.input_class(), request.data)
        self.step(request, claim_id, values)
        return Response(ClaimOutput(claims_queryset().get(pk=claim_id)).data)


class ClaimSubmitApi(_StepApi):
    """The owner's documents were presented at the counter: eligible → submitted."""

    permission_classes = [has_perm("cases.submit_claim")]
    input_class = SubmitInput

    @extend_schema(request=SubmitInput, responses={200: ClaimOutput}, operation_id="insurance_claim_submit")
    def post(self, request: AuthedRequest, claim_id: int) -> Response:
        return super().post(request, claim_id)

    def step(self, request: AuthedRequest, claim_id: int, values: dict[str, Any]) -> InsuranceClaim:
        return claims.claim_submit(
            user=request.user, claim_id=claim_id, documents=values["documents"], note=values["note"]
        )


class ClaimApproveApi(_StepApi):
    permission_classes = [has_perm("cases.decide_claim")]

    @extend_schema(request=NoteInput, responses={200: ClaimOutput}, operation_id="insurance_claim_approve")
    def post(self, request: AuthedRequest, claim_id: int) -> Response:
        return super().post(request, claim_id)

    def step(self, request: AuthedRequest, claim_id: int, values: dict[str, Any]) -> InsuranceClaim:
        return claims.claim_approve(user=request.user, claim_id=claim_id, note=values["note"])


class ClaimRejectApi(_StepApi):
    permission_classes = [has_perm("cases.decide_claim")]
    input_class = RejectInput

    @extend_schema(request=RejectInput, responses={200: ClaimOutput}, operation_id="insurance_claim_reject")
    def post(self, request: AuthedRequest, claim_id: int) -> Response:
        return super().post(request, claim_id)

    def step(self, request: AuthedRequest, claim_id: int, values: dict[str, Any]) -> InsuranceClaim:
        return claims.claim_reject(user=request.user, claim_id=claim_id, reason=values["reason"])


class ClaimPayApi(_StepApi):
    permission_classes = [has_perm("cases.pay_claim")]

    @extend_schema(request=NoteInput, responses={200: ClaimOutput}, operation_id="insurance_claim_pay")
    def post(self, request: AuthedRequest, claim_id: int) -> Response:
        return super().post(request, claim_id)

    def step(self, request: AuthedRequest, claim_id: int, values: dict[str, Any]) -> InsuranceClaim:
        return claims.claim_pay(user=request.user, claim_id=claim_id, note=values["note"])


class ClaimSettleApi(_StepApi):
    """A paid claim's bike was recovered: refund (owner takes the bike back) or to_insurer."""

    permission_classes = [has_perm("cases.settle_claim")]
    input_class = SettleInput

    @extend_schema(request=SettleInput, responses={200: ClaimOutput}, operation_id="insurance_claim_settle")
    def post(self, request: AuthedRequest, claim_id: int) -> Response:
        return super().post(request, claim_id)

    def step(self, request: AuthedRequest, claim_id: int, values: dict[str, Any]) -> InsuranceClaim:
        return claims.claim_settle(user=request.user, claim_id=claim_id, outcome=values["outcome"], note=values["note"])
