"""`manage.py admin_role grant|revoke USERNAME ROLE --by NAME`: the only way to give or take the
system, audit and security administrator roles (三员分立)."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import roles
from accounts.services import administrator_role_grant, administrator_role_revoke


class Command(BaseCommand):
    help = "Grant or revoke an administrator role (sysadmin, auditadmin, secadmin); one per account, audited."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["grant", "revoke"])
        parser.add_argument("username")
        parser.add_argument("role", choices=roles.ADMINISTRATOR_ROLES)
        parser.add_argument("--by", required=True, help="who grants or revokes it (recorded in the audit trail)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "grant":
                user = administrator_role_grant(
                    username=options["username"], role=options["role"], granted_by=options["by"]
                )
            else:
                user = administrator_role_revoke(
                    username=options["username"], role=options["role"], revoked_by=options["by"]
                )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(f"{options['action']}: {user.username} {options['role']}")
