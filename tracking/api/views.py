from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import audit_record, client_ip
from accounts.request_types import AuthedRequest
from ebike_registry.api import has_perm, parse_or_raise
from ebike_registry.problems import Problems
from ebike_registry.schema import ErrorSerializer
from tracking import services
from tracking.api import serializers as s
from tracking.models import Terminal
from tracking.pings_http import parse_batch, store, token_lookup
from vehicles.models import Vehicle

CanRegister = has_perm("vehicles.register_vehicle")
CanSearch = has_perm("vehicles.search_records")


def _terminal_response(terminal_id: int, code: int = status.HTTP_200_OK) -> Response:
    terminal = Terminal.objects.select_related("last_position").get(pk=terminal_id)
    return Response(s.TerminalOutput(terminal).data, status=code)


class TerminalListCreateApi(APIView):
    def get_permissions(self) -> list:
        return [CanRegister()] if self.request.method == "POST" else [CanSearch()]

    @extend_schema(
        parameters=[s.TerminalFindQuery],
        responses={200: s.TerminalOutput(many=True)},
        operation_id="terminal_find",
    )
    def get(self, request: AuthedRequest) -> Response:
        imei = parse_or_raise(s.TerminalFindQuery(), request.query_params)["imei"]
        terminals = list(Terminal.objects.select_related("last_position").filter(imei=imei))
        audit_record(
            user=request.user,
            action="terminal.find",
            object_type="terminal" if terminals else "",
            object_id=terminals[0].pk if terminals else "",
            query={"imei": imei},
            result_count=len(terminals),
            ip=client_ip(request),
        )
        return Response(s.TerminalOutput(terminals, many=True).data)

    @extend_schema(request=s.TerminalInput, responses={201: s.TerminalOutput}, operation_id="terminal_register")
    def post(self, request: Request) -> Response:
        values = parse_or_raise(s.TerminalInput(), request.data)
        terminal = services.terminal_register(**values)
        return _terminal_response(terminal.pk, status.HTTP_201_CREATED)


class TerminalBindApi(APIView):
    permission_classes = [CanRegister]

    @extend_schema(request=s.BindInput, responses={201: s.InstallationOutput}, operation_id="terminal_bind")
    def post(self, request: AuthedRequest, terminal_id: int) -> Response:
        values = parse_or_raise(s.BindInput(), request.data)
        installation, _key = services.terminal_fit(clerk=request.user, terminal_id=terminal_id, **values)
        return Response(s.InstallationOutput(installation).data, status=status.HTTP_201_CREATED)


def _fit_check_values(values: dict[str, Any]) -> dict[str, Any]:
    """The fit's parsed values as terminal_fit_check takes them (the SIM is not checked)."""
    return {name: value for name, value in values.items() if name != "sim_iccid"} | {
        "owner_consent": values.get("owner_consent", False)
    }


class TerminalFitApi(APIView):
    """Fit a terminal to a bike in one step, registering it when its IMEI is new: what the counter
    page does. Every problem (the terminal's fields, the bike's state, the owner's consent) at once."""

    permission_classes = [CanRegister]

    @extend_schema(request=s.FitInput, responses={201: s.FitOutput}, operation_id="terminal_fit")
    def post(self, request: AuthedRequest, vehicle_id: int) -> Response:
        get_object_or_404(Vehicle, pk=vehicle_id)
        # What did parse is checked as well (the bike's state, the consent): nothing waits for a second try.
        values = parse_or_raise(
            s.FitInput(),
            request.data,
            check=lambda v: services.terminal_fit_check(vehicle_id=vehicle_id, **_fit_check_values(v)),
            check_unparsed_only=True,
        )
        installation, key = services.terminal_fit(
            clerk=request.user, vehicle_id=vehicle_id, ip=client_ip(request), **values
        )
        body = {"installation": s.InstallationOutput(installation).data, "osmand_key": key or None}
        return Response(body, status=status.HTTP_201_CREATED)


class TerminalUnbindApi(APIView):
    permission_classes = [CanRegister]

    @extend_schema(request=s.UnbindInput, responses={200: s.InstallationOutput}, operation_id="terminal_unbind")
    def post(self, request: AuthedRequest, terminal_id: int) -> Response:
        values = parse_or_raise(s.UnbindInput(), request.data)
        installation = services.terminal_unbind(clerk=request.user, terminal_id=terminal_id, **values)
        return Response(s.InstallationOutput(installation).data)


class TerminalReplaceApi(APIView):
    permission_classes = [CanRegister]

    @extend_schema(request=s.ReplaceInput, responses={201: s.InstallationOutput}, operation_id="terminal_replace")
    def post(self, request: AuthedRequest, vehicle_id: int) -> Response:
        values = parse_or_raise(s.ReplaceInput(), request.data)
        installation = services.terminal_replace(clerk=request.user, vehicle_id=vehicle_id, **values)
        return Response(s.InstallationOutput(installation).data, status=status.HTTP_201_CREATED)


class PingIngestApi(APIView):
    """Positions from integrations, authenticated by an ingestion token (Authorization: Bearer …)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=s.PingBatchInput,
        responses={
            201: s.PingResultOutput,
            403: OpenApiResponse(ErrorSerializer, description="No valid ingestion token was sent."),
        },
        operation_id="pings_ingest",
        description='One ping object, or {"pings": [...]} with up to 1,000. Acknowledged (201) only '
        "after the batch is committed; (terminal, time) is stored once, so retries are safe.",
    )
    def post(self, request: Request) -> Response:
        token = token_lookup(request.headers.get("Authorization", ""))
        if token is None:
            raise AuthenticationFailed("Send a valid ingestion token: Authorization: Bearer <token>.")
        parsed = parse_batch(request.data, token)
        problems = Problems()
        problems.merge(parsed.errors)
        problems.raise_if_any()
        result = store(parsed)
        return Response(
            {"stored": result.stored, "duplicates": result.duplicates, "outliers": result.outliers},
            status=status.HTTP_201_CREATED,
        )
