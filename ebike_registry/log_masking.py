"""Keep resident ID numbers, phones and owner names out of log lines.

Searches by ID number or phone are GET requests (`/search/?id_number=…`,
`GET /api/v1/vehicles?phone=…`), so the request line, and the Referer of the page that follows,
would carry them into the web server's access log, which is kept and read outside the audit trail.
`mask_personal` masks the values of the personal query parameters and anything shaped like an ID
number or a mobile number, as the pages mask them for clerks (130229********1230, 138****5678).
Gunicorn uses `AccessLogMasker` (`--logger-class`), Django's own loggers the `MaskPersonalData`
filter on the console handler (settings.LOGGING).
"""

import logging
import re
from collections.abc import MutableMapping
from typing import Any

from gunicorn.glogging import Logger

# Query parameters whose whole value is personal, whatever it looks like. They are also found
# percent-encoded inside another parameter (the sign-in page's `next=/search/%3Fphone%3D…`).
PERSONAL_PARAMS = ("id_number", "owner_id_number", "phone", "reporter_phone", "owner_name", "reporter_name")
_PARAM = re.compile(
    r"(?P<key>(?:^|[?&;]|%3F|%26)(?:" + "|".join(PERSONAL_PARAMS) + r")(?:=|%3D))"
    r"(?P<value>(?:(?!%26)[^&;\s\"'])*)",
    re.IGNORECASE,
)
# 18-character resident ID numbers (GB 11643) and mainland mobile numbers, not inside longer digit runs.
_ID_NUMBER = re.compile(r"(?<!\d)(\d{6})\d{8}(\d{3}[\dXx])(?![\dXx])")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def _mask_value(match: re.Match[str]) -> str:
    value = match.group("value")
    return match.group("key") + ("***" if value else "")


def mask_personal(text: str) -> str:
    text = _PARAM.sub(_mask_value, text)
    text = _ID_NUMBER.sub(r"\1********\2", text)
    return _MOBILE.sub(r"\1****\2", text)


class MaskPersonalData(logging.Filter):
    """A logging filter that rewrites a record's message with `mask_personal`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_personal(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


class AccessLogMasker(Logger):
    """Gunicorn's logger, with every text the access log line may show (request line, query,
    Referer, headers) passed through `mask_personal`."""

    def atoms(  # type: ignore[override]  # the stubs' TypedDict lacks the atoms of each header ("{referer}i")
        self, resp: Any, req: Any, environ: MutableMapping[str, Any], request_time: Any
    ) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: mask_personal(value) if isinstance(value, str) else value for key, value in atoms.items()}
