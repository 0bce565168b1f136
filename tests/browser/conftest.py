"""Browser tests: Playwright for Python driving Debian's Chromium (apt `chromium`, installed by
scripts/setup.sh; Playwright never downloads a browser here) against pytest-django's live server.

- The live server runs in another thread of this process, so the data a test creates must be
  committed: every test here uses the transactional database, with serialized_rollback so the
  reference data of the migrations (townships, stations, roles) is back for the next test.
- Chromium is started per test, after the test's database set-up (see the browser fixture).
- Playwright's sync API runs an event loop in the test's thread; the ORM calls the tests make
  between browser steps are plain synchronous code, hence DJANGO_ALLOW_ASYNC_UNSAFE.
- Only the live server is reachable: every other request (map tiles) is aborted, so the maps are
  tested the way they work on a machine without a tile server.
- Screenshots go to var/screenshots/ (artifacts of the run).
"""

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings

from tests.factories import totp_code

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(django_settings.BASE_DIR) / "var" / "screenshots"
PASSWORD = "correct-horse-battery-9"  # tests.factories.user

# Every test module here sets: pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True,
# serialized_rollback=True)].


@pytest.fixture
def browser():
    """A Chromium per test. Playwright's sync API runs an event loop in this thread while it is
    started, and with a running loop Django's connection handler (an asgiref Local) hands out
    other connection objects: the test database's serialized contents, which serialized_rollback
    restores from before each test, are not on those. Starting Playwright after the database
    set-up of the test and stopping it before its teardown keeps the set-up, the teardown and
    every other test of the session out of the loop."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: run scripts/setup.sh (apt package chromium)")
    from django.db import connections
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            connections.close_all()  # the connections the test opened inside the loop
            chromium.close()


@pytest.fixture(autouse=True)
def _english_messages(settings):
    # Overrides the suite-wide English default: these tests see the pages as the bureau does, in Chinese.
    settings.LANGUAGE_CODE = "zh-hans"


@pytest.fixture(autouse=True)
def _fast_polling(settings):
    settings.MAP_POLL_SECONDS = 1


@pytest.fixture
def page_context_options() -> dict:
    """Browser context options a test module overrides (e.g. device_scale_factor, viewport)."""
    return {}


@pytest.fixture
def page(browser, live_server, page_context_options) -> Iterator:
    options = {"locale": "zh-CN", "viewport": {"width": 1400, "height": 900}, "timezone_id": "Asia/Shanghai"}
    context = browser.new_context(**(options | page_context_options))
    context.set_default_timeout(15_000)
    own = urlsplit(live_server.url).netloc

    def only_the_live_server(route):
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_the_live_server)
    # Content-Security-Policy: every violation the browser reports (an inline script, style or
    # handler, a source the policy does not list), enforced or report-only, fails the test. The
    # listener is injected by the browser itself, outside the page's policy.
    violations: list[str] = []
    context.expose_binding("__cspViolation", lambda source, text: violations.append(text))
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.js_errors = errors  # type: ignore[attr-defined]
    page.csp_violations = violations  # type: ignore[attr-defined]
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"
    assert not violations, f"Content-Security-Policy violations: {violations}"


CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolation(`${e.disposition} ${e.effectiveDirective} blocked ${e.blockedURI || "inline"} `
    + `at ${e.documentURI} ${e.sourceFile || ""}:${e.lineNumber}: ${e.sample || ""}`);
});
"""


def screenshot(page, name: str, *, full_page: bool = False, element: str | None = None) -> Path:
    """The viewport (or the whole page, or one element) as var/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if element:
        page.locator(element).first.screenshot(path=str(path))
    else:
        page.screenshot(path=str(path), full_page=full_page)
    return path


def decode_qr(path: Path) -> list[str]:
    """Every QR code in an image, decoded by zbar (zbarimg, apt zbar-tools, installed by scripts/setup.sh)."""
    zbarimg = shutil.which("zbarimg")
    assert zbarimg, "zbarimg is missing: run scripts/setup.sh (apt package zbar-tools)"
    result = subprocess.run(  # noqa: S603 (a fixed program on a file this test wrote)
        [zbarimg, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    # Exit status 4: the image was read but held no symbol.
    assert result.returncode in (0, 4), f"zbarimg failed ({result.returncode}): {result.stderr}"
    return result.stdout.splitlines()


def wait_until(page, expression: str, *, timeout_s: float = 15) -> None:
    """Waits until a JavaScript function expression, e.g. "() => x.size === 1", returns true.
    page.wait_for_function compiles its expression with eval inside the page, which the page's
    Content-Security-Policy refuses (no 'unsafe-eval'); page.evaluate is not subject to it."""
    for _ in range(int(timeout_s / 0.05)):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"Still false after {timeout_s} s: {expression}")


def log_in(page, live_server, user) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("form.login button[type=submit], main form button.primary")
    page.wait_for_url(re.compile(r"^(?!.*/login/$).*$"))
    if "/login/second-factor/" in page.url:  # a role that signs in with a one-time code
        page.fill("#id_otp_token", totp_code(user))
        page.click("main form button.primary")
    page.wait_for_url(re.compile(r"^(?!.*/login/).*$"))
