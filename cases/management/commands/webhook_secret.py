"""Print the secret that signs station webhooks (created on first use unless WEBHOOK_SECRET is set),
for configuring a station's receiving system: `manage.py webhook_secret`."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from cases.alerts.webhooks import webhook_secret


class Command(BaseCommand):
    help = "Print the HMAC-SHA256 secret of X-Webhook-Signature (created on first use)."

    def handle(self, *args: Any, **options: Any) -> None:
        secret = webhook_secret()
        source = "WEBHOOK_SECRET" if settings.WEBHOOK_SECRET else str(settings.WEBHOOK_SECRET_KEY_FILE)
        self.stderr.write(f"from {source}")
        self.stdout.write(secret)
