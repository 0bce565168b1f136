"""The owner's and the vehicle's fields, declared once: name, label, whether required, how a typed
value is normalised, and the stored length (the model field's max_length).

The counter forms (vehicles.forms), the API's input serializers (vehicles.api.serializers), the
services' normalisation (vehicles.services) and the demo seeder's rows derive from these lists.
"""

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from ebike_registry.lengths import stored_length
from vehicles.identifiers import normalize_code, normalize_id_number, normalize_phone, normalize_text
from vehicles.models import Owner, Plate, Vehicle


@dataclass(frozen=True)
class RecordField:
    name: str
    label: Promise  # the counter page's label
    required: bool = True
    normalize: Callable[[str], str] | None = None
    # How many characters a typed value may carry that `normalize` strips: the spaces of a number
    # typed in its printed groups, a phone's country prefix. See `input_length`.
    separators: int = 0
    # The value an absent optional field stands for in a new record (registration stores it and
    # lists it among the event's changes); NOT_PROVIDED: the model field's default, if any.
    absent: Any = models.NOT_PROVIDED
    # The plate's kind follows from this field: changing it means another plate, so a correction
    # (更正) may not touch it.
    decides_plate_kind: bool = False
    # The model field that stores the value, when it is not `name` (a code naming a related row).
    column: str = ""
    model: type[models.Model] = models.Model  # set by FieldSet

    @property
    def model_field(self) -> Any:
        return self.model._meta.get_field(self.column or self.name)

    @property
    def stored_length(self) -> int | None:
        """The column's max_length (of the related row's key for a code naming a row)."""
        field = self.model_field
        if field.is_relation:
            field = field.target_field
        return field.max_length

    @property
    def input_length(self) -> int | None:
        """The longest value accepted as typed: the stored length plus the separators normalisation
        strips. Normalised, a value that long fits the column or is refused by the field's check."""
        stored = self.stored_length
        return None if stored is None else stored + self.separators

    @property
    def default(self) -> Any:
        """What an absent field stands for in a new record (NOT_PROVIDED: nothing, it is required)."""
        if self.absent is not models.NOT_PROVIDED:
            return self.absent
        field = self.model_field
        return field.default if field.has_default() else models.NOT_PROVIDED

    @property
    def free_text(self) -> bool:
        """Free text (a name, an address): normalised to NFC and refused with control or invisible characters."""
        return self.normalize is normalize_text


class FieldSet:
    """The declared fields of one model, in the order the forms show them."""

    def __init__(self, model: type[models.Model], fields: Iterable[RecordField]) -> None:
        self.model = model
        self.fields = tuple(dataclasses.replace(field, model=model) for field in fields)
        self._by_name = {field.name: field for field in self.fields}

    def __iter__(self) -> Iterator[RecordField]:
        return iter(self.fields)

    def __getitem__(self, name: str) -> RecordField:
        return self._by_name[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields)

    def only(self, names: Iterable[str]) -> tuple[RecordField, ...]:
        return tuple(self[name] for name in names)


VEHICLE = FieldSet(
    Vehicle,
    (
        # 15 digits typed in their four groups (maker, type digit, year, serial): 3 separators.
        RecordField("frame_number", _("Frame number"), normalize=normalize_code, separators=3),
        RecordField("motor_number", _("Motor number"), normalize=normalize_code),
        RecordField("manufacturer", _("Manufacturer"), normalize=normalize_text),
        RecordField("brand", _("Brand"), normalize=normalize_text),
        RecordField("model_name", _("Model"), normalize=normalize_text),
        RecordField("colour", _("Colour"), normalize=normalize_text),
        RecordField("production_date", _("Production date")),
        RecordField("use_type", _("Use type"), decides_plate_kind=True),
        RecordField("purchase_date", _("Purchase date")),
        RecordField("purchase_price", _("Purchase price (CNY)")),
        RecordField(
            "ccc_certificate_no", _("CCC certificate number"), required=False, normalize=normalize_code, absent=""
        ),
        RecordField("conforming", _("Conforms to GB 17761"), required=False, decides_plate_kind=True),
        RecordField("electronic_id", _("Electronic ID"), required=False, normalize=normalize_text, absent=""),
        RecordField("qr_payload", _("Plate QR payload"), required=False, normalize=normalize_text, absent=""),
    ),
)

OWNER = FieldSet(
    Owner,
    (
        RecordField("kind", _("Owner kind")),
        RecordField("name", _("Name / organisation name"), normalize=normalize_text),
        # A resident ID typed in its groups (region, birth date, sequence and check): 2 separators.
        # An organisation's credit code is normalised by services.owners.owner_normalize.
        RecordField("id_number", _("ID number"), normalize=normalize_id_number, separators=2),
        # "+86"/"0086" and the spaces or hyphens between the digit groups, doubled ones too.
        RecordField("phone", _("Mobile phone"), normalize=normalize_phone, separators=9),
        RecordField("address", _("Address"), normalize=normalize_text),
        RecordField("township_code", _("Township"), required=False, column="township"),
        RecordField("agent_name", _("Authorised agent"), required=False, normalize=normalize_text),
        RecordField(
            "agent_id_number", _("Agent's ID number"), required=False, normalize=normalize_id_number, separators=2
        ),
    ),
)

# A bike's and a person's identifiers typed to find a record (a theft report, a search, the public
# stolen check): the counter's limits.
FRAME_INPUT = VEHICLE["frame_number"].input_length
ID_INPUT = OWNER["id_number"].input_length
PHONE_INPUT = OWNER["phone"].input_length
# A plate is typed as printed: only the spaces around it are stripped.
PLATE_INPUT = stored_length(Plate, "number")
