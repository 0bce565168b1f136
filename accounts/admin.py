from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, Permission
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase
from django.utils.translation import gettext_lazy as _
from django.views.i18n import JavaScriptCatalog

from accounts import (
    admin_security,  # noqa: F401  (registers the security administrator's pages)
    labels,
    roles,
)
from accounts.models import AuditEntry, RegistrationPoint, Station, Township, User

# The admin's own titles, in the language of the page (Django's say "Django 管理").
admin.site.site_header = _("Electric Bicycle Registration System")
admin.site.site_title = _("Electric Bicycle Registration System")
admin.site.index_title = _("System administration")


def _admin_javascript_catalog(request: HttpRequest, extra_context: Any = None) -> HttpResponseBase:
    """The admin's JavaScript catalogue plus our own (accounts/locale/*/djangojs.po), which has the
    strings of the two-box selector of groups and permissions that Django's zh_Hans one lacks."""
    return JavaScriptCatalog.as_view(packages=["django.contrib.admin", "accounts"])(request)


admin.site.i18n_javascript = _admin_javascript_catalog  # type: ignore[method-assign,assignment]  # replaces the site's view


class PermissionChoiceField(forms.ModelMultipleChoiceField):
    """Permissions named in the language of the page (their stored names are English)."""

    def label_from_instance(self, obj: Permission) -> str:
        return labels.permission_label(obj)


class PermissionNamesAdmin(admin.ModelAdmin):
    """Lists and picks permissions by their translated names (fields `permissions`, `user_permissions`)."""

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name in {"permissions", "user_permissions"}:
            kwargs["form_class"] = PermissionChoiceField
            kwargs.setdefault("queryset", Permission.objects.select_related("content_type"))
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(User)
class UserAdmin(PermissionNamesAdmin, BaseUserAdmin):
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
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
        return (*fields, *self.superuser_only_fields, "permission_names")

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser or obj is None:
            return fieldsets
        # Shown, not set: by their translated names (Django would print the stored English ones).
        return [
            (name, {**opts, "fields": [("permission_names" if f == "user_permissions" else f) for f in opts["fields"]]})
            for name, opts in fieldsets
        ]

    @admin.display(description=_("user permissions"))
    def permission_names(self, user: User) -> str:
        names = [labels.permission_label(p) for p in user.user_permissions.select_related("content_type")]
        return "; ".join(names) or "—"

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


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(PermissionNamesAdmin, BaseGroupAdmin):  # type: ignore[misc]  # stubs: only GroupAdmin's `request` is optional
    pass


@admin.register(Township)
class TownshipAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "county_code")
    search_fields = ("code", "name")


class RegistrationPointInline(admin.TabularInline):
    model = RegistrationPoint
    extra = 0


@admin.register(Station)
class StationAdmin(admin.ModelAdmin):
    # Webhooks are https only (cases.alerts.webhooks): an address typed without a scheme means https.
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


class _LabelledCodeFilter(admin.SimpleListFilter):
    """Filter on a code column, each choice named as people read it (accounts.labels)."""

    parameter_name: str
    label_of: Any = None

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        codes = model_admin.get_queryset(request).order_by().values_list(self.parameter_name, flat=True).distinct()
        return sorted(((code, self.label_of(code)) for code in codes if code), key=lambda choice: choice[1])

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(**{self.parameter_name: value}) if value else queryset


class AuditActionFilter(_LabelledCodeFilter):
    title = _("action")
    parameter_name = "action"
    label_of = staticmethod(labels.audit_action_label)


class AuditObjectTypeFilter(_LabelledCodeFilter):
    title = _("object type")
    parameter_name = "object_type"
    label_of = staticmethod(labels.object_type_label)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "user", "action_name", "object_name", "object_id", "basis", "result_count", "reason", "ip")
    list_filter = (AuditActionFilter, AuditObjectTypeFilter)
    fields = ("at", "user", "action_name", "object_name", "object_id", "basis", "query", "result_count", "reason", "ip")
    readonly_fields = fields
    search_fields = ("user__username", "object_id", "reason")
    date_hierarchy = "at"

    @admin.display(description=_("action"), ordering="action")
    def action_name(self, entry: AuditEntry) -> str:
        return labels.audit_action_label(entry.action)

    @admin.display(description=_("object type"), ordering="object_type")
    def object_name(self, entry: AuditEntry) -> str:
        return labels.object_type_label(entry.object_type)

    @admin.display(description=_("Legal basis"))
    def basis(self, entry: AuditEntry) -> str:
        basis = entry.query.get("basis") if isinstance(entry.query, dict) else None
        return labels.basis_label(basis) or "—"
