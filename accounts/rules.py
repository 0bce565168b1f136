"""The policy layer's foundation: who a user is (role, station), as `rules` predicates.

Every decision of who may see or do what is asked as `user.has_perm(perm, obj)`: role permissions
come from the groups of accounts.roles (the model backend), object rules from the `rules.py` of the
app that owns the object (autodiscovered; later apps build on the predicates here, so imports keep
pointing one way). Views, templates, serializers, exports and the admin ask; they never decide.

A superuser passes every `has_perm`: it is the break-glass account, and accounts.breakglass audits
each of its requests.
"""

from typing import Any

import rules

from accounts import roles


def _has_role(name: str) -> Any:
    @rules.predicate(name=f"is_{name}")
    def check(user: Any) -> bool:
        return name in roles.user_roles(user)

    return check


is_owner = _has_role(roles.OWNER)
is_clerk = _has_role(roles.CLERK)
is_officer = _has_role(roles.OFFICER)
is_leader = _has_role(roles.LEADER)
is_sysadmin = _has_role(roles.SYSADMIN)
is_auditadmin = _has_role(roles.AUDITADMIN)
is_secadmin = _has_role(roles.SECADMIN)
is_staff_member = is_clerk | is_officer | is_leader


@rules.predicate
def has_station(user: Any) -> bool:
    return bool(getattr(user, "station_id", None))


@rules.predicate
def is_county_leader(user: Any) -> bool:
    """A leader without a station oversees the whole county."""
    return is_leader(user) and not has_station(user)


def same_station(user: Any, station_id: int | None) -> bool:
    return station_id is not None and getattr(user, "station_id", None) == station_id


# Reference data: the people who work with stations and townships (not owners).
rules.add_perm("accounts.list_reference_data", is_staff_member | is_sysadmin)
# The audit trail is read by the audit administrator alone (三员分立).
rules.add_perm("accounts.read_audit_trail", is_auditadmin)
# Accounts and reference data are managed by the system administrator.
rules.add_perm("accounts.manage_accounts", is_sysadmin)
# The security policy (lockout, second factor, retention) is set by the security administrator.
rules.add_perm("accounts.set_security_policy", is_secadmin)
