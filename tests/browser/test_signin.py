"""Signing in with the second factor in a real browser, and the idle timeout of a polling page."""

import re

import pytest
from django.contrib.sessions.backends.db import SessionStore

from accounts.middleware import LAST_ACTIVITY_KEY
from accounts.models import AuditEntry
from tests import factories
from tests.browser.conftest import decode_qr, log_in, screenshot
from tests.web.scene import stolen_bike

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_the_polling_map_does_not_keep_an_idle_officer_signed_in(page, live_server):
    officer = factories.user("officer")
    stolen_bike(officer)
    log_in(page, live_server, officer)  # password, then the authenticator's code
    assert AuditEntry.objects.filter(action="auth.second_factor", user=officer).exists()

    polls = []
    page.on("request", lambda r: polls.append(r.url) if r.headers.get("x-background-request") == "1" else None)
    page.goto(f"{live_server.url}/map/")
    page.wait_for_selector("#map[data-ready='1']")
    page.wait_for_timeout(2500)  # MAP_POLL_SECONDS is 1 in the browser tests
    assert any("/map/markers.json" in url for url in polls)

    # The officer walked away 31 minutes ago; the map kept polling all the while.
    session_key = next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")
    store = SessionStore(session_key)
    store[LAST_ACTIVITY_KEY] -= 31 * 60
    store.save()
    page.wait_for_url(re.compile(r"/login/\?next=/map/"), timeout=10_000)
    assert page.locator(".messages").inner_text().startswith("您已 30 分钟无操作")
    screenshot(page, "idle-timeout")
    assert AuditEntry.objects.filter(action="auth.idle_timeout", user=officer).count() == 1


def test_an_officer_without_an_authenticator_enrols_before_anything_else(page, live_server):
    officer = factories.user("officer")
    officer.totpdevice_set.all().delete()
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", officer.username)
    page.fill("#id_password", "correct-horse-battery-9")
    page.click("main form button.primary")
    page.wait_for_url(re.compile(r"/login/second-factor/enrol/"))
    assert page.locator("svg.qr").is_visible()
    # The authenticator app reads the whole key from the QR code.
    key_url = officer.totpdevice_set.get(confirmed=False).config_url
    assert decode_qr(screenshot(page, "second-factor-enrol")) == [key_url]
    page.goto(f"{live_server.url}/search/")  # nothing else before the authenticator is set up
    page.wait_for_url(re.compile(r"/login/second-factor/"))

    page.goto(f"{live_server.url}/login/second-factor/enrol/")
    device = officer.totpdevice_set.get(confirmed=False)
    page.fill("#id_otp_token", factories.device_code(device))
    page.click("main form button.primary")
    page.wait_for_selector("#recovery-codes")
    assert page.locator("#recovery-codes li").count() == 10
    screenshot(page, "recovery-codes")
    page.click("text=我已记下，继续")
    page.wait_for_url(re.compile(r"^(?!.*/login/).*$"))
