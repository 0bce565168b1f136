from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracking.models import Terminal
from tracking.services import ingest_token_create


class Command(BaseCommand):
    help = "Create a bearer token for POST /api/v1/pings (for one terminal, or an integration)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="who the token is for")
        parser.add_argument("--imei", help="restrict the token to this terminal")

    def handle(self, *args: object, **options: str) -> None:
        terminal = None
        if options.get("imei"):
            terminal = Terminal.objects.filter(imei=options["imei"]).first()
            if terminal is None:
                raise CommandError(f"No terminal with IMEI {options['imei']}.")
        try:
            _token, raw = ingest_token_create(name=options["name"], terminal=terminal)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(raw)
