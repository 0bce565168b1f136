"""Counter page to fit a terminal to a registered bike (right after registration, or later), and
what proves the fitted terminal's identity: reset its JT/T 808 auth code, issue or remove its
OsmAnd key (shown once, on the page that answers the request: it is never stored in clear)."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.audit import client_ip
from tracking.forms import FitTerminalForm, RemoveTerminalForm, TerminalIdentityForm
from tracking.models import Terminal
from tracking.services import (
    FIT_REFUSED_STATES,
    terminal_auth_code_reset,
    terminal_fit,
    terminal_fit_check,
    terminal_osmand_key_issue,
    terminal_osmand_key_remove,
    terminal_unbind,
)
from vehicles.models import Vehicle

IDENTITY_ACTIONS = ("reset_code", "issue_key", "remove_key")


def _place(form: forms.Form, exc: ValidationError) -> None:
    for field, messages_ in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, messages_)


def _page(
    request: HttpRequest,
    vehicle: Vehicle,
    *,
    fit_form: FitTerminalForm | None = None,
    remove_form: RemoveTerminalForm | None = None,
    identity_form: TerminalIdentityForm | None = None,
    new_key: str = "",
) -> HttpResponse:
    fit_form = fit_form or FitTerminalForm()
    remove_form = remove_form or RemoveTerminalForm()
    identity_form = identity_form or TerminalIdentityForm()
    current = Terminal.objects.filter(vehicle=vehicle).first()
    status = 400 if fit_form.errors or remove_form.errors or identity_form.errors else 200
    context = {
        "vehicle": vehicle,
        "current": current,
        "installations": vehicle.installations.select_related("terminal", "installed_by", "removed_by", "station"),
        "fit_form": fit_form,
        "remove_form": remove_form,
        "identity_form": identity_form,
        "can_change_identity": current is not None
        and request.user.has_perm("tracking.change_terminal_identity", current),
        "new_key": new_key,
        "fit_refused": FIT_REFUSED_STATES.get(vehicle.status),
    }
    return render(request, "tracking/fit.html", context, status=status)


@login_required
@permission_required("vehicles.register_vehicle", raise_exception=True)
@require_http_methods(["GET", "POST"])
def fit(request: HttpRequest, vehicle_id: int) -> HttpResponse:
    vehicle = get_object_or_404(Vehicle.objects.select_related("owner"), pk=vehicle_id)
    current = Terminal.objects.filter(vehicle=vehicle).first()
    new_key = ""
    fit_form = FitTerminalForm(request.POST if request.method == "POST" and "fit" in request.POST else None)
    remove_form = RemoveTerminalForm(request.POST if request.method == "POST" and "remove" in request.POST else None)
    if request.method == "POST" and "fit" in request.POST:
        if fit_form.is_valid():
            try:
                installation, new_key = terminal_fit(
                    clerk=request.user,  # type: ignore[arg-type]
                    vehicle_id=vehicle.pk,
                    ip=client_ip(request),
                    **fit_form.cleaned_data,
                )
            except ValidationError as exc:
                _place(fit_form, exc)
            else:
                imei = installation.terminal.imei
                messages.success(request, _("Terminal %(imei)s fitted.") % {"imei": imei})
                if new_key:  # shown on this answer only, never stored in clear: no redirect
                    return _page(request, vehicle, new_key=new_key)
                return redirect("tracking:fit", vehicle_id=vehicle.pk)
        else:
            # Some fields did not parse: check the ones that did, so that the clerk hears of every
            # problem now (the bike's state, the consent) rather than one round at a time.
            parsed = {name: value for name, value in fit_form.cleaned_data.items() if name != "sim_iccid"}
            problems = terminal_fit_check(vehicle_id=vehicle.pk, **parsed)
            for field, field_messages in problems.by_field.items():
                if field not in fit_form.errors:
                    fit_form.add_error(field if field in fit_form.fields else None, field_messages)
    if request.method == "POST" and "remove" in request.POST and current and remove_form.is_valid():
        try:
            terminal_unbind(
                clerk=request.user,  # type: ignore[arg-type]
                terminal_id=current.pk,
                reason=remove_form.cleaned_data["reason"],
            )
        except ValidationError as exc:
            _place(remove_form, exc)
        else:
            messages.success(request, _("Terminal %(imei)s removed.") % {"imei": current.imei})
            return redirect("tracking:fit", vehicle_id=vehicle.pk)
    return _page(request, vehicle, fit_form=fit_form, remove_form=remove_form)


@login_required
@require_POST
def identity(request: HttpRequest, vehicle_id: int) -> HttpResponse:
    """Reset the fitted JT/T 808 terminal's auth code, or issue or remove the OsmAnd terminal's key."""
    vehicle = get_object_or_404(Vehicle.objects.select_related("owner"), pk=vehicle_id)
    terminal = Terminal.objects.filter(vehicle=vehicle).first()
    if not request.user.has_perm("tracking.change_terminal_identity", terminal):
        raise PermissionDenied
    form = TerminalIdentityForm(request.POST)
    valid = form.is_valid()
    action = next((name for name in IDENTITY_ACTIONS if name in request.POST), "")
    if terminal is None:
        form.add_error(None, _("The bike has no terminal."))
    elif not action:
        form.add_error(None, _("Choose what to do: reset the auth code, issue a key or remove the key."))
    if not valid or form.errors or terminal is None:
        return _page(request, vehicle, identity_form=form)
    arguments = {
        "clerk": request.user,
        "terminal_id": terminal.pk,
        "reason": form.cleaned_data["reason"],
        "ip": client_ip(request),
    }
    try:
        if action == "reset_code":
            terminal_auth_code_reset(**arguments)
            messages.success(request, _("The auth code is reset: the terminal's next register gets a new one."))
        elif action == "issue_key":
            key = terminal_osmand_key_issue(**arguments)
            return _page(request, vehicle, new_key=key)  # shown on this answer only: no redirect
        else:
            terminal_osmand_key_remove(**arguments)
            messages.success(request, _("The terminal no longer needs a key."))
    except ValidationError as exc:
        _place(form, exc)
        return _page(request, vehicle, identity_form=form)
    return redirect("tracking:fit", vehicle_id=vehicle.pk)
