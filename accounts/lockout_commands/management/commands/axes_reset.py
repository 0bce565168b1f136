"""`manage.py axes_reset --by NAME`: lift every lockout, each audited (replaces django-axes' command)."""

from typing import Any

from accounts.lockout_commands.base import UnlockCommand


class Command(UnlockCommand):
    help = "Reset all access attempts and lockouts; --by NAME (required) is recorded with each in the audit trail."

    def handle(self, *args: Any, **options: Any) -> None:
        self.lift(options, [{}])
