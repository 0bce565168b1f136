"""The Content-Security-Policy in the browser: markup slipped into a page does not run; Swagger UI
and Django admin work under the policy. (Every browser test fails on a violation: the page
fixture in conftest.py collects them.)"""

import re

import pytest

from tests import factories
from tests.browser.conftest import log_in, screenshot, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

INJECTED = (
    '<script>window.__injected = "script";</script>'
    '<p id="injected-style" style="color: rgb(255, 0, 0)">styled</p>'
    '<img id="injected-handler" src="/no-such-image.png" onerror="window.__handler = \'handler\'">'
)


def serve_with_injection(page, *, keep_policy: bool) -> None:
    """The login page as our server sends it, with markup an attacker got into it appended."""

    def inject(route):
        response = route.fetch()
        headers = dict(response.headers)
        if not keep_policy:
            headers.pop("content-security-policy", None)
        body = response.text().replace("</main>", INJECTED + "</main>")
        route.fulfill(response=response, headers=headers, body=body)

    page.route(re.compile(r".*/login/$"), inject)


def injected_effects(page) -> dict:
    wait_until(page, "() => document.getElementById('injected-handler').complete")
    return page.evaluate(
        """() => ({
            script: window.__injected || null,
            handler: window.__handler || null,
            color: getComputedStyle(document.getElementById("injected-style")).color,
        })"""
    )


def test_markup_injected_into_a_page_does_not_run(page, live_server):
    serve_with_injection(page, keep_policy=True)
    page.goto(f"{live_server.url}/login/")
    effects = injected_effects(page)
    assert effects["script"] is None and effects["handler"] is None
    assert effects["color"] != "rgb(255, 0, 0)"
    reported = " ".join(page.csp_violations)
    for directive in ("script-src-elem", "script-src-attr", "style-src-attr"):
        assert directive in reported, reported
    page.csp_violations.clear()  # expected here; any other violation still fails the test

    # An inline handler added by a script at run time is refused too.
    page.evaluate(
        """() => document.querySelector("main").insertAdjacentHTML(
            "beforeend", '<img id="late" src="/no-such-image.png" onerror="window.__late = 1">')"""
    )
    wait_until(page, "() => document.getElementById('late').complete")
    assert page.evaluate("window.__late") is None
    assert "script-src-attr" in " ".join(page.csp_violations)
    page.csp_violations.clear()


def test_without_the_policy_the_same_markup_would_run(page, live_server):
    # The control for the test above: the injection is real, only the header stops it.
    serve_with_injection(page, keep_policy=False)
    page.goto(f"{live_server.url}/login/")
    effects = injected_effects(page)
    assert effects == {"script": "script", "handler": "handler", "color": "rgb(255, 0, 0)"}


def test_swagger_ui_shows_the_operations_under_the_policy(page, live_server):
    log_in(page, live_server, factories.user("clerk"))
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock-summary-path")
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert len(paths) > 40
    assert any(p.replace("\u200b", "") == "/api/v1/registrations" for p in paths)
    page.locator(".opblock-summary", has=page.locator("[data-path='/api/v1/townships']")).first.click()
    page.wait_for_selector(".opblock.is-open .responses-wrapper")
    screenshot(page, "api-docs")


def test_django_admin_works_under_the_policy(page, live_server):
    admin = factories.user("admin", is_staff=True, is_superuser=True)
    log_in(page, live_server, admin)
    page.goto(f"{live_server.url}/admin/")
    page.wait_for_selector("#content-main")
    page.goto(f"{live_server.url}/admin/accounts/station/")
    page.wait_for_selector("#result_list")
    page.locator("#result_list tbody tr a").first.click()
    page.wait_for_selector("#station_form")
    page.click(".add-row a")  # the registration-points inline adds a row by script
    page.wait_for_selector(".dynamic-points")
    page.goto(f"{live_server.url}/admin/accounts/user/{admin.pk}/change/")
    page.wait_for_selector("#id_groups_from")  # SelectFilter2 built the two-box chooser
    page.locator("#id_groups_input").press_sequentially("cle")  # filtered by its keyup handler
    assert page.locator("#id_groups_from option").all_inner_texts() == ["clerk"]
    screenshot(page, "admin-user-under-csp")
