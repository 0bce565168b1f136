"""Counter page to fit a terminal to a registered bike (right after registration, or later)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from tracking.forms import FitTerminalForm, RemoveTerminalForm
from tracking.models import Terminal
from tracking.services import terminal_bind, terminal_register, terminal_unbind
from vehicles.models import Vehicle

FORM_FIELDS = {"imei", "protocol", "phone", "sim_iccid", "source", "owner_consent"}


def _place(form: FitTerminalForm | RemoveTerminalForm, exc: ValidationError) -> None:
    for field, messages_ in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, messages_)


@login_required
@permission_required("vehicles.register_vehicle", raise_exception=True)
@require_http_methods(["GET", "POST"])
def fit(request: HttpRequest, vehicle_id: int) -> HttpResponse:
    vehicle = get_object_or_404(Vehicle.objects.select_related("owner"), pk=vehicle_id)
    current = Terminal.objects.filter(vehicle=vehicle).first()
    fit_form = FitTerminalForm(request.POST if request.method == "POST" and "fit" in request.POST else None)
    remove_form = RemoveTerminalForm(request.POST if request.method == "POST" and "remove" in request.POST else None)
    if request.method == "POST" and "fit" in request.POST and fit_form.is_valid():
        data = fit_form.cleaned_data
        try:
            with transaction.atomic():
                terminal = Terminal.objects.filter(imei=data["imei"].strip()).first()
                if terminal is None:
                    terminal = terminal_register(
                        imei=data["imei"],
                        protocol=data["protocol"],
                        phone=data["phone"],
                        sim_iccid=data["sim_iccid"],
                        source=data["source"],
                    )
                terminal_bind(
                    clerk=request.user,  # type: ignore[arg-type]
                    terminal_id=terminal.pk,
                    vehicle_id=vehicle.pk,
                    owner_consent=data["owner_consent"],
                )
        except ValidationError as exc:
            _place(fit_form, exc)
        else:
            messages.success(request, _("Terminal %(imei)s fitted.") % {"imei": terminal.imei})
            return redirect("tracking:fit", vehicle_id=vehicle.pk)
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
    status = 400 if fit_form.errors or remove_form.errors else 200
    context = {
        "vehicle": vehicle,
        "current": current,
        "installations": vehicle.installations.select_related("terminal", "installed_by", "removed_by", "station"),
        "fit_form": fit_form,
        "remove_form": remove_form,
    }
    return render(request, "tracking/fit.html", context, status=status)
