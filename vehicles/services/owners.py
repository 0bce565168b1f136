from typing import Any, TypedDict, cast

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.models import Township
from ebike_registry.problems import Problems
from vehicles.fields import OWNER
from vehicles.identifiers import (
    credit_code_problem,
    normalize_code,
    phone_problem,
    resident_id_problem,
    text_problem,
)
from vehicles.models import Owner

OWNER_CONTACT_FIELDS = ("name", "phone", "address", "township_id", "agent_name", "agent_id_number")
# Free text about a person: normalised to NFC, refused with control or invisible characters.
OWNER_TEXT_FIELDS = tuple(field.name for field in OWNER if field.free_text)


class OwnerData(TypedDict, total=False):
    kind: str
    name: str
    id_number: str
    phone: str
    address: str
    township_code: str | None
    agent_name: str
    agent_id_number: str


def owner_normalize(data: OwnerData) -> OwnerData:
    """The values as stored: each declared field's normalisation (vehicles.fields) applied, an
    organisation's ID number read as a unified social credit code."""
    clean: dict[str, Any] = dict(data)
    kind = clean.get("kind") or Owner.Kind.PERSON
    clean["kind"] = kind
    for field in OWNER:
        normalize = field.normalize
        if field.name == "id_number" and kind == Owner.Kind.ORGANISATION:
            normalize = normalize_code
        if normalize is not None and field.name in clean:
            clean[field.name] = normalize(clean[field.name] or "")
    return cast(OwnerData, clean)


def owner_problems(data: OwnerData, *, prefix: str = "owner", problems: Problems | None = None) -> Problems:
    """Check owner fields that are present; absent keys were already reported by the caller."""
    problems = problems if problems is not None else Problems()
    kind = data.get("kind", Owner.Kind.PERSON)
    if kind not in Owner.Kind.values:
        problems.add(f"{prefix}.kind", _("Owner kind must be person or organisation."))
        return problems
    for key in OWNER_TEXT_FIELDS:
        if key in data:
            problems.add(f"{prefix}.{key}", text_problem(data[key]))  # type: ignore[literal-required]  # keys of OwnerData
    if "name" in data and not (2 <= len(data["name"]) <= 100):
        problems.add(f"{prefix}.name", _("Enter the owner's full name (2-100 characters)."))
    if "id_number" in data:
        if kind == Owner.Kind.PERSON:
            problems.add(f"{prefix}.id_number", resident_id_problem(data["id_number"]))
        else:
            problems.add(f"{prefix}.id_number", credit_code_problem(data["id_number"]))
    if kind == Owner.Kind.ORGANISATION:
        if not data.get("agent_name"):
            problems.add(f"{prefix}.agent_name", _("An organisation registers through an authorised agent."))
        if not data.get("agent_id_number"):
            problems.add(f"{prefix}.agent_id_number", _("Enter the agent's resident ID number."))
        else:
            problems.add(f"{prefix}.agent_id_number", resident_id_problem(data["agent_id_number"]))
    if "phone" in data:
        problems.add(f"{prefix}.phone", phone_problem(data["phone"]))
    if "address" in data and len(data["address"]) < 4:
        problems.add(f"{prefix}.address", _("Enter the owner's address."))
    code = data.get("township_code")
    if code and not Township.objects.filter(code=code).exists():
        problems.add(f"{prefix}.township_code", _("Unknown township code %(code)s.") % {"code": code})
    if "id_number" in data and not problems.has(f"{prefix}.id_number") and "name" in data:
        existing = Owner.objects.filter(id_number=data["id_number"]).only("name", "kind").first()
        if existing is not None and (existing.name != data["name"] or existing.kind != kind):
            problems.add(
                f"{prefix}.id_number",
                _(
                    "This ID number is on file under another name; check the ID card, or correct the "
                    "existing record first."
                ),
            )
    return problems


def owner_upsert(data: OwnerData, *, prefix: str = "owner") -> tuple[Owner, dict[str, list[object]]]:
    """Find the owner by ID number or create one; update contact details. Returns the changes.

    Two counters registering the same new owner at the same moment both find no row; the unique
    index lets one insert win, and the other then takes the row just committed: the same person
    goes on as an existing owner, another name under that ID number is refused.
    """
    values = {
        "kind": data.get("kind", Owner.Kind.PERSON),
        "name": data["name"],
        "phone": data["phone"],
        "address": data["address"],
        "township_id": data.get("township_code") or None,
        "agent_name": data.get("agent_name", ""),
        "agent_id_number": data.get("agent_id_number", ""),
    }
    owner = Owner.objects.select_for_update().filter(id_number=data["id_number"]).first()
    if owner is None:
        try:
            with transaction.atomic():  # a savepoint: only the insert is undone if it loses the race
                return Owner.objects.create(id_number=data["id_number"], **values), {}
        except IntegrityError as exc:
            if "owner_id_number_uniq" not in str(exc):
                raise
        owner = Owner.objects.select_for_update().get(id_number=data["id_number"])
        if owner.name != values["name"] or owner.kind != values["kind"]:
            raise ValidationError(
                {
                    f"{prefix}.id_number": _(
                        "This ID number was registered a moment ago under another name; check the ID card."
                    )
                }
            )
    changes: dict[str, list[object]] = {}
    for field in OWNER_CONTACT_FIELDS:
        old, new = getattr(owner, field), values[field]
        if old != new:
            changes[f"owner.{field}"] = [old, new]
            setattr(owner, field, new)
    if changes:
        owner.save(update_fields=[key.split(".", 1)[1] for key in changes] + ["updated_at"])
    return owner, changes
