"""Writing plate-rate estimates: one at a time (form, API) or a CSV file, all or nothing."""

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.audit import audit_record
from accounts.models import Township, User
from ebike_registry.problems import Problems
from stats.models import EstimateMethod, PlateEstimate

CSV_COLUMNS = ["township_code", "year", "estimated_bikes", "method", "note"]
MAX_CSV_ROWS = 5000
MAX_CSV_BYTES = 2_000_000  # 5,000 rows with long notes; read at most one byte more to tell
MAX_ESTIMATE = 10_000_000


def estimate_problems(values: dict[str, Any], *, prefix: str = "") -> Problems:
    """Every problem with one estimate's values (strings or parsed), keyed by `prefix + field`."""
    problems = Problems()
    code = str(values.get("township_code") or "").strip()
    if not code:
        problems.add(prefix + "township_code", _("Enter the township's 9-digit code."))
    elif not Township.objects.filter(code=code).exists():
        problems.add(prefix + "township_code", _("Unknown township %(code)s.") % {"code": code[:20]})
    try:
        year = int(str(values.get("year", "")).strip())
    except ValueError:
        problems.add(prefix + "year", _("The year is a number such as 2026."))
    else:
        if not 2000 <= year <= 2100:
            problems.add(prefix + "year", _("The year is between 2000 and 2100."))
    try:
        bikes = int(str(values.get("estimated_bikes", "")).strip().replace(",", ""))
    except ValueError:
        problems.add(prefix + "estimated_bikes", _("The estimate is a whole number of bikes."))
    else:
        if not 1 <= bikes <= MAX_ESTIMATE:
            problems.add(prefix + "estimated_bikes", _("The estimate is between 1 and 10,000,000 bikes."))
    method = str(values.get("method") or "").strip()
    if method not in EstimateMethod.values:
        problems.add(
            prefix + "method",
            _("The method is one of: %(choices)s.") % {"choices": ", ".join(EstimateMethod.values)},
        )
    if len(str(values.get("note") or "")) > 200:
        problems.add(prefix + "note", _("The note is at most 200 characters."))
    return problems


def _save(*, user: User, values: dict[str, Any], source: str) -> tuple[PlateEstimate, bool]:
    return PlateEstimate.objects.update_or_create(
        township_id=str(values["township_code"]).strip(),
        year=int(str(values["year"]).strip()),
        defaults={
            "estimated_bikes": int(str(values["estimated_bikes"]).strip().replace(",", "")),
            "method": str(values["method"]).strip(),
            "note": str(values.get("note") or "").strip(),
            "source": source,
            "entered_by": user,
        },
    )


def estimate_set(*, user: User, values: dict[str, Any], source: str = PlateEstimate.Source.FORM) -> PlateEstimate:
    """Create or replace the estimate for (township, year)."""
    estimate_problems(values).raise_if_any()
    with transaction.atomic():
        estimate, created = _save(user=user, values=values, source=source)
        audit_record(
            user=user,
            action="stats.estimate_set",
            object_type="plate_estimate",
            object_id=estimate.pk,
            query={"township": estimate.township_id, "year": estimate.year, "created": created},
        )
    return estimate


@dataclass
class ImportResult:
    created: int
    updated: int


def _csv_rows(reader: csv.DictReader) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows with their line numbers (the header is line 1); a line the csv module cannot read
    (a field over its 128 KB limit …) refused with its number."""
    line = 1
    try:
        for line, row in enumerate(reader, start=2):
            yield line, row
    except csv.Error as exc:
        raise ValidationError(
            {"file": [_("Line %(line)s cannot be read as CSV (%(error)s).") % {"line": line + 1, "error": exc}]}
        ) from None


def estimates_import_csv(*, user: User, data: bytes) -> ImportResult:
    """Import a CSV (UTF-8, with or without BOM; header township_code,year,estimated_bikes,method[,note]).

    Every bad row is reported at once under "rows.N.<field>", N being the file's line number (the
    header is line 1); one bad row and nothing is written. A township and year twice is an error.
    """
    problems = Problems()
    if len(data) > MAX_CSV_BYTES:
        raise ValidationError({"file": [_("The file is larger than %(n)s bytes.") % {"n": f"{MAX_CSV_BYTES:,}"}]})
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError({"file": [_("The file is not UTF-8 text; save it as CSV UTF-8.")]}) from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in CSV_COLUMNS[:4] if c not in header]
    if missing:
        raise ValidationError({"file": [_("The header lacks the columns: %(cols)s.") % {"cols": ", ".join(missing)}]})
    reader.fieldnames = header
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], int] = {}
    for line, row in _csv_rows(reader):
        if len(rows) >= MAX_CSV_ROWS:
            raise ValidationError({"file": [_("At most %(n)s rows per file.") % {"n": MAX_CSV_ROWS}]})
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # blank line
        prefix = f"rows.{line}."
        problems.merge(estimate_problems(row, prefix=prefix).by_field)
        key = ((row.get("township_code") or "").strip(), (row.get("year") or "").strip())
        if key in seen:
            problems.add(
                prefix + "township_code",
                _("Township %(code)s, year %(year)s is also on row %(other)s.")
                % {"code": key[0], "year": key[1], "other": seen[key]},
            )
        seen.setdefault(key, line)
        rows.append(row)
    if not rows and not problems:
        raise ValidationError({"file": [_("The file has no rows.")]})
    problems.raise_if_any()
    created = updated = 0
    with transaction.atomic():
        for row in rows:
            _estimate, was_created = _save(user=user, values=row, source=PlateEstimate.Source.CSV)
            created += was_created
            updated += not was_created
        audit_record(
            user=user,
            action="stats.estimates_import",
            object_type="plate_estimate",
            query={"created": created, "updated": updated},
        )
    return ImportResult(created=created, updated=updated)
