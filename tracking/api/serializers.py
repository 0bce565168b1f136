from rest_framework import serializers

from tracking.models import LastPosition, Terminal, TerminalInstallation


class TerminalInput(serializers.Serializer):
    imei = serializers.CharField(max_length=20)
    protocol = serializers.ChoiceField(choices=Terminal.Protocol.choices)
    phone = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    sim_iccid = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    source = serializers.ChoiceField(choices=Terminal.Source.choices, default=Terminal.Source.AFTERMARKET)
    heartbeat_interval_s = serializers.IntegerField(default=300)


class BindInput(serializers.Serializer):
    vehicle_id = serializers.IntegerField()
    owner_consent = serializers.BooleanField(help_text="The owner agreed to positioning (recorded)")


class UnbindInput(serializers.Serializer):
    reason = serializers.CharField(max_length=200)


class ReplaceInput(serializers.Serializer):
    new_terminal_id = serializers.IntegerField()
    reason = serializers.CharField(max_length=200)


class LastPositionOutput(serializers.ModelSerializer):
    latitude = serializers.SerializerMethodField()
    longitude = serializers.SerializerMethodField()

    class Meta:
        model = LastPosition
        fields = ["device_time", "received_at", "latitude", "longitude", "speed_kmh", "course", "valid", "battery"]

    def get_latitude(self, obj: LastPosition) -> float:
        return obj.point.y

    def get_longitude(self, obj: LastPosition) -> float:
        return obj.point.x


class TerminalOutput(serializers.ModelSerializer):
    last_position = serializers.SerializerMethodField()

    class Meta:
        model = Terminal
        fields = [
            "id",
            "imei",
            "protocol",
            "source",
            "phone",
            "sim_iccid",
            "auth_code",
            "heartbeat_interval_s",
            "positioning_enabled",
            "consent_at",
            "vehicle",
            "active",
            "created_at",
            "last_position",
        ]

    def get_last_position(self, terminal: Terminal) -> dict | None:
        position = getattr(terminal, "last_position", None)
        return LastPositionOutput(position).data if position else None


class InstallationOutput(serializers.ModelSerializer):
    installed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    removed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    station = serializers.SlugRelatedField(slug_field="name", read_only=True)
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


class PingInput(serializers.Serializer):
    """Schema only (validation is tracking.pings_http): one ping, or {"pings": [...]} up to 1,000."""

    terminal = serializers.CharField(help_text="IMEI")
    time = serializers.DateTimeField(help_text="device time, ISO 8601 with zone")
    latitude = serializers.FloatField()
    longitude = serializers.FloatField()
    speed_kmh = serializers.FloatField(required=False)
    course = serializers.FloatField(required=False)
    altitude = serializers.FloatField(required=False)
    satellites = serializers.IntegerField(required=False)
    valid = serializers.BooleanField(required=False, default=True)
    battery = serializers.FloatField(required=False)
    alarms = serializers.ListField(child=serializers.CharField(), required=False)


class PingBatchInput(serializers.Serializer):
    pings = PingInput(many=True)


class PingResultOutput(serializers.Serializer):
    stored = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    outliers = serializers.IntegerField()
