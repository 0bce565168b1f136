"""Server-rendered counter pages. Like the API views they parse, call one service or selector, render."""

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import BadRequest, FieldDoesNotExist, PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from accounts.audit import REASON_LENGTH, audit_record, client_ip
from accounts.request_types import AuthedHttpRequest
from ebike_registry.app_declarations import app_declarations
from ebike_registry.forms import form_attempt, place_problems, problem_dict
from ebike_registry.problems import Problems
from vehicles.certificates import certificate_token, certificate_verify
from vehicles.forms import (
    ChangeForm,
    CorrectionForm,
    DeregisterForm,
    Documents,
    OwnerEditForm,
    OwnerForm,
    PlateReplaceForm,
    RegistrationForm,
    SearchForm,
    TransferForm,
    VehicleEditForm,
    VehicleForm,
    error_summary,
    form_values,
)
from vehicles.identifiers import mask_id_number, mask_phone, normalize_id_number
from vehicles.models import InsurancePolicy, Owner, Plate, RegistrationEvent, Vehicle, VehiclePhoto
from vehicles.selectors import (
    can_see_full_identity,
    current_plate,
    vehicle_detail,
    vehicle_operations,
    vehicle_search,
)
from vehicles.services.registration import (
    CHANGEABLE_VEHICLE_FIELDS,
    DESCRIPTIVE_VEHICLE_FIELDS,
    DeregisterReason,
    PlateReplaceReason,
    Registration,
    plate_replace,
    plate_replace_check,
    plate_replace_state,
    vehicle_change,
    vehicle_change_check,
    vehicle_change_state,
    vehicle_correct,
    vehicle_correct_check,
    vehicle_correct_state,
    vehicle_deregister,
    vehicle_deregister_check,
    vehicle_deregister_state,
    vehicle_register,
    vehicle_register_check,
    vehicle_transfer,
    vehicle_transfer_check,
    vehicle_transfer_state,
)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "vehicles/home.html")


# --- counter registration ------------------------------------------------------------------------


@login_required
@permission_required("vehicles.register_vehicle", raise_exception=True)
@require_http_methods(["GET", "POST"])
def counter(request: AuthedHttpRequest) -> HttpResponse:
    """注册登记 at the counter: one form, every problem reported at once next to its field."""
    data = request.POST if request.method == "POST" else None
    station = request.user.station
    owner_form = OwnerForm(data, prefix="owner", initial={"township_code": station.township_id if station else None})
    vehicle_form = VehicleForm(data, prefix="vehicle")
    page_form = RegistrationForm(data)
    if data is not None:
        result = _register(request, owner_form=owner_form, vehicle_form=vehicle_form, page_form=page_form)
        if result is not None:
            messages.success(request, _("Registered. Plate %(plate)s issued.") % {"plate": result.plate.number})
            return redirect("vehicles:certificate", vehicle_id=result.vehicle.pk)
    context: dict[str, Any] = {"owner_form": owner_form, "vehicle_form": vehicle_form, "page_form": page_form}
    context["problems"] = error_summary((page_form, owner_form, vehicle_form)) if data is not None else []
    return render(request, "vehicles/counter.html", context)


def _register(
    request: AuthedHttpRequest, *, owner_form: OwnerForm, vehicle_form: VehicleForm, page_form: RegistrationForm
) -> Registration | None:
    """Parse the three forms and register; when some field did not even parse, the ones that did are
    checked too, so the clerk hears of every problem now rather than one round at a time (一次性告知).
    When all parse, the write's own check speaks."""
    parsed = [form.is_valid() for form in (owner_form, vehicle_form, page_form)]  # run all three
    return form_attempt(
        page=page_form,
        sections={"owner": owner_form, "vehicle": vehicle_form},
        check=lambda: (
            Problems()
            if all(parsed)
            else vehicle_register_check(owner=owner_form.parsed(), vehicle=vehicle_form.parsed())
        ),
        write=lambda: vehicle_register(
            clerk=request.user,
            owner=owner_form.parsed(),
            vehicle=vehicle_form.parsed(),
            insurance_consent=page_form.cleaned_data["insurance_consent"],
            documents=page_form.cleaned_data["documents"],
        ),
    )


# --- certificate and its public verification ----------------------------------------------------

# The certificate's QR code is drawn at its print size: each module 0.7 mm (a typical verification
# URL gives version 6, 41 modules, so about 34 mm with the quiet zone), with the 4-module quiet zone
# of ISO/IEC 18004. The SVG carries a viewBox, so a narrower screen scales it down whole instead of
# cutting modules off. tests/browser/test_certificate.py decodes the printed page with zbar.
QR_MODULE_MM = 0.7
QR_QUIET_ZONE = 4


@login_required
@permission_required("vehicles.view_vehicle", raise_exception=True)
@require_GET
def certificate(request: HttpRequest, vehicle_id: int) -> HttpResponse:
    """The printable registration certificate (电动自行车登记证书) with a verification QR code."""
    vehicle = get_object_or_404(Vehicle.objects.select_related("owner", "station"), pk=vehicle_id)
    plate = current_plate(vehicle)
    audit_record(
        request=request, action="certificate.view", object_type="vehicle", object_id=vehicle.pk, result_count=1
    )
    verify_url = _verify_url(request, vehicle, plate)
    context = {
        "vehicle": vehicle,
        "owner": vehicle.owner,
        "owner_id_number": mask_id_number(vehicle.owner.id_number),
        "owner_phone": mask_phone(vehicle.owner.phone),
        "plate": plate,
        "policy": vehicle.policies.filter(status=InsurancePolicy.Status.ACTIVE)
        .select_related("scheme")
        .order_by("-starts_on")
        .first(),
        "qr_svg": _qr_svg(verify_url) if verify_url else "",
        "verify_url": verify_url,
    }
    return render(request, "vehicles/certificate.html", context)


def _verify_url(request: HttpRequest, vehicle: Vehicle, plate: Plate | None) -> str:
    """The public address the certificate's QR code names ("" without a plate in use)."""
    if plate is None:
        return ""
    token = certificate_token(vehicle_id=vehicle.pk, plate_number=plate.number)
    return _public_url(request, reverse("vehicles:verify", args=[token]))


def _qr_svg(url: str) -> str:
    return segno.make(url, error="m").svg_inline(
        scale=QR_MODULE_MM, unit="mm", border=QR_QUIET_ZONE, svgclass="qr", title=_("Scan to verify this certificate")
    )


def _public_url(request: HttpRequest, path: str) -> str:
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    return f"{base}{path}" if base else request.build_absolute_uri(path)


@require_GET
def verify(request: HttpRequest, token: str) -> HttpResponse:
    """Public page behind the certificate's QR code: is the certificate valid? No personal data."""
    verification = certificate_verify(token)
    if verification is None:
        return render(request, "vehicles/verify_invalid.html", status=404)
    vehicle = verification.vehicle
    plate = current_plate(vehicle) if verification.plate_current else None
    return render(
        request,
        "vehicles/verify.html",
        {
            "vehicle": vehicle,
            "plate_number": verification.plate_number,
            "plate": plate,
            "verdict": _verdict(vehicle, plate),
        },
    )


@dataclass(frozen=True)
class Verdict:
    ok: bool
    title: str
    detail: str


def _verdict(vehicle: Vehicle, plate: Plate | None) -> Verdict:
    if vehicle.status == Vehicle.Status.STOLEN:
        return Verdict(
            False, _("Reported stolen"), _("This bike is reported stolen. Please tell the police (dial 110).")
        )
    if vehicle.status == Vehicle.Status.DEREGISTERED:
        return Verdict(False, _("Deregistered"), _("This registration has been cancelled."))
    if plate is None:
        return Verdict(
            False, _("Plate void"), _("The plate on this certificate has been voided or replaced by a new plate.")
        )
    if plate.is_expired():
        return Verdict(False, _("Temporary plate expired"), _("The transition period of this temporary plate is over."))
    if vehicle.status == Vehicle.Status.FROZEN:
        return Verdict(True, _("Valid"), _("Registered; the record is frozen while an insurance claim is open."))
    return Verdict(True, _("Valid"), _("This bike is registered and the plate is in use."))


# --- record search and detail ---------------------------------------------------------------------


@login_required
@permission_required("vehicles.search_records", raise_exception=True)
@require_GET
def search(request: AuthedHttpRequest) -> HttpResponse:
    """车辆备案信息查询: every search is audited by the selector."""
    form = SearchForm(request.GET or None)
    result = None
    if form.is_bound and form.is_valid():
        try:
            result = vehicle_search(
                user=request.user,
                criteria=form.criteria(),
                reason=form.cleaned_data["reason"],
                ip=client_ip(request),
            )
        except ValidationError as exc:
            place_problems(problem_dict(exc), page=form)
    full = can_see_full_identity(request.user)
    context: dict[str, Any] = {"form": form, "result": result, "rows": _search_rows(result, full=full)}
    context["full_identity"] = full
    context["reason"] = form.cleaned_data.get("reason", "") if result is not None else ""
    return render(request, "vehicles/search.html", context)


def _search_rows(result: Any, *, full: bool) -> list[dict[str, Any]]:
    if result is None:
        return []
    return [
        {
            "vehicle": vehicle,
            "plate": current_plate(vehicle),
            "id_number": _identity(vehicle.owner.id_number, mask_id_number, full),
            "phone": _identity(vehicle.owner.phone, mask_phone, full),
        }
        for vehicle in result.vehicles
    ]


def _identity(value: str, mask: Any, full: bool) -> str:
    return value if full else mask(value)


@login_required
@permission_required("vehicles.search_records", raise_exception=True)
@require_GET
def detail(request: AuthedHttpRequest, vehicle_id: int) -> HttpResponse:
    """The full filing record with plates, policies and history; every view is audited, with the
    search's reason the result list carries over (one longer than the search allows is refused,
    never cut before it reaches the audit trail)."""
    reason = request.GET.get("reason", "")
    if len(reason) > REASON_LENGTH:
        raise BadRequest(_("The reason is longer than %(n)d characters.") % {"n": REASON_LENGTH})
    try:
        vehicle = vehicle_detail(user=request.user, vehicle_id=vehicle_id, reason=reason, ip=client_ip(request))
    except Vehicle.DoesNotExist:
        raise Http404(_("No such record.")) from None
    return render(request, "vehicles/detail.html", _detail_context(request, vehicle))


def _detail_context(request: AuthedHttpRequest, vehicle: Vehicle) -> dict[str, Any]:
    full = can_see_full_identity(request.user)
    owner = vehicle.owner
    return {
        "vehicle": vehicle,
        "owner": owner,
        "owner_id_number": _identity(owner.id_number, mask_id_number, full),
        "owner_phone": _identity(owner.phone, mask_phone, full),
        "agent_id_number": _identity(owner.agent_id_number, mask_id_number, full) if owner.agent_id_number else "",
        "full_identity": full,
        "plate": current_plate(vehicle),
        "plates": vehicle.plates.select_related("series").order_by("-issued_at", "-id"),
        "policies": vehicle.policies.all(),
        "events": _history_rows(list(vehicle.events.all()), full=full),
        "operations": vehicle_operations(user=request.user, vehicle=vehicle),
        "receipt_kinds": RECEIPT_KINDS,
        **_record_additions(request, vehicle),
    }


@functools.cache
def _record_contributors() -> list[Any]:
    """The apps' `vehicle_record` modules (ebike_registry.app_declarations): web adds the last position."""
    return [module for _name, module in app_declarations("vehicle_record")]


def _record_additions(request: HttpRequest, vehicle: Vehicle) -> dict[str, Any]:
    """What the apps above add to the record page, each from its `vehicle_record.record_context`."""
    added: dict[str, Any] = {}
    for module in _record_contributors():
        added |= module.record_context(request=request, vehicle=vehicle)
    return added


# How history values are shown: in the models' field order with their labels, choices by their
# label, owner records by name, and ID numbers and phones masked unless the user may see them.
_MASKED = {"id_number": mask_id_number, "agent_id_number": mask_id_number, "phone": mask_phone}
_DOCUMENT_LABELS = dict(Documents.CHOICES)
_CHOICE_LABELS = {"status": Vehicle.Status, "use_type": Vehicle.UseType, "kind": Owner.Kind}
_FIELD_ORDER = [
    *(field.name for field in Vehicle._meta.fields),
    "owner_id",
    *(f"owner.{field.name}" for field in Owner._meta.fields),
    "plate",
]


def _history_rows(events: list[RegistrationEvent], *, full: bool) -> list[dict[str, Any]]:
    """Events as the record page and the receipts show them: each change labelled, the reason by
    its name, a transfer's consent and agent, the documents presented."""
    owner_ids = {value for event in events for value in event.changes.get("owner_id", []) if isinstance(value, int)}
    owners = Owner.objects.only("name").in_bulk(owner_ids)
    rows = []
    for event in events:
        keys = sorted(event.changes, key=lambda k: _FIELD_ORDER.index(k) if k in _FIELD_ORDER else len(_FIELD_ORDER))
        changes = []
        for key in keys:
            old, new = event.changes[key]
            if key == "owner_id":
                old, new = (owners[v].name if v in owners else v for v in (old, new))
            changes.append(
                {"label": _field_label(key), "old": _field_value(key, old, full), "new": _field_value(key, new, full)}
            )
        consent = []
        if event.previous_owner_consent:
            how = event.get_previous_owner_consent_display()
            consent.append({"label": _("previous owner's consent"), "value": how})
        if event.consent_agent_name:
            agent_id = _identity(event.consent_agent_id_number, mask_id_number, full)
            agent = f"{event.consent_agent_name} {agent_id}"
            consent.append({"label": _("agent of the previous owner"), "value": agent})
        documents = [str(_DOCUMENT_LABELS.get(code, code)) for code in event.documents]
        reason = _REASON_LABELS.get(event.kind, {}).get(event.reason, event.reason)
        rows.append(
            {"event": event, "changes": changes, "consent": consent, "documents": documents, "reason": str(reason)}
        )
    return rows


# Reasons chosen from a list are stored as codes and shown by their name.
_REASON_LABELS: dict[str, dict[str, Any]] = {
    RegistrationEvent.Kind.DEREGISTER: dict(DeregisterReason.LABELS),
    RegistrationEvent.Kind.REPLACE_PLATE: dict(PlateReplaceReason.CHOICES),
}


def _field_label(key: str) -> str:
    model: type[Vehicle] | type[Owner] = Vehicle
    name = key
    if key.startswith("owner."):
        model, name = Owner, key.removeprefix("owner.")
    labels = {
        "owner_id": _("owner"),
        "plate": _("plate"),
        "township_id": _("township"),
        "plate_returned": _("plate handed back"),
    }
    if name in labels:
        return str(labels[name])
    try:
        return str(model._meta.get_field(name).verbose_name)  # type: ignore[union-attr]  # keys name forward fields
    except FieldDoesNotExist:  # a key the models no longer have is shown as stored
        return key


def _field_value(key: str, value: Any, full: bool) -> str:
    if value is None or value == "":
        return "—"
    name = key.removeprefix("owner.")
    if name in _MASKED and not full:
        return _MASKED[name](str(value))
    if name in _CHOICE_LABELS:
        choices = _CHOICE_LABELS[name]
        return str(choices(value).label) if value in choices.values else str(value)
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return str(value)


# --- lifecycle counter pages ----------------------------------------------------------------------
#
# Change, correction, transfer, plate replacement and deregistration: each one form (GET shows it,
# POST does it). The view parses, asks the service's `…_check()` with whatever parsed (the bike's
# state included) so every problem is shown at once at its field, then calls the write, which
# checks again under the row lock. Success leads to a printable receipt of the event.


def _counter_vehicle(request: AuthedHttpRequest, vehicle_id: int, page: str) -> Vehicle:
    """The record an operation page works on; the look at its owner's details is audited."""
    vehicle = get_object_or_404(Vehicle.objects.select_related("owner", "owner__township", "station"), pk=vehicle_id)
    audit_record(
        user=request.user,
        action="vehicle.view",
        object_type="vehicle",
        object_id=vehicle.pk,
        query={"page": page},
        result_count=1,
        ip=client_ip(request),
    )
    return vehicle


def _attempt(
    *,
    sections: dict[str, Any],
    page: Any,
    check: Callable[..., Problems],
    write: Callable[..., RegistrationEvent],
    values: Callable[[], dict[str, Any]],
) -> RegistrationEvent | None:
    """Parse every form, check what parsed (all problems at once, at their fields), then write."""
    for form in (page, *sections.values()):  # run them all
        form.is_valid()
    return form_attempt(page=page, sections=sections, check=lambda: check(**values()), write=lambda: write(**values()))


def _lifecycle_context(
    request: AuthedHttpRequest, vehicle: Vehicle, *, kind: str, state: list[str], forms_in_order: tuple[Any, ...]
) -> dict[str, Any]:
    full = can_see_full_identity(request.user)
    return {
        "vehicle": vehicle,
        "owner": vehicle.owner,
        "plate": current_plate(vehicle),
        "owner_id_number": _identity(vehicle.owner.id_number, mask_id_number, full),
        "owner_phone": _identity(vehicle.owner.phone, mask_phone, full),
        "operation": RegistrationEvent.Kind(kind).label,
        "state_refusals": state if request.method == "GET" else [],
        "problems": error_summary(forms_in_order) if request.method == "POST" else [],
    }


def _done(request: HttpRequest, event: RegistrationEvent) -> HttpResponse:
    messages.success(request, _("%(operation)s done.") % {"operation": capfirst(event.get_kind_display())})
    return redirect("vehicles:receipt", vehicle_id=event.vehicle_id, event_id=event.pk)


@dataclass(frozen=True)
class OperationPage:
    """A lifecycle operation's page: the event it records, its check, its write, the state rule that
    refuses it, and its template."""

    kind: str
    check: Callable[..., Problems]
    write: Callable[..., RegistrationEvent]
    state: Callable[[Vehicle], list[str]]
    template: str


CHANGE = OperationPage(
    RegistrationEvent.Kind.CHANGE,
    vehicle_change_check,
    vehicle_change,
    vehicle_change_state,
    "vehicles/lifecycle_edit.html",
)
CORRECTION = OperationPage(
    RegistrationEvent.Kind.CORRECTION,
    vehicle_correct_check,
    vehicle_correct,
    vehicle_correct_state,
    "vehicles/lifecycle_edit.html",
)
TRANSFER = OperationPage(
    RegistrationEvent.Kind.TRANSFER,
    vehicle_transfer_check,
    vehicle_transfer,
    vehicle_transfer_state,
    "vehicles/transfer.html",
)
REPLACE_PLATE = OperationPage(
    RegistrationEvent.Kind.REPLACE_PLATE,
    plate_replace_check,
    plate_replace,
    plate_replace_state,
    "vehicles/replace_plate.html",
)
DEREGISTER = OperationPage(
    RegistrationEvent.Kind.DEREGISTER,
    vehicle_deregister_check,
    vehicle_deregister,
    vehicle_deregister_state,
    "vehicles/deregister.html",
)


def _operation_page(
    request: AuthedHttpRequest,
    vehicle: Vehicle,
    operation: OperationPage,
    *,
    page_form: Any,
    sections: dict[str, Any],
    values: Callable[[], dict[str, Any]],
    context: dict[str, Any],
) -> HttpResponse:
    """GET shows the operation's forms; POST checks and writes (then the receipt) or shows the forms
    again with every problem at its field."""
    if request.method == "POST":
        event = _attempt(
            sections=sections,
            page=page_form,
            check=lambda **v: operation.check(record=vehicle, **v),
            write=lambda **v: operation.write(clerk=request.user, vehicle_id=vehicle.pk, **v),
            values=values,
        )
        if event is not None:
            return _done(request, event)
    forms_in_order = (page_form, *sections.values())
    page = _lifecycle_context(
        request, vehicle, kind=operation.kind, state=operation.state(vehicle), forms_in_order=forms_in_order
    )
    return render(request, operation.template, {**page, "page_form": page_form, **context})


def _edit_page(request: AuthedHttpRequest, vehicle_id: int, *, kind: str) -> HttpResponse:
    """变更登记 and 更正 share one page: the bike's and the owner's fields filled in from the record."""
    correcting = kind == RegistrationEvent.Kind.CORRECTION
    vehicle = _counter_vehicle(request, vehicle_id, kind)
    data = request.POST if request.method == "POST" else None
    fields = DESCRIPTIVE_VEHICLE_FIELDS if correcting else CHANGEABLE_VEHICLE_FIELDS
    initial = {name: getattr(vehicle, name) for name in fields}
    vehicle_form = VehicleEditForm(data, prefix="vehicle", fields=fields, initial=initial)
    owner = vehicle.owner
    owner_initial = {"name": owner.name, "address": owner.address, "township_code": owner.township_id}
    owner_form = OwnerEditForm(data, prefix="owner", initial=owner_initial)
    page_form = CorrectionForm(data) if correcting else ChangeForm(data)
    return _operation_page(
        request,
        vehicle,
        CORRECTION if correcting else CHANGE,
        page_form=page_form,
        sections={"vehicle": vehicle_form, "owner": owner_form},
        values=lambda: _edit_values(vehicle_form, owner_form, page_form, correcting=correcting),
        context={"vehicle_form": vehicle_form, "owner_form": owner_form, "correcting": correcting},
    )


def _edit_values(
    vehicle_form: VehicleEditForm, owner_form: OwnerEditForm, page_form: Any, *, correcting: bool
) -> dict[str, Any]:
    edit = {
        "vehicle": vehicle_form.changed() if hasattr(vehicle_form, "cleaned_data") else {},
        "owner": owner_form.changed() if hasattr(owner_form, "cleaned_data") else {},
        "reason": page_form.cleaned_data.get("reason", ""),
    }
    if not correcting:
        edit["documents"] = page_form.cleaned_data.get("documents", [])
    return edit


@login_required
@permission_required("vehicles.register_vehicle", raise_exception=True)
@require_http_methods(["GET", "POST"])
def change(request: AuthedHttpRequest, vehicle_id: int) -> HttpResponse:
    """变更登记: new contact details of the owner, a replaced frame or motor, a new colour."""
    return _edit_page(request, vehicle_id, kind=RegistrationEvent.Kind.CHANGE)


@login_required
@permission_required("vehicles.register_vehicle", raise_exception=True)
@require_http_methods(["GET", "POST"])
def correct(request: AuthedHttpRequest, vehicle_id: int) -> HttpResponse:
    """更正: a clerk's error in any descriptive field, whatever the bike's state."""
    return _edit_page(request, vehicle_id, kind=RegistrationEvent.Kind.CORRECTION)


@login_required
@permission_required("vehicles.register_vehicle", raise_exception=True)
@require_http_methods(["GET", "POST"])
def transfer(request: AuthedHttpRequest, vehicle_id: int) -> HttpResponse:
    """转移登记 (过户): the new owner typed in, or found by ID number; the previous owner's consent in
    person or the agent's power of attorney; every check of registration on the new owner."""
    vehicle = _counter_vehicle(request, vehicle_id, "transfer")
    data = request.POST if request.method == "POST" else None
    owner_form = OwnerForm(data, prefix="new_owner")
    page_form = TransferForm(data)
    if data is not None and "lookup" in data:
        return _transfer_lookup(request, vehicle, owner_form, page_form)
    return _operation_page(
        request,
        vehicle,
        replace(TRANSFER, write=_transfer_write(page_form)),
        page_form=page_form,
        sections={"new_owner": owner_form},
        values=lambda: _transfer_values(owner_form, page_form),
        context={"owner_form": owner_form, "lookup": None},
    )


def _transfer_write(page_form: TransferForm) -> Callable[..., RegistrationEvent]:
    """The transfer with the page's insurance consent and reason, which only the write takes."""

    def write(**values: Any) -> RegistrationEvent:
        cleaned = page_form.cleaned_data
        return vehicle_transfer(insurance_consent=cleaned["insurance_consent"], reason=cleaned["reason"], **values)

    return write


def _transfer_values(owner_form: OwnerForm, page_form: TransferForm) -> dict[str, Any]:
    cleaned = page_form.cleaned_data
    return {
        "new_owner": owner_form.parsed() if hasattr(owner_form, "cleaned_data") else {},
        "previous_owner_consent": cleaned.get("previous_owner_consent", ""),
        "consent_agent_name": cleaned.get("consent_agent_name", ""),
        "consent_agent_id_number": cleaned.get("consent_agent_id_number", ""),
        "documents": cleaned.get("documents", []),
    }


def _transfer_lookup(
    request: AuthedHttpRequest, vehicle: Vehicle, owner_form: OwnerForm, page_form: TransferForm
) -> HttpResponse:
    """The transfer page again, the new owner's details filled in from the record the ID number finds."""
    owner_form, lookup = _owner_lookup(request, owner_form)
    page_form = TransferForm(initial=form_values(page_form))
    state = vehicle_transfer_state(vehicle)
    context = _lifecycle_context(
        request, vehicle, kind=RegistrationEvent.Kind.TRANSFER, state=state, forms_in_order=(page_form, owner_form)
    )
    context.update({"problems": [], "state_refusals": state})
    context.update({"owner_form": owner_form, "page_form": page_form, "lookup": lookup})
    return render(request, TRANSFER.template, context)


@dataclass(frozen=True)
class OwnerLookup:
    found: bool
    name: str = ""
    id_number: str = ""


def _owner_lookup(request: AuthedHttpRequest, typed: OwnerForm) -> tuple[OwnerForm, OwnerLookup]:
    """转移登记 for a person already on file: their details filled in from the ID number (audited).
    The phone is not: the clerk asks for it (the one on file is masked for a clerk)."""
    values = form_values(typed)
    id_number = normalize_id_number(values.get("id_number") or "")
    owner = Owner.objects.filter(id_number=id_number).first() if id_number else None
    audit_record(
        user=request.user,
        action="owner.lookup",
        object_type="owner",
        object_id=owner.pk if owner else "",
        query={"id_number": mask_id_number(id_number), "page": "transfer"},
        result_count=1 if owner else 0,
        ip=client_ip(request),
    )
    if owner is not None:
        values.update(
            {
                "kind": owner.kind,
                "name": owner.name,
                "id_number": owner.id_number,
                "address": owner.address,
                "township_code": owner.township_id,
                "agent_name": owner.agent_name,
                "agent_id_number": owner.agent_id_number,
            }
        )
    return OwnerForm(prefix="new_owner", initial=values), OwnerLookup(
        found=owner is not None, name=owner.name if owner else "", id_number=mask_id_number(id_number)
    )


@login_required
@permission_required("vehicles.register_vehicle", raise_exception=True)
@require_http_methods(["GET", "POST"])
def replace_plate(request: AuthedHttpRequest, vehicle_id: int) -> HttpResponse:
    """补领/换领号牌: the old plate voided, a new one issued (same number or the next, by setting)."""
    vehicle = _counter_vehicle(request, vehicle_id, "replace_plate")
    page_form = PlateReplaceForm(request.POST if request.method == "POST" else None)
    return _operation_page(
        request,
        vehicle,
        REPLACE_PLATE,
        page_form=page_form,
        sections={},
        values=lambda: {"reason": page_form.cleaned_data.get("reason", "")},
        context={"keeps_number": settings.PLATE_REPLACE_KEEPS_NUMBER},
    )


@login_required
@permission_required("vehicles.register_vehicle", raise_exception=True)
@require_http_methods(["GET", "POST"])
def deregister(request: AuthedHttpRequest, vehicle_id: int) -> HttpResponse:
    """注销登记: the reason, and whether the plate was handed back."""
    vehicle = _counter_vehicle(request, vehicle_id, "deregister")
    page_form = DeregisterForm(request.POST if request.method == "POST" else None)
    return _operation_page(
        request,
        vehicle,
        DEREGISTER,
        page_form=page_form,
        sections={},
        values=lambda: {
            "reason": page_form.cleaned_data.get("reason", ""),
            "plate_returned": page_form.cleaned_data.get("plate_returned"),
        },
        context={},
    )


@login_required
@permission_required("vehicles.register_vehicle", raise_exception=True)
@require_GET
def receipt(request: AuthedHttpRequest, vehicle_id: int, event_id: int) -> HttpResponse:
    """回执: a printable receipt of one counter operation with signature lines."""
    event = get_object_or_404(
        RegistrationEvent.objects.select_related("vehicle__owner", "clerk", "station", "registration_point", "plate"),
        pk=event_id,
        vehicle_id=vehicle_id,
        kind__in=RECEIPT_KINDS,
    )
    query = {"receipt": event.pk}
    audit_record(
        request=request, action="vehicle.view", object_type="vehicle", object_id=vehicle_id, query=query, result_count=1
    )
    return render(request, "vehicles/receipt.html", _receipt_context(request, event))


def _receipt_context(request: AuthedHttpRequest, event: RegistrationEvent) -> dict[str, Any]:
    full = can_see_full_identity(request.user)
    vehicle = event.vehicle
    owner = Owner.objects.get(pk=event.owner_id)  # the owner after the event
    previous = None
    if event.kind == RegistrationEvent.Kind.TRANSFER:
        previous = Owner.objects.filter(pk=event.changes.get("owner_id", [None])[0]).first()
    return {
        "event": event,
        "row": _history_rows([event], full=full)[0],
        "vehicle": vehicle,
        "owner": owner,
        "owner_id_number": _identity(owner.id_number, mask_id_number, full),
        "previous": previous,
        "previous_id_number": _identity(previous.id_number, mask_id_number, full) if previous else "",
        "plate_number": event.plate.number if event.plate else (event.changes.get("plate") or [None])[0],
        "new_certificate": event.kind == RegistrationEvent.Kind.REPLACE_PLATE and current_plate(vehicle) is not None,
    }


RECEIPT_KINDS = (
    RegistrationEvent.Kind.REGISTER,
    RegistrationEvent.Kind.CHANGE,
    RegistrationEvent.Kind.CORRECTION,
    RegistrationEvent.Kind.TRANSFER,
    RegistrationEvent.Kind.REPLACE_PLATE,
    RegistrationEvent.Kind.DEREGISTER,
)


# --- photos and scanned documents --------------------------------------------------------------------------


@login_required
@require_GET
def photo(request: HttpRequest, photo_id: int) -> HttpResponseBase:
    """A bike photo or a scanned document, to whoever the policy allows; every look is audited.

    The media directory is never served directly: with MEDIA_ACCEL_REDIRECT set, the front server
    (nginx `internal` location) sends the file this view names; otherwise the file is streamed here.
    """
    item = get_object_or_404(VehiclePhoto.objects.select_related("vehicle__owner"), pk=photo_id)
    allowed = request.user.has_perm("vehicles.view_photo", item)
    query = {"photo": item.pk, "kind": item.kind} | ({} if allowed else {"refused": "policy"})
    count = 1 if allowed else 0
    audit_record(
        request=request,
        action="photo.view",
        object_type="vehicle",
        object_id=item.vehicle_id,
        query=query,
        result_count=count,
    )
    if not allowed:
        raise PermissionDenied(_("Only the staff who work with this record and its owner see its photos."))
    response = _photo_file(item)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _photo_file(item: VehiclePhoto) -> HttpResponseBase:
    content_type = "image/png" if (item.image.name or "").lower().endswith(".png") else "image/jpeg"
    response: HttpResponseBase
    if settings.MEDIA_ACCEL_REDIRECT:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = f"{settings.MEDIA_ACCEL_REDIRECT.rstrip('/')}/{item.image.name}"
    else:
        try:
            response = FileResponse(item.image.open("rb"), content_type=content_type)
        except FileNotFoundError as exc:
            raise Http404(_("The photo file is missing.")) from exc
    return response
