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

# Escapes that may hide text no column can store: \u0000 (NUL: PostgreSQL text cannot hold it) and
# \uD800-\uDFFF (half of a surrogate pair, as an emoji is sent in ASCII JSON, or a lone one). Only a
# body holding one is walked; an escaped backslash before "u0000" is found by the walk to be text.
_SUSPECT_ESCAPE = re.compile(rb"\\u(0000|[dD][89a-fA-F])")


def _unstorable_text(data: Any) -> str | None:
    """Why a parsed body's strings (keys and values) cannot be stored: a NUL, or a lone surrogate,
    which is not text at all; None when every string can. Walked without recursion."""
    pending = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return _("Null characters are not allowed.")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return _("Surrogate characters are not allowed.")
    return None


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
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(_("JSON parse error - the body is nested too deeply.")) from None
        problem = _unstorable_text(data) if _SUSPECT_ESCAPE.search(raw) else None
        if problem is not None:
            raise exceptions.ParseError(problem)
        return data
