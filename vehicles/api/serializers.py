from typing import Any, ClassVar, cast

from django import forms
from django.db import models
from django.urls import reverse
from rest_framework import serializers

from accounts.models import Station, Township, User
from vehicles.fields import OWNER, VEHICLE, RecordField
from vehicles.forms import SearchForm
from vehicles.identifiers import mask_id_number, mask_phone
from vehicles.models import InsurancePolicy, InsuranceScheme, Owner, Plate, RegistrationEvent, Vehicle, VehiclePhoto
from vehicles.selectors import current_plate
from vehicles.services.registration import (
    CHANGEABLE_OWNER_FIELDS,
    CHANGEABLE_VEHICLE_FIELDS,
    DESCRIPTIVE_VEHICLE_FIELDS,
    DeregisterReason,
    Documents,
    TransferConsent,
)

# --- input ---------------------------------------------------------------------------------------


def record_input_field(spec: RecordField, *, edit: bool = False, **extra: Any) -> serializers.Field:
    """The API's field for a declared record field (vehicles.fields): its stored type, the input
    length, required or not. In an edit every field is optional and an absent one stays as it is."""
    model_field = spec.model_field
    options: dict[str, Any] = {}
    if edit or not spec.required:
        options["required"] = False
    if not edit and spec.default is not models.NOT_PROVIDED:
        options["default"] = spec.default
    options.update(extra)
    if model_field.choices:
        return serializers.ChoiceField(choices=model_field.choices, **options)
    if isinstance(model_field, models.BooleanField):
        return serializers.BooleanField(**options)
    if isinstance(model_field, models.DateField):
        return serializers.DateField(**options)
    if isinstance(model_field, models.DecimalField):
        return serializers.DecimalField(
            max_digits=model_field.max_digits, decimal_places=model_field.decimal_places, **options
        )
    if not spec.required:
        options["allow_blank"] = True
    return serializers.CharField(max_length=spec.input_length, **options)


# An input whose fields are declared record fields, before any the class body declares. (No
# docstring: the schema would give it to every input below as its description.)
class RecordInput(serializers.Serializer):
    record_fields: ClassVar[tuple[RecordField, ...]] = ()
    edit: ClassVar[bool] = False
    help_texts: ClassVar[dict[str, str]] = {}

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = {
            spec.name: record_input_field(spec, edit=self.edit, **self._extra(spec.name)) for spec in self.record_fields
        }
        return {**fields, **super().get_fields()}

    def _extra(self, name: str) -> dict[str, Any]:
        return {"help_text": self.help_texts[name]} if name in self.help_texts else {}


class OwnerInput(RecordInput):
    record_fields = OWNER.fields
    help_texts = {"id_number": "Resident ID (18 chars) or unified social credit code"}


class VehicleInput(RecordInput):
    record_fields = VEHICLE.fields


class RegistrationInput(serializers.Serializer):
    owner = OwnerInput()
    vehicle = VehicleInput()
    insurance_consent = serializers.BooleanField(help_text="The owner agreed to the free theft-loss policy")
    documents = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, default=list, max_length=len(Documents.CODES)
    )


class VehicleChangeFields(RecordInput):
    record_fields = VEHICLE.only(CHANGEABLE_VEHICLE_FIELDS)
    edit = True


class VehicleCorrectionFields(RecordInput):
    record_fields = VEHICLE.only(DESCRIPTIVE_VEHICLE_FIELDS)
    edit = True


class OwnerChangeFields(RecordInput):
    record_fields = OWNER.only(CHANGEABLE_OWNER_FIELDS)
    edit = True


class ChangeInput(serializers.Serializer):
    vehicle = VehicleChangeFields(required=False)
    owner = OwnerChangeFields(required=False)
    reason = serializers.CharField(max_length=200)
    documents = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, default=list, max_length=len(Documents.CODES)
    )


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
    documents = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, default=list, max_length=len(Documents.CODES)
    )


class ReplacePlateInput(serializers.Serializer):
    reason = serializers.CharField(max_length=200)


class DeregisterInput(serializers.Serializer):
    reason = serializers.ChoiceField(choices=[(c, c) for c in DeregisterReason.CHOICES])
    plate_returned = serializers.BooleanField()


def _search_field(name: str, **extra: Any) -> serializers.CharField:
    """A search criterion with the search page's limit (vehicles.forms.SearchForm)."""
    field = cast(forms.CharField, SearchForm.base_fields[name])  # every criterion is typed text
    return serializers.CharField(required=False, max_length=field.max_length, **extra)


class SearchInput(serializers.Serializer):
    plate = _search_field("plate")
    plate_contains = _search_field("plate_contains")
    frame_number = _search_field("frame_number")
    motor_number = _search_field("motor_number")
    id_number = _search_field("id_number")
    phone = _search_field("phone")
    owner_name = _search_field("owner_name")
    imei = _search_field("imei", help_text="IMEI of the terminal fitted to the bike")
    reason = _search_field("reason", default="", help_text="Why the record is looked up (audited)")


class DetailQuery(serializers.Serializer):
    reason = _search_field("reason", default="", help_text="Why the record is opened (audited)")


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
    station: "serializers.SlugRelatedField[Station]" = serializers.SlugRelatedField(slug_field="name", read_only=True)

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
    scheme: "serializers.SlugRelatedField[InsuranceScheme]" = serializers.SlugRelatedField(
        slug_field="name", read_only=True
    )

    class Meta:
        model = InsurancePolicy
        fields = ["number", "scheme", "status", "starts_on", "ends_on", "consent_at"]


class EventOutput(serializers.ModelSerializer):
    clerk: "serializers.SlugRelatedField[User]" = serializers.SlugRelatedField(slug_field="username", read_only=True)
    station: "serializers.SlugRelatedField[Station]" = serializers.SlugRelatedField(slug_field="name", read_only=True)
    plate: "serializers.SlugRelatedField[Plate]" = serializers.SlugRelatedField(slug_field="number", read_only=True)
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
