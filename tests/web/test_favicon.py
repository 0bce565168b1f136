"""Browsers ask every site for /favicon.ico: it is our own icon from the static files, not a 404."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_favicon_is_our_own_icon(settings):
    # As collectstatic would serve it, straight from the static folders (no collectstatic in tests).
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    client = Client()
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"] == "/static/web/favicon.ico"
    icon = client.get(response["Location"])
    assert icon.status_code == 200 and icon["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert b"".join(icon.streaming_content).startswith(b"\x00\x00\x01\x00")  # an ICO file
    assert '<link rel="icon" href="/static/web/favicon.ico">' in client.get("/login/").content.decode()
