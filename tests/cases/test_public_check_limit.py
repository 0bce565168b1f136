"""The public stolen check's budget: per real client address, on the page and the API alike, and
still counted when Redis is away; the public evidence check's budget, apart from it."""

import ipaddress
import time
import uuid

import pytest
from django.test import Client
from rest_framework.test import APIClient

from ebike_registry.ratelimit import local_budgets

pytestmark = pytest.mark.django_db

CLOSED_PORT_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:9/0",
        "OPTIONS": {"socket_timeout": 0.2, "socket_connect_timeout": 0.2},
    }
}


@pytest.fixture
def address():
    """An address no other test run uses, so that counts left in the shared Redis never meet it."""
    return str(ipaddress.IPv6Address(uuid.uuid4().int))


@pytest.fixture(autouse=True)
def _small_budget(settings):
    settings.STOLEN_CHECK_RATE_PER_MINUTE = 3
    local_budgets.clear()
    # Budgets are counted per minute: start away from a minute's end so that one test stays in one.
    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60 + 0.1)
    yield
    local_budgets.clear()


def api_check(address, **headers):
    return APIClient().get("/api/v1/public/stolen-check", {"plate": "玉Z99999"}, REMOTE_ADDR=address, **headers)


def page_check(address, **headers):
    return Client().get("/stolen-check/", {"plate": "玉Z99999"}, REMOTE_ADDR=address, **headers)


def test_the_api_answers_429_with_a_readable_message_once_the_budget_is_spent(address):
    codes = [api_check(address).status_code for _ in range(3)]
    refused = api_check(address)
    assert codes == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Too many checks from your address (3 a minute).")
    assert 1 <= int(refused["Retry-After"]) <= 60


def test_a_forged_forwarded_for_header_does_not_reset_the_budget(address):
    answers = [api_check(address, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code for n in range(5)]
    assert answers == [200, 200, 200, 429, 429]


def test_the_page_is_limited_and_shares_the_api_budget(address):
    assert page_check(address).status_code == 200
    assert api_check(address).status_code == 200
    assert page_check(address, HTTP_X_FORWARDED_FOR="192.0.2.77").status_code == 200
    refused = page_check(address)
    assert refused.status_code == 429
    assert "Too many checks" in refused.content.decode()
    assert "Please try again in" in refused.content.decode()
    # Opening the empty page asks nothing and spends nothing.
    assert Client().get("/stolen-check/", REMOTE_ADDR=address).status_code == 200


def test_other_addresses_keep_their_own_budget(address):
    for _ in range(4):
        api_check(address)
    other = str(ipaddress.IPv6Address(uuid.uuid4().int))
    assert api_check(other).status_code == 200


def test_with_redis_unreachable_the_limit_still_holds(settings, address):
    settings.CACHES = CLOSED_PORT_CACHE
    answers = [api_check(address).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    assert page_check(address).status_code == 429


def test_behind_one_trusted_proxy_the_client_is_the_address_the_proxy_saw(settings, address):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.1.2.3"
    spoofed = [api_check(proxy, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, {address}").status_code for n in range(4)]
    assert spoofed == [200, 200, 200, 429]
    # Another client behind the same proxy has a budget of its own.
    assert api_check(proxy, HTTP_X_FORWARDED_FOR="198.51.100.20").status_code == 200


def test_the_public_evidence_check_has_its_own_budget_per_address(settings, address):
    settings.EVIDENCE_VERIFY_RATE_PER_MINUTE = 2

    def verify(**headers):
        return APIClient().generic(
            "POST", "/api/v1/evidence/verify", b"{}", content_type="application/json", REMOTE_ADDR=address, **headers
        )

    answers = [verify(HTTP_X_FORWARDED_FOR=f"10.0.0.{n}") for n in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[0].json()["valid"] is False  # checked: not a bundle
    assert answers[2].json()["detail"].startswith("Too many checks from your address (2 a minute).")
    assert 1 <= int(answers[2]["Retry-After"]) <= 60
    assert api_check(address).status_code == 200  # the stolen check's budget is another
