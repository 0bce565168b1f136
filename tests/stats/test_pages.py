"""The admin pages: who may open them, what they show, the estimate form and CSV upload."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from stats.models import PlateEstimate
from tests import factories
from tests.stats import builders
from tests.stats.conftest import cell_point

pytestmark = pytest.mark.django_db


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("url", ["/stats/", "/stats/estimates/"])
def test_pages_are_admin_only(url):
    assert Client().get(url).status_code == 302  # to the login page
    for role in ("clerk", "officer"):
        assert client_for(factories.user(role)).get(url).status_code == 403
    assert client_for(factories.user("owner", station_code=None)).get(url).status_code == 403


def test_dashboard_shows_the_figures(county, admin_user):
    response = client_for(admin_user).get("/stats/", {"start": "2026-03-01", "end": "2026-04-30", "cell_m": "1000"})
    assert response.status_code == 200
    html = response.content.decode()
    tables = response.context["tables"]
    townships = {r["township"]: r for r in tables["townships"].rows}
    assert (townships["130229001"]["plated"], townships["130229001"]["rate"]) == (2, 0.5)
    assert "50.0%" in html
    assert "unknown" in html  # 130229201 has no estimate
    assert [(f["id"], f["properties"]["reports"]) for f in response.context["hotspots"]["features"]] == [
        ("560:4415", 3),
        ("565:4410", 1),
    ]
    # Charts get the county totals; Chart.js is served from our own static files.
    charts = response.context["charts"]
    assert charts["thefts"]["labels"] == ["2026-03", "2026-04"]
    assert (charts["thefts"]["reported"], charts["thefts"]["recovered"]) == ([4, 1], [3, 1])
    assert "vendor/chart.js/chart.min.js" in html and "cdn" not in html.lower()
    # Export links carry the same filters to the API.
    assert "/api/v1/stats/thefts?start=2026-03-01&amp;end=2026-04-30&amp;cell_m=1000&amp;format=csv" in html
    assert html.count('class="list sortable"') == 6  # alarms and rescues: none in this county
    assert html.count("Nothing in this period.") == 2


def test_dashboard_in_chinese(county, admin_user, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    html = client_for(admin_user).get("/stats/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert 'lang="zh-hans"' in html
    for text in ("各乡镇上牌率", "各派出所辖区上牌率", "上牌率", "未知", "被盗热点", "导出"):
        assert text in html, text


def test_hotspot_map_draws_every_cell_the_table_lists_the_busiest(admin_user):
    """The map gets every cell of the period (the table and its export only the 20 busiest)."""
    officer = factories.user("officer")
    for k in range(24):  # 24 cells; cell k gets k // 8 + 1 reports
        for _ in range(k // 8 + 1):
            point = cell_point(560 + k, 4400)
            builders.report(officer=officer, station="13022901", received="2026-04-10 10:00", point=point)
    response = client_for(admin_user).get("/stats/", {"start": "2026-04-01", "end": "2026-04-30", "cell_m": "1000"})
    html = response.content.decode()
    cells = response.context["hotspot_map"]["cells"]["features"]
    assert len(cells) == 24
    assert sorted(f["properties"]["reports"] for f in cells) == [1] * 8 + [2] * 8 + [3] * 8
    assert [f["id"] for f in cells[:3]] == ["576:4400", "577:4400", "578:4400"]  # busiest first, then by x
    assert len(response.context["hotspot_rows"]) == 20
    assert 'id="hotspot-map-data"' in html and 'data-cells="24"' in html
    assert "vendor/leaflet/leaflet.js" in html and "stats/hotspots.js" in html
    assert "limit=20" in html  # the table's export holds what the table shows


def test_dashboard_bad_filters_are_shown_and_defaults_used(admin_user):
    response = client_for(admin_user).get("/stats/", {"start": "2026-05-01", "end": "2026-04-01", "station": "nope"})
    assert response.status_code == 200
    form = response.context["form"]
    assert "before the start date" in form.errors["end"][0]
    assert any("Unknown station nope" in e for e in form.errors["station"])
    assert response.context["filters"].station is None  # the defaults are shown meanwhile


def test_estimate_form(admin_user):
    client = client_for(admin_user)
    response = client.post(
        "/stats/estimates/",
        {"township_code": "130229105", "year": "2026", "estimated_bikes": "9000", "method": "survey", "note": ""},
    )
    assert response.status_code == 302
    estimate = PlateEstimate.objects.get()
    assert (estimate.township_id, estimate.estimated_bikes, estimate.source) == ("130229105", 9000, "form")
    response = client.post(
        "/stats/estimates/", {"township_code": "130229105", "year": "1999", "estimated_bikes": "0", "method": "x"}
    )
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"year", "estimated_bikes", "method"}


def test_estimate_upload_errors_name_row_and_field(admin_user):
    client = client_for(admin_user)
    text = "township_code,year,estimated_bikes,method\n130229001,2026,100,survey\n130229001,2026,abc,survey\n"
    response = client.post("/stats/estimates/", {"file": SimpleUploadedFile("e.csv", text.encode())})
    assert response.status_code == 200
    problems = response.context["upload_errors"]
    assert any(p.startswith("Row 3, estimated_bikes:") for p in problems)
    assert any(p.startswith("Row 3, township_code:") and "also on row 2" in p for p in problems)
    assert not PlateEstimate.objects.exists()
    ok = "township_code,year,estimated_bikes,method\n130229001,2026,100,survey\n"
    response = client.post("/stats/estimates/", {"file": SimpleUploadedFile("e.csv", ok.encode())})
    assert response.status_code == 302
    assert PlateEstimate.objects.get().estimated_bikes == 100


def test_nav_link_for_admins_only(admin_user, officer):
    assert 'href="/stats/"' in client_for(admin_user).get("/stats/").content.decode()
    assert 'href="/stats/"' not in client_for(officer).get("/search/").content.decode()


def test_dashboard_with_a_period_at_the_edge_of_the_calendar_shows_the_problem(admin_user):
    response = client_for(admin_user).get("/stats/", {"start": "9999-12-31"})  # was a 500 (a date overflow)
    assert response.status_code == 200
    assert "cannot start more than a year from today" in response.context["form"].errors["start"][0]
