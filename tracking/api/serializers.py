import datetime

from rest_framework import serializers

from accounts.models import Station, User
from tracking.models import Terminal, TerminalInstallation
from tracking.pings_http import ALARM_NAME_LENGTH, IMEI_LENGTH, MAX_ALARM_NAMES, MAX_BATCH


class TerminalInput(serializers.Serializer):
    imei = serializers.CharField(max_length=20)
    protocol = serializers.ChoiceField(choices=Terminal.Protocol.choices)
    phone = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    sim_iccid = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    source = serializers.ChoiceField(  # type: ignore[assignment]  # the API field "source" shadows Field.source
        choices=Terminal.Source.choices, default=Terminal.Source.AFTERMARKET
    )
    heartbeat_interval_s = serializers.IntegerField(default=300)
    jt808_device_id = serializers.CharField(
        max_length=30,
        required=False,
        allow_blank=True,
        default="",
        help_text="JT/T 808 terminal ID its register must name (default: the IMEI or its last 7 digits)",
    )
    maker = serializers.CharField(
        max_length=11, required=False, allow_blank=True, default="", help_text="JT/T 808 maker ID, checked when given"
    )
    model_code = serializers.CharField(
        max_length=30, required=False, allow_blank=True, default="", help_text="JT/T 808 model, checked when given"
    )


class BindInput(serializers.Serializer):
    vehicle_id = serializers.IntegerField()
    owner_consent = serializers.BooleanField(help_text="The owner agreed to positioning (recorded)")


class FitInput(serializers.Serializer):
    """A terminal fitted to a bike in one step: the fields of TerminalInput (used when the IMEI is new;
    a registered terminal is taken as it is) and the owner's consent."""

    imei = serializers.CharField(max_length=20)
    protocol = serializers.ChoiceField(choices=Terminal.Protocol.choices, default=Terminal.Protocol.GT06)
    phone = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    sim_iccid = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    source = serializers.ChoiceField(  # type: ignore[assignment]  # the API field "source" shadows Field.source
        choices=Terminal.Source.choices, default=Terminal.Source.AFTERMARKET
    )
    heartbeat_interval_s = serializers.IntegerField(default=300)
    jt808_device_id = serializers.CharField(max_length=30, required=False, allow_blank=True, default="")
    maker = serializers.CharField(max_length=11, required=False, allow_blank=True, default="")
    model_code = serializers.CharField(max_length=30, required=False, allow_blank=True, default="")
    osmand_key = serializers.BooleanField(default=False, help_text="Issue an OsmAnd key (returned once)")
    owner_consent = serializers.BooleanField(help_text="The owner agreed to positioning (recorded)")


class UnbindInput(serializers.Serializer):
    reason = serializers.CharField(max_length=200)


class ReplaceInput(serializers.Serializer):
    new_terminal_id = serializers.IntegerField()
    reason = serializers.CharField(max_length=200)


class TerminalOutput(serializers.ModelSerializer):
    """A terminal as the counter sees it: never its position (the tracing API, which asks for a duty
    and audits, shows that) and never its JT/T 808 auth code (a secret between it and the gateway).
    `last_heard_at` tells the clerk a fitted terminal reports."""

    last_heard_at = serializers.SerializerMethodField()

    class Meta:
        model = Terminal
        fields = [
            "id",
            "imei",
            "protocol",
            "source",
            "phone",
            "sim_iccid",
            "heartbeat_interval_s",
            "positioning_enabled",
            "consent_at",
            "vehicle",
            "active",
            "created_at",
            "last_heard_at",
        ]

    def get_last_heard_at(self, terminal: Terminal) -> datetime.datetime | None:
        position = getattr(terminal, "last_position", None)
        return position.received_at if position else None


class InstallationOutput(serializers.ModelSerializer):
    installed_by: "serializers.SlugRelatedField[User]" = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    removed_by: "serializers.SlugRelatedField[User]" = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    station: "serializers.SlugRelatedField[Station]" = serializers.SlugRelatedField(slug_field="name", read_only=True)
    imei = serializers.CharField(source="terminal.imei")

    class Meta:
        model = TerminalInstallation
        fields = [
            "id",
            "imei",
            "vehicle",
            "installed_at",
            "installed_by",
            "station",
            "removed_at",
            "removed_by",
            "removal_reason",
        ]


class FitOutput(serializers.Serializer):
    installation = InstallationOutput()
    osmand_key = serializers.CharField(allow_null=True, help_text="Shown once; null unless asked for")


class PingInput(serializers.Serializer):
    """Schema only (validation is tracking.pings_http): one ping, or {"pings": [...]} up to 1,000."""

    terminal = serializers.CharField(max_length=IMEI_LENGTH, help_text="IMEI")
    time = serializers.DateTimeField(help_text="device time, ISO 8601 with zone")
    latitude = serializers.FloatField()
    longitude = serializers.FloatField()
    speed_kmh = serializers.FloatField(required=False)
    course = serializers.FloatField(required=False)
    altitude = serializers.FloatField(required=False)
    satellites = serializers.IntegerField(required=False)
    valid = serializers.BooleanField(required=False, default=True)
    battery = serializers.FloatField(required=False)
    alarms = serializers.ListField(
        child=serializers.CharField(max_length=ALARM_NAME_LENGTH),
        required=False,
        max_length=MAX_ALARM_NAMES,
        help_text=(
            "alarm names (sos, power_cut, or Traccar's powerCut…): each kind stored once, at most "
            "GATEWAY_MAX_ALARMS_PER_FIX (8); a name outside the vocabulary is stored as `other` with its text"
        ),
    )


class TerminalFindQuery(serializers.Serializer):
    imei = serializers.CharField(
        max_length=20,
        help_text="The terminal's IMEI",
        error_messages={"required": "Give the IMEI to look up.", "blank": "Give the IMEI to look up."},
    )


class PingBatchInput(serializers.Serializer):
    pings = serializers.ListField(child=PingInput(), min_length=1, max_length=MAX_BATCH)


class PingResultOutput(serializers.Serializer):
    stored = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    outliers = serializers.IntegerField()
