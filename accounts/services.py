"""Granting the three administrator roles (三员分立): only by a management command, one each."""

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts import roles
from accounts.audit import audit_record
from accounts.models import User


def _role_check(role: str) -> None:
    if role not in roles.ADMINISTRATOR_ROLES:
        raise ValidationError(
            {"role": _("The role is one of: %(roles)s.") % {"roles": ", ".join(roles.ADMINISTRATOR_ROLES)}}
        )


def _account_locked(username: str) -> User:
    user = User.objects.select_for_update().filter(username=username).first()
    if user is None:
        raise ValidationError({"username": _("No account named %(u)s.") % {"u": username}})
    return user


def administrator_role_grant(*, username: str, role: str, granted_by: str) -> User:
    """Give `role` (sysadmin, auditadmin or secadmin) to an account that holds no role yet.

    No account holds two administrator roles, nor an administrator role beside a working role
    (clerk, officer, leader, owner): an administrator sees no positions or personal data by being
    one. The grant is audited with who ran the command (`granted_by`, the operator's name).
    """
    _role_check(role)
    if not granted_by.strip():
        raise ValidationError({"granted_by": _("Name the person granting the role; it is recorded.")})
    with transaction.atomic():
        user = _account_locked(username)
        held = set(user.groups.values_list("name", flat=True))
        if role in held:
            raise ValidationError({"role": _("%(u)s already holds %(r)s.") % {"u": username, "r": role}})
        if held:
            raise ValidationError(
                {
                    "role": _(
                        "%(u)s already holds %(held)s: an administrator role is given only to an account "
                        "with no other role (separation of duties)."
                    )
                    % {"u": username, "held": ", ".join(sorted(held))}
                }
            )
        if user.is_superuser:
            raise ValidationError({"username": _("The superuser is the break-glass account; it takes no role.")})
        user.groups.add(Group.objects.get(name=role))
        # The Django admin is where the administrators work.
        User.objects.filter(pk=user.pk).update(is_staff=True)
        audit_record(
            user=None,
            action="admin_role.grant",
            object_type="user",
            object_id=user.pk,
            query={"role": role, "granted_by": granted_by.strip()},
        )
    user.refresh_from_db()
    return user


def administrator_role_revoke(*, username: str, role: str, revoked_by: str) -> User:
    _role_check(role)
    with transaction.atomic():
        user = _account_locked(username)
        if not user.groups.filter(name=role).exists():
            raise ValidationError({"role": _("%(u)s does not hold %(r)s.") % {"u": username, "r": role}})
        user.groups.remove(Group.objects.get(name=role))
        User.objects.filter(pk=user.pk).update(is_staff=False)
        audit_record(
            user=None,
            action="admin_role.revoke",
            object_type="user",
            object_id=user.pk,
            query={"role": role, "revoked_by": revoked_by.strip()},
        )
    user.refresh_from_db()
    return user
