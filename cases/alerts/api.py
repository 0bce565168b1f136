"""API for notifications, the duty room, owners' arming and alarms, and sightings of stolen bikes.

Views are thin: input serializers parse, cases.alerts.duty_room / cases.alerts.services decide. Errors are the project's
400 {"field": ["reason"]}; another station's call is 403, another user's notification 404.
"""

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import audit_record
from accounts.request_types import AuthedRequest
from cases.alerts import duty_room as duty
from cases.alerts import notification_texts
from cases.alerts import services as alerts
from cases.models import DutyCall, Notification, Sighting, TheftReport
from ebike_registry.api import Pagination, has_perm, parse_or_raise, query_flag
from ebike_registry.schema import paginated
from tracking.models import Terminal
from vehicles.models import Plate, Vehicle
from vehicles.selectors import can_see_full_identity

CanHandleCalls = has_perm("cases.change_dutycall")
ActsAsOwner = has_perm("cases.act_as_owner")
CanViewReports = has_perm("cases.view_theftreport")


# --- serializers ---------------------------------------------------------------------------------


class NotificationOutput(serializers.ModelSerializer):
    # Rendered in the reader's language (Accept-Language / the session's), not as stored.
    title = serializers.SerializerMethodField()
    body = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "kind", "message", "params", "title", "body", "link", "created_at", "read_at"]

    def get_title(self, obj: Notification) -> str:
        return notification_texts.notification_text(obj)[0]

    def get_body(self, obj: Notification) -> str:
        return notification_texts.notification_text(obj)[1]


class DutyNoteInput(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=duty.NOTE_LENGTH)


class ResponseTimesOutput(serializers.Serializer):
    acknowledged_s = serializers.FloatField(allow_null=True, help_text="acknowledged − received, seconds")
    closed_s = serializers.FloatField(allow_null=True, help_text="closed − received, seconds")


class CallPositionOutput(serializers.Serializer):
    latitude = serializers.FloatField()
    longitude = serializers.FloatField()
    at = serializers.DateTimeField(required=False)


class OwnerContactOutput(serializers.Serializer):
    name = serializers.CharField()
    phone = serializers.CharField()
    emergency_contact_name = serializers.CharField()
    emergency_contact_phone = serializers.CharField()


class DutyCallOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=DutyCall.Kind.choices)
    status = serializers.ChoiceField(choices=DutyCall.Status.choices)
    alarm = serializers.CharField(help_text="the alarm that raised the call: sos, fall, movement, displacement …")
    plate = serializers.CharField()
    vehicle_id = serializers.IntegerField()
    vehicle = serializers.CharField()
    raised_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField(help_text="when the call reached the duty room")
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    dispatched_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    position = CallPositionOutput(allow_null=True)
    current_position = CallPositionOutput(allow_null=True)
    owner = OwnerContactOutput()
    owner_answer = serializers.CharField()
    owner_answered_at = serializers.DateTimeField(allow_null=True)
    handled_by = serializers.CharField()
    note = serializers.CharField()
    response_times = ResponseTimesOutput()
    actions = serializers.ListField(child=serializers.CharField(), help_text="steps allowed now")


def _call_data(card: dict[str, Any]) -> dict[str, Any]:
    position = None
    if card["latitude"] is not None:
        position = {"latitude": card["latitude"], "longitude": card["longitude"], "at": card["raised_at"]}
    current = None
    if card["now_latitude"] is not None:
        current = {"latitude": card["now_latitude"], "longitude": card["now_longitude"], "at": card["now_at"]}
    data = {key: card[key] for key, _field in DutyCallOutput().fields.items() if key in card}
    data.update(
        alarm=card["alarm_kind"],  # the code; pages show its label
        position=position,
        current_position=current,
        owner={
            "name": card["owner_name"],
            "phone": card["owner_phone"],
            "emergency_contact_name": card["emergency_contact_name"],
            "emergency_contact_phone": card["emergency_contact_phone"],
        },
        response_times={"acknowledged_s": card["acknowledged_after_s"], "closed_s": card["closed_after_s"]},
    )
    return DutyCallOutput(data).data


class OwnerCallOutput(serializers.Serializer):
    id = serializers.IntegerField()
    vehicle_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=DutyCall.Status.choices)
    raised_at = serializers.DateTimeField()
    position = CallPositionOutput(allow_null=True)
    owner_answer = serializers.CharField()
    owner_answered_at = serializers.DateTimeField(allow_null=True)
    theft_report_prompt = serializers.DictField(
        allow_null=True,
        help_text="after a confirmation: the fields to POST to /api/v1/theft-reports to report the theft",
    )


def _owner_call_data(call: DutyCall) -> dict[str, Any]:
    prompt = None
    reported = call.vehicle.theft_reports.filter(received_at__gte=call.created_at).exists()
    if call.owner_answer == DutyCall.OwnerAnswer.CONFIRMED and not reported:
        prompt = duty.theft_report_prompt(call)
    return OwnerCallOutput(
        {
            "id": call.pk,
            "vehicle_id": call.vehicle_id,
            "status": call.status,
            "raised_at": call.raised_at,
            "position": {"latitude": call.point.y, "longitude": call.point.x} if call.point else None,
            "owner_answer": call.owner_answer,
            "owner_answered_at": call.owner_answered_at,
            "theft_report_prompt": prompt,
        }
    ).data


class ArmInput(serializers.Serializer):
    armed = serializers.BooleanField()


class OwnerVehicleOutput(serializers.Serializer):
    id = serializers.IntegerField()
    plate = serializers.CharField()
    vehicle = serializers.CharField()
    status = serializers.CharField()
    has_terminal = serializers.BooleanField()
    armed = serializers.BooleanField(help_text="armed by the owner here (owner pages or API)")
    armed_changed_at = serializers.DateTimeField(allow_null=True)
    device_armed = serializers.BooleanField(help_text="the terminal reports its own defence mode (its remote)")
    device_armed_changed_at = serializers.DateTimeField(allow_null=True)


def _owner_vehicle_data(vehicle: Vehicle, terminal: Terminal | None) -> dict[str, Any]:
    plate = Plate.objects.filter(vehicle=vehicle, status=Plate.Status.ISSUED).values_list("number", flat=True).first()
    return OwnerVehicleOutput(
        {
            "id": vehicle.pk,
            "plate": plate or "",
            "vehicle": f"{vehicle.brand} {vehicle.model_name} {vehicle.colour}",
            "status": vehicle.status,
            "has_terminal": terminal is not None,
            "armed": bool(terminal and terminal.armed),
            "armed_changed_at": terminal.armed_changed_at if terminal else None,
            "device_armed": bool(terminal and terminal.device_armed),
            "device_armed_changed_at": terminal.device_armed_changed_at if terminal else None,
        }
    ).data


class AnswerInput(serializers.Serializer):
    answer = serializers.ChoiceField(choices=DutyCall.OwnerAnswer.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=duty.NOTE_LENGTH)


class EmergencyContactInput(serializers.Serializer):
    name = serializers.CharField(allow_blank=True, max_length=50)
    phone = serializers.CharField(allow_blank=True, max_length=20)


class EmergencyContactOutput(serializers.Serializer):
    name = serializers.CharField(source="emergency_contact_name")
    phone = serializers.CharField(source="emergency_contact_phone")


class SightingOutput(serializers.ModelSerializer):
    first_position = serializers.SerializerMethodField()
    last_position = serializers.SerializerMethodField()

    class Meta:
        model = Sighting
        fields = ["id", "started_at", "last_at", "positions", "first_position", "last_position", "notified_at"]

    def get_first_position(self, obj: Sighting) -> dict[str, float]:
        return {"latitude": obj.first_point.y, "longitude": obj.first_point.x}

    def get_last_position(self, obj: Sighting) -> dict[str, float]:
        return {"latitude": obj.last_point.y, "longitude": obj.last_point.x}


# --- notifications -------------------------------------------------------------------------------


class NotificationListApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[OpenApiParameter("unread", bool, description="only unread ones")],
        responses={200: paginated(NotificationOutput, "PaginatedNotificationList")},
        operation_id="notifications_mine",
    )
    def get(self, request: AuthedRequest) -> Response:
        unread = query_flag(request, "unread")
        paginator = Pagination()
        page = paginator.paginate_queryset(alerts.notifications_for(request.user, unread_only=unread), request)
        return paginator.get_paginated_response(NotificationOutput(page, many=True).data)


class NotificationUnreadCountApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses={200: inline_serializer("UnreadCount", {"unread": serializers.IntegerField()})},
        operation_id="notifications_unread_count",
    )
    def get(self, request: AuthedRequest) -> Response:
        return Response({"unread": alerts.notifications_unread_count(request.user)})


class NotificationReadApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: NotificationOutput}, operation_id="notification_mark_read")
    def post(self, request: AuthedRequest, notification_id: int) -> Response:
        notification = alerts.notification_mark_read(user=request.user, notification_id=notification_id)
        return Response(NotificationOutput(notification).data)


class NotificationReadAllApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None,
        responses={200: inline_serializer("MarkedRead", {"marked": serializers.IntegerField()})},
        operation_id="notifications_mark_all_read",
    )
    def post(self, request: AuthedRequest) -> Response:
        return Response({"marked": alerts.notifications_mark_all_read(user=request.user)})


# --- duty room -----------------------------------------------------------------------------------


class DutyCallListApi(APIView):
    """The duty-room queue of the officer's station, newest first; open calls unless closed=1."""

    permission_classes = [CanHandleCalls]

    @extend_schema(
        parameters=[OpenApiParameter("closed", bool, description="include closed and dismissed calls")],
        responses={200: paginated(DutyCallOutput, "PaginatedDutyCallList")},
        operation_id="duty_calls_queue",
    )
    def get(self, request: AuthedRequest) -> Response:
        include_closed = query_flag(request, "closed")
        paginator = Pagination()
        page = (
            paginator.paginate_queryset(
                duty.duty_queue(station=request.user.station, include_closed=include_closed), request
            )
            or []
        )
        full = can_see_full_identity(request.user)
        audit_record(
            action="duty_queue.view",
            object_type="station",
            object_id=request.user.station_id or "",
            result_count=len(page),
            request=request,
        )
        cards = duty.duty_call_cards(page, full_identity=full)
        return paginator.get_paginated_response([_call_data(card) for card in cards])


def _card(request: AuthedRequest, call: DutyCall) -> dict[str, Any]:
    call = duty.duty_queue(station=call.station, include_closed=True).get(pk=call.pk)
    return _call_data(duty.duty_call_cards([call], full_identity=can_see_full_identity(request.user))[0])


class DutyCallDetailApi(APIView):
    permission_classes = [CanHandleCalls]

    @extend_schema(responses={200: DutyCallOutput}, operation_id="duty_call_detail")
    def get(self, request: AuthedRequest, call_id: int) -> Response:
        call = DutyCall.objects.get(pk=call_id)
        if call.station_id != request.user.station_id:
            return Response({"detail": "This call belongs to another station's duty room."}, status=403)
        audit_record(user=request.user, action="duty_call.view", object_type="duty_call", object_id=call.pk)
        return Response(_card(request, call))


class DutyCallActionApi(APIView):
    """acknowledge, dispatch or close (close needs a note). Steps out of order answer 400 "action"."""

    permission_classes = [CanHandleCalls]

    @extend_schema(
        parameters=[OpenApiParameter("action", str, OpenApiParameter.PATH, enum=list(duty.ACTIONS))],
        request=DutyNoteInput,
        responses={200: DutyCallOutput},
        operation_id="duty_call_step",
    )
    def post(self, request: AuthedRequest, call_id: int, action: str) -> Response:
        v = parse_or_raise(DutyNoteInput(), request.data)
        call = duty.duty_call_act(user=request.user, call_id=call_id, action=action, note=v["note"])
        return Response(_card(request, call))


# --- owners --------------------------------------------------------------------------------------


class MyVehiclesApi(APIView):
    permission_classes = [ActsAsOwner]

    @extend_schema(responses={200: OwnerVehicleOutput(many=True)}, operation_id="my_vehicles")
    def get(self, request: AuthedRequest) -> Response:
        owner = duty.owner_of(request.user)
        vehicles = owner.vehicles.exclude(status=Vehicle.Status.DEREGISTERED).order_by("registered_at")
        terminals = {t.vehicle_id: t for t in Terminal.objects.filter(vehicle__in=vehicles, active=True)}
        return Response([_owner_vehicle_data(v, terminals.get(v.pk)) for v in vehicles])


class VehicleArmApi(APIView):
    """设防 / 撤防 by the owner: {"armed": true} arms the bike where it stands."""

    permission_classes = [ActsAsOwner]

    @extend_schema(request=ArmInput, responses={200: OwnerVehicleOutput}, operation_id="my_vehicle_arm")
    def post(self, request: AuthedRequest, vehicle_id: int) -> Response:
        v = parse_or_raise(ArmInput(), request.data)
        terminal = duty.vehicle_arm(user=request.user, vehicle_id=vehicle_id, armed=v["armed"])
        return Response(_owner_vehicle_data(Vehicle.objects.get(pk=vehicle_id), terminal))


class MyAlarmsApi(APIView):
    permission_classes = [ActsAsOwner]

    @extend_schema(responses={200: OwnerCallOutput(many=True)}, operation_id="my_alarms")
    def get(self, request: AuthedRequest) -> Response:
        return Response([_owner_call_data(call) for call in duty.owner_calls(request.user)[:50]])


class MyAlarmAnswerApi(APIView):
    """The owner's answer to a displacement alarm: confirmed (then report the theft) or dismissed."""

    permission_classes = [ActsAsOwner]

    @extend_schema(request=AnswerInput, responses={200: OwnerCallOutput}, operation_id="my_alarm_answer")
    def post(self, request: AuthedRequest, call_id: int) -> Response:
        v = parse_or_raise(AnswerInput(), request.data)
        call = duty.duty_call_owner_answer(user=request.user, call_id=call_id, answer=v["answer"], note=v["note"])
        return Response(_owner_call_data(call))


class MyEmergencyContactApi(APIView):
    permission_classes = [ActsAsOwner]

    @extend_schema(responses={200: EmergencyContactOutput}, operation_id="my_emergency_contact")
    def get(self, request: AuthedRequest) -> Response:
        return Response(EmergencyContactOutput(duty.owner_of(request.user)).data)

    @extend_schema(
        request=EmergencyContactInput, responses={200: EmergencyContactOutput}, operation_id="my_emergency_contact_set"
    )
    def put(self, request: AuthedRequest) -> Response:
        v = parse_or_raise(EmergencyContactInput(), request.data)
        owner = duty.owner_emergency_contact_set(user=request.user, name=v["name"], phone=v["phone"])
        return Response(EmergencyContactOutput(owner).data)


# --- sightings -----------------------------------------------------------------------------------


class ReportSightingsApi(APIView):
    """Movement episodes of a stolen bike, newest first (positions are audited personal data)."""

    permission_classes = [CanViewReports]

    @extend_schema(responses={200: SightingOutput(many=True)}, operation_id="theft_report_sightings")
    def get(self, request: Request, report_id: int) -> Response:
        report = TheftReport.objects.get(pk=report_id)
        if not request.user.has_perm("cases.view_report_sightings", report):
            refused = {"refused": "no duty on the report"}
            audit_record(
                request=request, action="sightings.view", object_type="theft_report", object_id=report.pk, query=refused
            )
            return Response(
                {"detail": _("Sightings are shown to the report's officers and its station's officers.")}, status=403
            )
        sightings = list(Sighting.objects.filter(report=report).order_by("-started_at")[:200])
        count = len(sightings)
        audit_record(
            request=request,
            action="sightings.view",
            object_type="theft_report",
            object_id=report.pk,
            result_count=count,
        )
        return Response(SightingOutput(sightings, many=True).data)
