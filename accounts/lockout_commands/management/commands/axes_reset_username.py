"""`manage.py axes_reset_username NAME [NAME …] --by NAME`: lift the lockouts of accounts, each
audited (replaces django-axes' command)."""

from typing import Any

from django.core.management.base import CommandParser

from accounts.lockout_commands.base import UnlockCommand


class Command(UnlockCommand):
    help = (
        "Reset all access attempts and lockouts for given usernames; --by NAME (required) is recorded with "
        "each in the audit trail."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", nargs="+", type=str)
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        self.lift(options, [{"username": username} for username in options["username"]])
