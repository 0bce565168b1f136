"""`manage.py axes_reset_ip_username IP USERNAME --by NAME`: lift the lockout of one account from one
address, audited (replaces django-axes' command)."""

from typing import Any

from django.core.management.base import CommandParser

from accounts.lockout_commands.base import UnlockCommand


class Command(UnlockCommand):
    help = (
        "Reset all access attempts and lockouts for a given IP address and username; --by NAME (required) is "
        "recorded with each in the audit trail."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ip", type=str)
        parser.add_argument("username", type=str)
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        self.lift(options, [{"ip": options["ip"], "username": options["username"]}])
