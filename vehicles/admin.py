from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms import ModelForm
from django.utils.translation import gettext_lazy as _

from accounts.admin import ReadOnlyAdmin
from accounts.admin_audit import PersonalDataAdmin
from vehicles.identifiers import mask_id_number, mask_phone
from vehicles.models import (
    InsurancePolicy,
    InsuranceScheme,
    Owner,
    Plate,
    PlateSeries,
    RegistrationEvent,
    Vehicle,
    VehiclePhoto,
)
from vehicles.services.insurance import payout_bands_problem

# Filing records change only through the counter services (which append history events), so the
# admin shows them read-only; reference data (series, schemes) is edited here.


class RegistrationEventInline(admin.TabularInline):
    model = RegistrationEvent
    extra = 0
    can_delete = False
    fields = ("at", "kind", "clerk", "station", "plate", "changes", "reason")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class PlateInline(admin.TabularInline):
    model = Plate
    extra = 0
    can_delete = False
    fields = ("number", "kind", "status", "issued_at", "expires_on", "ended_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Vehicle)
class VehicleAdmin(PersonalDataAdmin):
    audit_object_type = "vehicle"
    list_display = ("frame_number", "brand", "model_name", "colour", "owner", "station", "status", "registered_at")
    list_filter = ("status", "use_type", "conforming", "station")
    search_fields = ("=frame_number", "=motor_number", "=owner__id_number")
    list_select_related = ("owner", "station")
    inlines = [PlateInline, RegistrationEventInline]
    show_full_result_count = False


@admin.register(Owner)
class OwnerAdmin(PersonalDataAdmin):
    audit_object_type = "owner"
    list_display = ("name", "kind", "township", "created_at")
    list_filter = ("kind", "township")
    search_fields = ("=id_number", "=phone", "name")
    show_full_result_count = False
    fields = (
        "kind",
        "name",
        "masked_id_number",
        "agent_name",
        "masked_agent_id_number",
        "masked_phone",
        "emergency_contact_name",
        "masked_emergency_contact_phone",
        "address",
        "township",
        "user",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description=_("ID number"))
    def masked_id_number(self, owner: Owner) -> str:
        return mask_id_number(owner.id_number)

    @admin.display(description=_("agent ID number"))
    def masked_agent_id_number(self, owner: Owner) -> str:
        return mask_id_number(owner.agent_id_number) if owner.agent_id_number else ""

    @admin.display(description=_("phone"))
    def masked_phone(self, owner: Owner) -> str:
        return mask_phone(owner.phone)

    @admin.display(description=_("emergency contact phone"))
    def masked_emergency_contact_phone(self, owner: Owner) -> str:
        return mask_phone(owner.emergency_contact_phone) if owner.emergency_contact_phone else ""


@admin.register(Plate)
class PlateAdmin(ReadOnlyAdmin):
    list_display = ("number", "kind", "status", "vehicle", "issued_at", "expires_on")
    list_filter = ("kind", "status")
    search_fields = ("=number",)
    raw_id_fields = ("vehicle",)
    show_full_result_count = False


@admin.register(RegistrationEvent)
class RegistrationEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "kind", "vehicle", "clerk", "station")
    list_filter = ("kind", "station")
    raw_id_fields = ("vehicle",)
    show_full_result_count = False


@admin.register(InsurancePolicy)
class InsurancePolicyAdmin(ReadOnlyAdmin):
    list_display = ("number", "vehicle", "owner", "scheme", "status", "starts_on", "ends_on")
    list_filter = ("status", "scheme")
    search_fields = ("=number",)
    show_full_result_count = False


@admin.register(VehiclePhoto)
class VehiclePhotoAdmin(admin.ModelAdmin):
    list_display = ("vehicle", "kind", "uploaded_at")
    raw_id_fields = ("vehicle",)


@admin.register(PlateSeries)
class PlateSeriesAdmin(admin.ModelAdmin):
    list_display = ("prefix", "station", "kind", "first_number", "last_number", "next_number", "active")
    list_filter = ("kind", "active", "station")
    readonly_fields = ("next_number",)

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.next_number = obj.first_number
        super().save_model(request, obj, form, change)


class InsuranceSchemeForm(ModelForm):
    class Meta:
        model = InsuranceScheme
        fields = [
            "code",
            "name",
            "insurer",
            "term_months",
            "waiting_days",
            "deductible_percent",
            "payout_bands",
            "is_default",
            "active",
        ]

    def clean_payout_bands(self) -> object:
        bands = self.cleaned_data["payout_bands"]
        problem = payout_bands_problem(bands)
        if problem:
            raise ValidationError(problem)
        return bands


@admin.register(InsuranceScheme)
class InsuranceSchemeAdmin(admin.ModelAdmin):
    form = InsuranceSchemeForm
    list_display = ("code", "name", "term_months", "waiting_days", "is_default", "active")
