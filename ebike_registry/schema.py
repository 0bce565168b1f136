"""The OpenAPI schema's shared parts: the error answers every operation may give, documented once.

drf-spectacular documents the success answer a view declares. The errors come from the shared
plumbing (ebike_registry.api.exception_handler, DRF's authentication and permissions, the JSON 404
of api_not_found), the same for every view, so they are added here to each operation that can give
them rather than written on every view: 400 (the problems by field), 401 and 403 (no or not enough
authority), 404 (an unknown record in the path, or an unknown ?format=), 413 (a body over a size
limit), 415 (a body in a media type the view has no parser for, or a multipart body whose parts
say none), 429 (a rate-limited view).

Optional query parameters are documented as allowed empty (allowEmptyValue): the views read
`?start=` as no start, as browsers' forms send it.
"""

from typing import Any, Literal

from django.core.exceptions import FieldDoesNotExist
from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.settings import api_settings


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, in the user's language.")


class ProblemsSerializer(serializers.Serializer):
    """The shape of a 400 (and of a 413 naming a field): each problem under its field's path,
    nested as the input is, e.g. {"owner": {"id_number": ["…"]}, "non_field_errors": ["…"]}."""

    non_field_errors = serializers.ListField(child=serializers.CharField(), required=False)


def paginated(serializer: type[serializers.Serializer] | serializers.Serializer, name: str) -> Any:
    """The page ebike_registry.api.Pagination answers for a view that pages by hand: count,
    next/previous links and the page's rows."""
    child = serializer if isinstance(serializer, serializers.Serializer) else serializer()
    return inline_serializer(
        name,
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializers.ListField(child=child),
        },
    )


def _source_may_be_null(field: serializers.Field) -> bool:
    """Whether a model serializer's field reads through a nullable column or relation
    (`unlinked_by`, `report.number` over a nullable foreign key): its value is then null at times
    although the field does not say so (DRF sets allow_null only on fields it builds itself)."""
    model = getattr(getattr(field.parent, "Meta", None), "model", None)
    if model is None or isinstance(field, serializers.ManyRelatedField) or not getattr(field, "source_attrs", None):
        return False
    for name in field.source_attrs:
        try:
            model_field = model._meta.get_field(name)
        except (FieldDoesNotExist, AttributeError):
            return False
        if getattr(model_field, "null", False):
            return True
        model = model_field.related_model
        if model is None:
            return False
    return False


class AutoSchema(BaseAutoSchema):
    def _get_serializer_field_meta(self, field: serializers.Field, direction: str) -> dict[str, Any]:
        meta = super()._get_serializer_field_meta(field, direction)
        if direction == "response" and field.read_only and _source_may_be_null(field):
            meta["nullable"] = True
        return meta

    def map_parsers(self) -> list[Any]:
        """Bodies are documented as JSON, the API's format. A view that keeps DRF's default parsers
        also reads form encodings (where DRF takes an empty optional field as absent), but that is
        not the interface; views that choose their parsers (file uploads) are documented as they are."""
        if list(self.view.parser_classes) == list(api_settings.DEFAULT_PARSER_CLASSES):
            return ["application/json"]
        return super().map_parsers()

    def _get_parameters(self) -> list[dict[str, Any]]:
        parameters = super()._get_parameters()
        for parameter in parameters:
            if parameter.get("in") == "query" and not parameter.get("required"):
                parameter["allowEmptyValue"] = True
        return parameters

    def _get_response_bodies(self, direction: Literal["request", "response"] = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code, (serializer, description) in self._error_responses().items():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(serializer, description), code, direction=direction
                )
        return responses

    def _error_responses(self) -> dict[str, tuple[type[serializers.Serializer], str]]:
        has_body = self.method in ("POST", "PUT", "PATCH")
        has_path_parameters = "{" in self.path
        errors: dict[str, tuple[type[serializers.Serializer], str]] = {}
        if has_body or has_path_parameters or self.method == "GET":
            errors["400"] = (ProblemsSerializer, "The request was refused: every problem, by field.")
        if not all(isinstance(permission, AllowAny) for permission in self.view.get_permissions()):
            errors["401"] = (ErrorSerializer, "No valid credentials were sent.")
            errors["403"] = (ErrorSerializer, "The account's role or duty does not allow this.")
        takes_format = any(p.get("name") == "format" and p.get("in") == "query" for p in self._get_parameters())
        if has_path_parameters or takes_format:
            errors["404"] = (ErrorSerializer, "No such record (or not one this account may see), or no such format.")
        if has_body:
            errors["413"] = (ProblemsSerializer, "The body, a field or a file is over its size limit.")
            errors["415"] = (ErrorSerializer, "The body is not in a media type this operation reads.")
        if self.view.get_throttles():
            errors["429"] = (ErrorSerializer, "Too many requests from this address; try again later.")
        return errors
