"""Create an owner's login, linked to their registration by ID number:

    python manage.py owner_login --id-number 130229198503151230 --username wangxiuying

The password is asked for twice (or read from the OWNER_LOGIN_PASSWORD environment variable).
"""

import getpass
import os
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from web.owner_accounts import owner_login_create


class Command(BaseCommand):
    help = "Create a login for a registered owner (found by ID number) to use the owner pages."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--id-number", required=True, help="the owner's resident ID number or credit code")
        parser.add_argument("--username", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        password = os.environ.get("OWNER_LOGIN_PASSWORD") or self._ask()
        try:
            user = owner_login_create(
                by=None, id_number=options["id_number"], username=options["username"], password=password
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(f"created login {user.username} for owner {user.first_name}")

    def _ask(self) -> str:
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("The passwords differ.")
        return first
