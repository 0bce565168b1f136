"""An officer opens the stolen-bike map, finds a seeded stolen bike where it is, opens its card and
its trace, replays it, and sees a new position arrive without reloading."""

import datetime

import pytest
from django.utils import timezone

from tests import factories
from tests.browser.conftest import log_in, screenshot, wait_until
from tests.web.coords_pairs import PAIRS
from tests.web.scene import scattered_stolen_bikes, stolen_bike
from tracking.ingest import Incoming, ingest_fixes
from tracking.protocols.common import Fix

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def officer_user():
    return factories.user("officer", first_name="伟", last_name="李")


def marker_state(page, vehicle_id):
    return page.evaluate(
        """(id) => {
            const state = window.ebikeOfficerMap;
            const marker = state.markers.get(id);
            if (!marker) return null;
            const ll = marker.getLatLng();
            const el = marker.getElement();
            const point = state.map.latLngToContainerPoint(ll);
            const box = state.map.getContainer().getBoundingClientRect();
            let drawn = null;
            if (el) {
                const r = el.getBoundingClientRect();
                drawn = [r.left + r.width / 2 - box.left, r.top + r.height / 2 - box.top];
            }
            return {lat: ll.lat, lng: ll.lng, expected: [point.x, point.y], drawn: drawn};
        }""",
        vehicle_id,
    )


def test_officer_finds_traces_and_replays_a_stolen_bike(page, live_server, officer_user):
    bike = stolen_bike(officer_user)
    others = scattered_stolen_bikes(officer_user, 24)  # elsewhere in the county: clusters
    log_in(page, live_server, officer_user)

    page.click("nav >> text=被盗车辆地图")
    page.wait_for_selector("#map[data-ready='1']")
    assert page.locator("#tile-notice").is_visible()  # no tile server here: said so, data drawn anyway
    page.wait_for_selector(f".stolen-marker[data-vehicle='{bike.vehicle.pk}']")
    state = marker_state(page, bike.vehicle.pk)
    assert state["lat"] == pytest.approx(bike.last[0], abs=1e-6)
    assert state["lng"] == pytest.approx(bike.last[1], abs=1e-6)
    # Drawn where the map puts that coordinate (within a pixel), not merely present in the DOM.
    assert state["drawn"][0] == pytest.approx(state["expected"][0], abs=1.5)
    assert state["drawn"][1] == pytest.approx(state["expected"][1], abs=1.5)
    assert page.locator("#map-count").inner_text().startswith(str(1 + len(others)))
    assert page.locator(".marker-cluster").count() >= 1
    screenshot(page, "map")

    page.click(f".stolen-marker[data-vehicle='{bike.vehicle.pk}']")
    card = page.locator(f".map-card[data-vehicle='{bike.vehicle.pk}']")
    card.locator(".card-report").wait_for()
    assert bike.plate in card.inner_text()
    assert card.locator(".card-report").inner_text() == bike.report.number
    page.wait_for_timeout(600)  # the map pans the filled card into view (animated)
    assert card.locator(".card-plate").is_visible()
    # Written out: with no tile server the dot on a grey field is all there is to go by.
    assert card.locator(".card-coords").inner_text() == f"{bike.last[0]:.6f}, {bike.last[1]:.6f}"
    screenshot(page, "map-card")

    card.locator(".card-trace").click()
    page.wait_for_selector("#map[data-ready='1']")
    assert page.locator("#trace-count").inner_text() == str(bike.fixes)
    page.wait_for_selector("#stops li[data-rank='1']")
    assert page.locator(".stop-marker").count() == 1
    slider = page.locator("#replay-slider")
    assert slider.get_attribute("max") == str(bike.fixes - 1)
    slider.fill("0")
    assert page.locator("#replay").get_attribute("data-index") == "0"
    page.click("#replay-play")
    wait_until(page, "() => +document.getElementById('replay').dataset.index >= 54")
    screenshot(page, "trace-replay")
    page.wait_for_selector("#replay[data-finished='1']", timeout=30_000)
    assert page.locator("#replay").get_attribute("data-index") == str(bike.fixes - 1)


def test_a_new_position_appears_without_reloading(page, live_server, officer_user):
    bike = stolen_bike(officer_user)
    log_in(page, live_server, officer_user)
    page.goto(f"{live_server.url}/map/")
    page.wait_for_selector(f".stolen-marker[data-vehicle='{bike.vehicle.pk}']")
    page.evaluate("window.__loadedOnce = true")  # gone if the page reloads

    moved = Fix(
        time=timezone.now().replace(microsecond=0),
        latitude=bike.last[0] + 0.005,
        longitude=bike.last[1] + 0.005,
        valid=True,
        speed_kmh=14.0,
    )
    ingest_fixes([Incoming(bike.terminal.pk, moved)])
    page.wait_for_selector(f"#map-feed li[data-vehicle='{bike.vehicle.pk}']", timeout=20_000)
    state = marker_state(page, bike.vehicle.pk)
    assert state["lat"] == pytest.approx(moved.latitude, abs=1e-6)
    assert page.evaluate("window.__loadedOnce") is True


def test_filters_by_station_and_report_date(page, live_server, officer_user):
    bike = stolen_bike(officer_user)
    log_in(page, live_server, officer_user)
    page.goto(f"{live_server.url}/map/")
    page.wait_for_selector(f".stolen-marker[data-vehicle='{bike.vehicle.pk}']")
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    page.fill("#id_reported_from", tomorrow.isoformat())
    page.click("#map-filters button[type=submit]")
    wait_until(page, "() => window.ebikeOfficerMap.markers.size === 0")
    # An impossible range: the error appears next to the field, what was typed stays.
    page.fill("#id_reported_to", (tomorrow - datetime.timedelta(days=2)).isoformat())
    page.click("#map-filters button[type=submit]")
    error = page.locator(".field.invalid", has=page.locator("#id_reported_to")).locator(".error")
    error.wait_for()
    assert page.input_value("#id_reported_from") == tomorrow.isoformat()
    page.fill("#id_reported_to", "")
    page.fill("#id_reported_from", "")
    page.select_option("#id_station", str(bike.report.station_id))
    page.click("#map-filters button[type=submit]")
    wait_until(page, "() => window.ebikeOfficerMap.markers.size === 1")
    assert "station=" in page.url


def test_wgs84_to_gcj02_in_the_browser_matches_published_pairs(page, live_server, officer_user):
    log_in(page, live_server, officer_user)
    page.goto(f"{live_server.url}/map/")
    page.wait_for_selector("#map[data-ready='1']")
    for wgs, gcj in PAIRS:
        lat, lon = page.evaluate("([lat, lon]) => window.EbikeCoords.wgs84ToGcj02(lat, lon)", list(wgs))
        assert lat == pytest.approx(gcj[0], abs=1e-9) and lon == pytest.approx(gcj[1], abs=1e-9)


def test_a_stolen_bike_without_positions_shows_an_empty_trace(page, live_server, officer_user):
    from cases.workflow.services import VehicleQuery, report_take
    from tests.tracking import factories as tf
    from vehicles.models import Plate

    terminal = tf.terminal()
    report_take(
        user=officer_user,
        channel="call_110",
        vehicle_query=VehicleQuery(plate=Plate.objects.get(vehicle=terminal.vehicle).number),
        reporter_name="张三",
        reporter_phone="13812345678",
        last_seen_at=timezone.now() - datetime.timedelta(hours=2),
        missing_at=timezone.now() - datetime.timedelta(hours=1),
        place_address="玉田县城南市场",
    )
    log_in(page, live_server, officer_user)
    page.goto(f"{live_server.url}/map/trace/{terminal.vehicle.pk}/")
    page.wait_for_selector("#map[data-ready='1']")
    assert page.locator("#trace-empty").is_visible()
    assert page.locator("#replay").is_hidden()
    assert page.locator("#trace-count").inner_text() == "0"


def test_a_clerk_gets_a_proper_403_page_for_the_map(page, live_server):
    clerk = factories.user("clerk")
    log_in(page, live_server, clerk)
    assert page.locator("nav >> text=被盗车辆地图").count() == 0
    response = page.goto(f"{live_server.url}/map/")
    assert response.status == 403
    assert page.locator("h1").inner_text() == "无权访问" or page.locator("h1").count() == 1
