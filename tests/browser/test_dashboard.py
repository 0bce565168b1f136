"""An admin opens the statistics dashboard over seeded demo data (seed_demo + seed_demo_activity):
the charts are drawn, the hotspot cells are on the map where the grid puts them, and the tables
sort."""

import pytest
from django.core.management import call_command

from stats import selectors
from stats.params import parse_filters
from tests import factories
from tests.browser.conftest import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_admin_reads_the_dashboard_over_demo_data(page, live_server):
    call_command("seed_demo", vehicles=3_000, seed=11, no_vacuum=True)
    call_command("seed_demo_activity", reports=600, seed=11)
    expected = selectors.theft_hotspots(parse_filters({}), limit=2_000)["features"]
    assert len(expected) > 20  # the demo county spreads its thefts over many cells
    admin = factories.user("admin")
    log_in(page, live_server, admin)

    page.click("nav >> text=统计")
    page.wait_for_selector("#hotspot-map[data-ready='1']")
    assert page.locator("main h1").inner_text() == "统计"
    # Every chart has been drawn by Chart.js (served from our static files, not a CDN).
    drawn = page.evaluate(
        "() => ['chart-registrations', 'chart-thefts', 'chart-alarms']"
        ".map((id) => Boolean(Chart.getChart(document.getElementById(id))))"
    )
    assert drawn == [True, True, True]

    # One polygon per grid cell, each drawn over the cell's centre on the map.
    cells = page.evaluate(
        """() => {
            const state = window.ebikeHotspotMap;
            const out = [];
            state.layer.eachLayer((cell) => {
                const c = cell.getBounds().getCenter();
                out.push({id: cell.feature.id, lat: c.lat, lng: c.lng, fill: cell.options.fillColor});
            });
            return out;
        }"""
    )
    assert len(cells) == len(expected)
    by_id = {c["id"]: c for c in cells}
    busiest = expected[0]
    assert by_id[busiest["id"]]["lat"] == pytest.approx(busiest["properties"]["centre_lat"], abs=2e-3)
    assert by_id[busiest["id"]]["lng"] == pytest.approx(busiest["properties"]["centre_lon"], abs=2e-3)
    assert by_id[busiest["id"]]["fill"] == "#a50f15"  # the darkest shade for the busiest cell
    assert page.locator(".hotspot-legend").is_visible()

    # The hotspot table lists the 20 busiest; sorting by the count puts the busiest on top again.
    rows = page.locator("table[aria-labelledby='t-hotspots'] tbody tr")
    assert rows.count() == 20
    header = page.locator("table[aria-labelledby='t-hotspots'] thead th").nth(2)
    header.locator("button").click()  # ascending
    header.locator("button").click()  # descending
    assert rows.first.locator("td").nth(2).inner_text() == str(busiest["properties"]["reports"])

    screenshot(page, "dashboard-hotspots", element="main section:has(#hotspot-map)")
    page.evaluate("() => document.getElementById('chart-registrations').scrollIntoView()")
    screenshot(page, "dashboard-charts")
    page.evaluate("() => window.scrollTo(0, 0)")
    screenshot(page, "dashboard")
