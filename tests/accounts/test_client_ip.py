"""accounts.audit.client_ip: the socket's address, or the one the configured proxies saw."""

import pytest
from django.test import Client, RequestFactory

from accounts.audit import client_ip
from accounts.models import AuditEntry
from tests import factories


def request(remote="203.0.113.9", forwarded=None):
    headers = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **headers)


def test_without_trusted_proxies_the_forwarded_header_is_ignored(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request(forwarded="1.2.3.4")) == "203.0.113.9"


@pytest.mark.parametrize(
    ("count", "forwarded", "expected"),
    [
        (1, "198.51.100.7", "198.51.100.7"),
        (1, "1.2.3.4, 198.51.100.7", "198.51.100.7"),  # the client's own entry is left of the proxy's
        (2, "1.2.3.4, 198.51.100.7, 10.0.0.2", "198.51.100.7"),
        (1, "2001:db8::1", "2001:db8::1"),
        (2, "198.51.100.7", "203.0.113.9"),  # came past fewer proxies than configured: the socket
        (1, "", "203.0.113.9"),
        (1, "1.2.3.4, not-an-address", "203.0.113.9"),
    ],
)
def test_behind_trusted_proxies_the_outermost_proxy_names_the_client(settings, count, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = count
    assert client_ip(request(forwarded=forwarded)) == expected


@pytest.mark.django_db
def test_the_audit_records_the_client_behind_the_proxy(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    officer = factories.user("officer")
    browser = Client(REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.44")
    browser.force_login(officer)
    browser.get("/search/", {"plate": "玉A00001", "reason": "巡逻"})
    assert AuditEntry.objects.filter(action="vehicle.search").latest("pk").ip == "198.51.100.44"
