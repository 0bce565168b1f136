"""The sign-in pages: password, then the one-time code (or its enrolment), and the lockout answer."""

from datetime import datetime
from typing import Any

import segno
from axes.helpers import get_cool_off
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect, JsonResponse
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from accounts.audit import audit_record
from accounts.models import RecoveryCodeDevice, User
from accounts.signin import (
    CODE_FIELD,
    lockout_ends,
    recovery_codes_issue,
    recovery_codes_left,
    second_factor_enrolled,
    second_factor_required,
    second_factor_verify,
    signin_complete,
    signin_failure_record,
    signin_locked_out,
    signin_pending,
    totp_enrol_confirm,
    totp_enrol_current,
    totp_enrol_start,
)


class CodeForm(forms.Form):
    otp_token = forms.CharField(
        label=gettext_lazy("One-time code"),
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}),
        help_text=gettext_lazy("The six digits your authenticator app shows now, or one of your recovery codes."),
    )


class EnrolForm(CodeForm):
    otp_token = forms.CharField(
        label=gettext_lazy("One-time code"),
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}),
        help_text=gettext_lazy("The six digits the app shows for this system after you added the key."),
    )


class SignInView(auth_views.LoginView):
    """Password first; an account that needs a second factor goes on to the code step."""

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        if signin_pending(self.request):
            return HttpResponseRedirect(_step_url("second-factor", self.get_success_url()))
        return response


def _step_url(name: str, next_url: str) -> str:
    return f"{reverse(name)}?{urlencode({REDIRECT_FIELD_NAME: next_url})}"


def _next_url(request: HttpRequest) -> str:
    candidate = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME) or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _qr_svg(content: str) -> str:
    # The 4-module quiet zone of ISO/IEC 18004; with a unit segno adds a viewBox, so a narrow screen
    # scales the code down whole instead of cutting modules off.
    return segno.make(content, error="m").svg_inline(
        scale=4, unit="px", border=4, svgclass="qr", title=_("Scan with your authenticator app")
    )


@sensitive_post_parameters(CODE_FIELD)
@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def second_factor(request: HttpRequest) -> HttpResponseBase:
    """The code step of signing in (TOTP code or a recovery code)."""
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    next_url = _next_url(request)
    if not signin_pending(request):
        return HttpResponseRedirect(next_url)
    if not second_factor_enrolled(user):
        return HttpResponseRedirect(_step_url("second-factor-enrol", next_url))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        username = user.get_username()
        if signin_locked_out(request=request, username=username):
            return _end_locked_session(request, username)
        device = second_factor_verify(user=user, token=form.cleaned_data[CODE_FIELD])
        if device is not None:
            _signin_complete(request, user, device)
            return HttpResponseRedirect(next_url)
        if signin_failure_record(request=request, username=username, reason="wrong one-time code"):
            return _end_locked_session(request, username)
        form.add_error(CODE_FIELD, _("That code is wrong or was already used. Enter the code your app shows now."))
    return render(request, "registration/second_factor.html", {"form": form, "next": next_url})


def _signin_complete(request: HttpRequest, user: User, device: Any) -> None:
    """The code was right: the sign-in is complete, audited with how (and the recovery codes left)."""
    signin_complete(request=request, device=device)
    recovery = isinstance(device, RecoveryCodeDevice)
    query = {
        "method": "recovery code" if recovery else "authenticator",
        **({"recovery_codes_left": recovery_codes_left(user=user)} if recovery else {}),
    }
    audit_record(request=request, action="auth.second_factor", object_type="user", object_id=user.pk, query=query)


@sensitive_post_parameters(CODE_FIELD)
@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def second_factor_enrol(request: HttpRequest) -> HttpResponseBase:
    """Set up an authenticator app: a new key as QR code and text (shown this once), confirmed by
    its first code; then ten recovery codes, also shown once."""
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    next_url = _next_url(request)
    if second_factor_enrolled(user):
        return _enrolled_already(request, next_url)
    form = EnrolForm(request.POST or None)
    enrolment = None
    if request.method == "POST":
        enrolment = totp_enrol_current(request=request, user=user)
        if enrolment is None:
            return HttpResponseRedirect(_step_url("second-factor-enrol", next_url))
        if form.is_valid() and (answer := _enrol_confirm(request, user, form, next_url)) is not None:
            return answer
    if enrolment is None:
        enrolment = totp_enrol_start(request=request, user=user)
    context = {"form": form, "next": next_url, "secret": enrolment.secret, "qr_svg": _qr_svg(enrolment.config_url)}
    context["required"] = second_factor_required(user)
    return render(request, "registration/second_factor_enrol.html", context)


def _enrolled_already(request: HttpRequest, next_url: str) -> HttpResponseBase:
    """Never replaced from a session (which may be someone else's at an unlocked screen): a lost
    phone is reset by an administrator deleting the device; the next sign-in enrols anew."""
    if signin_pending(request):
        return HttpResponseRedirect(_step_url("second-factor", next_url))
    messages.info(request, _("Your authenticator app is set up. To replace it, ask an administrator to reset it."))
    return HttpResponseRedirect(next_url)


def _enrol_confirm(request: HttpRequest, user: User, form: EnrolForm, next_url: str) -> HttpResponseBase | None:
    """The new key confirmed by its first code: the recovery codes page (a lockout ends the session);
    None with the wrong code at its field."""
    username = user.get_username()
    if signin_locked_out(request=request, username=username):
        return _end_locked_session(request, username)
    codes = totp_enrol_confirm(request=request, user=user, token=form.cleaned_data[CODE_FIELD])
    if codes is not None:
        return render(request, "registration/recovery_codes.html", {"codes": codes, "next": next_url})
    if signin_failure_record(request=request, username=username, reason="wrong one-time code (enrolment)"):
        return _end_locked_session(request, username)
    form.add_error(CODE_FIELD, _("That code does not match the new key. Enter the code your app shows now."))
    return None


@sensitive_post_parameters(CODE_FIELD)
@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def recovery_codes_renew(request: HttpRequest) -> HttpResponseBase:
    """Ten new recovery codes (the old ones stop working), for a signed-in account that confirms
    with its authenticator's current code."""
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not second_factor_enrolled(user):
        return HttpResponseRedirect(_step_url("second-factor-enrol", request.get_full_path()))
    form = EnrolForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        username = user.get_username()
        if signin_locked_out(request=request, username=username):
            return _end_locked_session(request, username)
        device = second_factor_verify(user=user, token=form.cleaned_data[CODE_FIELD])
        if device is not None and device.__class__.__name__ == "TOTPDevice":
            codes = recovery_codes_issue(user=user)
            audit_record(request=request, action="auth.recovery_codes_renewed", object_type="user", object_id=user.pk)
            return render(request, "registration/recovery_codes.html", {"codes": codes, "next": _next_url(request)})
        if signin_failure_record(request=request, username=username, reason="wrong one-time code (new recovery codes)"):
            return _end_locked_session(request, username)
        form.add_error(CODE_FIELD, _("That code is wrong or was already used. Enter the code your app shows now."))
    return render(request, "registration/recovery_codes_renew.html", {"form": form, "next": _next_url(request)})


def _end_locked_session(request: HttpRequest, username: str) -> HttpResponseBase:
    """A lockout during the code step ends the half-signed-in session: the next try starts again
    at the password, which axes refuses until the cool-off has passed."""
    request.session.flush()
    return lockout_response(request, None, {"username": username})


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: 429 with when to try again, as a page or as JSON for API clients."""
    until: datetime | None = lockout_ends(request)
    cool_off = get_cool_off(request)
    minutes = cool_off.total_seconds() // 60 if cool_off else None
    message = _(
        "Too many failed sign-in attempts for this account or from this address. Signing in is blocked "
        "until %(until)s (%(minutes)d minutes after the last attempt)."
    ) % {"until": timezone.localtime(until).strftime("%Y-%m-%d %H:%M") if until else "-", "minutes": minutes or 0}
    if request.path_info.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        response: HttpResponse = JsonResponse(
            {"detail": message, "code": "locked_out", "retry_after": until.isoformat() if until else None}, status=429
        )
    else:
        response = render(request, "registration/locked_out.html", {"message": message, "until": until}, status=429)
    if until is not None:
        response["Retry-After"] = str(max(0, int((until - timezone.now()).total_seconds())))
    return response
