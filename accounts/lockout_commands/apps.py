from django.apps import AppConfig


class LockoutCommandsConfig(AppConfig):
    name = "accounts.lockout_commands"
    label = "accounts_lockout_commands"
    verbose_name = "Audited lockout commands"
