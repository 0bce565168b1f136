from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts import (
    admin_security,  # noqa: F401  (registers the security administrator's pages)
    roles,
)
from accounts.models import AuditEntry, RegistrationPoint, Station, Township, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        (_("Station"), {"fields": ("station", "registration_point", "phone")}),
    )
    list_display = ("username", "first_name", "last_name", "station", "is_active", "is_staff")
    list_filter = ("groups", "station", "is_active", "is_staff")

    # Fields only a superuser may set, on any account including its own: otherwise an account
    # manager could make itself (or a friend) superuser, open the admin to anyone, or hand out
    # permissions past the roles (roles are granted through groups, accounts.roles).
    superuser_only_fields = ("is_superuser", "is_staff", "user_permissions")

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return fields
        return (*fields, *self.superuser_only_fields)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # A superuser's account (the break-glass account) is changed by a superuser only.
        if obj is not None and getattr(obj, "is_superuser", False) and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # The administrator roles (三员分立) are granted only by `manage.py admin_role`, never here.
        if db_field.name == "groups":
            kwargs["queryset"] = Group.objects.exclude(name__in=roles.ADMINISTRATOR_ROLES)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(Township)
class TownshipAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "county_code")
    search_fields = ("code", "name")


class RegistrationPointInline(admin.TabularInline):
    model = RegistrationPoint
    extra = 0


@admin.register(Station)
class StationAdmin(admin.ModelAdmin):
    # Webhooks are https only (cases.webhooks): an address typed without a scheme means https.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("code", "name", "township", "phone", "is_demo")
    list_filter = ("is_demo",)
    search_fields = ("code", "name")
    inlines = [RegistrationPointInline]


@admin.register(RegistrationPoint)
class RegistrationPointAdmin(admin.ModelAdmin):
    list_display = ("name", "station", "kind")
    list_filter = ("kind", "station")


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records that only services may write (history, audit): visible, never editable here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "user", "action", "object_type", "object_id", "result_count", "reason", "ip")
    list_filter = ("action", "object_type")
    search_fields = ("user__username", "object_id", "reason")
    date_hierarchy = "at"
