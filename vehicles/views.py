"""Server-rendered counter pages. Like the API views they parse, call one service or selector, render."""

from dataclasses import dataclass
from typing import Any

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from accounts.audit import audit_record, client_ip
from vehicles.certificates import certificate_token, certificate_verify
from vehicles.forms import (
    Documents,
    OwnerForm,
    RegistrationForm,
    SearchForm,
    VehicleForm,
    error_summary,
    place_problems,
)
from vehicles.identifiers import mask_id_number, mask_phone
from vehicles.models import InsurancePolicy, Owner, Plate, Vehicle, VehiclePhoto
from vehicles.selectors import can_see_full_identity, current_plate, vehicle_detail, vehicle_search
from vehicles.services.owners import owner_normalize
from vehicles.services.registration import registration_problems, vehicle_normalize, vehicle_register


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "vehicles/home.html")


# --- counter registration ------------------------------------------------------------------------


@login_required
@permission_required("vehicles.register_vehicle", raise_exception=True)
@require_http_methods(["GET", "POST"])
def counter(request: HttpRequest) -> HttpResponse:
    """注册登记 at the counter: one form, every problem reported at once next to its field."""
    data = request.POST if request.method == "POST" else None
    station = request.user.station  # type: ignore[union-attr]
    owner_form = OwnerForm(data, prefix="owner", initial={"township_code": station.township_id if station else None})
    vehicle_form = VehicleForm(data, prefix="vehicle")
    page_form = RegistrationForm(data)
    sections = {"owner": owner_form, "vehicle": vehicle_form}

    if request.method == "POST":
        parsed = [form.is_valid() for form in (owner_form, vehicle_form, page_form)]  # run all three
        if all(parsed):
            try:
                result = vehicle_register(
                    clerk=request.user,  # type: ignore[arg-type]
                    owner=owner_form.parsed(),
                    vehicle=vehicle_form.parsed(),
                    insurance_consent=page_form.cleaned_data["insurance_consent"],
                    documents=page_form.cleaned_data["documents"],
                )
            except ValidationError as exc:
                place_problems(_problem_dict(exc), sections=sections, page=page_form)
            else:
                messages.success(request, _("Registered. Plate %(plate)s issued.") % {"plate": result.plate.number})
                return redirect("vehicles:certificate", vehicle_id=result.vehicle.pk)
        else:
            # Some fields did not even parse; check the ones that did, so the clerk hears of
            # every problem now rather than one round at a time (一次性告知).
            domain = registration_problems(
                owner=owner_normalize(owner_form.parsed()), vehicle=vehicle_normalize(vehicle_form.parsed())
            )
            fresh = {key: msgs for key, msgs in domain.by_field.items() if not _has_error(key, sections)}
            place_problems(fresh, sections=sections, page=page_form)

    forms_in_order = (page_form, owner_form, vehicle_form)
    return render(
        request,
        "vehicles/counter.html",
        {
            "owner_form": owner_form,
            "vehicle_form": vehicle_form,
            "page_form": page_form,
            "problems": error_summary(forms_in_order) if request.method == "POST" else [],
        },
    )


def _problem_dict(exc: ValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return exc.message_dict
    return {"non_field_errors": exc.messages}


def _has_error(key: str, sections: dict[str, Any]) -> bool:
    section, _dot, field = key.partition(".")
    form = sections.get(section)
    return form is not None and field in form.errors


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
        user=request.user,  # type: ignore[arg-type]
        action="certificate.view",
        object_type="vehicle",
        object_id=vehicle.pk,
        result_count=1,
        ip=client_ip(request),
    )
    qr_svg = verify_url = ""
    if plate is not None:
        token = certificate_token(vehicle_id=vehicle.pk, plate_number=plate.number)
        verify_url = _public_url(request, reverse("vehicles:verify", args=[token]))
        qr_svg = segno.make(verify_url, error="m").svg_inline(
            scale=QR_MODULE_MM,
            unit="mm",
            border=QR_QUIET_ZONE,
            svgclass="qr",
            title=_("Scan to verify this certificate"),
        )
    policy = (
        vehicle.policies.filter(status=InsurancePolicy.Status.ACTIVE).select_related("scheme").order_by("-starts_on")
    ).first()
    return render(
        request,
        "vehicles/certificate.html",
        {
            "vehicle": vehicle,
            "owner": vehicle.owner,
            "owner_id_number": mask_id_number(vehicle.owner.id_number),
            "owner_phone": mask_phone(vehicle.owner.phone),
            "plate": plate,
            "policy": policy,
            "qr_svg": qr_svg,
            "verify_url": verify_url,
        },
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
def search(request: HttpRequest) -> HttpResponse:
    """车辆备案信息查询: every search is audited by the selector."""
    form = SearchForm(request.GET or None)
    result = None
    if form.is_bound and form.is_valid():
        try:
            result = vehicle_search(
                user=request.user,  # type: ignore[arg-type]
                criteria=form.criteria(),
                reason=form.cleaned_data["reason"],
                ip=client_ip(request),
            )
        except ValidationError as exc:
            for key, msgs in _problem_dict(exc).items():
                form.add_error(key if key in form.fields else None, msgs)
    full = can_see_full_identity(request.user)  # type: ignore[arg-type]
    rows = []
    if result is not None:
        rows = [
            {
                "vehicle": vehicle,
                "plate": current_plate(vehicle),
                "id_number": _identity(vehicle.owner.id_number, mask_id_number, full),
                "phone": _identity(vehicle.owner.phone, mask_phone, full),
            }
            for vehicle in result.vehicles
        ]
    return render(
        request,
        "vehicles/search.html",
        {
            "form": form,
            "result": result,
            "rows": rows,
            "full_identity": full,
            "reason": form.cleaned_data.get("reason", "") if result is not None else "",
        },
    )


def _identity(value: str, mask: Any, full: bool) -> str:
    return value if full else mask(value)


@login_required
@permission_required("vehicles.search_records", raise_exception=True)
@require_GET
def detail(request: HttpRequest, vehicle_id: int) -> HttpResponse:
    """The full filing record with plates, policies and history; every view is audited."""
    try:
        vehicle = vehicle_detail(
            user=request.user,  # type: ignore[arg-type]
            vehicle_id=vehicle_id,
            reason=request.GET.get("reason", "")[:200],
            ip=client_ip(request),
        )
    except Vehicle.DoesNotExist:
        raise Http404(_("No such record.")) from None
    full = can_see_full_identity(request.user)  # type: ignore[arg-type]
    owner = vehicle.owner
    return render(
        request,
        "vehicles/detail.html",
        {
            "vehicle": vehicle,
            "owner": owner,
            "owner_id_number": _identity(owner.id_number, mask_id_number, full),
            "owner_phone": _identity(owner.phone, mask_phone, full),
            "agent_id_number": _identity(owner.agent_id_number, mask_id_number, full) if owner.agent_id_number else "",
            "full_identity": full,
            "plate": current_plate(vehicle),
            "plates": vehicle.plates.select_related("series").order_by("-issued_at", "-id"),
            "policies": vehicle.policies.all(),
            "events": _history(vehicle, full=full),
        },
    )


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


def _history(vehicle: Vehicle, *, full: bool) -> list[dict[str, Any]]:
    events = list(vehicle.events.all())
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
        documents = [str(_DOCUMENT_LABELS.get(code, code)) for code in event.documents]
        rows.append({"event": event, "changes": changes, "documents": documents})
    return rows


def _field_label(key: str) -> str:
    model: type[Vehicle] | type[Owner] = Vehicle
    name = key
    if key.startswith("owner."):
        model, name = Owner, key.removeprefix("owner.")
    labels = {"owner_id": _("owner"), "plate": _("plate"), "township_id": _("township")}
    if name in labels:
        return str(labels[name])
    try:
        return str(model._meta.get_field(name).verbose_name)
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


# --- photos and scanned documents --------------------------------------------------------------------------


@login_required
@require_GET
def photo(request: HttpRequest, photo_id: int) -> HttpResponse:
    """A bike photo or a scanned document, to whoever the policy allows; every look is audited.

    The media directory is never served directly: with MEDIA_ACCEL_REDIRECT set, the front server
    (nginx `internal` location) sends the file this view names; otherwise the file is streamed here.
    """
    item = get_object_or_404(VehiclePhoto.objects.select_related("vehicle__owner"), pk=photo_id)
    allowed = request.user.has_perm("vehicles.view_photo", item)
    audit_record(
        user=request.user,  # type: ignore[arg-type]
        action="photo.view",
        object_type="vehicle",
        object_id=item.vehicle_id,
        query={"photo": item.pk, "kind": item.kind} | ({} if allowed else {"refused": "policy"}),
        result_count=1 if allowed else 0,
        ip=client_ip(request),
    )
    if not allowed:
        raise PermissionDenied(_("Only the staff who work with this record and its owner see its photos."))
    content_type = "image/png" if item.image.name.lower().endswith(".png") else "image/jpeg"
    if settings.MEDIA_ACCEL_REDIRECT:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = f"{settings.MEDIA_ACCEL_REDIRECT.rstrip('/')}/{item.image.name}"
    else:
        try:
            response = FileResponse(item.image.open("rb"), content_type=content_type)
        except FileNotFoundError as exc:
            raise Http404(_("The photo file is missing.")) from exc
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
