from typing import Any

from django.urls import reverse
from rest_framework import serializers

from accounts.models import Station, Township
from vehicles.identifiers import mask_id_number, mask_phone
from vehicles.models import InsurancePolicy, Owner, Plate, RegistrationEvent, Vehicle, VehiclePhoto
from vehicles.selectors import current_plate
from vehicles.services.registration import DeregisterReason, TransferConsent

# --- input ---------------------------------------------------------------------------------------


class OwnerInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Owner.Kind.choices, default=Owner.Kind.PERSON)
    name = serializers.CharField(max_length=100)
    id_number = serializers.CharField(max_length=20, help_text="Resident ID (18 chars) or unified social credit code")
    phone = serializers.CharField(max_length=20)
    address = serializers.CharField(max_length=200)
    township_code = serializers.CharField(max_length=9, required=False, allow_blank=True)
    agent_name = serializers.CharField(max_length=50, required=False, allow_blank=True)
    agent_id_number = serializers.CharField(max_length=20, required=False, allow_blank=True)


class VehicleInput(serializers.Serializer):
    frame_number = serializers.CharField(max_length=20)
    motor_number = serializers.CharField(max_length=30)
    manufacturer = serializers.CharField(max_length=100)
    brand = serializers.CharField(max_length=50)
    model_name = serializers.CharField(max_length=50)
    colour = serializers.CharField(max_length=20)
    production_date = serializers.DateField()
    use_type = serializers.ChoiceField(choices=Vehicle.UseType.choices, default=Vehicle.UseType.SELF_USE)
    purchase_date = serializers.DateField()
    purchase_price = serializers.DecimalField(max_digits=9, decimal_places=2)
    ccc_certificate_no = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    conforming = serializers.BooleanField(default=True)
    electronic_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    qr_payload = serializers.CharField(max_length=256, required=False, allow_blank=True, default="")


class RegistrationInput(serializers.Serializer):
    owner = OwnerInput()
    vehicle = VehicleInput()
    insurance_consent = serializers.BooleanField(help_text="The owner agreed to the free theft-loss policy")
    documents = serializers.ListField(child=serializers.CharField(max_length=50), required=False, default=list)


class VehicleChangeFields(serializers.Serializer):
    frame_number = serializers.CharField(max_length=20, required=False)
    motor_number = serializers.CharField(max_length=30, required=False)
    colour = serializers.CharField(max_length=20, required=False)


class VehicleCorrectionFields(VehicleChangeFields):
    manufacturer = serializers.CharField(max_length=100, required=False)
    brand = serializers.CharField(max_length=50, required=False)
    model_name = serializers.CharField(max_length=50, required=False)
    production_date = serializers.DateField(required=False)
    purchase_date = serializers.DateField(required=False)
    purchase_price = serializers.DecimalField(max_digits=9, decimal_places=2, required=False)
    ccc_certificate_no = serializers.CharField(max_length=40, required=False, allow_blank=True)
    electronic_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
    qr_payload = serializers.CharField(max_length=256, required=False, allow_blank=True)


class OwnerChangeFields(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    phone = serializers.CharField(max_length=20, required=False)
    address = serializers.CharField(max_length=200, required=False)
    township_code = serializers.CharField(max_length=9, required=False, allow_blank=True)


class ChangeInput(serializers.Serializer):
    vehicle = VehicleChangeFields(required=False)
    owner = OwnerChangeFields(required=False)
    reason = serializers.CharField(max_length=200)
    documents = serializers.ListField(child=serializers.CharField(max_length=50), required=False, default=list)


class CorrectionInput(serializers.Serializer):
    vehicle = VehicleCorrectionFields(required=False)
    owner = OwnerChangeFields(required=False)
    reason = serializers.CharField(max_length=200)


class TransferInput(serializers.Serializer):
    new_owner = OwnerInput()
    insurance_consent = serializers.BooleanField()
    previous_owner_consent = serializers.ChoiceField(
        choices=TransferConsent.CODES,
        help_text="How the previous owner agreed: in_person (signed at the counter) or agent (a power of attorney)",
    )
    consent_agent_name = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    consent_agent_id_number = serializers.CharField(
        max_length=24,
        required=False,
        allow_blank=True,
        default="",
        help_text="The agent's resident ID number; with an agent, the documents include letter_of_authority",
    )
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    documents = serializers.ListField(child=serializers.CharField(max_length=50), required=False, default=list)


class ReplacePlateInput(serializers.Serializer):
    reason = serializers.CharField(max_length=200)


class DeregisterInput(serializers.Serializer):
    reason = serializers.ChoiceField(choices=[(c, c) for c in DeregisterReason.CHOICES])
    plate_returned = serializers.BooleanField()


class SearchInput(serializers.Serializer):
    plate = serializers.CharField(required=False)
    plate_contains = serializers.CharField(required=False)
    frame_number = serializers.CharField(required=False)
    motor_number = serializers.CharField(required=False)
    id_number = serializers.CharField(required=False)
    phone = serializers.CharField(required=False)
    owner_name = serializers.CharField(required=False)
    imei = serializers.CharField(required=False, help_text="IMEI of the terminal fitted to the bike")
    reason = serializers.CharField(required=False, default="", help_text="Why the record is looked up (audited)")


class PhotoInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=VehiclePhoto.Kind.choices, default=VehiclePhoto.Kind.BIKE)
    image = serializers.FileField()


# --- output --------------------------------------------------------------------------------------


class MaskingMixin:
    """Masks ID numbers and phones unless the view says the user may see them in full."""

    context: dict[str, Any]

    def _show(self, value: str, mask: Any) -> str:
        return value if self.context.get("full_identity") else mask(value)


class OwnerOutput(MaskingMixin, serializers.ModelSerializer):
    id_number = serializers.SerializerMethodField()
    phone = serializers.SerializerMethodField()
    agent_id_number = serializers.SerializerMethodField()

    class Meta:
        model = Owner
        fields = ["id", "kind", "name", "id_number", "phone", "address", "township", "agent_name", "agent_id_number"]

    def get_id_number(self, owner: Owner) -> str:
        return self._show(owner.id_number, mask_id_number)

    def get_phone(self, owner: Owner) -> str:
        return self._show(owner.phone, mask_phone)

    def get_agent_id_number(self, owner: Owner) -> str:
        return self._show(owner.agent_id_number, mask_id_number) if owner.agent_id_number else ""


class PlateOutput(serializers.ModelSerializer):
    expired = serializers.SerializerMethodField()

    class Meta:
        model = Plate
        fields = ["number", "kind", "status", "issued_at", "expires_on", "expired"]

    def get_expired(self, plate: Plate) -> bool:
        return plate.is_expired()


class VehicleOutput(serializers.ModelSerializer):
    owner = OwnerOutput()
    plate = serializers.SerializerMethodField()
    station = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = Vehicle
        fields = [
            "id",
            "status",
            "plate",
            "frame_number",
            "motor_number",
            "manufacturer",
            "brand",
            "model_name",
            "colour",
            "production_date",
            "use_type",
            "purchase_date",
            "purchase_price",
            "ccc_certificate_no",
            "conforming",
            "electronic_id",
            "qr_payload",
            "station",
            "registered_at",
            "owner",
        ]

    def get_plate(self, vehicle: Vehicle) -> dict[str, Any] | None:
        plate = current_plate(vehicle)
        return PlateOutput(plate).data if plate else None


class PhotoOutput(serializers.ModelSerializer):
    """`url` is the photo view (asks the policy, audits): the media directory is never public."""

    url = serializers.SerializerMethodField()

    class Meta:
        model = VehiclePhoto
        fields = ["id", "kind", "url", "uploaded_at"]

    def get_url(self, photo: VehiclePhoto) -> str:
        path = reverse("vehicles:photo", args=[photo.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class PolicyOutput(serializers.ModelSerializer):
    scheme = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = InsurancePolicy
        fields = ["number", "scheme", "status", "starts_on", "ends_on", "consent_at"]


class EventOutput(serializers.ModelSerializer):
    clerk = serializers.SlugRelatedField(slug_field="username", read_only=True)
    station = serializers.SlugRelatedField(slug_field="name", read_only=True)
    plate = serializers.SlugRelatedField(slug_field="number", read_only=True)
    changes = serializers.SerializerMethodField()
    consent_agent_id_number = serializers.SerializerMethodField()

    class Meta:
        model = RegistrationEvent
        fields = [
            "id",
            "kind",
            "at",
            "clerk",
            "station",
            "plate",
            "changes",
            "reason",
            "documents",
            "previous_owner_consent",
            "consent_agent_name",
            "consent_agent_id_number",
        ]

    def get_consent_agent_id_number(self, event: RegistrationEvent) -> str:
        value = event.consent_agent_id_number
        return value if not value or self.context.get("full_identity") else mask_id_number(value)

    def get_changes(self, event: RegistrationEvent) -> dict[str, Any]:
        if self.context.get("full_identity"):
            return event.changes
        masked = {}
        for field, (old, new) in event.changes.items():
            if field.endswith("id_number"):
                old, new = (mask_id_number(v) if v else v for v in (old, new))
            elif field.endswith("phone"):
                old, new = (mask_phone(v) if v else v for v in (old, new))
            masked[field] = [old, new]
        return masked


class VehicleDetailOutput(VehicleOutput):
    events = EventOutput(many=True)
    policies = PolicyOutput(many=True)
    photos = PhotoOutput(many=True)

    class Meta(VehicleOutput.Meta):
        fields = [*VehicleOutput.Meta.fields, "events", "policies", "photos"]


class RegistrationOutput(serializers.Serializer):
    vehicle = VehicleOutput()
    plate = PlateOutput()
    policy = PolicyOutput(allow_null=True)
    event_id = serializers.IntegerField(source="event.id")
    certificate_url = serializers.CharField()


class SearchOutput(serializers.Serializer):
    results = VehicleOutput(many=True)
    truncated = serializers.BooleanField()


class TownshipOutput(serializers.ModelSerializer):
    class Meta:
        model = Township
        fields = ["code", "name"]


class StationOutput(serializers.ModelSerializer):
    class Meta:
        model = Station
        fields = ["id", "code", "name", "township", "is_demo"]
