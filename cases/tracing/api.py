"""Tracing API: a bike's last position, trajectory and stops; 伴随分析; stolen bikes near a point.

Thin views: query parameters are parsed field by field (every problem reported at once), then one
call into cases.tracing.access checks the right to look, runs the PostGIS selector and writes
the audit row. Refusals are 403 with the reason; bad parameters are 400 naming the parameter.

Other stolen bikes seen at a stop come with the stops (`nearby_stolen=true`) rather than from a
stops/<n>/nearby-stolen URL: stops are computed, not stored, so a stop number means something only
for the same since/until/min_minutes/radius and the same data; one request answers both from one
reading, under one audit entry that names every other bike revealed.
"""

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import client_ip
from accounts.request_types import AuthedRequest
from cases.tracing import access
from cases.tracing import origins as trace_origins
from cases.tracing import selectors as tracing
from ebike_registry.api import has_perm, parse_or_raise

# 伴随分析 and stolen-near are officers' and leaders' tools; the finer rule is cases.tracing.access.
CanSearchPlaces = has_perm("cases.search_near_place")


class QueryBoolean(serializers.BooleanField):
    """A boolean query parameter whose absence means its default (not False, as for a form checkbox)."""

    default_empty_html = empty


def _reason_field() -> serializers.CharField:
    return serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=access.MAX_REASON_LENGTH,
        help_text="Why you look (recorded as the legal basis); required without an open report or case.",
    )


_PAD_HOURS = trace_origins.SEARCH_WINDOW_PAD.total_seconds() / 3600


def _search_field() -> serializers.IntegerField:
    return serializers.IntegerField(
        required=False,
        default=None,
        help_text="Opened from a search: the audit_id of your 伴随 search or stops with rings that found the bike; "
        f"the look is on that search's reason, within its window ± {_PAD_HOURS:g} h",
    )


# --- last position ---------------------------------------------------------------------------------------


class PositionQuery(serializers.Serializer):
    reason = _reason_field()


class PositionOutput(serializers.Serializer):
    terminal_id = serializers.IntegerField()
    device_time = serializers.DateTimeField()
    received_at = serializers.DateTimeField(allow_null=True)
    latitude = serializers.FloatField()
    longitude = serializers.FloatField()
    speed_kmh = serializers.FloatField(allow_null=True)
    course = serializers.FloatField(allow_null=True)
    age_seconds = serializers.IntegerField(help_text="Seconds since the fix was taken")


class VehiclePositionOutput(serializers.Serializer):
    vehicle = serializers.IntegerField()
    position = PositionOutput(allow_null=True, help_text="null: the bike's terminals never reported a valid fix")
    basis = serializers.CharField()


class VehiclePositionApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[PositionQuery],
        responses={200: VehiclePositionOutput},
        operation_id="vehicle_position",
        description="Last known position of the bike (newest plausible fix), with its age. Audited.",
    )
    def get(self, request: AuthedRequest, vehicle_id: int) -> Response:
        v = parse_or_raise(PositionQuery(), request.query_params)
        view = access.vehicle_position_view(
            user=request.user, vehicle_id=vehicle_id, reason=v["reason"], ip=client_ip(request)
        )
        return Response(
            VehiclePositionOutput({"vehicle": vehicle_id, "position": view.position, "basis": view.access.basis}).data
        )


# --- trajectory ---------------------------------------------------------------------------------------------


class TrajectoryQuery(serializers.Serializer):
    since = serializers.DateTimeField(
        required=False, default=None, help_text="Default: the open report's last-seen time, else 24 h back"
    )
    until = serializers.DateTimeField(required=False, default=None, help_text="Default: now; at most 31 days")
    after = serializers.DateTimeField(
        required=False, default=None, help_text="Page cursor: metadata.next_after of the previous page"
    )
    limit = serializers.IntegerField(
        required=False, default=tracing.DEFAULT_POINT_CAP, help_text=f"Points per page, 1-{tracing.POINT_CAP_MAX}"
    )
    tolerance = serializers.FloatField(
        required=False,
        default=tracing.DEFAULT_TOLERANCE_M,
        help_text="Simplification tolerance of the line in metres (1-500)",
    )
    line = QueryBoolean(required=False, default=True, help_text="false: points only (next pages)")
    reason = _reason_field()
    search = _search_field()


class TrajectoryMetadata(serializers.Serializer):
    vehicle = serializers.IntegerField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    count = serializers.IntegerField(help_text="Fixes stored in the period, outliers included")
    outliers = serializers.IntegerField()
    invalid = serializers.IntegerField(help_text="Fixes without GPS lock")
    line_count = serializers.IntegerField(help_text="Fixes the line goes through (valid, not outliers)")
    simplified_count = serializers.IntegerField(help_text="Vertices of the simplified line")
    tolerance_m = serializers.FloatField()
    returned_points = serializers.IntegerField()
    point_cap = serializers.IntegerField()
    after = serializers.DateTimeField(allow_null=True)
    truncated = serializers.BooleanField(help_text="More points follow: ask again with after=next_after")
    next_after = serializers.DateTimeField(allow_null=True)
    basis = serializers.CharField(help_text="owner / open_report:<number> / case:<number> / stated_reason")


class TrajectoryOutput(serializers.Serializer):
    type = serializers.CharField(default="FeatureCollection")
    features = serializers.ListField(
        child=serializers.DictField(),
        help_text='GeoJSON features: first the simplified LineString (properties: kind "line", times, '
        'tolerance_m), then the page of Points (properties: kind "point", time, speed_kmh, course, valid, outlier)',
    )
    metadata = TrajectoryMetadata()


class VehicleTrajectoryApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[TrajectoryQuery],
        responses={200: TrajectoryOutput},
        operation_id="vehicle_trajectory",
        description="GeoJSON FeatureCollection of the bike's fixes: a line simplified in metres (outliers and "
        "fixes without GPS lock left out) over the whole period and a page of points in time order. Audited.",
    )
    def get(self, request: AuthedRequest, vehicle_id: int) -> Response:
        v = parse_or_raise(TrajectoryQuery(), request.query_params)
        view = access.vehicle_trajectory_view(
            user=request.user,
            vehicle_id=vehicle_id,
            since=v["since"],
            until=v["until"],
            after=v["after"],
            point_cap=v["limit"],
            tolerance_m=v["tolerance"],
            with_line=v["line"],
            reason=v["reason"],
            search=v["search"],
            ip=client_ip(request),
        )
        return Response(view.geojson())


# --- stops --------------------------------------------------------------------------------------------------


class StopsQuery(serializers.Serializer):
    since = serializers.DateTimeField(
        required=False, default=None, help_text="Default: the open report's last-seen time, else 24 h back"
    )
    until = serializers.DateTimeField(required=False, default=None, help_text="Default: now; at most 31 days")
    min_minutes = serializers.IntegerField(
        required=False, default=tracing.DEFAULT_STOP_MINUTES, help_text="Shortest stay that counts (1-1440)"
    )
    radius = serializers.FloatField(
        required=False, default=tracing.DEFAULT_STOP_RADIUS_M, help_text="Metres the bike stays within (10-500)"
    )
    limit = serializers.IntegerField(required=False, default=tracing.DEFAULT_STOPS_LIMIT, help_text="1-100")
    nearby_stolen = QueryBoolean(
        required=False,
        default=False,
        help_text=f"Officers: for the first {access.NEARBY_STOPS_MAX} stops, other missing bikes seen there",
    )
    nearby_radius = serializers.FloatField(
        required=False, default=None, help_text="Metres around a stop for nearby_stolen (default: radius)"
    )
    nearby_days = serializers.IntegerField(
        required=False, default=tracing.DEFAULT_NEARBY_DAYS, help_text="Days back for nearby_stolen (1-90)"
    )
    reason = _reason_field()
    search = _search_field()


class StolenVisitOutput(serializers.Serializer):
    vehicle_id = serializers.IntegerField()
    report_number = serializers.CharField()
    report_status = serializers.CharField()
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()
    pings = serializers.IntegerField()
    min_distance_m = serializers.FloatField()


class StopBaseOutput(serializers.Serializer):
    rank = serializers.IntegerField()
    latitude = serializers.FloatField()
    longitude = serializers.FloatField()
    arrival = serializers.DateTimeField()
    departure = serializers.DateTimeField()
    dwell_seconds = serializers.IntegerField()
    pings = serializers.IntegerField()
    spread_m = serializers.FloatField(help_text="Root-mean-square distance of the stop's fixes from its centre")
    before_since = serializers.BooleanField(help_text="Already there when the period starts")
    ongoing = serializers.BooleanField(help_text="Still there at the last fix of the period")


class StopOutput(StopBaseOutput):
    nearby_stolen = StolenVisitOutput(many=True, required=False, help_text="Only with nearby_stolen=true")


class StopsOutput(serializers.Serializer):
    vehicle = serializers.IntegerField(source="stops.vehicle_id")
    since = serializers.DateTimeField(source="stops.since")
    until = serializers.DateTimeField(source="stops.until")
    min_minutes = serializers.IntegerField(source="stops.min_minutes")
    radius = serializers.FloatField(source="stops.radius_m")
    found = serializers.IntegerField(source="stops.found", help_text="Stops found before the limit")
    nearby_radius = serializers.FloatField(source="nearby_radius_m", allow_null=True)
    nearby_days = serializers.IntegerField(allow_null=True)
    basis = serializers.CharField(source="access.basis")
    audit_id = serializers.IntegerField(help_text="This look's audit row: the search parameter of the rings' traces")
    stops = serializers.SerializerMethodField()

    @extend_schema_field(StopOutput(many=True))
    def get_stops(self, view: access.StopsView) -> list[dict[str, Any]]:
        rows = []
        for stop in view.stops.stops:
            row = dict(StopBaseOutput(stop).data)
            if view.nearby_radius_m is not None:
                row["nearby_stolen"] = StolenVisitOutput(view.nearby.get(stop.rank, []), many=True).data
            rows.append(row)
        return rows


class VehicleStopsApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[StopsQuery],
        responses={200: StopsOutput},
        operation_id="vehicle_stops",
        description="Places where the bike stayed at least min_minutes within radius metres, longest first; with "
        "nearby_stolen=true (officers), the other missing bikes whose fixes came near each stop. Audited.",
    )
    def get(self, request: AuthedRequest, vehicle_id: int) -> Response:
        v = parse_or_raise(StopsQuery(), request.query_params)
        view = access.vehicle_stops_view(
            user=request.user,
            vehicle_id=vehicle_id,
            since=v["since"],
            until=v["until"],
            min_minutes=v["min_minutes"],
            radius_m=v["radius"],
            limit=v["limit"],
            nearby_stolen=v["nearby_stolen"],
            nearby_radius_m=v["nearby_radius"],
            nearby_days=v["nearby_days"],
            reason=v["reason"],
            search=v["search"],
            ip=client_ip(request),
        )
        return Response(StopsOutput(view).data)


# --- 伴随分析 ---------------------------------------------------------------------------------------------


class NearQuery(serializers.Serializer):
    lat = serializers.FloatField()
    lon = serializers.FloatField()
    radius = serializers.FloatField(help_text="Metres (10-5000)")
    since = serializers.DateTimeField()
    until = serializers.DateTimeField(help_text="At most 24 h after since")
    reason = serializers.CharField(
        max_length=200, help_text="Why you search (e.g. the report or case number); recorded as the legal basis"
    )


class NearVehicleOutput(serializers.Serializer):
    vehicle_id = serializers.IntegerField()
    plate = serializers.CharField()
    brand = serializers.CharField()
    colour = serializers.CharField()
    status = serializers.CharField()
    open_report = serializers.CharField(help_text="The bike's own open theft report, if any")
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()
    pings = serializers.IntegerField()
    min_distance_m = serializers.FloatField()


class NearOutput(serializers.Serializer):
    lat = serializers.FloatField(source="result.latitude")
    lon = serializers.FloatField(source="result.longitude")
    radius = serializers.FloatField(source="result.radius_m")
    since = serializers.DateTimeField(source="result.since")
    until = serializers.DateTimeField(source="result.until")
    truncated = serializers.BooleanField(source="result.truncated")
    basis = serializers.CharField(source="access.basis")
    audit_id = serializers.IntegerField(help_text="This search's audit row: the search parameter of the bikes' traces")
    vehicles = NearVehicleOutput(many=True, source="result.vehicles")


class TracingNearApi(APIView):
    permission_classes = [CanSearchPlaces]

    @extend_schema(
        parameters=[NearQuery],
        responses={200: NearOutput},
        operation_id="tracing_near",
        description="伴随分析: the bikes with a fix within radius metres of the point between since and until "
        "(at most 24 h), closest first, with when they were first and last seen there. Officers, with a reason; "
        "audited with every vehicle found.",
    )
    def get(self, request: AuthedRequest) -> Response:
        v = parse_or_raise(NearQuery(), request.query_params)
        view = access.vehicles_near_view(
            user=request.user,
            latitude=v["lat"],
            longitude=v["lon"],
            radius_m=v["radius"],
            since=v["since"],
            until=v["until"],
            reason=v["reason"],
            ip=client_ip(request),
        )
        return Response(NearOutput(view).data)


# --- stolen bikes near a point ---------------------------------------------------------------------------


class StolenNearQuery(serializers.Serializer):
    lat = serializers.FloatField()
    lon = serializers.FloatField()
    radius_km = serializers.FloatField(help_text="Kilometres (0.01-50)")
    limit = serializers.IntegerField(
        required=False, default=tracing.DEFAULT_STOLEN_NEAR_LIMIT, help_text="The closest this many (1-500)"
    )
    reason = _reason_field()


class StolenPositionOutput(serializers.Serializer):
    vehicle_id = serializers.IntegerField()
    report_number = serializers.CharField()
    report_received_at = serializers.DateTimeField()
    device_time = serializers.DateTimeField()
    latitude = serializers.FloatField()
    longitude = serializers.FloatField()
    distance_m = serializers.FloatField()
    age_seconds = serializers.IntegerField()


class StolenNearOutput(serializers.Serializer):
    truncated = serializers.BooleanField(help_text="More missing bikes are within the radius than the limit")
    basis = serializers.CharField(source="access.basis")
    results = StolenPositionOutput(many=True, source="positions")


class StolenNearApi(APIView):
    permission_classes = [CanSearchPlaces]

    @extend_schema(
        parameters=[StolenNearQuery],
        responses={200: StolenNearOutput},
        operation_id="stolen_near",
        description="Bikes missing now (open theft report) whose last position is within radius_km of the "
        "point, closest first. Officers; audited.",
    )
    def get(self, request: AuthedRequest) -> Response:
        v = parse_or_raise(StolenNearQuery(), request.query_params)
        view = access.stolen_near_view(
            user=request.user,
            latitude=v["lat"],
            longitude=v["lon"],
            radius_km=v["radius_km"],
            limit=v["limit"],
            reason=v["reason"],
            ip=client_ip(request),
        )
        return Response(StolenNearOutput(view).data)
