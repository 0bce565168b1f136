from rest_framework import serializers

from accounts.models import Station, Township, User
from cases.models import Case, CaseLink, CaseStep, ReportStatus, ReportTransition, TheftReport
from ebike_registry.lengths import stored_length
from vehicles.fields import FRAME_INPUT, ID_INPUT, PHONE_INPUT, PLATE_INPUT

# Officers named in one request (a case's responsible officers, an assignment).
OFFICERS_MAX = 20


class ReportInput(serializers.Serializer):
    channel = serializers.ChoiceField(choices=TheftReport.Channel.choices)
    plate = serializers.CharField(required=False, allow_blank=True, default="", max_length=PLATE_INPUT)
    frame_number = serializers.CharField(required=False, allow_blank=True, default="", max_length=FRAME_INPUT)
    owner_id_number = serializers.CharField(required=False, allow_blank=True, default="", max_length=ID_INPUT)
    unregistered_description = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=stored_length(TheftReport, "unregistered_description")
    )
    reporter_name = serializers.CharField(max_length=stored_length(TheftReport, "reporter_name"))
    reporter_phone = serializers.CharField(max_length=PHONE_INPUT)
    reporter_id_number = serializers.CharField(required=False, allow_blank=True, default="", max_length=ID_INPUT)
    last_seen_at = serializers.DateTimeField()
    missing_at = serializers.DateTimeField()
    place_address = serializers.CharField(
        max_length=stored_length(TheftReport, "place_address"), required=False, allow_blank=True, default=""
    )
    latitude = serializers.FloatField(required=False, allow_null=True, default=None)
    longitude = serializers.FloatField(required=False, allow_null=True, default=None)
    township_code = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=stored_length(Township, "code")
    )
    locked = serializers.BooleanField(required=False, allow_null=True, default=None)
    narrative = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=stored_length(TheftReport, "narrative")
    )


class TransitionInput(serializers.Serializer):
    to_status = serializers.ChoiceField(choices=ReportStatus.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    case_number = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=32,
        help_text="Filing (filed_criminal, filed_public_order): the new case's number as the bureau's case platform "
        "issued it (CASE_NUMBER_PATTERN). Or give case_id.",
    )
    officer_ids = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        default=list,
        max_length=OFFICERS_MAX,
        help_text="The new case's officers besides the filer.",
    )
    summary = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=stored_length(Case, "summary")
    )
    case_id = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="Filing: attach the report to this existing case."
    )


class TransitionOutput(serializers.ModelSerializer):
    by: "serializers.SlugRelatedField[User]" = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ReportTransition
        fields = ["from_status", "to_status", "at", "by", "note"]


class ReportOutput(serializers.ModelSerializer):
    station: "serializers.SlugRelatedField[Station]" = serializers.SlugRelatedField(slug_field="name", read_only=True)
    receiving_officer: "serializers.SlugRelatedField[User]" = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    assigned_officers: "serializers.SlugRelatedField[User]" = serializers.SlugRelatedField(
        slug_field="username", many=True, read_only=True
    )
    registered = serializers.BooleanField(read_only=True)
    latitude = serializers.SerializerMethodField()
    longitude = serializers.SerializerMethodField()
    transitions = TransitionOutput(many=True, read_only=True)
    cases = serializers.SerializerMethodField(help_text="The cases the report is linked to now.")

    class Meta:
        model = TheftReport
        fields = [
            "id",
            "number",
            "received_at",
            "channel",
            "station",
            "receiving_officer",
            "assigned_officers",
            "vehicle",
            "registered",
            "unregistered_description",
            "reporter_name",
            "last_seen_at",
            "missing_at",
            "place_address",
            "latitude",
            "longitude",
            "place_geocoded",
            "township",
            "locked",
            "narrative",
            "status",
            "transitions",
            "cases",
        ]

    def get_cases(self, report: TheftReport) -> list[dict]:
        links = report.case_links.filter(unlinked_at__isnull=True).select_related("case")
        return [{"id": link.case_id, "number": link.case.number} for link in links]

    def get_latitude(self, report: TheftReport) -> float | None:
        return report.place_point.y if report.place_point else None

    def get_longitude(self, report: TheftReport) -> float | None:
        return report.place_point.x if report.place_point else None


class CaseInput(serializers.Serializer):
    number = serializers.CharField(max_length=32)
    kind = serializers.ChoiceField(choices=Case.Kind.choices)
    officer_ids = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=OFFICERS_MAX)
    summary = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=stored_length(Case, "summary")
    )


class AssignInput(serializers.Serializer):
    officer_ids = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=OFFICERS_MAX)


class LinkInput(serializers.Serializer):
    report_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    vehicle_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    reason = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required when linking a bike without a report: it opens the bike's positions to the case.",
    )


class UnlinkInput(serializers.Serializer):
    reason = serializers.CharField(max_length=200)


class SolveInput(serializers.Serializer):
    with_positioning = serializers.BooleanField()
    note = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=stored_length(CaseStep, "note")
    )


class CloseInput(serializers.Serializer):
    reason = serializers.CharField(max_length=200, help_text="结案 after solving, or why an unsolved case is dropped.")


class CaseStepOutput(serializers.ModelSerializer):
    by: "serializers.SlugRelatedField[User]" = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = CaseStep
        fields = ["action", "at", "by", "report", "vehicle", "note"]


class LinkOutput(serializers.ModelSerializer):
    linked_by: "serializers.SlugRelatedField[User]" = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    unlinked_by: "serializers.SlugRelatedField[User]" = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = CaseLink
        fields = [
            "id",
            "report",
            "vehicle",
            "linked_at",
            "linked_by",
            "reason",
            "unlinked_at",
            "unlinked_by",
            "unlink_reason",
        ]


class CaseOutput(serializers.ModelSerializer):
    station: "serializers.SlugRelatedField[Station]" = serializers.SlugRelatedField(slug_field="name", read_only=True)
    filed_by: "serializers.SlugRelatedField[User]" = serializers.SlugRelatedField(slug_field="username", read_only=True)
    approved_by: "serializers.SlugRelatedField[User]" = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    officers: "serializers.SlugRelatedField[User]" = serializers.SlugRelatedField(
        slug_field="username", many=True, read_only=True
    )
    links = LinkOutput(many=True, read_only=True)
    steps = CaseStepOutput(many=True, read_only=True)

    class Meta:
        model = Case
        fields = [
            "id",
            "number",
            "kind",
            "station",
            "officers",
            "filed_on",
            "filed_by",
            "approved_by",
            "approved_at",
            "status",
            "solved_with_positioning",
            "summary",
            "links",
            "steps",
        ]


class StolenCheckQuery(serializers.Serializer):
    plate = serializers.CharField(required=False, allow_blank=True, default="", max_length=PLATE_INPUT)
    frame = serializers.CharField(required=False, allow_blank=True, default="", max_length=FRAME_INPUT)


class StolenCheckOutput(serializers.Serializer):
    registered = serializers.BooleanField()
    stolen = serializers.BooleanField()
    reported_on = serializers.DateField(allow_null=True)
