"""Counter operations on a vehicle's filing record (docs/domain.md#lifecycle).

Every operation checks all of its input first and refuses with every problem at once; then, in
one transaction holding the vehicle's row lock, it changes the record and appends one
RegistrationEvent whose `changes` say exactly what moved, so the history explains the state.
"""

import datetime
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypedDict, cast

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Station, User
from ebike_registry.problems import Problems
from vehicles.fields import VEHICLE
from vehicles.identifiers import (
    frame_number_problem,
    motor_number_problem,
    normalize_id_number,
    normalize_text,
    resident_id_problem,
    text_problem,
)
from vehicles.models import InsurancePolicy, Owner, Plate, PlateKind, RegistrationEvent, Vehicle
from vehicles.services.insurance import policy_cancel_active, policy_issue
from vehicles.services.owners import OwnerData, owner_normalize, owner_problems, owner_upsert
from vehicles.services.plates import (
    plate_end,
    plate_issue,
    plate_kind_for,
    temporary_plate_transition_end,
)

MAX_PRICE = Decimal("100000")

# Fields of the filing record a change (变更) may touch; a correction (更正) may touch all of them
# but those the plate's kind follows from (vehicles.fields).
CHANGEABLE_VEHICLE_FIELDS = ("frame_number", "motor_number", "colour")
DESCRIPTIVE_VEHICLE_FIELDS = tuple(field.name for field in VEHICLE if not field.decides_plate_kind)
CHANGEABLE_OWNER_FIELDS = ("name", "phone", "address", "township_code")
# Free-text fields of the record: normalised to NFC, refused with control or invisible characters.
VEHICLE_TEXT_FIELDS = tuple(field.name for field in VEHICLE if field.free_text)
# No production or purchase date before this: the first e-bikes were sold in China in the 1990s, and
# a date such as 0001-01-01 is a typing slip, not a bike.
EARLIEST_VEHICLE_DATE = datetime.date(1990, 1, 1)


class Documents:
    """Materials the owner presented (docs/domain.md#materials), the closed list stored on registration events."""

    ID_CARD = "id_card"
    BUSINESS_LICENCE = "business_licence"
    AGENT_ID_CARD = "agent_id_card"
    LETTER_OF_AUTHORITY = "letter_of_authority"
    INVOICE = "invoice"
    CCC_CERTIFICATE = "ccc_certificate"
    TRANSFER_AGREEMENT = "transfer_agreement"
    STATEMENT_OF_ORIGIN = "statement_of_origin"
    CHOICES = (
        (ID_CARD, gettext_lazy("Resident ID card / business licence")),
        (BUSINESS_LICENCE, gettext_lazy("Business licence")),
        (AGENT_ID_CARD, gettext_lazy("Agent's resident ID card")),
        (LETTER_OF_AUTHORITY, gettext_lazy("Letter of authority")),
        (INVOICE, gettext_lazy("Purchase invoice")),
        (CCC_CERTIFICATE, gettext_lazy("Certificate of conformity (CCC)")),
        (TRANSFER_AGREEMENT, gettext_lazy("Transfer agreement")),
        (STATEMENT_OF_ORIGIN, gettext_lazy("Signed statement of origin")),
    )
    CODES = tuple(code for code, _label in CHOICES)


class VehicleData(TypedDict, total=False):
    frame_number: str
    motor_number: str
    manufacturer: str
    brand: str
    model_name: str
    colour: str
    production_date: datetime.date
    use_type: str
    purchase_date: datetime.date
    purchase_price: Decimal
    ccc_certificate_no: str
    conforming: bool
    electronic_id: str
    qr_payload: str


@dataclass(frozen=True)
class Registration:
    vehicle: Vehicle
    owner: Owner
    plate: Plate
    policy: InsurancePolicy | None
    event: RegistrationEvent


# --- checks --------------------------------------------------------------------------------------


def vehicle_normalize(data: VehicleData) -> VehicleData:
    """The values as stored: each declared field's normalisation (vehicles.fields) applied."""
    clean: dict[str, Any] = dict(data)
    for field in VEHICLE:
        if field.normalize is not None and field.name in clean:
            clean[field.name] = field.normalize(clean[field.name] or "")
    return cast(VehicleData, clean)


def documents_normalize(documents: list[str] | None) -> list[str]:
    """The codes presented, each once, in the order given."""
    return list(dict.fromkeys(code.strip() for code in documents or []))


def documents_problems(documents: list[str], *, problems: Problems, field: str = "documents") -> Problems:
    """Only codes of the closed list are kept in the append-only history."""
    if any(code not in Documents.CODES for code in documents):
        problems.add(
            field,
            _("Unknown document; choose from: %(codes)s.") % {"codes": ", ".join(Documents.CODES)},
        )
    return problems


def vehicle_problems(
    data: VehicleData, *, problems: Problems, prefix: str = "vehicle", exclude_pk: int | None = None
) -> Problems:
    """Check the vehicle fields that are present (absent ones were reported by the caller)."""
    today = timezone.localdate()
    for key in VEHICLE_TEXT_FIELDS:
        if key in data:
            problems.add(f"{prefix}.{key}", text_problem(data[key]))  # type: ignore[literal-required]  # keys of VehicleData
    _frame_and_motor_problems(data, problems=problems, prefix=prefix, exclude_pk=exclude_pk)
    _description_problems(data, problems=problems, prefix=prefix)
    _date_problems(data, problems=problems, prefix=prefix, today=today)
    _price_and_conformity_problems(data, problems=problems, prefix=prefix, today=today)
    return problems


def _other_vehicles(exclude_pk: int | None) -> QuerySet[Vehicle]:
    """Every bike but the one being changed (a new registration excludes none)."""
    return Vehicle.objects.all() if exclude_pk is None else Vehicle.objects.exclude(pk=exclude_pk)


def _frame_and_motor_problems(data: VehicleData, *, problems: Problems, prefix: str, exclude_pk: int | None) -> None:
    """The bike's identifiers: well formed, the frame number on no other record, the motor number on
    no other bike still registered."""
    if "frame_number" in data:
        problem = frame_number_problem(data["frame_number"])
        problems.add(f"{prefix}.frame_number", problem)
        if problem is None:
            existing = _other_vehicles(exclude_pk).filter(frame_number=data["frame_number"]).first()
            if existing is not None:
                problems.add(f"{prefix}.frame_number", _frame_taken_message(existing))
    if "motor_number" in data:
        problem = motor_number_problem(data["motor_number"])
        problems.add(f"{prefix}.motor_number", problem)
        if problem is None:
            clash = (
                _other_vehicles(exclude_pk)
                .filter(motor_number=data["motor_number"])
                .exclude(status=Vehicle.Status.DEREGISTERED)
                .exists()
            )
            if clash:
                problems.add(
                    f"{prefix}.motor_number",
                    _("This motor number is on another registered bike; check for a re-stamped number."),
                )


def _description_problems(data: VehicleData, *, problems: Problems, prefix: str) -> None:
    for key, label in (("manufacturer", _("manufacturer")), ("brand", _("brand")), ("model_name", _("model"))):
        if key in data and not data[key]:  # type: ignore[literal-required]  # keys of VehicleData
            problems.add(f"{prefix}.{key}", _("Enter the %(field)s.") % {"field": label})
    if "colour" in data and not data["colour"]:
        problems.add(f"{prefix}.colour", _("Enter the colour."))
    if "use_type" in data and data["use_type"] not in Vehicle.UseType.values:
        problems.add(f"{prefix}.use_type", _("Use type must be self_use or commercial."))


def _date_problems(data: VehicleData, *, problems: Problems, prefix: str, today: datetime.date) -> None:
    """Production and purchase dates: not in the future, not before e-bikes, bought after made."""
    production = data.get("production_date")
    purchase = data.get("purchase_date")
    too_early = _("E-bikes on the road were made after %(date)s; check the date.") % {
        "date": EARLIEST_VEHICLE_DATE.isoformat()
    }
    if production is not None and production > today:
        problems.add(f"{prefix}.production_date", _("The production date is in the future."))
    elif production is not None and production < EARLIEST_VEHICLE_DATE:
        problems.add(f"{prefix}.production_date", too_early)
    if purchase is not None:
        if purchase > today:
            problems.add(f"{prefix}.purchase_date", _("The purchase date is in the future."))
        elif purchase < EARLIEST_VEHICLE_DATE:
            problems.add(f"{prefix}.purchase_date", too_early)
        elif production is not None and purchase < production:
            problems.add(f"{prefix}.purchase_date", _("The bike was bought before it was made."))


def _price_and_conformity_problems(data: VehicleData, *, problems: Problems, prefix: str, today: datetime.date) -> None:
    """The price in range; a conforming bike's CCC certificate; a non-conforming one only while
    temporary plates are still issued."""
    if "purchase_price" in data:
        try:
            price = Decimal(data["purchase_price"])
            if not (Decimal(0) < price < MAX_PRICE):
                raise InvalidOperation
        except (InvalidOperation, TypeError):
            problems.add(f"{prefix}.purchase_price", _("The purchase price must be between 0 and 100,000 yuan."))
    if data.get("conforming", True) and "ccc_certificate_no" in data and not data["ccc_certificate_no"]:
        problems.add(
            f"{prefix}.ccc_certificate_no",
            _("A bike that conforms to GB 17761 has a CCC certificate; enter its number."),
        )
    if data.get("conforming") is False:
        end = temporary_plate_transition_end()
        if end is not None and end < today:
            problems.add(
                f"{prefix}.conforming",
                _("The transition period for temporary plates ended on %(date)s; this bike cannot be registered.")
                % {"date": end.isoformat()},
            )


def _frame_taken_message(existing: Vehicle) -> str:
    if existing.status == Vehicle.Status.STOLEN:
        return _("This bike is reported stolen: do not register it, hold it and call the duty officer.")
    if existing.status == Vehicle.Status.DEREGISTERED:
        return _("A bike with this frame number was deregistered; re-registration needs a correction of that record.")
    plate = existing.plates.filter(status=Plate.Status.ISSUED).first()
    return _("This bike is already registered (plate %(plate)s).") % {"plate": plate.number if plate else "-"}


def registration_problems(*, owner: OwnerData, vehicle: VehicleData, documents: list[str] | None = None) -> Problems:
    problems = owner_problems(owner)
    vehicle_problems(vehicle, problems=problems)
    documents_problems(documents_normalize(documents), problems=problems)
    return problems


def vehicle_register_check(*, owner: OwnerData, vehicle: VehicleData, documents: list[str] | None = None) -> Problems:
    """Every problem with a registration (注册登记) of these values, as typed: the owner, the bike (its
    frame and motor numbers not on file already) and the documents. The write calls it first; the
    API view and the counter page call it on what parsed when some field did not."""
    return registration_problems(owner=owner_normalize(owner), vehicle=vehicle_normalize(vehicle), documents=documents)


def _staff_station(clerk: User) -> Station:
    station = clerk.station
    if station is None:
        raise PermissionDenied(_("Your account is not assigned to a police station."))
    return station


def _lock_vehicle(vehicle_id: int) -> Vehicle:
    return Vehicle.objects.select_for_update().select_related("owner").get(pk=vehicle_id)


def _refuse_unless(vehicle: Vehicle, allowed: set[str], operation: str | Promise) -> None:
    """For the status transitions (stolen, frozen …): a state they do not start from refuses them."""
    reasons = _status_reasons(vehicle, allowed)
    if reasons:
        raise ValidationError(
            {"vehicle": _("%(operation)s refused: %(reason)s.") % {"operation": operation, "reason": reasons[0]}}
        )


def _current_plate(vehicle: Vehicle) -> Plate | None:
    return vehicle.plates.filter(status=Plate.Status.ISSUED).first()


def _record(
    *,
    vehicle: Vehicle,
    kind: str,
    clerk: User,
    station: Station,
    plate: Plate | None,
    changes: dict[str, Any],
    reason: str = "",
    documents: list[str] | None = None,
    **extra: Any,
) -> RegistrationEvent:
    return RegistrationEvent.objects.create(
        vehicle=vehicle,
        kind=kind,
        clerk=clerk,
        station=station,
        registration_point=clerk.registration_point,
        owner_id=vehicle.owner_id,
        plate=plate,
        changes=_jsonable(changes),
        reason=reason,
        documents=documents or [],
        **extra,
    )


def _jsonable(changes: dict[str, Any]) -> dict[str, list[Any]]:
    def plain(value: Any) -> Any:
        if isinstance(value, datetime.date | Decimal):
            return str(value)
        return value

    return {key: [plain(old), plain(new)] for key, (old, new) in changes.items()}


# --- state rules and checks of the lifecycle operations ------------------------------------------
#
# Each write has one `<write>_check(...) -> Problems` that collects every problem at once: the input
# and the bike's state. The write calls it under the row lock; the API view and the counter page
# call the same function first, so a clerk hears of everything in one answer (一次性告知). The
# `<write>_state` functions are the state part alone: the record page asks them (through
# selectors.vehicle_operations) which operations to offer and why the others are refused.

_STATUS_REASONS: dict[str, Promise] = {
    Vehicle.Status.STOLEN: gettext_lazy("the bike is reported stolen"),
    Vehicle.Status.FROZEN: gettext_lazy("the record is frozen while an insurance claim is open"),
    Vehicle.Status.DEREGISTERED: gettext_lazy("the bike is deregistered"),
    Vehicle.Status.REGISTERED: gettext_lazy("the bike is registered"),
}


def _status_reasons(record: Vehicle, allowed: set[str]) -> list[str]:
    return [] if record.status in allowed else [str(_STATUS_REASONS[record.status])]


def _temporary_plate_expired(plate: Plate | None) -> bool:
    return plate is not None and plate.kind == PlateKind.WHITE and plate.is_expired()


def vehicle_change_state(record: Vehicle) -> list[str]:
    """Why the bike's state refuses a change (empty: it allows one). A bike whose temporary plate
    has run out no longer conforms to the rules of the road: it is deregistered, not changed."""
    reasons = _status_reasons(record, {Vehicle.Status.REGISTERED})
    if _temporary_plate_expired(_current_plate(record)):
        reasons.append(_("the temporary plate has expired"))
    return reasons


def vehicle_correct_state(record: Vehicle) -> list[str]:
    """A correction fixes a clerk's error whatever the state: nothing refuses it."""
    return []


def vehicle_transfer_state(record: Vehicle) -> list[str]:
    reasons = _status_reasons(record, {Vehicle.Status.REGISTERED})
    plate = _current_plate(record)
    if plate is not None and plate.kind == PlateKind.WHITE:
        if not settings.TEMPORARY_PLATE_TRANSFER_ALLOWED:
            reasons.append(_("bikes on temporary plates may not be transferred here"))
        elif plate.is_expired():
            reasons.append(_("the temporary plate has expired"))
    return reasons


def plate_replace_state(record: Vehicle) -> list[str]:
    reasons = _status_reasons(record, {Vehicle.Status.REGISTERED})
    plate = _current_plate(record)
    if not reasons and plate is None:
        reasons.append(_("the bike has no plate in use"))
    if _temporary_plate_expired(plate):
        reasons.append(_("the temporary plate has expired"))
    return reasons


def vehicle_deregister_state(record: Vehicle) -> list[str]:
    return _status_reasons(record, {Vehicle.Status.REGISTERED})


def _state_problems(problems: Problems, *, kind: str, reasons: list[str]) -> Problems:
    label = RegistrationEvent.Kind(kind).label
    for reason in reasons:
        problems.add("vehicle", _("%(operation)s refused: %(reason)s.") % {"operation": label, "reason": reason})
    return problems


class TransferConsent:
    """How the previous owner agreed to the transfer (docs/domain.md#lifecycle: both parties' IDs)."""

    IN_PERSON = "in_person"
    AGENT = "agent"
    CHOICES = (
        (IN_PERSON, gettext_lazy("In person: the previous owner signed at the counter")),
        (AGENT, gettext_lazy("Through an agent holding the previous owner's power of attorney")),
    )
    CODES = (IN_PERSON, AGENT)


class PlateReplaceReason:
    """The reasons the counter page offers; the API also takes a free-text reason."""

    LOST = "lost"
    DAMAGED = "damaged"
    CHOICES = ((LOST, gettext_lazy("Plate lost")), (DAMAGED, gettext_lazy("Plate damaged")))


class DeregisterReason:
    LOST = "lost"
    DESTROYED = "destroyed"
    NOT_USED = "not_used"
    QUALITY_RETURN = "quality_return"
    TEMPORARY_EXPIRED = "temporary_expired"
    CHOICES = (LOST, DESTROYED, NOT_USED, QUALITY_RETURN, TEMPORARY_EXPIRED)
    LABELS = (
        (LOST, gettext_lazy("Lost")),
        (DESTROYED, gettext_lazy("Destroyed or scrapped")),
        (NOT_USED, gettext_lazy("No longer used")),
        (QUALITY_RETURN, gettext_lazy("Returned to the seller for a quality defect")),
        (TEMPORARY_EXPIRED, gettext_lazy("Temporary plate expired")),
    )


def vehicle_change_check(
    *, record: Vehicle, vehicle: VehicleData, owner: OwnerData, reason: str, documents: list[str] | None = None
) -> Problems:
    """Every problem with a change (变更登记) of this record, its state included."""
    return _edit_check(
        record=record,
        vehicle=vehicle,
        owner=owner,
        reason=reason,
        documents=documents,
        vehicle_fields=CHANGEABLE_VEHICLE_FIELDS,
        kind=RegistrationEvent.Kind.CHANGE,
        state=vehicle_change_state(record),
    )


def vehicle_correct_check(*, record: Vehicle, vehicle: VehicleData, owner: OwnerData, reason: str) -> Problems:
    """Every problem with a correction (更正) of this record."""
    return _edit_check(
        record=record,
        vehicle=vehicle,
        owner=owner,
        reason=reason,
        documents=None,
        vehicle_fields=DESCRIPTIVE_VEHICLE_FIELDS,
        kind=RegistrationEvent.Kind.CORRECTION,
        state=vehicle_correct_state(record),
    )


def _edit_check(
    *,
    record: Vehicle,
    vehicle: VehicleData,
    owner: OwnerData,
    reason: str,
    documents: list[str] | None,
    vehicle_fields: tuple[str, ...],
    kind: str,
    state: list[str],
) -> Problems:
    problems = Problems()
    unknown = (set(vehicle) - set(vehicle_fields)) | (set(owner) - set(CHANGEABLE_OWNER_FIELDS))
    for field in sorted(unknown):
        prefix = "vehicle" if field in vehicle else "owner"
        problems.add(f"{prefix}.{field}", _("This field cannot be changed by this operation."))
    if not reason.strip():
        problems.add("reason", _("Give the reason for the change."))
    documents_problems(documents_normalize(documents), problems=problems)
    vehicle = vehicle_normalize(vehicle)
    owner_norm = owner_normalize({**owner, "kind": record.owner.kind})
    vehicle_problems(vehicle, problems=problems, exclude_pk=record.pk)
    owner_problems(owner_norm, problems=problems)
    fields_ok = not any(key.startswith(("vehicle.", "owner.")) for key in problems.by_field)
    if not vehicle and not owner:
        problems.add("vehicle", _("Nothing to change."))
    elif fields_ok and not _edit_changes(record, vehicle, owner_norm):
        problems.add("vehicle", _("The values entered are the same as on file."))
    return _state_problems(problems, kind=kind, reasons=state)


def _owner_values(owner: OwnerData) -> dict[str, Any]:
    values: dict[str, Any] = {key: value for key, value in owner.items() if key != "kind"}
    if "township_code" in values:
        values["township_id"] = values.pop("township_code") or None
    return values


def _edit_changes(record: Vehicle, vehicle: VehicleData, owner: OwnerData) -> dict[str, list[Any]]:
    """What an edit would move: {field: [old, new]}, owner fields as "owner.<field>"."""
    changes: dict[str, list[Any]] = {}
    for field, new in vehicle.items():
        old = getattr(record, field)
        if old != new:
            changes[field] = [old, new]
    for field, new in _owner_values(owner).items():
        old = getattr(record.owner, field)
        if old != new:
            changes[f"owner.{field}"] = [old, new]
    return changes


def vehicle_transfer_check(
    *,
    record: Vehicle,
    new_owner: OwnerData,
    previous_owner_consent: str,
    consent_agent_name: str = "",
    consent_agent_id_number: str = "",
    documents: list[str] | None = None,
) -> Problems:
    """Every problem with a transfer (转移登记): the new owner as registration checks an owner, the
    previous owner's consent (in person, or an agent with a power of attorney), and the state."""
    new_owner = owner_normalize(new_owner)
    problems = owner_problems(new_owner, prefix="new_owner")
    if new_owner.get("id_number") and new_owner["id_number"] == record.owner.id_number:
        problems.add("new_owner.id_number", _("The new owner is the current owner."))
    documents = documents_normalize(documents)
    documents_problems(documents, problems=problems)
    if previous_owner_consent not in TransferConsent.CODES:
        problems.add(
            "previous_owner_consent",
            _(
                "Record how the previous owner agreed: in person at the counter, or through an agent "
                "with a power of attorney."
            ),
        )
    elif previous_owner_consent == TransferConsent.AGENT:
        agent_name = normalize_text(consent_agent_name or "")
        problems.add("consent_agent_name", text_problem(agent_name))
        if not problems.has("consent_agent_name") and not (2 <= len(agent_name) <= 50):
            problems.add("consent_agent_name", _("Enter the agent's full name (2-50 characters)."))
        agent_id = normalize_id_number(consent_agent_id_number or "")
        if not agent_id:
            problems.add("consent_agent_id_number", _("Enter the resident ID number of the previous owner's agent."))
        else:
            problems.add("consent_agent_id_number", resident_id_problem(agent_id))
        if Documents.LETTER_OF_AUTHORITY not in documents:
            problems.add(
                "documents",
                _("An agent acting for the previous owner presents the letter of authority; tick it when seen."),
            )
    return _state_problems(problems, kind=RegistrationEvent.Kind.TRANSFER, reasons=vehicle_transfer_state(record))


def plate_replace_check(*, record: Vehicle, reason: str) -> Problems:
    """Every problem with a plate replacement (补领/换领), the state included."""
    problems = Problems()
    if not reason.strip():
        problems.add("reason", _("Say why the plate is replaced (lost, damaged …)."))
    return _state_problems(problems, kind=RegistrationEvent.Kind.REPLACE_PLATE, reasons=plate_replace_state(record))


def vehicle_deregister_check(*, record: Vehicle, reason: str, plate_returned: bool | None) -> Problems:
    """Every problem with a deregistration (注销登记), the state included."""
    problems = Problems()
    if reason not in DeregisterReason.CHOICES:
        problems.add(
            "reason",
            _("Reason must be one of: %(choices)s.") % {"choices": ", ".join(DeregisterReason.CHOICES)},
        )
    if plate_returned is None:
        problems.add("plate_returned", _("Say whether the plate was handed back."))
    return _state_problems(problems, kind=RegistrationEvent.Kind.DEREGISTER, reasons=vehicle_deregister_state(record))


# --- operations ----------------------------------------------------------------------------------


def vehicle_register(
    *,
    clerk: User,
    owner: OwnerData,
    vehicle: VehicleData,
    insurance_consent: bool,
    documents: list[str] | None = None,
) -> Registration:
    """注册登记: record owner and bike, issue a plate and, with consent, the free policy."""
    station = _staff_station(clerk)
    vehicle_register_check(owner=owner, vehicle=vehicle, documents=documents).raise_if_any()
    owner = owner_normalize(owner)
    vehicle = vehicle_normalize(vehicle)
    documents = documents_normalize(documents)
    kind = plate_kind_for(conforming=vehicle.get("conforming", True), use_type=vehicle["use_type"])
    try:
        with transaction.atomic():
            owner_row, owner_changes = owner_upsert(owner)
            record = Vehicle.objects.create(owner=owner_row, station=station, **vehicle)
            plate = plate_issue(vehicle=record, station=station, kind=kind)
            policy = policy_issue(vehicle=record, owner=owner_row, consent_by=clerk) if insurance_consent else None
            changes: dict[str, Any] = {field: [None, value] for field, value in vehicle.items()}
            changes.update(owner_changes)
            changes["owner_id"] = [None, owner_row.pk]
            changes["status"] = [None, record.status]
            changes["plate"] = [None, plate.number]
            event = _record(
                vehicle=record,
                kind=RegistrationEvent.Kind.REGISTER,
                clerk=clerk,
                station=station,
                plate=plate,
                changes=changes,
                documents=documents,
            )
    except IntegrityError as exc:
        # Two counters registering the same frame number at once: the unique index decides.
        if "frame_number" in str(exc):
            raise ValidationError({"vehicle.frame_number": _("This bike was registered a moment ago.")}) from exc
        raise
    return Registration(vehicle=record, owner=owner_row, plate=plate, policy=policy, event=event)


def vehicle_change(
    *,
    clerk: User,
    vehicle_id: int,
    vehicle: VehicleData,
    owner: OwnerData,
    reason: str,
    documents: list[str] | None = None,
) -> RegistrationEvent:
    """变更登记: owner's contact details, or a replaced frame / motor, or a new colour. No new plate."""
    station = _staff_station(clerk)
    with transaction.atomic():
        record = _lock_vehicle(vehicle_id)
        vehicle_change_check(
            record=record, vehicle=vehicle, owner=owner, reason=reason, documents=documents
        ).raise_if_any()
        return _edit(
            clerk=clerk,
            station=station,
            record=record,
            vehicle=vehicle,
            owner=owner,
            reason=reason,
            documents=documents_normalize(documents),
            kind=RegistrationEvent.Kind.CHANGE,
        )


def vehicle_correct(
    *,
    clerk: User,
    vehicle_id: int,
    vehicle: VehicleData,
    owner: OwnerData,
    reason: str,
) -> RegistrationEvent:
    """更正: fix a clerk's error in any descriptive field, whatever the state, with a reason."""
    station = _staff_station(clerk)
    with transaction.atomic():
        record = _lock_vehicle(vehicle_id)
        vehicle_correct_check(record=record, vehicle=vehicle, owner=owner, reason=reason).raise_if_any()
        return _edit(
            clerk=clerk,
            station=station,
            record=record,
            vehicle=vehicle,
            owner=owner,
            reason=reason,
            documents=[],
            kind=RegistrationEvent.Kind.CORRECTION,
        )


def _edit(
    *,
    clerk: User,
    station: Station,
    record: Vehicle,
    vehicle: VehicleData,
    owner: OwnerData,
    reason: str,
    documents: list[str],
    kind: str,
) -> RegistrationEvent:
    """Apply a checked change or correction to the locked record and append its event."""
    owner_row = record.owner
    changes = _edit_changes(record, vehicle_normalize(vehicle), owner_normalize({**owner, "kind": owner_row.kind}))
    for key, (_old, new) in changes.items():
        if key.startswith("owner."):
            setattr(owner_row, key.removeprefix("owner."), new)
        else:
            setattr(record, key, new)
    record.save()
    owner_row.save()
    return _record(
        vehicle=record,
        kind=kind,
        clerk=clerk,
        station=station,
        plate=_current_plate(record),
        changes=changes,
        reason=reason.strip(),
        documents=documents,
    )


def vehicle_transfer(
    *,
    clerk: User,
    vehicle_id: int,
    new_owner: OwnerData,
    insurance_consent: bool,
    previous_owner_consent: str = "",
    consent_agent_name: str = "",
    consent_agent_id_number: str = "",
    reason: str = "",
    documents: list[str] | None = None,
) -> RegistrationEvent:
    """转移登记 (过户): the bike passes to a new owner and keeps its plate. The event records how the
    previous owner agreed: in person, or through an agent (name, ID number) with a power of attorney."""
    station = _staff_station(clerk)
    new_owner = owner_normalize(new_owner)
    documents = documents_normalize(documents)
    with transaction.atomic():
        record = _lock_vehicle(vehicle_id)
        vehicle_transfer_check(
            record=record,
            new_owner=new_owner,
            previous_owner_consent=previous_owner_consent,
            consent_agent_name=consent_agent_name,
            consent_agent_id_number=consent_agent_id_number,
            documents=documents,
        ).raise_if_any()
        by_agent = previous_owner_consent == TransferConsent.AGENT
        plate = _current_plate(record)
        owner_row, _changes = owner_upsert(new_owner, prefix="new_owner")
        old_owner_id = record.owner_id
        record.owner = owner_row
        record.save(update_fields=["owner", "updated_at"])
        policy_cancel_active(vehicle=record)
        if insurance_consent:
            policy_issue(vehicle=record, owner=owner_row, consent_by=clerk)
        return _record(
            vehicle=record,
            kind=RegistrationEvent.Kind.TRANSFER,
            clerk=clerk,
            station=station,
            plate=plate,
            changes={"owner_id": [old_owner_id, owner_row.pk]},
            reason=reason.strip(),
            documents=documents,
            previous_owner_consent=previous_owner_consent,
            consent_agent_name=normalize_text(consent_agent_name) if by_agent else "",
            consent_agent_id_number=normalize_id_number(consent_agent_id_number) if by_agent else "",
        )


def plate_replace(*, clerk: User, vehicle_id: int, reason: str) -> RegistrationEvent:
    """补领/换领: a lost or damaged plate is voided and a new one issued; it keeps the old number
    when the bureau's setting PLATE_REPLACE_KEEPS_NUMBER says so."""
    station = _staff_station(clerk)
    with transaction.atomic():
        record = _lock_vehicle(vehicle_id)
        plate_replace_check(record=record, reason=reason).raise_if_any()
        old = _current_plate(record)
        if old is None:  # refused by the check; kept for the type checker
            raise ValidationError({"vehicle": _("This bike has no plate in use.")})
        plate_end(plate=old, status=Plate.Status.VOID)
        if settings.PLATE_REPLACE_KEEPS_NUMBER:
            new = plate_issue(vehicle=record, station=station, kind=old.kind, keep_number=old.number)
        else:
            new = plate_issue(vehicle=record, station=station, kind=old.kind)
        return _record(
            vehicle=record,
            kind=RegistrationEvent.Kind.REPLACE_PLATE,
            clerk=clerk,
            station=station,
            plate=new,
            changes={"plate": [old.number, new.number]},
            reason=reason.strip(),
        )


def vehicle_deregister(*, clerk: User, vehicle_id: int, reason: str, plate_returned: bool) -> RegistrationEvent:
    """注销登记: the record ends; a returned plate is recovered, a missing one voided."""
    station = _staff_station(clerk)
    with transaction.atomic():
        record = _lock_vehicle(vehicle_id)
        vehicle_deregister_check(record=record, reason=reason, plate_returned=plate_returned).raise_if_any()
        plate = _current_plate(record)
        if plate is not None:
            plate_end(plate=plate, status=Plate.Status.RECOVERED if plate_returned else Plate.Status.VOID)
        policy_cancel_active(vehicle=record)
        record.status = Vehicle.Status.DEREGISTERED
        record.save(update_fields=["status", "updated_at"])
        return _record(
            vehicle=record,
            kind=RegistrationEvent.Kind.DEREGISTER,
            clerk=clerk,
            station=station,
            plate=None,
            changes={
                "status": [Vehicle.Status.REGISTERED, Vehicle.Status.DEREGISTERED],
                "plate": [plate.number if plate else None, None],
                "plate_returned": [None, plate_returned],
            },
            reason=reason,
        )


def vehicle_mark_stolen(
    *, officer: User, vehicle_id: int, reason: str, station: Station | None = None
) -> RegistrationEvent:
    """Called when a theft report is taken: the record is locked against changes and transfers.

    `station` is the report's station, for reports an owner starts online (owners have none).
    """
    return _set_status(
        user=officer,
        station=station,
        vehicle_id=vehicle_id,
        reason=reason,
        kind=RegistrationEvent.Kind.MARK_STOLEN,
        old=Vehicle.Status.REGISTERED,
        new=Vehicle.Status.STOLEN,
    )


def vehicle_clear_stolen(
    *, officer: User, vehicle_id: int, reason: str, station: Station | None = None
) -> RegistrationEvent:
    """Called when the bike is no longer missing (recovered, report withdrawn)."""
    return _set_status(
        user=officer,
        station=station,
        vehicle_id=vehicle_id,
        reason=reason,
        kind=RegistrationEvent.Kind.CLEAR_STOLEN,
        old=Vehicle.Status.STOLEN,
        new=Vehicle.Status.REGISTERED,
    )


def vehicle_freeze(*, user: User, vehicle_id: int, reason: str, station: Station | None = None) -> RegistrationEvent:
    """A bike recovered after its theft claim was paid: the record is frozen (no change, transfer or
    deregistration) until the payout is settled, refunded or the bike handed to the insurer."""
    return _set_status(
        user=user,
        station=station,
        vehicle_id=vehicle_id,
        reason=reason,
        kind=RegistrationEvent.Kind.FREEZE,
        old=Vehicle.Status.REGISTERED,
        new=Vehicle.Status.FROZEN,
    )


def vehicle_unfreeze(*, user: User, vehicle_id: int, reason: str, station: Station | None = None) -> RegistrationEvent:
    return _set_status(
        user=user,
        station=station,
        vehicle_id=vehicle_id,
        reason=reason,
        kind=RegistrationEvent.Kind.UNFREEZE,
        old=Vehicle.Status.FROZEN,
        new=Vehicle.Status.REGISTERED,
    )


def _set_status(
    *, user: User, station: Station | None, vehicle_id: int, reason: str, kind: str, old: str, new: str
) -> RegistrationEvent:
    station = station or _staff_station(user)
    with transaction.atomic():
        record = _lock_vehicle(vehicle_id)
        _refuse_unless(record, {old}, RegistrationEvent.Kind(kind).label)
        record.status = new
        record.save(update_fields=["status", "updated_at"])
        return _record(
            vehicle=record,
            kind=kind,
            clerk=user,
            station=station,
            plate=_current_plate(record),
            changes={"status": [old, new]},
            reason=reason,
        )
