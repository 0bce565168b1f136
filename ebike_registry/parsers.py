"""The API's JSON parser (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES, and views that list their parsers).

A module of its own: DRF reads DEFAULT_PARSER_CLASSES while rest_framework.views loads, so the
parser must not live in a module that imports the views.
"""

import io
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


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing with the 400 of any malformed body what it would let through:
    - a body nested past Python's recursion limit ("[[[[…"), a RecursionError (a 500) from a few bytes;
    - a string holding NUL (\\u0000), which PostgreSQL text cannot store: a view handing the raw
      value to a query (the pings' IMEIs, the estimates' township codes) would end in a DataError."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        raw = stream.read()
        if _escaped_nul(raw):
            raise exceptions.ParseError(_("Null characters are not allowed."))
        try:
            return super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(_("JSON parse error - the body is nested too deeply.")) from None
