"""The declared length of a model's text column, read where an input limit follows from it: a form's
or serializer's max_length is the column's, never a second number typed beside it."""

from django.core.exceptions import ImproperlyConfigured
from django.db import models


def stored_length(model: type[models.Model], name: str) -> int:
    """`model.name`'s max_length (a TextField's is its declared input limit, not enforced by the database)."""
    length = getattr(model._meta.get_field(name), "max_length", None)
    if length is None:
        raise ImproperlyConfigured(f"{model.__name__}.{name} declares no max_length")
    return length
