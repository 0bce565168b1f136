"""Shared page plumbing: a service's problems shown at the form fields they name (一次性告知).

The pages' side of ebike_registry.api.parse_or_raise: a page parses its forms, asks the write's
`…_check()` with whatever parsed, shows every problem at its field, and calls the write only when
the page shows none; the write checks again (under its lock) and its refusal is shown the same way.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from django import forms
from django.core.exceptions import ValidationError

from ebike_registry.problems import Problems

T = TypeVar("T")


def problem_dict(exc: ValidationError) -> dict[str, list[str]]:
    """A service's refusal keyed by field path; a refusal without fields goes to the top of the page."""
    if hasattr(exc, "error_dict"):
        return exc.message_dict
    return {"non_field_errors": exc.messages}


def parsed_values(form: forms.Form) -> dict[str, Any]:
    """Run the form's parsing: the values of the fields that parsed."""
    form.is_valid()
    return {name: value for name, value in form.cleaned_data.items() if name not in form.errors}


def place_problems(
    problems: Mapping[str, Iterable[str]],
    *,
    page: forms.Form,
    sections: Mapping[str, forms.Form] | None = None,
    targets: Mapping[str, str | None] | None = None,
    beside_parse_errors: bool = False,
) -> None:
    """Put each problem next to the field its key names, unless that field shows a parse error already
    (a field that did not parse keeps its own message; with `beside_parse_errors`, both are shown).

    `targets` names this page's field for a key ("place_point" -> "latitude"), None for the top of
    the page. A dotted key ("owner.phone") goes to sections["owner"]'s field; its section's top for a
    problem with the section as a whole ("vehicle") or a field the section lacks. Any other key goes
    to the page form's field of that name, or to the top of the page ("non_field_errors").
    """
    sections = sections or {}
    for key, messages in problems.items():
        form, field = _problem_place(key, page=page, sections=sections, targets=targets or {})
        if field is None or beside_parse_errors or field not in form.errors:
            form.add_error(field, list(messages))


def _problem_place(
    key: str, *, page: forms.Form, sections: Mapping[str, forms.Form], targets: Mapping[str, str | None]
) -> tuple[forms.Form, str | None]:
    if key in targets:
        target = targets[key]
        return page, target if target in page.fields else None
    section, _dot, name = key.partition(".")
    if section in sections:
        form = sections[section]
        return form, name if name in form.fields else None
    return page, key if key in page.fields else None


def has_errors(page: forms.Form, sections: Mapping[str, forms.Form] | None = None) -> bool:
    return bool(page.errors) or any(form.errors for form in (sections or {}).values())


def form_attempt(
    *,
    page: forms.Form,
    check: Callable[[], Problems],
    write: Callable[[], T],
    sections: Mapping[str, forms.Form] | None = None,
    targets: Mapping[str, str | None] | None = None,
) -> T | None:
    """Check what parsed and place every problem; write only when the page shows none. A refusal by
    the write (another desk moved first: it checks again under its lock) is placed the same way.
    None when the page has problems to show. Parse the forms first."""
    place_problems(check().by_field, page=page, sections=sections, targets=targets)
    if has_errors(page, sections):
        return None
    try:
        return write()
    except ValidationError as exc:
        place_problems(problem_dict(exc), page=page, sections=sections, targets=targets)
        return None
