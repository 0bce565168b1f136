"""Content-Security-Policy: every response of every route carries the strict policy; the API docs
are for staff only. (That the pages really run under it is held by the browser tests, which fail on
any violation: tests/browser/conftest.py.)"""

import re

import pytest
from django.test import Client

from tests import factories
from tests.url_routes import url_routes

pytestmark = pytest.mark.django_db

REQUIRED = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}


def policy_of(response, header: str = "Content-Security-Policy") -> dict[str, list[str]]:
    assert header in response, f"{response.request['PATH_INFO']} ({response.status_code}) has no {header}"
    policy: dict[str, list[str]] = {}
    for directive in response[header].split(";"):
        name, *values = directive.split()
        policy[name] = values
    return policy


def assert_strict(response) -> dict[str, list[str]]:
    policy = policy_of(response)
    for name, values in REQUIRED.items():
        assert policy.get(name) == values, f"{response.request['PATH_INFO']}: {name} is {policy.get(name)}"
    everything = " ".join(" ".join(v) for v in policy.values())
    assert "unsafe-inline" not in everything and "unsafe-eval" not in everything
    return policy


def every_route() -> list[str]:
    """Each route of the URL configuration as a path to request (ids that exist nowhere: 404 pages)."""
    paths = []
    for _name, pattern in url_routes():
        path = re.sub(r"<int:\w+>", "987654", pattern)
        path = re.sub(r"<(str:)?\w+>", "nothing-here", path)
        path = path.lstrip("^").rstrip("$").replace("\\", "")
        if re.search(r"[()\[\]?*+]", path):  # a regex route (admin's): its own test below
            continue
        paths.append("/" + path)
    return sorted(set(paths))


@pytest.mark.parametrize("role", [None, "clerk", "officer", "admin", "owner"])
def test_every_route_answers_with_the_strict_policy(role):
    client = Client()
    if role:
        client.force_login(factories.user(role, station_code=None if role == "owner" else "13022901"))
    routes = every_route()
    assert "/counter/" in routes and "/api/v1/vehicles" in routes and "/api/docs/" in routes
    for path in routes:
        response = client.get(path)
        assert assert_strict(response)["img-src"][:2] == ["'self'", "data:"], path


def test_admin_pages_and_error_pages_carry_it_too(admin_user):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    for path in ["/admin/", "/admin/accounts/station/", "/admin/accounts/station/add/", "/no-such-page/"]:
        assert_strict(client.get(path))


def test_images_may_come_from_the_configured_tile_server(settings, officer):
    client = Client()
    client.force_login(officer)
    assert assert_strict(client.get("/map/"))["img-src"] == ["'self'", "data:", "https://tile.openstreetmap.org"]

    settings.MAP_TILES, settings.TIANDITU_KEY = "tianditu", "k"
    img = assert_strict(client.get("/map/"))["img-src"]
    assert img[:2] == ["'self'", "data:"] and img[2:] == [f"https://t{n}.tianditu.gov.cn" for n in range(8)]

    settings.MAP_TILES, settings.MAP_TILES_URL = "osm", "/tiles/{z}/{x}/{y}.png"  # our own host
    assert assert_strict(client.get("/map/"))["img-src"] == ["'self'", "data:"]


def test_report_only_mode_reports_the_same_policy_without_enforcing_it(settings):
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = settings.CONTENT_SECURITY_POLICY
    settings.CONTENT_SECURITY_POLICY = None
    response = Client().get("/login/")
    assert "Content-Security-Policy" not in response
    assert policy_of(response, "Content-Security-Policy-Report-Only")["script-src"] == ["'self'"]


def test_the_api_docs_are_for_staff_only(owner_user, clerk):
    anonymous = Client()
    response = anonymous.get("/api/docs/")
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=/api/docs/")
    assert anonymous.get("/api/schema/").status_code == 403
    assert anonymous.get("/api/docs/?script=").status_code == 302

    owner = Client()
    owner.force_login(owner_user)
    response = owner.get("/api/docs/")
    assert response.status_code == 403 and b"clerk, officer or admin" in response.content
    assert owner.get("/api/schema/").status_code == 403

    staff = Client()
    staff.force_login(clerk)
    schema = staff.get("/api/schema/?format=json")
    assert schema.status_code == 200 and "/api/v1/vehicles" in schema.json()["paths"]
    page = staff.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "<style" not in html and re.search(r"<script>", html) is None
    assert_strict(page)
    script = staff.get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
