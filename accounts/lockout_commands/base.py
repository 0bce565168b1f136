from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from accounts.signin import lockouts_lift


class UnlockCommand(BaseCommand):
    """One of axes' reset commands, with the operator's name required and each unlock audited."""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--by", default="", help="who unlocks (required; recorded in the audit trail)")

    def lift(self, options: dict[str, Any], targets: list[dict[str, str | None]]) -> None:
        by = options["by"].strip()
        if not by:
            raise CommandError(
                _("Name who unlocks with --by NAME: every unlock is recorded in the audit trail. Nothing was unlocked.")
            )
        command = self.__module__.rsplit(".", 1)[-1]
        count = 0
        try:
            for target in targets:
                count += lockouts_lift(by=by, via=f"manage.py {command}", **target)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(f"{count} attempts removed." if count else "No attempts found.")
