"""`manage.py axes_reset_ip IP [IP …] --by NAME`: lift the lockouts of addresses, each audited
(replaces django-axes' command)."""

from typing import Any

from django.core.management.base import CommandParser

from accounts.lockout_commands.base import UnlockCommand


class Command(UnlockCommand):
    help = (
        "Reset all access attempts and lockouts for given IP addresses; --by NAME (required) is recorded with "
        "each in the audit trail."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ip", nargs="+", type=str)
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        self.lift(options, [{"ip": ip} for ip in options["ip"]])
