"""Roles are auth groups with permissions; this module is the one place that defines them.

`roles_sync` runs after every migrate (post_migrate), creating missing groups and granting exactly
the permissions listed here, so a fresh database and an upgraded one end up with the same roles.
"""

from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db import DEFAULT_DB_ALIAS

OWNER = "owner"
CLERK = "clerk"
OFFICER = "officer"
# The bureau's leadership (statistics, claims approval, reviews of looks taken on a stated reason);
# the group keeps its historical name. A leader with a station leads that station (assigns its
# reports); one without a station is county leadership.
ADMIN = "admin"
LEADER = ADMIN
STAFF_ROLES = (CLERK, OFFICER, ADMIN)
# Separation of duties (三员分立, GB/T 22239-2019 8.1.4.x): three administrator roles, granted only by
# `manage.py admin_role_grant`, never two to one account, none of them with access to positions or
# personal data by being an administrator.
SYSADMIN = "sysadmin"  # system administrator: accounts and reference data
AUDITADMIN = "auditadmin"  # audit administrator: reads the audit trail and nothing else
SECADMIN = "secadmin"  # security administrator: lockouts, second factor, retention policy
ADMINISTRATOR_ROLES = (SYSADMIN, AUDITADMIN, SECADMIN)

# "app_label.codename" for each role. Custom permissions are declared on the models' Meta.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    OWNER: [],
    CLERK: [
        "cases.view_insuranceclaim",
        "cases.submit_claim",
        "cases.settle_claim",
        "cases.add_theftreport",
        "cases.view_theftreport",
        "vehicles.register_vehicle",
        "vehicles.search_records",
        "vehicles.view_vehicle",
        "vehicles.view_owner",
        "vehicles.view_plate",
        "vehicles.view_insurancepolicy",
        "vehicles.view_registrationevent",
    ],
    OFFICER: [
        "cases.view_insuranceclaim",
        "cases.submit_claim",
        "cases.export_evidence",
        "cases.add_theftreport",
        "cases.change_theftreport",
        "cases.view_theftreport",
        "cases.add_case",
        "cases.change_case",
        "cases.view_case",
        "cases.view_dutycall",
        "cases.change_dutycall",
        "vehicles.search_records",
        "vehicles.view_full_identity",
        "vehicles.view_vehicle",
        "vehicles.view_owner",
        "vehicles.view_plate",
        "vehicles.view_insurancepolicy",
        "vehicles.view_registrationevent",
    ],
    ADMIN: [
        "cases.view_insuranceclaim",
        "cases.decide_claim",
        "cases.pay_claim",
        "cases.settle_claim",
        "cases.export_evidence",
        "cases.view_theftreport",
        "cases.view_case",
        "vehicles.register_vehicle",
        "vehicles.search_records",
        "vehicles.view_full_identity",
        "vehicles.view_vehicle",
        "vehicles.view_owner",
        "vehicles.view_plate",
        "vehicles.view_plateseries",
        "vehicles.view_insurancepolicy",
        "vehicles.view_insurancescheme",
        "vehicles.view_registrationevent",
        "accounts.view_station",
        "accounts.view_township",
        "accounts.view_registrationpoint",
    ],
    SYSADMIN: [
        "vehicles.view_plateseries",
        "vehicles.add_plateseries",
        "vehicles.change_plateseries",
        "vehicles.view_insurancescheme",
        "vehicles.add_insurancescheme",
        "vehicles.change_insurancescheme",
        "accounts.view_station",
        "accounts.add_station",
        "accounts.change_station",
        "accounts.view_township",
        "accounts.view_registrationpoint",
        "accounts.add_registrationpoint",
        "accounts.change_registrationpoint",
        "accounts.view_user",
        "accounts.add_user",
        "accounts.change_user",
        # Derived work and webhook messages that kept failing (read-only; re-run by command).
        "tracking.view_ingestoutbox",
        "cases.view_webhookdelivery",
    ],
    AUDITADMIN: ["accounts.view_auditentry"],
    # Lifts lockouts and resets a lost phone's second factor (each removal audited, accounts.admin_security);
    # sets the security policy by the rule accounts.set_security_policy (accounts.rules), not a permission here.
    SECADMIN: [
        "axes.view_accessattempt",
        "axes.delete_accessattempt",
        "otp_totp.view_totpdevice",
        "otp_totp.delete_totpdevice",
        "accounts.view_recoverycodedevice",
        "accounts.delete_recoverycodedevice",
    ],
}


def roles_sync(sender: Any = None, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    wanted = {perm for perms in ROLE_PERMISSIONS.values() for perm in perms}
    by_name: dict[str, Permission] = {}
    for perm in Permission.objects.using(using).select_related("content_type"):
        by_name[f"{perm.content_type.app_label}.{perm.codename}"] = perm
    if not wanted <= by_name.keys():
        return  # Some app's permissions are not created yet; a later post_migrate call finishes.
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.using(using).get_or_create(name=role)
        group.permissions.set([by_name[p] for p in perms])


def user_roles(user: Any) -> set[str]:
    """The user's role names, read once per user object (the policy rules ask for them often)."""
    if not user.is_authenticated:
        return set()
    cached = getattr(user, "_role_names", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        user._role_names = cached
    return set(cached)
