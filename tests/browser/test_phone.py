"""An officer's phone (issue 18, point 10): the pages an officer opens in the street fit a 390 px
wide screen without scrolling sideways, and every link, button and field is at least 40 px high, a
finger's tap. Each page is opened as the role that uses it, and photographed at phone size into
docs/screenshots/phone-*.png (the README shows two of them)."""

import datetime
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from tests import factories
from tests.browser.conftest import log_in, screenshot
from tests.cases.alerting import send
from tests.tracking import factories as tf
from tests.web.scene import stolen_bike
from vehicles.certificates import certificate_token
from vehicles.models import Plate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PHONE = {"width": 390, "height": 844}
MIN_TAP_PX = 40
DOCS = Path(settings.BASE_DIR) / "docs" / "screenshots"
REASON = "?reason=" + quote("路面盘查")  # a check in the street: the stated reason of the audit row


@pytest.fixture
def page_context_options() -> dict:
    # A 390 x 844 phone (iPhone 12-15 class) at 3 device pixels per CSS pixel, touch, mobile viewport.
    return {"viewport": PHONE, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


# Every visible tap target: links, buttons, fields. A checkbox or radio button is tapped through its
# label, so the label is measured. Reported with enough to find it: tag, id or class, text, size.
SMALL_TARGETS = """(minimum) => {
    const small = [];
    const targets = document.querySelectorAll(
        "a[href], button, input:not([type=hidden]), select, textarea, summary");
    for (const el of targets) {
        let box = el.getBoundingClientRect();
        if (el.matches("input[type=checkbox], input[type=radio]") && el.closest("label")) {
            box = el.closest("label").getBoundingClientRect();
        }
        if (box.width === 0 || box.height === 0) continue;  // not shown (hidden, display: none)
        if (getComputedStyle(el).visibility === "hidden") continue;
        if (box.height < minimum) {
            const cls = typeof el.className === "string" && el.className ? "." + el.className : "";
            const name = el.id ? "#" + el.id : cls;
            small.push(`${el.tagName.toLowerCase()}${name} "${(el.innerText || el.value || "").trim().slice(0, 30)}" `
                + `${Math.round(box.width)}x${Math.round(box.height)}`);
        }
    }
    return small;
}"""

# Anything that sticks out past the right edge, for the failure message.
WIDE_ELEMENTS = """(width) => {
    const wide = [...document.querySelectorAll("body *")]
        .filter((el) => el.getBoundingClientRect().right > width + 0.5)
        .filter((el) => !el.closest(".leaflet-container, .watermark, .scroll-x"))
        .slice(0, 8)
        .map((el) => `${el.tagName.toLowerCase()}.${el.className} right=${el.getBoundingClientRect().right}`);
    return wide;
}"""


def phone_problems(page, name: str) -> list[str]:
    """What keeps this page from working on a phone ([] when nothing); photographs it."""
    problems = []
    # A mobile browser widens its layout viewport to content wider than the screen (and zooms out):
    # innerWidth is then that width, so both are held against the phone's.
    width = page.evaluate("() => Math.max(document.documentElement.scrollWidth, window.innerWidth)")
    if width > PHONE["width"]:
        wide = page.evaluate(WIDE_ELEMENTS, PHONE["width"])
        problems.append(f"{name}: {width} px wide, scrolls sideways on a {PHONE['width']} px screen: {wide}")
    small = page.evaluate(SMALL_TARGETS, MIN_TAP_PX)
    if small:
        problems.append(f"{name}: tap targets under {MIN_TAP_PX} px high: {small}")
    path = screenshot(page, name)
    DOCS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, DOCS / f"{name}.png")
    return problems


@pytest.fixture
def scene():
    officer = factories.user("officer", first_name="伟", last_name="李")
    bike = stolen_bike(officer)
    terminal = tf.terminal()  # another bike of the station, whose owner presses SOS
    at = timezone.now().replace(microsecond=0) - datetime.timedelta(seconds=30)
    send(terminal, tf.fix(0, base=at, lat=39.8950, lon=117.7520, alarms=("sos",)))
    plate = Plate.objects.get(vehicle_id=terminal.vehicle_id, status=Plate.Status.ISSUED)
    return {"officer": officer, "bike": bike, "sos_vehicle": terminal.vehicle, "sos_plate": plate}


def test_an_officers_pages_fit_a_phone(page, live_server, scene):
    officer, bike = scene["officer"], scene["bike"]
    log_in(page, live_server, officer)
    problems: list[str] = []

    # The record search, with results: a wide table on a counter's screen.
    page.goto(f"{live_server.url}{reverse('vehicles:search')}{REASON}&plate_contains={bike.plate[-4:]}")
    assert page.locator("table.list tbody tr").count() >= 1
    page.evaluate("document.querySelector('.results').scrollIntoView()")  # what the picture shows: the results
    problems += phone_problems(page, "phone-search")

    # The filing record it opens.
    page.goto(f"{live_server.url}{reverse('vehicles:detail', args=[bike.vehicle.pk])}{REASON}")
    assert bike.plate in page.locator("h1").inner_text()
    problems += phone_problems(page, "phone-record")

    # The stolen-bike map, with the bike on it.
    page.goto(f"{live_server.url}{reverse('web:map')}")
    page.wait_for_selector("#map[data-ready='1']")
    page.wait_for_selector(f".stolen-marker[data-vehicle='{bike.vehicle.pk}']")
    problems += phone_problems(page, "phone-map")
    page.click(f".stolen-marker[data-vehicle='{bike.vehicle.pk}']")  # its card, with the way to its trace
    page.locator(f".map-card[data-vehicle='{bike.vehicle.pk}'] .card-report").wait_for()
    page.wait_for_timeout(600)  # the map pans the filled card into view (animated)
    problems += phone_problems(page, "phone-map-card")

    # The duty room, with the SOS call.
    page.goto(f"{live_server.url}{reverse('alerts:duty')}")
    page.wait_for_selector("#duty-map[data-ready='1']")
    assert scene["sos_plate"].number in page.locator(".duty-call .plate").first.inner_text()
    problems += phone_problems(page, "phone-duty-room")

    # Taking a theft report in the street.
    page.goto(f"{live_server.url}{reverse('cases:report-new')}")
    problems += phone_problems(page, "phone-report")

    # The certificate's QR code scanned with the phone: the public verification page.
    vehicle, plate = scene["sos_vehicle"], scene["sos_plate"]
    token = certificate_token(vehicle_id=vehicle.pk, plate_number=plate.number)
    page.goto(f"{live_server.url}{reverse('vehicles:verify', args=[token])}")
    assert plate.number in page.locator(".verify .plate").inner_text()
    problems += phone_problems(page, "phone-verify")
    page.context.clear_cookies()  # and as anyone who scans it, signed in or not
    page.reload()
    assert plate.number in page.locator(".verify .plate").inner_text()
    problems += phone_problems(page, "phone-verify-public")

    assert not problems, "\n".join(problems)
