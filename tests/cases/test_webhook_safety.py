"""Station webhooks are signed by default, go to https only unless allowed, and carry a position
rounded to ~1 km, also in the stored delivery."""

import hashlib
import hmac
import json

import pytest
from django.core.management import call_command

from accounts.models import Station
from cases.alerts.webhooks import webhook_attempt, webhook_queue
from cases.models import WebhookDelivery
from tests.cases.alerting import WebhookReceiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def station(settings, tmp_path):
    settings.WEBHOOK_SECRET = ""
    settings.WEBHOOK_SECRET_KEY_FILE = tmp_path / "keys" / "webhook-secret"
    return Station.objects.get(code="13022901")


def queue(station, url):
    station.webhook_url = url
    station.save()
    return webhook_queue(
        station=station,
        event="sighting.started",
        data={"report": "JJ1", "latitude": 39.882634, "longitude": 117.739871, "link": "/reports/1/"},
    )


def test_without_a_configured_secret_messages_are_signed_with_a_generated_one(station, settings, capsys):
    settings.WEBHOOK_ALLOW_HTTP = True
    with WebhookReceiver() as hook:
        delivery = queue(station, hook.url)
        assert webhook_attempt(delivery.pk) is True
    secret_file = settings.WEBHOOK_SECRET_KEY_FILE
    assert secret_file.stat().st_mode & 0o777 == 0o600
    secret = secret_file.read_text().strip()
    assert len(secret) == 64
    expected = hmac.new(secret.encode(), hook.bodies[0], hashlib.sha256).hexdigest()
    assert hook.headers[0]["X-Webhook-Signature"] == f"sha256={expected}"
    call_command("webhook_secret")
    assert capsys.readouterr().out.strip() == secret  # what the station's system is configured with


def test_positions_are_rounded_to_about_a_kilometre_before_they_are_stored(station, settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    with WebhookReceiver() as hook:
        delivery = queue(station, hook.url)
        webhook_attempt(delivery.pk)
    stored = WebhookDelivery.objects.get(pk=delivery.pk).payload["data"]
    assert (stored["latitude"], stored["longitude"]) == (39.88, 117.74)
    sent = json.loads(hook.bodies[0])["data"]
    assert (sent["latitude"], sent["longitude"]) == (39.88, 117.74)
    assert "39.8826" not in hook.bodies[0].decode()


def test_plain_http_is_refused_unless_allowed(station, settings):
    settings.WEBHOOK_ALLOW_HTTP = False
    with WebhookReceiver() as hook:
        delivery = queue(station, hook.url)
        assert hook.url.startswith("http://")
        assert webhook_attempt(delivery.pk) is False
    assert hook.received == []
    delivery.refresh_from_db()
    assert delivery.gave_up_at is not None
    assert delivery.last_error == "plain http refused (WEBHOOK_ALLOW_HTTP is off)"
