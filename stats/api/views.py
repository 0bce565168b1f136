"""/api/v1/stats/…: the dashboard's tables as JSON, CSV (?format=csv) or Excel (?format=xlsx)."""

from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.request_types import AuthedRequest
from ebike_registry.downloads import as_attachment
from ebike_registry.parsers import JSONParser
from stats import selectors, services
from stats.exports import CSVRenderer, XLSXRenderer, export_filename
from stats.models import EstimateMethod, PlateEstimate
from stats.params import STATION_CODE_LENGTH, parse_filters
from stats.permissions import IsStatsAdmin

PERIOD_PARAMS = [
    OpenApiParameter("start", OpenApiTypes.DATE, description="First day (county time), default 11 months ago"),
    OpenApiParameter("end", OpenApiTypes.DATE, description="Last day, inclusive; default today"),
    OpenApiParameter(
        "station",
        {"type": "string", "maxLength": STATION_CODE_LENGTH},
        description="Station code; default all stations",
    ),
]
FORMAT_PARAM = OpenApiParameter("format", str, enum=["json", "csv", "xlsx"], description="Answer format")
TABLE = inline_serializer(
    "StatsTable",
    {
        "table": serializers.CharField(),
        "columns": serializers.ListField(child=serializers.DictField()),
        "rows": serializers.ListField(child=serializers.DictField()),
    },
)


class StatsApi(APIView):
    permission_classes = [IsStatsAdmin]
    renderer_classes = [JSONRenderer, CSVRenderer, XLSXRenderer]

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        fmt = getattr(getattr(request, "accepted_renderer", None), "format", "json")
        if fmt in ("csv", "xlsx") and response.status_code == 200:
            as_attachment(response, export_filename(response.data, fmt))
        return response


def _year(request: Request) -> int:
    raw = request.query_params.get("year")
    if not raw:
        return timezone.localdate().year
    try:
        year = int(raw)
    except ValueError:
        raise ValidationError({"year": ["The year is a number such as 2026."]}) from None
    if not 2000 <= year <= 2100:
        raise ValidationError({"year": ["The year is between 2000 and 2100."]})
    return year


YEAR_PARAM = OpenApiParameter(
    "year", int, description="Year of the estimates to divide by (default this year); plated bikes are counted now"
)


class PlateRateTownshipsApi(StatsApi):
    @extend_schema(parameters=[YEAR_PARAM, FORMAT_PARAM], responses=TABLE, operation_id="stats_plate_rate_townships")
    def get(self, request: Request) -> Response:
        return Response(selectors.plate_rate_townships(year=_year(request)).as_dict())


class PlateRateStationsApi(StatsApi):
    @extend_schema(parameters=[YEAR_PARAM, FORMAT_PARAM], responses=TABLE, operation_id="stats_plate_rate_stations")
    def get(self, request: Request) -> Response:
        return Response(selectors.plate_rate_stations(year=_year(request)).as_dict())


def _table_api(selector: Any, operation: str, extra: list[OpenApiParameter] | None = None) -> type[StatsApi]:
    class TableApi(StatsApi):
        @extend_schema(
            parameters=[*PERIOD_PARAMS, *(extra or []), FORMAT_PARAM], responses=TABLE, operation_id=operation
        )
        def get(self, request: Request) -> Response:
            return Response(selector(parse_filters(request.query_params)).as_dict())

    TableApi.__name__ = TableApi.__qualname__ = "".join(p.title() for p in operation.split("_")) + "Api"
    return TableApi


RegistrationsApi = _table_api(
    selectors.registrations_series,
    "stats_registrations",
    [OpenApiParameter("granularity", str, enum=["day", "week", "month"])],
)
TheftsApi = _table_api(selectors.thefts_monthly, "stats_thefts")
AlarmsApi = _table_api(selectors.alarms_by_kind, "stats_alarms")
CasesApi = _table_api(selectors.cases_monthly, "stats_cases")
RescuesApi = _table_api(selectors.rescues_monthly, "stats_rescues")


class HotspotsApi(StatsApi):
    @extend_schema(
        parameters=[
            *PERIOD_PARAMS,
            OpenApiParameter("cell_m", int, description="Grid cell size in metres (100-5000, default 500)"),
            OpenApiParameter("limit", int, description="Only the busiest cells"),
            FORMAT_PARAM,
        ],
        responses=OpenApiResponse(OpenApiTypes.OBJECT, description="GeoJSON FeatureCollection of grid cells"),
        operation_id="stats_theft_hotspots",
    )
    def get(self, request: Request) -> Response:
        filters = parse_filters(request.query_params)
        limit = None
        raw = request.query_params.get("limit")
        if raw:
            try:
                limit = int(raw)
                if limit < 1:
                    raise ValueError
            except ValueError:
                raise ValidationError({"limit": ["The limit is a positive whole number."]}) from None
        return Response(selectors.theft_hotspots(filters, limit=limit))


class EstimateInput(serializers.Serializer):
    township_code = serializers.CharField(max_length=9)
    year = serializers.IntegerField()
    estimated_bikes = serializers.IntegerField()
    method = serializers.ChoiceField(choices=EstimateMethod.choices)
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class EstimateOutput(serializers.ModelSerializer):
    township_code = serializers.CharField(source="township_id")
    entered_by = serializers.CharField(source="entered_by.username")

    class Meta:
        model = PlateEstimate
        fields = [
            "id",
            "township_code",
            "year",
            "estimated_bikes",
            "method",
            "note",
            "source",
            "entered_by",
            "entered_at",
        ]


class EstimatesApi(APIView):
    permission_classes = [IsStatsAdmin]

    @extend_schema(parameters=[YEAR_PARAM], responses=EstimateOutput(many=True), operation_id="stats_estimates_list")
    def get(self, request: Request) -> Response:
        estimates = PlateEstimate.objects.select_related("entered_by")
        if request.query_params.get("year"):
            estimates = estimates.filter(year=_year(request))
        return Response(EstimateOutput(estimates, many=True).data)

    @extend_schema(request=EstimateInput, responses={200: EstimateOutput}, operation_id="stats_estimate_set")
    def post(self, request: AuthedRequest) -> Response:
        data = request.data.dict() if hasattr(request.data, "dict") else request.data
        if not isinstance(data, dict):
            raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
        estimate = services.estimate_set(user=request.user, values=data, source=PlateEstimate.Source.API)
        return Response(EstimateOutput(estimate).data)


class EstimatesImportApi(APIView):
    permission_classes = [IsStatsAdmin]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        request={"multipart/form-data": inline_serializer("EstimatesUpload", {"file": serializers.FileField()})},
        responses={
            200: inline_serializer(
                "EstimatesImported", {"created": serializers.IntegerField(), "updated": serializers.IntegerField()}
            )
        },
        operation_id="stats_estimates_import",
    )
    def post(self, request: AuthedRequest) -> Response:
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": ["Attach the CSV file as 'file'."]})
        result = services.estimates_import_csv(user=request.user, data=upload.read(services.MAX_CSV_BYTES + 1))
        return Response({"created": result.created, "updated": result.updated}, status=status.HTTP_200_OK)
