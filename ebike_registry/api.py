"""Shared API plumbing: error format, per-field parsing that reports every problem at once."""

from collections.abc import Callable, Collection, Mapping
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, serializers, status
from rest_framework.fields import SkipField, empty
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ebike_registry.errors import size_limit_detail
from ebike_registry.problems import Problems, TooLarge


def nest(flat: Mapping[str, list[str]]) -> dict[str, Any]:
    """{"owner.phone": [...]} -> {"owner": {"phone": [...]}} (the shape DRF uses for nested input).

    A message on a parent that also has child messages goes under its "non_field_errors".
    """
    tree: dict[str, Any] = {}
    for path, messages in flat.items():
        node = tree
        *parents, leaf = path.split(".")
        for part in parents:
            if isinstance(node.get(part), list):
                node[part] = {"non_field_errors": node[part]}
            node = node.setdefault(part, {})
        slot = node.setdefault(leaf, [])
        (slot.setdefault("non_field_errors", []) if isinstance(slot, dict) else slot).extend(messages)
    return tree


def _too_large_response(exc: Exception) -> Response | None:
    """413 for every size limit: Django's (DATA_UPLOAD_MAX_MEMORY_SIZE, DATA_UPLOAD_MAX_NUMBER_FIELDS,
    DATA_UPLOAD_MAX_NUMBER_FILES, raised while the body is read) and the services' own (TooLarge)."""
    if isinstance(exc, TooLarge):
        return Response(nest(exc.message_dict), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    detail = size_limit_detail(exc)
    if detail is None:
        return None
    return Response({"detail": detail}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    too_large = _too_large_response(exc)
    if too_large is not None:
        return too_large
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            exc = exceptions.ValidationError(nest(exc.message_dict))
        else:
            exc = exceptions.ValidationError({"non_field_errors": exc.messages})
    elif isinstance(exc, ObjectDoesNotExist):
        exc = Http404(str(exc))
    return drf_exception_handler(exc, context)


def _flatten(detail: Any, prefix: str) -> dict[str, list[str]]:
    if isinstance(detail, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(detail, list) and detail and isinstance(detail[0], Mapping | list):
        flat = {}
        for index, item in enumerate(detail):
            flat.update(_flatten(item, f"{prefix}.{index}"))
        return flat
    messages = detail if isinstance(detail, list) else [detail]
    return {prefix: [str(m) for m in messages]}


def parse_each_field(
    serializer: serializers.Serializer, data: Any, prefix: str = ""
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Run every field's own validation and keep the values that parsed.

    DRF stops before object-level checks when any field fails; the counter rule is to report every
    problem at once, so callers run the domain checks on the values that did parse and merge both.
    Returns (values keyed by source, errors keyed by dotted field path).
    """
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    if not isinstance(data, Mapping):
        errors[prefix or "non_field_errors"] = ["Expected a JSON object."]
        return values, errors
    for name, field in serializer.fields.items():
        if field.read_only:
            continue
        path = f"{prefix}.{name}" if prefix else name
        source = field.source or name  # a bound field's source is set (to its name when not given)
        primitive = field.get_value(data)
        if isinstance(field, serializers.Serializer):
            if primitive is empty:
                if field.required:
                    errors[path] = ["This field is required."]
                continue
            sub_values, sub_errors = parse_each_field(field, primitive, path)
            values[source] = sub_values
            errors.update(sub_errors)
            continue
        try:
            value = field.run_validation(primitive)
        except SkipField:
            continue
        except exceptions.ValidationError as exc:
            errors.update(_flatten(exc.detail, path))
        else:
            values[source] = value
    return values, errors


def parse_or_raise(
    serializer: serializers.Serializer,
    data: Any,
    check: Callable[[dict[str, Any]], Problems] | None = None,
    *,
    recheck: Collection[str] = (),
    check_unparsed_only: bool = False,
) -> dict[str, Any]:
    """The values of `data` keyed by source, or one 400 naming every problem at once (一次性告知).

    `check` is the write's `…_check()` run on the values that parsed; its problems are added to the
    parse errors, a field that did not parse keeping its own message (except the keys in `recheck`,
    such as the record's state, which are always named). With `check_unparsed_only` it runs only when
    some field did not parse: a request whose fields all parse hears the write's own check.
    """
    values, errors = parse_each_field(serializer, data)
    problems = Problems()
    problems.merge(errors)
    if check is not None and (problems or not check_unparsed_only):
        found = check(values)
        problems.merge({key: msgs for key, msgs in found.by_field.items() if key in recheck or not problems.has(key)})
    problems.raise_if_any()
    return values


class StringField(serializers.CharField):
    """Text that must come as a JSON string, as the schema says: DRF's CharField takes 1 as "1".
    For inputs where a number is the client's mistake (credentials), refused as "Not a valid string."."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def query_flag(request: Request, name: str) -> bool:
    """A yes/no query parameter: true/1/yes or false/0/no in any case; absent or empty is no.
    Anything else is refused on the parameter (a typo must not silently mean no)."""
    raw = request.query_params.get(name, "").strip().lower()
    if raw in ("", "false", "0", "no"):
        return False
    if raw in ("true", "1", "yes"):
        return True
    raise exceptions.ValidationError({name: [_("Use true or false.")]})


def has_perm(perm: str) -> type[BasePermission]:
    class HasPerm(BasePermission):
        message = f"Your role lacks the permission {perm}."

        def has_permission(self, request: Request, view: Any) -> bool:
            return bool(request.user and request.user.is_authenticated and request.user.has_perm(perm))

    HasPerm.__name__ = f"HasPerm_{perm.replace('.', '_')}"
    return HasPerm


class Pagination(LimitOffsetPagination):
    """Every list of the API is paged, at most MAX_LIMIT rows a page whatever `limit` asks."""

    max_limit = 200
