"""The security administrator's admin pages: lockouts and second-factor devices, every removal audited.

The secadmin role (三员分立) lifts a lockout by deleting its access attempt and resets a lost phone
by deleting the account's authenticator (the next sign-in enrols anew). The libraries' own admin
classes are kept and extended so that each such removal leaves an audit row naming what and whose.
"""

from typing import Any

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django_otp.plugins.otp_static.admin import StaticDeviceAdmin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.audit import audit_record, client_ip


def _audited_removal(action: str, describe: Any) -> type:
    class AuditedRemoval:
        def delete_model(self, request: HttpRequest, obj: Any) -> None:
            self._audit(request, [obj])
            super().delete_model(request, obj)  # type: ignore[misc]

        def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
            self._audit(request, list(queryset))
            super().delete_queryset(request, queryset)  # type: ignore[misc]

        def _audit(self, request: HttpRequest, objects: list[Any]) -> None:
            for obj in objects:
                audit_record(
                    user=request.user,  # type: ignore[arg-type]
                    action=action,
                    object_type="user",
                    query=describe(obj),
                    ip=client_ip(request),
                )

    return AuditedRemoval


class LockoutAdmin(
    _audited_removal("security.unlock", lambda a: {"username": a.username, "ip": a.ip_address}), AccessAttemptAdmin
):  # type: ignore[misc]
    pass


class AuthenticatorAdmin(
    _audited_removal("security.device_reset", lambda d: {"username": d.user.username, "device": "totp"}),
    TOTPDeviceAdmin,
):  # type: ignore[misc]
    pass


class RecoveryCodesAdmin(
    _audited_removal("security.device_reset", lambda d: {"username": d.user.username, "device": "recovery_codes"}),
    StaticDeviceAdmin,
):  # type: ignore[misc]
    pass


for model, model_admin in (
    (AccessAttempt, LockoutAdmin),
    (TOTPDevice, AuthenticatorAdmin),
    (StaticDevice, RecoveryCodesAdmin),
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
