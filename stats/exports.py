"""CSV and Excel renderings of a statistics table: the same rows the JSON answer carries.

Both are DRF renderers, so `?format=csv` / `?format=xlsx` on any /api/v1/stats/ table (and the
dashboard's export links, which point there) give exactly the API's figures.
"""

import csv
import io
from typing import Any

from openpyxl import Workbook
from rest_framework.renderers import BaseRenderer


def table_rows(data: Any) -> tuple[list[str], list[str], list[list[Any]]] | None:
    """(keys, labels, rows) of a table answer or a hotspot FeatureCollection; None for errors."""
    if not isinstance(data, dict) or "columns" not in data:
        return None
    keys = [c["key"] for c in data["columns"]]
    labels = [c["label"] for c in data["columns"]]
    features = data.get("type") == "FeatureCollection"
    records = [f["properties"] for f in data["features"]] if features else data["rows"]
    return keys, labels, [[record.get(key) for key in keys] for record in records]


# A text cell starting with one of these is read by spreadsheets as a formula (or, tab and CR, lets
# one begin after them): a station or alarm name such as =HYPERLINK(…) would run on the reader's
# machine. Numbers are written as numbers and never neutralised.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def is_formula_like(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_TRIGGERS)


def csv_safe(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as the text it is: formula-like text gets a leading apostrophe."""
    if value is None:
        return ""
    return "'" + value if is_formula_like(value) else value


def _error_lines(data: Any) -> list[list[str]]:
    return [["error", str(data)]]


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out)
        table = table_rows(data)
        if table is None:
            writer.writerows(_error_lines(data))
        else:
            keys, labels, rows = table
            writer.writerow([csv_safe(v) for v in labels])
            writer.writerow(keys)
            writer.writerows([csv_safe(v) for v in row] for row in rows)
        # A BOM so that Excel opens the Chinese headers as UTF-8.
        return ("\ufeff" + out.getvalue()).encode("utf-8")


def _append(sheet: Any, row: int, values: list[Any]) -> None:
    """Append row `row`; formula-like text is stored as a text cell (never a formula) marked with
    Excel's quote prefix, so that editing the cell does not turn it into one either. Only those
    cells are looked up again, by their coordinates: reading back the whole row (`sheet[row]`)
    scans every cell of the sheet, which made a daily table's export take seconds."""
    sheet.append(values)
    for column, value in enumerate(values, start=1):
        if is_formula_like(value):  # every text openpyxl would make a formula starts with "="
            cell = sheet.cell(row=row, column=column)
            cell.data_type = "s"
            cell.quotePrefix = True


class XLSXRenderer(BaseRenderer):
    media_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    format = "xlsx"
    charset = None
    render_style = "binary"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        book = Workbook()
        sheet = book.worksheets[0]  # the one sheet of a new workbook
        sheet.title = str((data or {}).get("table", "stats"))[:31] if isinstance(data, dict) else "error"
        table = table_rows(data)
        lines = _error_lines(data) if table is None else [table[1], table[0], *table[2]]  # labels, keys, rows
        for number, line in enumerate(lines, start=1):
            _append(sheet, number, line)
        if table is not None:
            sheet.freeze_panes = "A3"
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()


def export_filename(data: Any, fmt: str) -> str:
    name = data.get("table", "stats") if isinstance(data, dict) else "stats"
    period = data.get("period") if isinstance(data, dict) else None
    suffix = f"_{period['start']}_{period['end']}" if period else ""
    return f"{name}{suffix}.{fmt}"
