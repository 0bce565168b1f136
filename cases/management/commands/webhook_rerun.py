"""`manage.py webhook_rerun --by NAME --reason TEXT [ID …] [--all] [--current-url] [--list]`: send
given-up station webhook messages again, oldest first (cases.alerts.webhooks.webhook_rerun)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cases.alerts.webhooks import Rerun, webhook_rerun, webhooks_given_up
from cases.models import WebhookDelivery


class Command(BaseCommand):
    help = (
        "Send given-up webhook messages again, oldest first; each re-send is audited with who ran it "
        "and why. --list shows them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", type=int, help="delivery ids (see --list or the admin)")
        parser.add_argument("--all", action="store_true", help="every given-up delivery")
        parser.add_argument("--list", action="store_true", help="list the given-up deliveries, change nothing")
        parser.add_argument(
            "--current-url", action="store_true", help="send to the station's webhook URL of today, not the stored one"
        )
        parser.add_argument("--by", default="", help="who runs it (recorded in the audit trail)")
        parser.add_argument("--reason", default="", help="why, e.g. the station's receiver is back (recorded)")

    def handle(self, *args: Any, **options: Any) -> None:
        ids: list[int] = options["ids"]
        if options["list"]:
            rows = WebhookDelivery.objects.filter(pk__in=webhooks_given_up(ids or None)).select_related("station")
            for row in rows.order_by("pk"):
                self.stdout.write(
                    f"{row.pk}\t{row.created_at:%Y-%m-%d %H:%M:%S}\t{row.station.code}\t{row.event}\t"
                    f"attempts={row.attempts}\t{row.last_error}"
                )
            return
        if not ids and not options["all"]:
            raise CommandError("Name the deliveries to send again (ids) or pass --all.")
        if not options["by"].strip() or not options["reason"].strip():
            raise CommandError("--by and --reason are required: both are recorded in the audit trail.")
        given_up = webhooks_given_up(ids or None)
        missing = sorted(set(ids) - set(given_up))
        if missing:
            self.stderr.write(f"not given up (delivered, pending or unknown), skipped: {missing}")
        failed = 0
        for delivery_id in given_up:
            result = webhook_rerun(
                delivery_id=delivery_id, by=options["by"], reason=options["reason"], current_url=options["current_url"]
            )
            if result is None:
                self.stderr.write(f"{delivery_id}: no longer given up, skipped")
                continue
            if result in (Rerun.REFUSED, Rerun.NOT_QUEUED):
                failed += 1
                error = WebhookDelivery.objects.values_list("last_error", flat=True).get(pk=delivery_id)
                self.stdout.write(f"{delivery_id}: {result} ({error})")
            else:
                self.stdout.write(f"{delivery_id}: {result}")
        if failed:
            raise CommandError(f"{failed} of {len(given_up)} deliveries were given up again (see the admin).")
