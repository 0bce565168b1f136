"""Thin API views: parse, call one service or selector, render. Rules live in services."""

from collections.abc import Callable
from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import client_ip
from accounts.models import Station, Township
from accounts.request_types import AuthedRequest
from ebike_registry.api import has_perm, parse_or_raise
from ebike_registry.problems import Problems
from vehicles.api import serializers as s
from vehicles.models import Vehicle
from vehicles.selectors import can_see_full_identity, vehicle_detail, vehicle_search
from vehicles.services import registration as reg
from vehicles.services.owners import owner_normalize
from vehicles.services.photos import photo_add, photo_upload_size_check

CanRegister = has_perm("vehicles.register_vehicle")
CanSearch = has_perm("vehicles.search_records")


def _detail_response(request: AuthedRequest, vehicle_id: int, code: int = status.HTTP_200_OK) -> Response:
    vehicle = vehicle_detail(user=request.user, vehicle_id=vehicle_id, ip=client_ip(request))
    context = {"full_identity": can_see_full_identity(request.user), "request": request}
    return Response(s.VehicleDetailOutput(vehicle, context=context).data, status=code)


class RegistrationApi(APIView):
    permission_classes = [CanRegister]

    @extend_schema(
        request=s.RegistrationInput, responses={201: s.RegistrationOutput}, operation_id="registration_create"
    )
    def post(self, request: AuthedRequest) -> Response:
        # The fields that did parse are checked too when others did not (一次性告知).
        values = parse_or_raise(s.RegistrationInput(), request.data, check=_register_check, check_unparsed_only=True)
        result = reg.vehicle_register(
            clerk=request.user,
            owner=values["owner"],
            vehicle=values["vehicle"],
            insurance_consent=values["insurance_consent"],
            documents=values.get("documents", []),
        )
        return _registration_response(request, result)


def _register_check(values: dict[str, Any]) -> Problems:
    return reg.vehicle_register_check(
        owner=values.get("owner", {}), vehicle=values.get("vehicle", {}), documents=values.get("documents", [])
    )


def _registration_response(request: Request, result: reg.Registration) -> Response:
    out = {
        "vehicle": result.vehicle,
        "plate": result.plate,
        "policy": result.policy,
        "event": result.event,
        "certificate_url": request.build_absolute_uri(reverse("vehicles:certificate", args=[result.vehicle.pk])),
    }
    context = {"full_identity": True}  # the clerk just typed these values in
    return Response(s.RegistrationOutput(out, context=context).data, status=status.HTTP_201_CREATED)


class VehicleSearchApi(APIView):
    permission_classes = [CanSearch]

    @extend_schema(
        parameters=[s.SearchInput],
        responses={200: s.SearchOutput},
        operation_id="vehicle_search",
        description="Filing-record search by any identifier. Every call is audited.",
    )
    def get(self, request: AuthedRequest) -> Response:
        values = parse_or_raise(s.SearchInput(), request.query_params)
        reason = values.pop("reason", "")
        result = vehicle_search(user=request.user, criteria=values, reason=reason, ip=client_ip(request))
        context = {"full_identity": can_see_full_identity(request.user), "request": request}
        return Response(
            s.SearchOutput({"results": result.vehicles, "truncated": result.truncated}, context=context).data
        )


class VehicleDetailApi(APIView):
    permission_classes = [CanSearch]

    @extend_schema(
        responses={200: s.VehicleDetailOutput},
        parameters=[s.DetailQuery],
        operation_id="vehicle_detail",
    )
    def get(self, request: AuthedRequest, vehicle_id: int) -> Response:
        reason = parse_or_raise(s.DetailQuery(), request.query_params)["reason"]
        vehicle = vehicle_detail(user=request.user, vehicle_id=vehicle_id, reason=reason, ip=client_ip(request))
        context = {"full_identity": can_see_full_identity(request.user), "request": request}
        return Response(s.VehicleDetailOutput(vehicle, context=context).data)


def _parse_lifecycle(
    serializer: Any, request: Request, vehicle_id: int, check: Any, values: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """Parse, and refuse with the parse errors and the service's check (the record's state included)
    at once: a stolen bike and a bad field are named in the same answer (一次性告知). A field that did
    not parse is not checked again; the record's state ("vehicle") always is."""

    def record_check(parsed: dict[str, Any]) -> Problems:
        return check(record=Vehicle.objects.select_related("owner").get(pk=vehicle_id), **values(parsed))

    return parse_or_raise(serializer, request.data, check=record_check, recheck={"vehicle"})


def _edit(values: dict[str, Any]) -> dict[str, Any]:
    return {"vehicle": values.get("vehicle", {}), "owner": values.get("owner", {}), "reason": values.get("reason", "")}


def _change(values: dict[str, Any]) -> dict[str, Any]:
    return {**_edit(values), "documents": values.get("documents")}


def _transfer(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "new_owner": owner_normalize(values.get("new_owner", {})),
        "previous_owner_consent": values.get("previous_owner_consent", ""),
        "consent_agent_name": values.get("consent_agent_name", ""),
        "consent_agent_id_number": values.get("consent_agent_id_number", ""),
        "documents": values.get("documents"),
    }


def _reason(values: dict[str, Any]) -> dict[str, Any]:
    return {"reason": values.get("reason", "")}


def _deregister(values: dict[str, Any]) -> dict[str, Any]:
    return {"reason": values.get("reason", ""), "plate_returned": values.get("plate_returned")}


class VehicleChangeApi(APIView):
    permission_classes = [CanRegister]

    @extend_schema(request=s.ChangeInput, responses={200: s.VehicleDetailOutput}, operation_id="vehicle_change")
    def post(self, request: AuthedRequest, vehicle_id: int) -> Response:
        values = _parse_lifecycle(s.ChangeInput(), request, vehicle_id, reg.vehicle_change_check, _change)
        reg.vehicle_change(clerk=request.user, vehicle_id=vehicle_id, **_change(values))
        return _detail_response(request, vehicle_id)


class VehicleCorrectApi(APIView):
    permission_classes = [CanRegister]

    @extend_schema(request=s.CorrectionInput, responses={200: s.VehicleDetailOutput}, operation_id="vehicle_correct")
    def post(self, request: AuthedRequest, vehicle_id: int) -> Response:
        values = _parse_lifecycle(s.CorrectionInput(), request, vehicle_id, reg.vehicle_correct_check, _edit)
        reg.vehicle_correct(clerk=request.user, vehicle_id=vehicle_id, **_edit(values))
        return _detail_response(request, vehicle_id)


class VehicleTransferApi(APIView):
    permission_classes = [CanRegister]

    @extend_schema(request=s.TransferInput, responses={200: s.VehicleDetailOutput}, operation_id="vehicle_transfer")
    def post(self, request: AuthedRequest, vehicle_id: int) -> Response:
        values = _parse_lifecycle(s.TransferInput(), request, vehicle_id, reg.vehicle_transfer_check, _transfer)
        reg.vehicle_transfer(
            clerk=request.user,
            vehicle_id=vehicle_id,
            insurance_consent=values["insurance_consent"],
            reason=values.get("reason", ""),
            **_transfer(values),
        )
        return _detail_response(request, vehicle_id)


class PlateReplaceApi(APIView):
    permission_classes = [CanRegister]

    @extend_schema(request=s.ReplacePlateInput, responses={200: s.VehicleDetailOutput}, operation_id="plate_replace")
    def post(self, request: AuthedRequest, vehicle_id: int) -> Response:
        values = _parse_lifecycle(s.ReplacePlateInput(), request, vehicle_id, reg.plate_replace_check, _reason)
        reg.plate_replace(clerk=request.user, vehicle_id=vehicle_id, reason=values["reason"])
        return _detail_response(request, vehicle_id)


class VehicleDeregisterApi(APIView):
    permission_classes = [CanRegister]

    @extend_schema(request=s.DeregisterInput, responses={200: s.VehicleDetailOutput}, operation_id="vehicle_deregister")
    def post(self, request: AuthedRequest, vehicle_id: int) -> Response:
        values = _parse_lifecycle(s.DeregisterInput(), request, vehicle_id, reg.vehicle_deregister_check, _deregister)
        reg.vehicle_deregister(clerk=request.user, vehicle_id=vehicle_id, **_deregister(values))
        return _detail_response(request, vehicle_id)


class VehiclePhotoApi(APIView):
    permission_classes = [CanRegister]
    parser_classes = [MultiPartParser]

    @extend_schema(request=s.PhotoInput, responses={201: s.PhotoOutput}, operation_id="vehicle_photo_add")
    def post(self, request: AuthedRequest, vehicle_id: int) -> Response:
        photo_upload_size_check(content_length=request.META.get("CONTENT_LENGTH"))
        values = parse_or_raise(s.PhotoInput(), request.data)
        photo = photo_add(user=request.user, vehicle_id=vehicle_id, kind=values["kind"], upload=values["image"])
        return Response(s.PhotoOutput(photo, context={"request": request}).data, status=status.HTTP_201_CREATED)


CanListReferenceData = has_perm("accounts.list_reference_data")


class TownshipListApi(generics.ListAPIView):
    permission_classes = [CanListReferenceData]
    queryset = Township.objects.all()
    serializer_class = s.TownshipOutput
    pagination_class = None


class StationListApi(generics.ListAPIView):
    permission_classes = [CanListReferenceData]
    queryset = Station.objects.all()
    serializer_class = s.StationOutput
    pagination_class = None
