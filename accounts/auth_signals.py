"""Sign-in events into the audit trail: every sign-in, failure, lockout and sign-out (MLPS level 3).

Connected in AccountsConfig.ready. Failures carry the username that was tried, never the password
(django.contrib.auth cleanses the credentials before it sends user_login_failed).
"""

from typing import Any

from axes.helpers import get_failure_limit
from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.audit import audit_record, client_ip
from accounts.signin import signin_pending, signin_start

USERNAME_MAX = 40  # AuditEntry.object_id


def _tried(username: Any) -> str:
    return str(username or "")[:USERNAME_MAX]


@receiver(user_logged_in, dispatch_uid="accounts.audit_login")
def audit_login(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    signin_start(request=request, user=user)
    audit_record(
        user=user,
        action="auth.login",
        object_type="user",
        object_id=user.pk,
        query={"second_factor": "pending" if signin_pending(request) else "not required"},
        ip=client_ip(request),
    )


@receiver(user_login_failed, dispatch_uid="accounts.audit_login_failed")
def audit_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    username = _tried(credentials.get("username"))
    reason = credentials.get("second_factor") or "wrong username or password"
    # axes (its receiver runs first) counted this failure; past the limit the attempt was refused
    # before the password was even checked.
    if getattr(request, "axes_failures_since_start", 0) > get_failure_limit(request, credentials):
        reason = "refused: locked out"
    audit_record(
        user=None,
        action="auth.login_failed",
        object_type="user",
        object_id=username,
        query={"username": username},
        reason=str(reason),
        ip=client_ip(request),
    )


@receiver(user_locked_out, dispatch_uid="accounts.audit_lockout")
def audit_lockout(sender: Any, request: HttpRequest, username: Any, ip_address: Any = None, **kwargs: Any) -> None:
    audit_record(
        user=None,
        action="auth.lockout",
        object_type="user",
        object_id=_tried(username),
        query={"username": _tried(username)},
        ip=client_ip(request),
    )


@receiver(user_logged_out, dispatch_uid="accounts.audit_logout")
def audit_logout(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    audit_record(user=user, action="auth.logout", object_type="user", object_id=user.pk, ip=client_ip(request))
