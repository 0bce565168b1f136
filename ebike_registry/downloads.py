"""Naming a file the system hands out: one Content-Disposition for every download.

Browsers save a response as a file only on `attachment`, and read a non-ASCII name only from the
RFC 6266 / RFC 5987 `filename*=UTF-8''…` parameter. Django turns a non-ASCII header value into an
RFC 2047 word (`=?utf-8?b?…?=`), which browsers do not take for a disposition: they show the file
inline. So every download (evidence bundles and PDFs, statistics exports) is named here.
"""

import re
import unicodedata
from typing import TypeVar
from urllib.parse import quote

from django.http import HttpResponseBase
from django.utils.http import content_disposition_header

R = TypeVar("R", bound=HttpResponseBase)

_NOT_PLAIN = re.compile(r"[^\x20-\x7e]+|[\"\\]+")  # beyond printable ASCII, or a quote or backslash


def ascii_fallback(filename: str) -> str:
    """The name for clients without RFC 5987: accents dropped, every run of other characters as one "_"."""
    decomposed = unicodedata.normalize("NFKD", filename)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOT_PLAIN.sub("_", stripped).strip() or "download"


def attachment_disposition(filename: str) -> str:
    """`attachment; filename="<ASCII>"`, plus `filename*=UTF-8''<percent-encoded>` when the name is not plain ASCII."""
    fallback = ascii_fallback(filename)
    header = content_disposition_header(True, fallback)
    if fallback != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header


def as_attachment(response: R, filename: str) -> R:
    """Mark `response` as a download saved under `filename`; returns it."""
    response["Content-Disposition"] = attachment_disposition(filename)
    return response
