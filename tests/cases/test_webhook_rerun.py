"""Given-up station webhook messages (issue 19): listed in the admin for the system administrator,
in Chinese, read-only and without the message's body; sent again by `manage.py webhook_rerun`,
oldest first, audited with who and why."""

import pytest
from django.core.management import CommandError, call_command

from accounts.models import AuditEntry, Station
from cases.alerts.webhooks import webhook_attempt, webhook_give_up, webhook_queue
from cases.models import WebhookDelivery
from tests import factories
from tests.cases.alerting import WebhookReceiver

pytestmark = pytest.mark.django_db

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}


@pytest.fixture
def station(settings, tmp_path):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_SECRET = "s3cret"
    return Station.objects.get(code="13022901")


def queue(station: Station, url: str, report: str) -> WebhookDelivery:
    Station.objects.filter(pk=station.pk).update(webhook_url=url)
    station.refresh_from_db()
    delivery = webhook_queue(
        station=station,
        event="sighting.started",
        data={"report": report, "latitude": 39.88, "longitude": 117.74, "link": "/reports/1/"},
    )
    assert delivery is not None
    return delivery


def test_given_up_messages_are_shown_and_sent_again_to_the_fixed_receiver(station, client):
    with WebhookReceiver(statuses=[404]) as broken:
        refused = queue(station, broken.url, "JJ-FIRST")
        assert webhook_attempt(refused.pk) is False  # HTTP 404: given up at once
    unreachable = queue(station, broken.url, "JJ-SECOND")  # the receiver is gone now
    webhook_give_up(unreachable.pk, "gave up after 9 attempts: ConnectionRefusedError")

    client.force_login(factories.user("sysadmin", is_staff=True))
    page = client.get("/admin/cases/webhookdelivery/?state=given_up", **ZH).content.decode()
    assert page.count("已放弃") >= 2 and "HTTP 404" in page and "ConnectionRefusedError" in page
    detail = client.get(f"/admin/cases/webhookdelivery/{refused.pk}/change/", **ZH).content.decode()
    assert "webhook_rerun --by" in detail
    assert "JJ-FIRST" not in detail  # the body (a stolen bike's report) is not the administrator's to read
    assert client.post(f"/admin/cases/webhookdelivery/{refused.pk}/delete/", {"post": "yes"}).status_code == 403

    with WebhookReceiver() as fixed:
        Station.objects.filter(pk=station.pk).update(webhook_url=fixed.url)  # the station fixed its system
        call_command("webhook_rerun", "--all", "--current-url", by="李工", reason="派出所接收端已修复")
    assert [message["data"]["report"] for message in fixed.received] == ["JJ-FIRST", "JJ-SECOND"]  # oldest first
    assert WebhookDelivery.objects.filter(delivered_at__isnull=False, url=fixed.url).count() == 2
    audit = AuditEntry.objects.filter(action="webhook.rerun").order_by("pk")
    assert [(a.object_id, a.reason, a.query["by"]) for a in audit] == [
        (str(refused.pk), "派出所接收端已修复", "李工"),
        (str(unreachable.pk), "派出所接收端已修复", "李工"),
    ]


def test_a_message_refused_again_stays_given_up_and_the_command_says_so(station):
    with WebhookReceiver(statuses=[400, 400]) as hook:
        delivery = queue(station, hook.url, "JJ-1")
        assert webhook_attempt(delivery.pk) is False
        with pytest.raises(CommandError, match="1 of 1 deliveries were given up again"):
            call_command("webhook_rerun", str(delivery.pk), by="李工", reason="再试一次")
    delivery.refresh_from_db()
    assert delivery.gave_up_at is not None and delivery.last_error == "HTTP 400" and delivery.attempts == 2
    with pytest.raises(CommandError, match="--by and --reason"):
        call_command("webhook_rerun", str(delivery.pk), by="李工")
