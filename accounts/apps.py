from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts and stations")

    def ready(self) -> None:
        # Sign-ins, failures, lockouts and sign-outs into the audit trail (receivers connect on import).
        import accounts.auth_signals  # noqa: F401
        from accounts.roles import roles_sync

        # Permissions are created by post_migrate too; connecting here (after auth) lets the role
        # groups pick up every app's permissions, like Django's own create_permissions does.
        post_migrate.connect(roles_sync, dispatch_uid="accounts.roles_sync")
        from accounts.db_roles import privileges_apply_after_migrate

        # Once per migrate (every table exists by then): the runtime database roles' grants.
        post_migrate.connect(privileges_apply_after_migrate, sender=self, dispatch_uid="accounts.db_privileges")
