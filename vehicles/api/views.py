"""Thin API views: parse, call one service or selector, render. Rules live in services."""

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import client_ip
from accounts.models import Station, Township
from ebike_registry.api import has_perm, parse_each_field
from vehicles.api import serializers as s
from vehicles.models import Vehicle
from vehicles.selectors import can_see_full_identity, vehicle_detail, vehicle_search
from vehicles.services import registration as reg
from vehicles.services.owners import owner_normalize
from vehicles.services.photos import photo_add, photo_upload_size_check
from vehicles.services.problems import Problems

CanRegister = has_perm("vehicles.register_vehicle")
CanSearch = has_perm("vehicles.search_records")


def parse_or_collect(serializer: Any, data: Any) -> tuple[dict[str, Any], Problems]:
    values, errors = parse_each_field(serializer, data)
    problems = Problems()
    problems.merge(errors)
    return values, problems


def _detail_response(request: Request, vehicle_id: int, code: int = status.HTTP_200_OK) -> Response:
    vehicle = vehicle_detail(user=request.user, vehicle_id=vehicle_id, ip=client_ip(request))
    context = {"full_identity": can_see_full_identity(request.user), "request": request}
    return Response(s.VehicleDetailOutput(vehicle, context=context).data, status=code)


class RegistrationApi(APIView):
    permission_classes = [CanRegister]

    @extend_schema(
        request=s.RegistrationInput, responses={201: s.RegistrationOutput}, operation_id="registration_create"
    )
    def post(self, request: Request) -> Response:
        values, problems = parse_or_collect(s.RegistrationInput(), request.data)
        if problems:
            # Report the domain problems of the fields that did parse too (一次性告知).
            domain = reg.registration_problems(
                owner=owner_normalize(values.get("owner", {})),
                vehicle=reg.vehicle_normalize(values.get("vehicle", {})),
                documents=values.get("documents", []),
            )
            problems.merge({k: v for k, v in domain.by_field.items() if not problems.has(k)})
            problems.raise_if_any()
        result = reg.vehicle_register(
            clerk=request.user,
            owner=values["owner"],
            vehicle=values["vehicle"],
            insurance_consent=values["insurance_consent"],
            documents=values.get("documents", []),
        )
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
    def get(self, request: Request) -> Response:
        values, problems = parse_or_collect(s.SearchInput(), request.query_params)
        problems.raise_if_any()
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
        parameters=[OpenApiParameter("reason", str, description="Why the record is opened (audited)")],
        operation_id="vehicle_detail",
    )
    def get(self, request: Request, vehicle_id: int) -> Response:
        vehicle = vehicle_detail(
            user=request.user,
            vehicle_id=vehicle_id,
            reason=request.query_params.get("reason", ""),
            ip=client_ip(request),
        )
        context = {"full_identity": can_see_full_identity(request.user), "request": request}
        return Response(s.VehicleDetailOutput(vehicle, context=context).data)


def _lifecycle_problems(problems: Problems, check: Any, vehicle_id: int, **values: Any) -> None:
    """Add the service's check (the record's state included) to the parse problems and refuse with
    all of them at once: a stolen bike and a bad field are named in the same answer (一次性告知)."""
    record = Vehicle.objects.select_related("owner").get(pk=vehicle_id)
    found = check(record=record, **values)
    # A field that did not parse is not checked again; the record's state ("vehicle") always is.
    problems.merge({key: msgs for key, msgs in found.by_field.items() if key == "vehicle" or not problems.has(key)})
    problems.raise_if_any()


class VehicleChangeApi(APIView):
    permission_classes = [CanRegister]

    @extend_schema(request=s.ChangeInput, responses={200: s.VehicleDetailOutput}, operation_id="vehicle_change")
    def post(self, request: Request, vehicle_id: int) -> Response:
        values, problems = parse_or_collect(s.ChangeInput(), request.data)
        edit = {
            "vehicle": values.get("vehicle", {}),
            "owner": values.get("owner", {}),
            "reason": values.get("reason", ""),
            "documents": values.get("documents"),
        }
        _lifecycle_problems(problems, reg.vehicle_change_check, vehicle_id, **edit)
        reg.vehicle_change(clerk=request.user, vehicle_id=vehicle_id, **edit)
        return _detail_response(request, vehicle_id)


class VehicleCorrectApi(APIView):
    permission_classes = [CanRegister]

    @extend_schema(request=s.CorrectionInput, responses={200: s.VehicleDetailOutput}, operation_id="vehicle_correct")
    def post(self, request: Request, vehicle_id: int) -> Response:
        values, problems = parse_or_collect(s.CorrectionInput(), request.data)
        edit = {
            "vehicle": values.get("vehicle", {}),
            "owner": values.get("owner", {}),
            "reason": values.get("reason", ""),
        }
        _lifecycle_problems(problems, reg.vehicle_correct_check, vehicle_id, **edit)
        reg.vehicle_correct(clerk=request.user, vehicle_id=vehicle_id, **edit)
        return _detail_response(request, vehicle_id)


class VehicleTransferApi(APIView):
    permission_classes = [CanRegister]

    @extend_schema(request=s.TransferInput, responses={200: s.VehicleDetailOutput}, operation_id="vehicle_transfer")
    def post(self, request: Request, vehicle_id: int) -> Response:
        values, problems = parse_or_collect(s.TransferInput(), request.data)
        transfer = {
            "new_owner": owner_normalize(values.get("new_owner", {})),
            "previous_owner_consent": values.get("previous_owner_consent", ""),
            "consent_agent_name": values.get("consent_agent_name", ""),
            "consent_agent_id_number": values.get("consent_agent_id_number", ""),
            "documents": values.get("documents"),
        }
        _lifecycle_problems(problems, reg.vehicle_transfer_check, vehicle_id, **transfer)
        reg.vehicle_transfer(
            clerk=request.user,
            vehicle_id=vehicle_id,
            insurance_consent=values["insurance_consent"],
            reason=values.get("reason", ""),
            **transfer,
        )
        return _detail_response(request, vehicle_id)


class PlateReplaceApi(APIView):
    permission_classes = [CanRegister]

    @extend_schema(request=s.ReplacePlateInput, responses={200: s.VehicleDetailOutput}, operation_id="plate_replace")
    def post(self, request: Request, vehicle_id: int) -> Response:
        values, problems = parse_or_collect(s.ReplacePlateInput(), request.data)
        _lifecycle_problems(problems, reg.plate_replace_check, vehicle_id, reason=values.get("reason", ""))
        reg.plate_replace(clerk=request.user, vehicle_id=vehicle_id, reason=values["reason"])
        return _detail_response(request, vehicle_id)


class VehicleDeregisterApi(APIView):
    permission_classes = [CanRegister]

    @extend_schema(request=s.DeregisterInput, responses={200: s.VehicleDetailOutput}, operation_id="vehicle_deregister")
    def post(self, request: Request, vehicle_id: int) -> Response:
        values, problems = parse_or_collect(s.DeregisterInput(), request.data)
        deregister = {"reason": values.get("reason", ""), "plate_returned": values.get("plate_returned")}
        _lifecycle_problems(problems, reg.vehicle_deregister_check, vehicle_id, **deregister)
        reg.vehicle_deregister(clerk=request.user, vehicle_id=vehicle_id, **deregister)
        return _detail_response(request, vehicle_id)


class VehiclePhotoApi(APIView):
    permission_classes = [CanRegister]
    parser_classes = [MultiPartParser]

    @extend_schema(request=s.PhotoInput, responses={201: s.PhotoOutput}, operation_id="vehicle_photo_add")
    def post(self, request: Request, vehicle_id: int) -> Response:
        photo_upload_size_check(content_length=request.META.get("CONTENT_LENGTH"))
        values, problems = parse_or_collect(s.PhotoInput(), request.data)
        problems.raise_if_any()
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
