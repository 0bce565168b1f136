"""The security administrator's admin pages: lockouts and second-factor devices, every removal audited.

The secadmin role (三员分立) lifts a lockout by deleting its access attempt and resets a lost phone
by deleting the account's authenticator (the next sign-in enrols anew). The libraries' own admin
classes are kept and extended (the recovery codes' admin is this project's, as are the codes' model)
so that each such removal leaves an audit row naming what and whose.
The policy itself (lockout, second factor, retention) is set on /security/policy/ (accounts.policy_views).
"""

from typing import Any

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.apps import apps
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken

from accounts.audit import audit_record
from accounts.models import RecoveryCodeDevice
from accounts.security_policy import policy_current


class AuditedRemoval(admin.ModelAdmin):
    """Put before a library's admin class: each removal is audited as `removal_action`, with
    `removal_query(obj)` naming what and whose."""

    removal_action = ""

    def removal_query(self, obj: Any) -> dict[str, Any]:
        raise NotImplementedError

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self._audit(request, [obj])
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._audit(request, list(queryset))
        super().delete_queryset(request, queryset)

    def _audit(self, request: HttpRequest, objects: list[Any]) -> None:
        for obj in objects:
            audit_record(
                action=self.removal_action,
                object_type="user",
                query=self.removal_query(obj),
                request=request,
            )


class LockoutAdmin(AuditedRemoval, AccessAttemptAdmin):
    # axes shows its own lockout column only for a fixed limit; the limit here is the policy's.
    list_display = [*AccessAttemptAdmin.list_display, "locked_out"]
    removal_action = "security.unlock"

    def removal_query(self, obj: AccessAttempt) -> dict[str, Any]:
        return {"username": obj.username, "ip": obj.ip_address}

    @admin.display(description=_("locked out"), boolean=True)
    def locked_out(self, obj: AccessAttempt) -> bool:
        return obj.failures_since_start >= policy_current().login_failure_limit


def _column(name: str, title: Any, **options: Any) -> Any:
    """A list column of a library's field, titled in the language of the page (the library's own
    field names are English only and cannot be translated where they are declared)."""

    def show(obj: Any) -> Any:
        return getattr(obj, name)

    show.__name__ = name
    return admin.display(description=title, ordering=name, **options)(show)


def _titled(filter_class: type, title: Any) -> type:
    """A list filter titled in the language of the page (see _column)."""

    class Titled(filter_class):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.title = title

    return Titled


class AuthenticatorAdmin(AuditedRemoval, TOTPDeviceAdmin):
    list_display = [
        _column("user", _("user")),
        _column("name", _("name")),
        _column("created_at", _("created at")),
        _column("last_used_at", _("last used at")),
        _column("confirmed", _("confirmed"), boolean=True),
    ]
    list_filter = [
        ("created_at", _titled(admin.DateFieldListFilter, _("created at"))),
        ("last_used_at", _titled(admin.DateFieldListFilter, _("last used at"))),
        ("confirmed", _titled(admin.BooleanFieldListFilter, _("confirmed"))),
    ]
    search_help_text = _("Search by username or e-mail address")
    removal_action = "security.device_reset"

    def removal_query(self, obj: TOTPDevice) -> dict[str, Any]:
        return {"username": obj.user.username, "device": "totp"}


class RecoveryCodesAdmin(AuditedRemoval):
    """Whose recovery codes exist and how many are left; never a code or its digest. Codes are
    issued only to their account (accounts.signin), so none are added here."""

    list_display = [
        "user",
        "codes_left",
        _column("created_at", _("created at")),
        _column("last_used_at", _("last used at")),
        _column("confirmed", _("confirmed"), boolean=True),
    ]
    list_filter = [
        ("created_at", _titled(admin.DateFieldListFilter, _("created at"))),
        ("last_used_at", _titled(admin.DateFieldListFilter, _("last used at"))),
    ]
    search_fields = ["user__username"]
    fields = readonly_fields = ("user", "name", "confirmed", "codes_left", "created_at", "last_used_at")
    removal_action = "security.device_reset"

    def removal_query(self, obj: RecoveryCodeDevice) -> dict[str, Any]:
        return {"username": obj.user.username, "device": "recovery_codes"}

    @admin.display(description=_("codes left"), ordering="codes_unused")
    def codes_left(self, obj: RecoveryCodeDevice) -> int:
        return obj.codes_unused

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("user").annotate(codes_unused=Count("codes"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# The libraries' apps and the models they name only in English, named for the admin (its index,
# titles and breadcrumbs). Only the names shown change: migrations read Meta as declared.
for app_label, app_name in (
    ("axes", _("Sign-in lockouts")),
    ("otp_totp", _("Authenticator apps")),
    ("knox", _("API tokens")),
):
    apps.get_app_config(app_label).verbose_name = app_name
TOTPDevice._meta.verbose_name = _("authenticator")
TOTPDevice._meta.verbose_name_plural = _("authenticators")
AuthToken._meta.verbose_name = _("API token")
AuthToken._meta.verbose_name_plural = _("API tokens")

for model, model_admin in (
    (AccessAttempt, LockoutAdmin),
    (TOTPDevice, AuthenticatorAdmin),
    (RecoveryCodeDevice, RecoveryCodesAdmin),
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
