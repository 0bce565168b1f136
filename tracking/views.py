"""Counter page to fit a terminal to a registered bike (right after registration, or later), and
what proves the fitted terminal's identity: reset its JT/T 808 auth code, issue or remove its
OsmAnd key (shown once, on the page that answers the request: it is never stored in clear)."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.audit import client_ip
from accounts.request_types import AuthedHttpRequest
from ebike_registry.forms import form_attempt, place_problems, problem_dict
from ebike_registry.problems import Problems
from tracking.forms import FitTerminalForm, RemoveTerminalForm, TerminalIdentityForm
from tracking.models import Terminal, TerminalInstallation
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
def fit(request: AuthedHttpRequest, vehicle_id: int) -> HttpResponse:
    """Fit a terminal to the bike, or remove the one fitted."""
    vehicle = get_object_or_404(Vehicle.objects.select_related("owner"), pk=vehicle_id)
    current = Terminal.objects.filter(vehicle=vehicle).first()
    posted = request.POST if request.method == "POST" else {}
    fit_form = FitTerminalForm(request.POST if "fit" in posted else None)
    remove_form = RemoveTerminalForm(request.POST if "remove" in posted else None)
    if "fit" in posted and (fitted := _fit(request, vehicle, fit_form)) is not None:
        installation, new_key = fitted
        messages.success(request, _("Terminal %(imei)s fitted.") % {"imei": installation.terminal.imei})
        if new_key:  # shown on this answer only, never stored in clear: no redirect
            return _page(request, vehicle, new_key=new_key)
        return redirect("tracking:fit", vehicle_id=vehicle.pk)
    if "remove" in posted and current and remove_form.is_valid() and _remove(request, current, remove_form):
        messages.success(request, _("Terminal %(imei)s removed.") % {"imei": current.imei})
        return redirect("tracking:fit", vehicle_id=vehicle.pk)
    return _page(request, vehicle, fit_form=fit_form, remove_form=remove_form)


def _fit(
    request: AuthedHttpRequest, vehicle: Vehicle, form: FitTerminalForm
) -> tuple[TerminalInstallation, str] | None:
    """Fit the terminal the form names. When some field did not parse, the ones that did are checked
    too, so that the clerk hears of every problem now (the bike's state, the consent) rather than one
    round at a time; when all parse, the write's own check speaks."""
    parsed = form.is_valid()
    return form_attempt(
        page=form,
        check=lambda: (
            Problems()
            if parsed
            else terminal_fit_check(
                vehicle_id=vehicle.pk,
                **{name: value for name, value in form.cleaned_data.items() if name != "sim_iccid"},
            )
        ),
        write=lambda: terminal_fit(
            clerk=request.user,
            vehicle_id=vehicle.pk,
            ip=client_ip(request),
            **form.cleaned_data,
        ),
    )


def _remove(request: AuthedHttpRequest, current: Terminal, form: RemoveTerminalForm) -> bool:
    try:
        terminal_unbind(
            clerk=request.user,
            terminal_id=current.pk,
            reason=form.cleaned_data["reason"],
        )
    except ValidationError as exc:
        place_problems(problem_dict(exc), page=form)
        return False
    return True


@login_required
@require_POST
def identity(request: AuthedHttpRequest, vehicle_id: int) -> HttpResponse:
    """Reset the fitted JT/T 808 terminal's auth code, or issue or remove the OsmAnd terminal's key."""
    vehicle = get_object_or_404(Vehicle.objects.select_related("owner"), pk=vehicle_id)
    terminal = Terminal.objects.filter(vehicle=vehicle).first()
    if not request.user.has_perm("tracking.change_terminal_identity", terminal):
        raise PermissionDenied
    form = TerminalIdentityForm(request.POST)
    action = next((name for name in IDENTITY_ACTIONS if name in request.POST), "")
    if not _identity_parse(form, terminal, action):
        return _page(request, vehicle, identity_form=form)
    try:
        key = _identity_change(request, terminal, action, form.cleaned_data["reason"])  # type: ignore[arg-type]  # _identity_parse: a terminal
    except ValidationError as exc:
        place_problems(problem_dict(exc), page=form)
        return _page(request, vehicle, identity_form=form)
    if key:
        return _page(request, vehicle, new_key=key)  # shown on this answer only: no redirect
    return redirect("tracking:fit", vehicle_id=vehicle.pk)


def _identity_parse(form: TerminalIdentityForm, terminal: Terminal | None, action: str) -> bool:
    """Whether the request can go ahead: the form parses, the bike has a terminal, an action is chosen."""
    valid = form.is_valid()
    if terminal is None:
        form.add_error(None, _("The bike has no terminal."))
    elif not action:
        form.add_error(None, _("Choose what to do: reset the auth code, issue a key or remove the key."))
    return valid and not form.errors and terminal is not None


def _identity_change(request: AuthedHttpRequest, terminal: Terminal, action: str, reason: str) -> str:
    """Carry out the action (its success message queued); the OsmAnd key issued, or ""."""
    arguments: dict[str, Any] = {
        "clerk": request.user,
        "terminal_id": terminal.pk,
        "reason": reason,
        "ip": client_ip(request),
    }
    if action == "reset_code":
        terminal_auth_code_reset(**arguments)
        messages.success(request, _("The auth code is reset: the terminal's next register gets a new one."))
    elif action == "issue_key":
        return terminal_osmand_key_issue(**arguments)
    else:
        terminal_osmand_key_remove(**arguments)
        messages.success(request, _("The terminal no longer needs a key."))
    return ""
