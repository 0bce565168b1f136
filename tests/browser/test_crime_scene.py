"""An officer runs a crime-scene search (伴随分析) from the map, opens the trace of a bike it found,
sees another stolen bike at that bike's stop (a ring) and opens the ring's trace; on the record of
a bike of their own report, the last position is on a small map with its coordinates written out."""

import datetime

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from tests import factories
from tests.browser.conftest import log_in, screenshot, wait_until
from tests.web.scene import RIDE_IN, SQUARE, STEP, stolen_bike

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

REASON = "协查盗窃案件 玉公刑立字〔2026〕118号"


def test_officer_searches_a_crime_scene_and_opens_a_ring(page, live_server):
    officer = factories.user("officer", first_name="伟", last_name="李")
    start = timezone.now().replace(microsecond=0) - datetime.timedelta(hours=2)
    first = stolen_bike(officer, start=start)
    second = stolen_bike(officer, start=start + datetime.timedelta(minutes=30))  # at the square half an hour later
    log_in(page, live_server, officer)

    page.goto(f"{live_server.url}/map/")
    page.click("text=伴随分析")
    page.wait_for_selector("#map[data-ready='1']")
    # A click on the map sets the point (no tiles here: a grey field, the coordinates written out).
    page.click("#map", position={"x": 200, "y": 150})
    wait_until(page, "() => document.getElementById('id_lat').value !== ''")
    clicked = f"{float(page.input_value('#id_lat')):.6f},{float(page.input_value('#id_lon')):.6f}"
    assert page.locator("#map").get_attribute("data-point") == clicked  # the point and its circle drawn there
    # Typed coordinates, as read off a GPS device at the scene, move it.
    page.fill("#id_lat", f"{SQUARE[0]:.6f}")
    page.fill("#id_lon", f"{SQUARE[1]:.6f}")
    page.fill("#id_radius", "100")
    at_square = timezone.localtime(start + RIDE_IN * STEP)
    page.fill("#id_since", (at_square - datetime.timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("#id_until", (at_square + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("#id_reason", REASON)
    page.click("#scene-form button[type=submit]")

    page.wait_for_selector("#scene-results")
    rows = page.locator(".scene-results tbody tr")
    assert rows.count() == 2
    assert {first.plate, second.plate} <= set(page.locator(".scene-results .plate").all_inner_texts())
    assert page.locator("#map").get_attribute("data-point") == f"{SQUARE[0]:.6f},{SQUARE[1]:.6f}"
    screenshot(page, "crime-scene")

    page.click(f".scene-results tr[data-vehicle='{first.vehicle.pk}'] .scene-trace")
    page.wait_for_selector("#map[data-ready='1']")
    assert REASON in page.locator("#trace-origin").inner_text()
    assert page.locator("#trace-count").inner_text() == str(first.fixes)  # the ride lies in the window
    ring = page.locator(f"#stops li[data-rank='1'] .ring[data-vehicle='{second.vehicle.pk}']")
    assert second.report.number in ring.locator(".ring-report").inner_text()
    assert page.locator(".stop-marker").count() == 1
    screenshot(page, "trace-rings")

    ring.locator(".ring-trace").click()
    page.wait_for_selector("#map[data-ready='1']")
    assert second.plate in page.locator("h1").inner_text()
    assert page.locator("#trace-origin").is_visible()
    assert page.locator("#trace-count").inner_text() == str(second.fixes)
    # Each read was audited on the search's reason, naming the search it came from.
    search = AuditEntry.objects.get(user=officer, action="trajectory.near")
    first_stops = AuditEntry.objects.get(action="trajectory.stops", object_id=str(first.vehicle.pk))
    assert first_stops.query["search"] == search.pk
    second_view = AuditEntry.objects.get(action="trajectory.view", object_id=str(second.vehicle.pk))
    assert second_view.query["search"] == first_stops.pk and second_view.reason == REASON


def test_the_record_of_a_bike_on_duty_shows_where_it_was_last(page, live_server):
    officer = factories.user("officer")
    bike = stolen_bike(officer)
    log_in(page, live_server, officer)
    page.goto(f"{live_server.url}/vehicles/{bike.vehicle.pk}/")
    page.wait_for_selector("#last-position #map[data-ready='1']")
    assert page.locator("#last-position-coords").inner_text() == f"{bike.last[0]:.6f}, {bike.last[1]:.6f}"
    assert page.locator("#last-heard").inner_text() != "—"
    screenshot(page, "record-last-position", element="#last-position")
