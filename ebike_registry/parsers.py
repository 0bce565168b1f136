"""The API's JSON parser (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES, and views that list their parsers).

A module of its own: DRF reads DEFAULT_PARSER_CLASSES while rest_framework.views loads, so the
parser must not live in a module that imports the views.
"""

import io
import re
from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _
from rest_framework import exceptions, parsers


def _escaped_nul(raw: bytes) -> bool:
    """Whether a JSON text holds the escape \\u0000 (and not the text "\\u0000" of an escaped backslash)."""
    at = raw.find(b"\\u0000")
    while at != -1:
        start = at
        while start > 0 and raw[start - 1] == 0x5C:  # the backslashes before this one
            start -= 1
        if (at - start) % 2 == 0:  # an even number: this backslash starts an escape
            return True
        at = raw.find(b"\\u0000", at + 1)
    return False


# A \uD800-\uDFFF escape: half of a surrogate pair (an emoji sent as ASCII JSON), or a lone one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _lone_surrogate(data: Any) -> bool:
    """Whether a parsed body holds a string (a key or a value) that is not valid Unicode text: a
    lone surrogate, which no column can store. Walked without recursion."""
    pending = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing with the 400 of any malformed body what it would let through:
    - a body nested past Python's recursion limit ("[[[[…"), a RecursionError (a 500) from a few bytes;
    - a string holding NUL (\\u0000), which PostgreSQL text cannot store, or a lone surrogate, which
      is not text at all: a view handing the raw value to a query (the pings' IMEIs, the estimates'
      township codes) would end in a DataError or an encoding error. Serializer fields refuse both
      on their own; these are the values no serializer reads. Bodies without such an escape (almost
      all) are not walked."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        raw = stream.read()
        if _escaped_nul(raw):
            raise exceptions.ParseError(_("Null characters are not allowed."))
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(_("JSON parse error - the body is nested too deeply.")) from None
        if _SURROGATE_ESCAPE.search(raw) and _lone_surrogate(data):
            raise exceptions.ParseError(_("Surrogate characters are not allowed."))
        return data
