"""A duty officer sees an SOS on the duty room's map where it was raised, finds the card from the
map and the map from the card, and acknowledges the call."""

import datetime

import pytest
from django.utils import timezone

from cases.models import DutyCall
from tests import factories
from tests.browser.conftest import log_in, screenshot
from tests.cases.alerting import send
from tests.tracking import factories as tf

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_duty_officer_sees_the_sos_on_the_map_and_acknowledges_it(page, live_server):
    officer = factories.user("officer", first_name="芳", last_name="王")
    terminal = tf.terminal()
    at = timezone.now().replace(microsecond=0) - datetime.timedelta(seconds=30)
    send(terminal, tf.fix(0, base=at, lat=39.8950, lon=117.7520, alarms=("sos",)))
    call = DutyCall.objects.get()
    log_in(page, live_server, officer)

    page.goto(f"{live_server.url}/duty/")
    page.wait_for_selector("#duty-map[data-ready='1']")
    drawn = page.evaluate(
        """(id) => {
            const state = window.ebikeDutyMap;
            const marker = state.markers[id];
            const ll = marker.getLatLng();
            const point = state.map.latLngToContainerPoint(ll);
            const size = state.map.getSize();
            const inside = point.x >= 0 && point.y >= 0 && point.x <= size.x && point.y <= size.y;
            return {lat: ll.lat, lng: ll.lng, inside: inside};
        }""",
        call.pk,
    )
    assert drawn["lat"] == pytest.approx(39.8950, abs=1e-6) and drawn["lng"] == pytest.approx(117.7520, abs=1e-6)
    assert drawn["inside"]  # the map opened on the call

    card = page.locator(f"#call-{call.pk}")
    card.locator(".show-on-map").click()
    popup = page.locator(f".duty-popup[data-call='{call.pk}']")
    popup.wait_for()
    assert "求救" in popup.inner_text() or "SOS" in popup.inner_text()
    page.wait_for_timeout(400)  # the popup's fade-in, for the picture
    screenshot(page, "duty-room")

    card.locator("button[value='acknowledge']").click()
    page.wait_for_url(f"{live_server.url}/duty/")
    call.refresh_from_db()
    assert call.acknowledged_at is not None and call.handled_by_id == officer.pk
