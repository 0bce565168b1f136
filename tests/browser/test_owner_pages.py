"""Owner pages in the browser (issue 18, point 11): /my/ shows the arming state and an open alarm,
confirming it leads to a theft report already filled with what the alarm told; the claim
notification's 查看 opens the owner's own claim page, and "my claims" lists its steps; on a phone
the notifications list reads as lines of text, not a character per line."""

import datetime

import pytest
from django.utils import timezone

from cases.alerts.duty_room import vehicle_arm
from cases.alerts.services import notifications_create
from cases.claims import services as claims
from cases.models import DutyCall, Notification
from tests import factories
from tests.browser.conftest import log_in, screenshot
from tests.cases.alerting import owner_login, path, send
from tests.cases.test_claims import ALL_DOCUMENTS, after
from tests.cases.test_claims import bike as insured_bike
from tests.tracking import factories as tf
from tests.web.test_owner_truth import stolen_and_filed
from tracking.models import TerminalInstallation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_my_page_shows_arming_and_the_open_alarm_and_the_report_arrives_filled(page, live_server):
    terminal = tf.terminal()
    TerminalInstallation.objects.filter(terminal=terminal).update(
        installed_at=timezone.now() - datetime.timedelta(days=1)
    )
    send(terminal, tf.fix(0, base=timezone.now(), speed=0))
    owner = owner_login(terminal)
    vehicle_arm(user=owner, vehicle_id=terminal.vehicle_id, armed=True)
    log_in(page, live_server, owner)

    page.goto(f"{live_server.url}/my/")
    arming = page.locator(f".bike[data-vehicle='{terminal.vehicle_id}'] td.arming")
    assert arming.get_attribute("data-armed") == "1" and "已设防" in arming.inner_text()

    send(terminal, *path(timezone.now().replace(microsecond=0) + datetime.timedelta(seconds=1), range(0, 3)))
    call = DutyCall.objects.get(vehicle_id=terminal.vehicle_id)
    page.goto(f"{live_server.url}/my/")
    alarm = page.locator(f".open-alarm[data-call='{call.pk}']")
    assert alarm.is_visible() and "报警" in alarm.inner_text()
    screenshot(page, "owner-my-alarm", full_page=True)

    alarm.locator("button[value=confirmed]").click()
    page.wait_for_selector("#from-alarm")
    assert page.input_value("#id_vehicle") == str(terminal.vehicle_id)
    missing = timezone.localtime(call.raised_at).strftime("%Y-%m-%dT%H:%M")
    assert page.input_value("#id_missing_at") == missing
    assert page.input_value("#id_last_seen_at") != ""
    assert page.input_value("#id_place_address") == "无终街道"
    assert "39.882600" in page.inner_text("#from-alarm")
    screenshot(page, "owner-report-from-alarm", full_page=True)


def test_the_claim_notification_opens_the_owners_claim_page_with_its_steps(page, live_server):
    clerk, officer, admin = factories.user("clerk"), factories.user("officer"), factories.user("admin")
    vehicle = insured_bike(clerk, age_months=5)
    stolen_and_filed(officer, vehicle)
    (claim,) = claims.claims_make_eligible(now=after(61))
    claims.claim_submit(user=clerk, claim_id=claim.pk, documents=ALL_DOCUMENTS)
    claims.claim_approve(user=admin, claim_id=claim.pk)
    claims.claim_pay(user=admin, claim_id=claim.pk)
    owner = vehicle.owner.user
    log_in(page, live_server, owner)

    page.goto(f"{live_server.url}/notifications/")
    row = page.locator("tr[data-notification]", has_text="理赔").first
    row.locator("button", has_text="查看").click()
    page.wait_for_selector("#claim-amount")
    assert page.url.endswith(f"/my/claims/{claim.pk}/")
    assert page.inner_text("#claim-amount") == "1200.00"
    steps = page.inner_text("table.claim-steps")
    assert "立案" in steps and "已赔付" in steps and "unrecovered" not in steps
    assert "权益转让书" in page.inner_text("main")

    page.goto(f"{live_server.url}/my/")
    insurance = page.locator(f".bike[data-vehicle='{vehicle.pk}'] .insurance-state")
    assert insurance.get_attribute("data-state") == "claimed" and "1200.00" in insurance.inner_text()
    page.click("text=我的理赔")
    card = page.locator(f".claim[data-claim='{claim.pk}']")
    assert card.locator(".claim-steps li").count() == 4
    screenshot(page, "owner-claims", full_page=True)


def test_notifications_on_a_phone_read_as_lines_not_a_character_per_line(page, live_server):
    officer = factories.user("officer")
    for n in range(3):
        notifications_create(
            users=[officer],
            kind=Notification.Kind.SIGHTING,
            message="sighting",
            params={
                "plate": f"玉A0000{n}",
                "number": f"JJ1302290120261206000{n}",
                "time": timezone.now().isoformat(),
                "lat": 39.8826,
                "lon": 117.739,
            },
            link="/map/",
        )
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server, officer)
    page.goto(f"{live_server.url}/notifications/")
    cell = page.locator("tr[data-notification] td.message").first
    box = cell.bounding_box()
    assert box is not None and box["width"] >= 300, box  # the message spans the phone's width
    line = page.evaluate("parseFloat(getComputedStyle(document.querySelector('td.message')).lineHeight) || 24")
    assert box["height"] < 6 * line, box  # a few lines, not one character a line
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "phone-notifications")
