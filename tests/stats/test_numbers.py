"""Numbers a leader can read: rates that are not nothing never read as 0.0%, the registrations table
lists what happened with a total and folds the quiet months, and the exports keep every digit."""

import csv
import io
import re

import pytest
from django.test import Client
from openpyxl import load_workbook

from stats.models import PlateEstimate
from stats.templatetags.stats_tags import percent
from tests.stats.conftest import A, B

pytestmark = pytest.mark.django_db

SIX_MONTHS = {"start": "2026-01-01", "end": "2026-06-30", "granularity": "month"}


def page(user, params=None, language="en"):
    client = Client()
    client.force_login(user)
    response = client.get("/stats/", params or {}, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    return response


def cells_of(html, table_id):
    """The text of every row (body and footer) of one dashboard table, as lists of cell texts."""
    start = html.index(f'aria-labelledby="{table_id}"')
    block = html[start : html.index("</table>", start)]
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", block, re.S)
    ]


def estimate(admin_user, township, bikes, year):
    PlateEstimate.objects.update_or_create(
        township_id=township,
        year=year,
        defaults={"estimated_bikes": bikes, "method": "survey", "entered_by": admin_user},
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "0%"),
        (2 / 5000, "0.04%"),
        (1 / 250_000, "0.0004%"),
        (0.00096, "0.1%"),
        (1 / 6, "16.7%"),
        (0.5, "50.0%"),
        (0.99996, "99.996%"),  # not 100.0% while one bike in 25,000 is missing
        (1, "100.0%"),
    ],
)
def test_percent_has_the_digits_to_be_read(value, shown):
    assert percent(value) == shown


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_two_plated_of_five_thousand_reads_0_04_percent_and_zero_reads_0_percent(county, admin_user, language):
    estimate(admin_user, "130229001", 5000, county["year"])  # 2 plated bikes live there
    estimate(admin_user, "130229102", 800, county["year"])  # none plated
    html = page(admin_user, language=language).content.decode()
    rows = {r[0]: r for r in cells_of(html, "t-plate_rate_townships")[1:]}
    assert (rows["130229001"][2], rows["130229001"][3], rows["130229001"][-1]) == ("2", "5000", "0.04%")
    assert (rows["130229102"][2], rows["130229102"][3], rows["130229102"][-1]) == ("0", "800", "0%")
    assert not re.search(r">0\.0+%<", html)


def test_exports_keep_the_exact_ratio(county, admin_user, admin_api):
    estimate(admin_user, "130229001", 5000, county["year"])
    estimate(admin_user, "130229105", 7, county["year"])  # 3 plated: 3/7 has no short decimal
    url = "/api/v1/stats/plate-rate/townships"
    lines = list(csv.reader(io.StringIO(admin_api.get(url, {"format": "csv"}).content.decode("utf-8-sig"))))
    keys = lines[1]
    rows = {line[0]: dict(zip(keys, line, strict=True)) for line in lines[2:]}
    assert (rows["130229001"]["plated"], rows["130229001"]["estimated"]) == ("2", "5000")
    assert float(rows["130229001"]["rate"]) == 2 / 5000
    assert float(rows["130229105"]["rate"]) == 3 / 7
    sheet = load_workbook(io.BytesIO(admin_api.get(url, {"format": "xlsx"}).content)).active
    values = {row[0]: dict(zip(keys, row, strict=True)) for row in sheet.iter_rows(min_row=3, values_only=True)}
    # A spreadsheet keeps 15-17 significant digits: the ratio to the last one, not rounded for reading.
    assert values["130229001"]["rate"] == 2 / 5000
    assert values["130229105"]["rate"] == pytest.approx(3 / 7, rel=1e-15)
    assert isinstance(values["130229001"]["estimated"], int)  # counts stay numbers a sheet can add up


def test_registrations_table_has_a_total_and_no_all_zero_months(county, admin_user, admin_api):
    response = page(admin_user, SIX_MONTHS)
    html = response.content.decode()
    rows = cells_of(html, "t-registrations")
    header, body, total = rows[0], rows[1:-1], rows[-1]
    assert header[:4] == ["period", "station code", "station", "registrations"]
    # March and April at stations A and B; every row has an event, no month is all zeros.
    assert [(r[0], r[1]) for r in body] == [("2026-03", A), ("2026-03", B), ("2026-04", A), ("2026-04", B)]
    assert all(any(int(v) for v in r[3:7]) for r in body)
    # 7 registrations, 1 deregistration; 6 plates on the road at the end of June.
    assert total[0] == "Total" and total[3:5] == ["7", "1"] and total[-1] == "6"
    assert "<tfoot>" in html  # the total stays at the bottom when a column is sorted
    assert "in 4 other months: 2026-01 to 2026-02, 2026-05 to 2026-06." in html
    # The export still lists every month and station, zeros included, with the exact counts.
    api_rows = admin_api.get("/api/v1/stats/registrations", SIX_MONTHS).json()["rows"]
    assert {r["period"] for r in api_rows} == {f"2026-0{m}-01" for m in range(1, 7)}
    assert sum(r["registered"] for r in api_rows) == 7


def test_registrations_folding_in_chinese(county, admin_user):
    html = page(admin_user, SIX_MONTHS, language="zh-hans").content.decode()
    total = cells_of(html, "t-registrations")[-1]
    assert total[0] == "合计"
    assert "其余 4 个月无登记、注销、过户或补换牌：2026-01 至 2026-02、2026-05 至 2026-06。" in html


def test_a_period_without_any_registration_says_so(county, admin_user):
    html = page(admin_user, {"start": "2025-01-01", "end": "2025-12-31"}).content.decode()
    assert 'aria-labelledby="t-registrations"' not in html
    assert "other months" not in html
