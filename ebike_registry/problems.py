"""Collecting every problem with an input before refusing it (一次性告知).

Keys are dotted field paths ("owner.id_number", "vehicle.frame_number"); `raise_if_any` turns the
collection into a Django ValidationError, which the API answers as HTTP 400 with the same paths
nested ({"owner": {"id_number": [...]}}) and the counter page shows next to each field.
"""

from django.core.exceptions import ValidationError
from django.utils.functional import Promise


class Problems:
    def __init__(self) -> None:
        self.by_field: dict[str, list[str]] = {}

    def add(self, field: str, message: str | Promise | None) -> None:
        if message:
            self.by_field.setdefault(field, []).append(str(message))

    def has(self, field: str) -> bool:
        return field in self.by_field

    def __bool__(self) -> bool:
        return bool(self.by_field)

    def merge(self, other: dict[str, list[str]]) -> None:
        for field, messages in other.items():
            for message in messages:
                self.add(field, message)

    def raise_if_any(self) -> None:
        if self.by_field:
            raise ValidationError({field: list(msgs) for field, msgs in self.by_field.items()})


class TooLarge(ValidationError):
    """An input over a size limit: the API answers 413 (not 400) with the same field paths."""
