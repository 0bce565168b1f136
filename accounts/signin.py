"""Signing in: the second factor (TOTP with recovery codes), lockout bookkeeping, the signed-in state.

A sign-in is password first (django.contrib.auth, with django-axes refusing locked-out accounts and
addresses), then, for an account that needs one, a one-time code. Until the code is given the
session is *pending*: SecondFactorMiddleware lets it reach only the sign-in steps. A wrong code is
a failed sign-in like a wrong password: audited and counted by axes towards the lockout.
"""

import secrets
from base64 import b32encode
from dataclasses import dataclass
from typing import Any

import django_otp
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.audit import audit_record, client_ip
from accounts.models import RecoveryCode, RecoveryCodeDevice, User, recovery_code_digest
from accounts.roles import user_roles
from accounts.security_policy import policy_current

# Session keys. PENDING_KEY holds "pending" between the password and the code, "done" after.
PENDING_KEY = "signin_second_factor"
ENROL_KEY = "signin_enrol_device"
RECOVERY_CODES = 10
# The POST field of the one-time code; axes masks it in what it stores of a failed attempt.
CODE_FIELD = "otp_token"


def second_factor_required(user: User) -> bool:
    """Superusers and the roles of the security policy (at least officers, leaders and the
    administrator roles: OTP_REQUIRED_ROLES) must have a second factor."""
    if not user.is_authenticated:
        return False
    return user.is_superuser or bool(user_roles(user) & policy_current().second_factor_roles)


def second_factor_enrolled(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def signin_start(*, request: HttpRequest, user: User) -> None:
    """After the password: mark the session pending when the account needs or has a second factor."""
    needed = second_factor_required(user) or second_factor_enrolled(user)
    request.session[PENDING_KEY] = "pending" if needed else "done"
    if not needed:
        signin_failures_clear(username=user.get_username())


def signin_pending(request: HttpRequest) -> bool:
    session = getattr(request, "session", None)
    return session is not None and session.get(PENDING_KEY) == "pending"


def signin_complete(*, request: HttpRequest, device: Device) -> None:
    """The second factor was given: the session is signed in, the account's failure count starts over."""
    django_otp.login(request, device)
    request.session[PENDING_KEY] = "done"
    request.session.cycle_key()  # a new session id for the fully signed-in session
    signin_failures_clear(username=request.user.get_username())


def signin_failures_clear(*, username: str) -> None:
    """A completed sign-in forgets the account's failures (the address's stay until they cool off,
    so that signing in with one's own account does not reset a guesser's count)."""
    AccessAttempt.objects.filter(username=username).delete()


def lockouts_lift(*, by: str, via: str, username: str | None = None, ip: str | None = None) -> int:
    """Lift lockouts early: delete the failure counts (axes' access attempts) of `username`, of `ip`,
    of both together, or every one when neither is given. Each is audited as security.unlock, as
    the admin's removal is (accounts.admin_security), naming who did it (`by`, the operator) and how
    (`via`). The number lifted."""
    if not by.strip():
        raise ValidationError({"by": _("Name who unlocks: it is recorded in the audit trail with each unlock.")})
    with transaction.atomic():
        attempts = AccessAttempt.objects.select_for_update().order_by("pk")
        if username:
            attempts = attempts.filter(username=username)
        if ip:
            attempts = attempts.filter(ip_address=ip)
        lifted = list(attempts)
        for attempt in lifted:
            audit_record(
                user=None,
                action="security.unlock",
                object_type="user",
                query={"username": attempt.username, "ip": attempt.ip_address, "unlocked_by": by.strip(), "via": via},
            )
        AccessAttempt.objects.filter(pk__in=[attempt.pk for attempt in lifted]).delete()
    return len(lifted)


def signin_failure_record(*, request: HttpRequest, username: str, reason: str) -> bool:
    """A wrong one-time code: the same signal as a wrong password, so axes counts it and the audit
    records it. True when this failure locked the account or address out."""
    user_login_failed.send(
        sender=__name__, credentials={"username": username, "second_factor": reason}, request=request
    )
    return bool(getattr(request, "axes_locked_out", False))


def signin_locked_out(*, request: HttpRequest, username: str) -> bool:
    return not AxesProxyHandler.is_allowed(request, {"username": username})


def lockout_ends(request: HttpRequest) -> Any:
    """When a lockout that starts now ends (the cool-off runs from the latest failure)."""
    cool_off = get_cool_off(request)
    if cool_off is None:
        return None
    started = getattr(request, "axes_attempt_time", None) or timezone.now()
    return started + cool_off


@dataclass(frozen=True)
class Enrolment:
    device: TOTPDevice
    secret: str  # base32, as authenticator apps take it by hand
    config_url: str  # otpauth:// URL, the QR code's content


def totp_enrol_start(*, request: HttpRequest, user: User) -> Enrolment:
    """A new unconfirmed TOTP key for the user (each visit a fresh one: the secret is shown once)."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
    request.session[ENROL_KEY] = device.pk
    return _enrolment(device)


def totp_enrol_current(*, request: HttpRequest, user: User) -> Enrolment | None:
    """The enrolment this session started and has not confirmed yet (to show it again after a wrong code)."""
    device_id = request.session.get(ENROL_KEY)
    device = TOTPDevice.objects.filter(pk=device_id, user=user, confirmed=False).first() if device_id else None
    return _enrolment(device) if device is not None else None


def _enrolment(device: TOTPDevice) -> Enrolment:
    return Enrolment(device=device, secret=b32encode(device.bin_key).decode(), config_url=device.config_url)


def totp_enrol_confirm(*, request: HttpRequest, user: User, token: str) -> list[str] | None:
    """The first code from the new key confirms it; returns the recovery codes (shown once), or None
    when the code is wrong or the enrolment expired."""
    device_id = request.session.get(ENROL_KEY)
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update().filter(pk=device_id, user=user, confirmed=False).first()
            if device_id
            else None
        )
        if device is None or not device.verify_token(token.strip()):
            return None
        TOTPDevice.objects.filter(user=user, confirmed=True).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = recovery_codes_issue(user=user)
    del request.session[ENROL_KEY]
    signin_complete(request=request, device=device)
    audit_record(
        user=user, action="auth.second_factor_enrolled", object_type="user", object_id=user.pk, ip=client_ip(request)
    )
    return codes


def recovery_code_new() -> str:
    """16 random base32 characters (80 bits), shown in groups of four: abcd-efgh-jkmn-pqrs."""
    code = b32encode(secrets.token_bytes(10)).decode().lower()
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def recovery_codes_issue(*, user: User) -> list[str]:
    """Ten new single-use recovery codes, returned once and stored only as digests; the previous
    ones stop working."""
    codes = [recovery_code_new() for _n in range(RECOVERY_CODES)]
    with transaction.atomic():
        RecoveryCodeDevice.objects.filter(user=user).delete()
        device = RecoveryCodeDevice.objects.create(user=user, name="recovery codes", confirmed=True)
        RecoveryCode.objects.bulk_create(RecoveryCode(device=device, digest=recovery_code_digest(c)) for c in codes)
    return codes


def second_factor_verify(*, user: User, token: str) -> Device | None:
    """The device that accepts the code: six digits go to the authenticator, anything else is tried
    as a recovery code (used up when it matches). None for a wrong code."""
    token = "".join(token.split()).lower()
    if not token:
        return None
    model = TOTPDevice if token.isdigit() and len(token) == 6 else RecoveryCodeDevice
    with transaction.atomic():
        for device in model.objects.select_for_update().filter(user=user, confirmed=True):
            if device.verify_token(token):
                return device
    return None


def recovery_codes_left(*, user: User) -> int:
    return RecoveryCode.objects.filter(device__user=user, device__confirmed=True).count()
