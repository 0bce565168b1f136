"""/api/v1/stats/…: admin only, the same figures as the selectors, CSV/xlsx equal to the JSON,
bad parameters and bad estimate uploads refused with the row and field named."""

import csv
import io

import pytest
from openpyxl import load_workbook
from rest_framework.test import APIClient

from stats.models import PlateEstimate
from tests import factories
from tests.stats import builders as b
from tests.stats.conftest import A, B

pytestmark = pytest.mark.django_db

PERIOD = {"start": "2026-03-01", "end": "2026-04-30"}
TABLE_URLS = [
    "/api/v1/stats/plate-rate/townships",
    "/api/v1/stats/plate-rate/stations",
    "/api/v1/stats/registrations",
    "/api/v1/stats/thefts",
    "/api/v1/stats/alarms",
    "/api/v1/stats/cases",
    "/api/v1/stats/rescues",
    "/api/v1/stats/hotspots",
    "/api/v1/stats/estimates",
]


@pytest.mark.parametrize("role", ["clerk", "officer", "owner"])
@pytest.mark.parametrize("url", TABLE_URLS)
def test_only_admins(role, url):
    client = APIClient()
    assert client.get(url).status_code == 403  # anonymous
    client.force_authenticate(factories.user(role, station_code=None if role == "owner" else "13022901"))
    assert client.get(url).status_code == 403


def test_superuser_allowed(db):
    from accounts.models import User

    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("root", password="correct-horse-battery-9"))
    assert client.get("/api/v1/stats/thefts").status_code == 200


def test_estimate_writes_are_admin_only(officer_api):
    body = {"township_code": "130229001", "year": 2026, "estimated_bikes": 5, "method": "survey"}
    assert officer_api.post("/api/v1/stats/estimates", body, format="json").status_code == 403
    assert not PlateEstimate.objects.exists()


def test_thefts_json(county, admin_api):
    data = admin_api.get("/api/v1/stats/thefts", PERIOD).json()
    rows = {(r["month"], r["station"]): r for r in data["rows"]}
    assert (rows[("2026-03", A)]["reported"], rows[("2026-03", A)]["recovery_rate"]) == (4, 0.75)
    assert rows[(None, None)]["median_days_to_recovery"] == 3.0
    assert data["period"] == PERIOD
    station_only = admin_api.get("/api/v1/stats/thefts", {**PERIOD, "station": B}).json()["rows"]
    assert {r["station"] for r in station_only} == {B, None}


def _csv(response):
    text = response.content.decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    keys = lines[1]
    return [dict(zip(keys, line, strict=True)) for line in lines[2:]]


def _xlsx(response):
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = list(sheet.iter_rows(values_only=True))
    keys = values[1]
    return [dict(zip(keys, row, strict=True)) for row in values[2:]]


def _plain(value):
    return "" if value is None else str(value)


@pytest.mark.parametrize("url", TABLE_URLS[:-1])
def test_csv_and_xlsx_hold_the_api_figures(county, admin_api, admin_user, url):
    term = b.terminal(county["bikes"]["a2"])
    b.alarm(term=term, kind="sos", when="2026-03-03 10:00")
    b.alarm(term=term, kind="power_cut", when="2026-04-03 10:00")
    b.rescue(vehicle=county["bikes"]["a2"], raised="2026-03-03 10:00", answered="2026-03-03 10:03")
    b.case(approver=admin_user, station=A, filed_on="2026-03-15", reports=[county["reports"]["r1"]], status="solved")
    params = {**PERIOD, "cell_m": 1000} if "plate-rate" not in url else {}
    data = admin_api.get(url, params).json()
    records = [f["properties"] for f in data["features"]] if "features" in data else data["rows"]
    keys = [c["key"] for c in data["columns"]]
    assert records, url

    response = admin_api.get(url, {**params, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    assert _csv(response) == [{k: _plain(r[k]) for k in keys} for r in records]

    response = admin_api.get(url, {**params, "format": "xlsx"})
    assert response.status_code == 200
    assert response.content[:2] == b"PK"
    assert _xlsx(response) == [{k: (None if r[k] == "" else r[k]) for k in keys} for r in records]  # Excel has no ""


def test_export_headers_are_the_translated_labels(county, admin_api, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    response = admin_api.get("/api/v1/stats/plate-rate/townships", {"format": "csv"}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    header = response.content.decode("utf-8-sig").splitlines()[0].split(",")
    labels = [c["label"] for c in admin_api.get("/api/v1/stats/plate-rate/townships").json()["columns"]]
    assert header == labels


def test_hotspots_geojson(county, admin_api):
    data = admin_api.get("/api/v1/stats/hotspots", {**PERIOD, "cell_m": 1000}).json()
    assert data["type"] == "FeatureCollection"
    assert [(f["id"], f["properties"]["reports"]) for f in data["features"]] == [("560:4415", 3), ("565:4410", 1)]
    assert data["features"][0]["geometry"]["type"] == "Polygon"
    assert (
        admin_api.get("/api/v1/stats/hotspots", {**PERIOD, "cell_m": 1000, "limit": 1}).json()["features"][0]["id"]
        == "560:4415"
    )


@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [
        ({"start": "2026-05-01", "end": "2026-04-01"}, "end", "before the start date"),
        ({"start": "1900-01-01", "end": "2026-04-01"}, "start", "cannot start before"),
        ({"start": "2001-01-01", "end": "2026-04-01"}, "end", "longer than ten years"),
        ({"start": "2026-02-30"}, "start", "YYYY-MM-DD"),
        ({"end": "2999-01-01"}, "end", "more than a year from today"),
        ({"end": "0001-01-01"}, "end", "cannot end before 2000-01-01"),
        ({"start": "9999-12-31"}, "start", "cannot start more than a year from today"),
        ({"station": "99999999"}, "station", "Unknown station 99999999"),
        ({"granularity": "hour"}, "granularity", "day, week or month"),
        ({"start": "2024-01-01", "end": "2026-01-01", "granularity": "day"}, "granularity", "at most a year"),
        ({"cell_m": "5"}, "cell_m", "between 100 and 5000"),
        ({"cell_m": "big"}, "cell_m", "whole number"),
    ],
)
def test_bad_parameters(admin_api, params, field, fragment):
    url = "/api/v1/stats/hotspots" if "cell_m" in params else "/api/v1/stats/registrations"
    response = admin_api.get(url, params)
    assert response.status_code == 400
    assert fragment in " ".join(response.json()[field])


@pytest.mark.parametrize("table", ["alarms", "cases", "rescues", "thefts", "registrations", "hotspots"])
@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [
        # With no start, the period starts at its end: the day before 0001-01-01 overflowed (a 500).
        ({"end": "0001-01-01"}, "end", "cannot end before 2000-01-01"),
        # With no end, the period ends at its start: the day after 9999-12-31 overflowed (a 500).
        ({"start": "9999-12-31"}, "start", "cannot start more than a year from today"),
    ],
)
def test_a_period_at_the_edge_of_the_calendar_is_a_400_on_every_table(admin_api, table, params, field, fragment):
    response = admin_api.get(f"/api/v1/stats/{table}", params)
    assert response.status_code == 400
    assert fragment in " ".join(response.json()[field])


def test_bad_year(admin_api):
    response = admin_api.get("/api/v1/stats/plate-rate/townships", {"year": "20x6"})
    assert response.status_code == 400 and "year" in response.json()


def test_estimate_set_and_replace(admin_api, admin_user):
    body = {"township_code": "130229001", "year": 2026, "estimated_bikes": 5000, "method": "survey", "note": "摸底"}
    response = admin_api.post("/api/v1/stats/estimates", body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["source"] == "api"
    admin_api.post("/api/v1/stats/estimates", {**body, "estimated_bikes": 5200, "method": "per_capita"}, format="json")
    estimate = PlateEstimate.objects.get()
    assert (estimate.estimated_bikes, estimate.method, estimate.entered_by) == (5200, "per_capita", admin_user)
    listed = admin_api.get("/api/v1/stats/estimates", {"year": 2026}).json()
    assert [(e["township_code"], e["estimated_bikes"]) for e in listed] == [("130229001", 5200)]


def test_estimate_every_problem_at_once(admin_api):
    body = {"township_code": "999", "year": 1800, "estimated_bikes": 0, "method": "guess"}
    response = admin_api.post("/api/v1/stats/estimates", body, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"township_code", "year", "estimated_bikes", "method"}
    assert not PlateEstimate.objects.exists()


def _upload(client, text, name="estimates.csv"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        "/api/v1/stats/estimates/import",
        {"file": SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")},
        format="multipart",
    )


def test_csv_import(admin_api, admin_user):
    PlateEstimate.objects.create(
        township_id="130229001", year=2026, estimated_bikes=1, method="other", entered_by=admin_user
    )
    text = (
        "\ufefftownship_code,year,estimated_bikes,method,note\n"
        "130229001,2026,12000,survey,2026 摸底\n"
        '130229105,2026,"8,500",per_capita,\n'
        "\n"
        "130229201,2025,3000,prior_year,\n"
    )
    response = _upload(admin_api, text)
    assert response.status_code == 200, response.json()
    assert response.json() == {"created": 2, "updated": 1}
    got = {(e.township_id, e.year): (e.estimated_bikes, e.method, e.source) for e in PlateEstimate.objects.all()}
    assert got == {
        ("130229001", 2026): (12000, "survey", "csv"),
        ("130229105", 2026): (8500, "per_capita", "csv"),
        ("130229201", 2025): (3000, "prior_year", "csv"),
    }


def test_csv_import_with_bad_rows_changes_nothing(admin_api, admin_user):
    PlateEstimate.objects.create(
        township_id="130229001", year=2026, estimated_bikes=1, method="other", entered_by=admin_user
    )
    text = (
        "township_code,year,estimated_bikes,method,note\n"
        "130229001,2026,12000,survey,\n"  # fine, but the file is refused as a whole
        "130229999,2026,100,survey,\n"  # row 3: unknown township
        "130229105,twenty,-5,guess,\n"  # row 4: year, estimate and method
        "130229001,2026,500,survey,\n"  # row 5: same township and year as row 2
    )
    response = _upload(admin_api, text)
    assert response.status_code == 400
    errors = response.json()["rows"]
    assert set(errors) == {"3", "4", "5"}
    assert "Unknown township 130229999" in errors["3"]["township_code"][0]
    assert set(errors["4"]) == {"year", "estimated_bikes", "method"}
    assert "also on row 2" in errors["5"]["township_code"][0]
    estimate = PlateEstimate.objects.get()
    assert (estimate.estimated_bikes, estimate.method) == (1, "other")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"\xff\xfe\x00bad", "not UTF-8"),
        (b"township,year\n130229001,2026\n", "lacks the columns"),
        (b"township_code,year,estimated_bikes,method\n", "no rows"),
        (
            b'township_code,year,estimated_bikes,method,note\n130229001,2026,100,other,"' + b"x" * 200_000 + b'"\n',
            "Line 2 cannot be read as CSV (field larger than field limit",
        ),
        (b"township_code,year,estimated_bikes,method\n" + b"130229001,2026,100,other\n" * 80_000, "larger than"),
    ],
)
def test_csv_import_unreadable_files(admin_api, content, fragment):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = admin_api.post(
        "/api/v1/stats/estimates/import", {"file": SimpleUploadedFile("e.csv", content)}, format="multipart"
    )
    assert response.status_code == 400
    assert fragment in response.json()["file"][0]
    assert not PlateEstimate.objects.exists()


def test_import_without_a_file(admin_api):
    response = admin_api.post("/api/v1/stats/estimates/import", {}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()


def test_openapi_schema_lists_the_stats_endpoints(admin_api):
    schema = admin_api.get("/api/schema/", {"format": "json"}).json()
    paths = set(schema["paths"])
    for url in [*TABLE_URLS, "/api/v1/stats/estimates/import"]:
        assert url in paths, url


def test_estimate_as_form_data_and_bad_limit(admin_api):
    body = {"township_code": "130229102", "year": "2026", "estimated_bikes": "7000", "method": "survey"}
    response = admin_api.post("/api/v1/stats/estimates", body, format="multipart")
    assert response.status_code == 200, response.json()
    assert PlateEstimate.objects.get().estimated_bikes == 7000
    assert admin_api.post("/api/v1/stats/estimates", [1, 2], format="json").status_code == 400
    assert "limit" in admin_api.get("/api/v1/stats/hotspots", {"limit": "0"}).json()


def test_the_pages_export_links_give_the_pages_figures(county, admin_user):
    """What an admin downloads from the dashboard (logged in to the site, no API token) holds the
    rows the page shows, in both formats."""
    from django.test import Client

    client = Client()
    client.force_login(admin_user)
    page = client.get("/stats/", {**PERIOD, "cell_m": 1000})
    tables = page.context["tables"]
    exports = page.context["exports"]
    for name, table in tables.items():
        keys = [key for key, _label in table.columns]
        csv_rows = _csv(client.get(exports[name]["csv"]))
        assert csv_rows == [{k: _plain(r[k]) for k in keys} for r in table.rows], name
        xlsx_rows = _xlsx(client.get(exports[name]["xlsx"]))
        assert xlsx_rows == [{k: (None if r[k] == "" else r[k]) for k in keys} for r in table.rows], name
    hotspots = _csv(client.get(exports["hotspots"]["csv"]))
    shown = [f["properties"] for f in page.context["hotspot_rows"]]
    assert hotspots == [
        {k: _plain(p[k]) for k in ("rank", "cell", "reports", "centre_lat", "centre_lon")} for p in shown
    ]


@pytest.mark.parametrize(
    "content_type",
    ["", "text/csv", "multipart/form-data; boundary=91c1546bba3276e116fcf4cc9a4c5852"],
)
def test_a_body_the_api_cannot_read_is_refused_as_documented(admin_api, content_type):
    """A body with no media type, one the import does not read, or a garbled multipart body, as a
    fuzzer sent them: refused with a status the schema documents, nothing imported."""
    body = b"--91c1546bba3276e116fcf4cc9a4c5852\r\n7\xc3\x8b\r\x19\t--91c1546bba3276e116fcf4cc9a4c5852--\r\n"
    response = admin_api.generic("POST", "/api/v1/stats/estimates/import", body, content_type=content_type)
    assert response.status_code in (400, 415), response.content
    schema = admin_api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    documented = schema["paths"]["/api/v1/stats/estimates/import"]["post"]["responses"]
    assert str(response.status_code) in documented, (response.status_code, sorted(documented))
    assert not PlateEstimate.objects.exists()
