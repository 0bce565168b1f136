"""Checks for the identifiers a counter handles: resident ID, credit code, phone, frame number.

Each `*_problem` function returns None for a valid value, or a message naming what is wrong, so a
form can report every problem at once (一次性告知) instead of stopping at the first.
"""

import datetime
import re
import unicodedata

from django.utils import timezone
from django.utils.translation import gettext as _
from stdnum.cn import uscc
from stdnum.exceptions import ValidationError as StdnumError

RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
RESIDENT_ID_CHECK = "10X98765432"
RESIDENT_ID_RE = re.compile(r"^\d{17}[\dX]$")
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
# Standard e-bike frame number: 4-digit maker, type digit 2, 2-digit year, 8-digit serial.
FRAME_STANDARD_RE = re.compile(r"^\d{4}2\d{2}\d{8}$")
# Non-standard bikes carry a 17-character VIN-style code (no I, O, Q).
FRAME_VIN_RE = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
MOTOR_NUMBER_RE = re.compile(r"^[A-Z0-9\-]{4,30}$")


# Characters no name, address or description needs, which change how text displays or compares:
# controls (Cc: NUL, tab, newline …), format characters (Cf: right-to-left override U+202E, the bidi
# isolates, zero-width space and joiners, soft hyphen, BOM), private-use, surrogate and unassigned
# code points, line and paragraph separators.
HIDDEN_CHARACTER_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})


def normalize_text(value: str) -> str:
    """A person's name or other free text as stored: Unicode NFC, outer spaces removed."""
    return unicodedata.normalize("NFC", value).strip()


def text_problem(value: str) -> str | None:
    """Refuse text with control or invisible formatting characters: a name with a right-to-left
    override or a zero-width space looks like another person's on screen and in a search."""
    if any(unicodedata.category(char) in HIDDEN_CHARACTER_CATEGORIES for char in value):
        return _(
            "Remove the control or invisible characters (such as a right-to-left override or a zero-width "
            "space) from this field."
        )
    return None


def normalize_id_number(value: str) -> str:
    return value.strip().upper().replace(" ", "")


def normalize_phone(value: str) -> str:
    digits = re.sub(r"[\s\-]", "", value.strip())
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits = digits[len(prefix) :]
    return digits


def normalize_code(value: str) -> str:
    return re.sub(r"\s", "", value).upper()


def resident_id_check_char(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, RESIDENT_ID_WEIGHTS, strict=True))
    return RESIDENT_ID_CHECK[total % 11]


def resident_id_birth_date(number: str) -> datetime.date | None:
    try:
        return datetime.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None


def resident_id_problem(value: str) -> str | None:
    number = normalize_id_number(value)
    if len(number) == 15 and number.isdigit():
        return _("Old 15-digit ID numbers are not accepted for new records; use the 18-digit number.")
    if not RESIDENT_ID_RE.match(number):
        return _("A resident ID number has 18 characters: 17 digits and a check digit or X.")
    birth = resident_id_birth_date(number)
    if birth is None or birth.year < 1850 or birth > timezone.localdate():
        return _("The birth date in the ID number (characters 7-14) is not a valid date.")
    if resident_id_check_char(number[:17]) != number[17]:
        return _("The check digit of the ID number is wrong; please re-read the ID card.")
    return None


def credit_code_problem(value: str) -> str | None:
    try:
        uscc.validate(normalize_code(value))
    except StdnumError:
        return _("Not a valid unified social credit code (18 characters with a check character).")
    return None


def phone_problem(value: str) -> str | None:
    if not PHONE_RE.match(normalize_phone(value)):
        return _("A mobile number has 11 digits and starts with 13-19.")
    return None


def frame_number_problem(value: str) -> str | None:
    number = normalize_code(value)
    if FRAME_STANDARD_RE.match(number) or FRAME_VIN_RE.match(number):
        return None
    return _(
        "A frame number has 15 digits (maker code, type digit 2, year, serial) or, for a "
        "non-standard bike, 17 letters and digits."
    )


def motor_number_problem(value: str) -> str | None:
    if not MOTOR_NUMBER_RE.match(normalize_code(value)):
        return _("A motor number has 4-30 letters, digits or hyphens.")
    return None


def mask_id_number(value: str) -> str:
    """130229198503151230 -> 130229********1230 (first 6 and last 4 kept)."""
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_phone(value: str) -> str:
    """13812345678 -> 138****5678."""
    if len(value) < 8:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]
