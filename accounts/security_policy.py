"""The security policy the security administrator sets: lockout, second factor, retention periods.

Each change is a new SecurityPolicy row (append-only: who, when, the values and a stated reason,
audited as `security.policy_changed` with the old and new values); the newest row is the policy.
Without a row the settings are the defaults: LOGIN_FAILURE_LIMIT, LOGIN_COOLOFF_MINUTES and the
retention setting each app's `<app>/retention.py` rules name. OTP_REQUIRED_ROLES is a floor, not a
default: those roles (MLPS level 3: officers, leaders, the administrator roles) sign in with a second
factor whatever a row says, and the policy can only add roles to them.

django-axes asks `axes_failure_limit` and `axes_cool_off` (AXES_FAILURE_LIMIT, AXES_COOLOFF_TIME),
accounts.signin asks the roles, tracking.retention the periods. The newest row is kept in the cache
for CACHE_SECONDS, so a sign-in does not read it again and again; saving a version drops it.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import connection, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import roles
from accounts.audit import audit_record
from accounts.models import (
    COOLOFF_MINUTES_BOUNDS,
    FAILURE_LIMIT_BOUNDS,
    RETENTION_DAYS_BOUNDS,
    SecurityPolicy,
    User,
)
from ebike_registry.app_declarations import app_declarations

logger = logging.getLogger(__name__)

CACHE_SECONDS = 60
LOCK_KEY = "accounts.security_policy"  # advisory lock: one change at a time
REQUEST_ATTRIBUTE = "_security_policy"  # the policy one request has read (axes asks several times)
REASON_MAX = 200


@dataclass(frozen=True)
class Policy:
    version: int | None  # the SecurityPolicy row; None: no row, the settings are the policy
    login_failure_limit: int
    lockout_cooloff_minutes: int
    second_factor_roles: frozenset[str]  # the floor (OTP_REQUIRED_ROLES) and the roles the policy adds
    retention_days: Mapping[str, int] = field(default_factory=dict)  # what the row sets
    set_at: datetime.datetime | None = None
    set_by: str = ""
    reason: str = ""

    def retention_period(self, setting: str) -> Any:
        """Days rows governed by `setting` are kept: the policy's, else the setting's own value."""
        if setting in self.retention_days:
            return self.retention_days[setting]
        return getattr(settings, setting, None)


def second_factor_floor() -> frozenset[str]:
    return frozenset(settings.OTP_REQUIRED_ROLES)


def policy_defaults() -> Policy:
    """The policy when the security administrator has set none: the settings."""
    return Policy(
        version=None,
        login_failure_limit=settings.LOGIN_FAILURE_LIMIT,
        lockout_cooloff_minutes=settings.LOGIN_COOLOFF_MINUTES,
        second_factor_roles=second_factor_floor(),
    )


def _stored(row: SecurityPolicy | None) -> dict[str, Any]:
    if row is None:
        return {"version": None}
    return {
        "version": row.pk,
        "login_failure_limit": row.login_failure_limit,
        "lockout_cooloff_minutes": row.lockout_cooloff_minutes,
        "second_factor_roles": sorted(row.second_factor_roles),
        "retention_days": dict(row.retention_days),
        "set_at": row.set_at,
        "set_by": row.set_by.get_username(),
        "reason": row.reason,
    }


def _cache_key() -> str:
    # One policy per database: the name keeps test databases apart in a shared Redis.
    return f"{LOCK_KEY}:{connection.settings_dict['NAME']}"


def policy_cache_drop() -> None:
    try:
        cache.delete(_cache_key())
    except Exception:  # the cache is a shortcut; its entry expires by itself
        logger.warning("security policy: the cache is unreachable, its entry expires after %ss", CACHE_SECONDS)


def _newest(*, cached: bool) -> dict[str, Any]:
    stored = None
    if cached:
        try:
            stored = cache.get(_cache_key())
        except Exception:  # without the cache, the database answers
            logger.warning("security policy: the cache is unreachable, reading the policy from the database")
    if stored is None:
        stored = _stored(SecurityPolicy.objects.select_related("set_by").first())
        if cached:
            try:
                cache.set(_cache_key(), stored, CACHE_SECONDS)
            except Exception:
                logger.warning("security policy: the cache is unreachable, not keeping the policy there")
    return stored


def policy_current(*, cached: bool = True) -> Policy:
    """The policy in force: the newest version, else the settings (the floor of second-factor roles
    applies either way)."""
    stored = _newest(cached=cached)
    if stored["version"] is None:
        return policy_defaults()
    return Policy(
        version=stored["version"],
        login_failure_limit=stored["login_failure_limit"],
        lockout_cooloff_minutes=stored["lockout_cooloff_minutes"],
        second_factor_roles=second_factor_floor() | frozenset(stored["second_factor_roles"]),
        retention_days=stored["retention_days"],
        set_at=stored["set_at"],
        set_by=stored["set_by"],
        reason=stored["reason"],
    )


def _for_request(request: HttpRequest | None) -> Policy:
    if request is None:
        return policy_current()
    policy = getattr(request, REQUEST_ATTRIBUTE, None)
    if policy is None:
        policy = policy_current()
        setattr(request, REQUEST_ATTRIBUTE, policy)
    return policy


def axes_failure_limit(request: HttpRequest | None, credentials: Any = None) -> int:
    """AXES_FAILURE_LIMIT: failed passwords or codes, per account or per address, before a lockout."""
    return _for_request(request).login_failure_limit


def axes_cool_off(request: HttpRequest | None = None) -> datetime.timedelta:
    """AXES_COOLOFF_TIME: how long a lockout lasts after the last failure."""
    return datetime.timedelta(minutes=_for_request(request).lockout_cooloff_minutes)


def retention_settings() -> dict[str, list[str]]:
    """Each retention setting the apps' `<app>/retention.py` rules name -> the tables it governs
    (their verbose names), found through the app registry like tracking.retention finds them."""
    found: dict[str, list[str]] = {}
    for _name, module in app_declarations("retention"):
        for rule in getattr(module, "RETENTION", []):
            # gettext: tables whose models declare no translated name have one in the catalogue.
            found.setdefault(rule.days_setting, []).append(_(str(rule.model._meta.verbose_name_plural)))
    return found


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def security_policy_check(
    *,
    login_failure_limit: Any,
    lockout_cooloff_minutes: Any,
    second_factor_roles: Iterable[str],
    retention_days: Mapping[str, Any],
    reason: str,
) -> dict[str, list[str]]:
    """Every problem of a proposed policy, by field (a retention period by its setting's name)."""
    problems: dict[str, list[str]] = {}
    low, high = FAILURE_LIMIT_BOUNDS
    if not _whole(login_failure_limit) or not low <= login_failure_limit <= high:
        problems["login_failure_limit"] = [
            _("The failure limit is a whole number from %(low)d to %(high)d.") % {"low": low, "high": high}
        ]
    low, high = COOLOFF_MINUTES_BOUNDS
    if not _whole(lockout_cooloff_minutes) or not low <= lockout_cooloff_minutes <= high:
        problems["lockout_cooloff_minutes"] = [
            _("The cool-off is a whole number of minutes from %(low)d to %(high)d (a day).")
            % {"low": low, "high": high}
        ]
    chosen = set(second_factor_roles)
    role_problems = []
    if unknown := sorted(chosen - set(roles.ROLE_PERMISSIONS)):
        role_problems.append(_("No such role: %(roles)s.") % {"roles": ", ".join(unknown)})
    if missing := sorted(second_factor_floor() - chosen):
        role_problems.append(
            _(
                "The second factor cannot be dropped for %(roles)s: MLPS level 3 requires it for them "
                "(OTP_REQUIRED_ROLES). Roles can only be added."
            )
            % {"roles": ", ".join(missing)}
        )
    if role_problems:
        problems["second_factor_roles"] = role_problems
    declared = retention_settings()
    if unknown := sorted(set(retention_days) - set(declared)):
        problems["retention_days"] = [_("No retention setting named %(names)s.") % {"names": ", ".join(unknown)}]
    low, high = RETENTION_DAYS_BOUNDS
    for setting in declared:
        days = retention_days.get(setting)
        if days is None:
            problems[setting] = [_("Give the days %(setting)s keeps rows.") % {"setting": setting}]
        elif not _whole(days) or not low <= days <= high:
            problems[setting] = [
                _("%(setting)s is a whole number of days from %(low)d to %(high)d.")
                % {"setting": setting, "low": low, "high": high}
            ]
    if not reason.strip():
        problems["reason"] = [_("State why the policy changes: the reason is recorded with it.")]
    elif len(reason.strip()) > REASON_MAX:
        problems["reason"] = [_("The reason has at most %(n)d characters.") % {"n": REASON_MAX}]
    return problems


def _values(policy: Policy) -> dict[str, Any]:
    """A policy's values as the audit trail records them (every declared retention period)."""
    return {
        "login_failure_limit": policy.login_failure_limit,
        "lockout_cooloff_minutes": policy.lockout_cooloff_minutes,
        "second_factor_roles": sorted(policy.second_factor_roles),
        "retention_days": {setting: policy.retention_period(setting) for setting in retention_settings()},
    }


def security_policy_set(
    *,
    user: User,
    based_on: int | None,
    login_failure_limit: int,
    lockout_cooloff_minutes: int,
    second_factor_roles: Iterable[str],
    retention_days: Mapping[str, int],
    reason: str,
    ip: str | None = None,
) -> SecurityPolicy:
    """A new version of the policy, in force at once; `based_on` is the version the change was made
    from (None: the defaults), so that two administrators changing it at once do not overwrite each
    other unseen. Raises ValidationError naming every problem by field."""
    second_factor_roles = sorted(set(second_factor_roles))
    problems = security_policy_check(
        login_failure_limit=login_failure_limit,
        lockout_cooloff_minutes=lockout_cooloff_minutes,
        second_factor_roles=second_factor_roles,
        retention_days=retention_days,
        reason=reason,
    )
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [LOCK_KEY])
        old = policy_current(cached=False)
        if old.version != based_on:
            at = f"{timezone.localtime(old.set_at):%Y-%m-%d %H:%M}" if old.set_at else "-"
            message = _(
                "%(user)s changed the policy at %(at)s while you were editing it. Check the values now in "
                "force below and submit your change again."
            ) % {"user": old.set_by or "-", "at": at}
            raise ValidationError({NON_FIELD_ERRORS: [message]})
        row = SecurityPolicy.objects.create(
            set_by=user,
            reason=reason.strip(),
            login_failure_limit=login_failure_limit,
            lockout_cooloff_minutes=lockout_cooloff_minutes,
            second_factor_roles=second_factor_roles,
            retention_days={setting: retention_days[setting] for setting in retention_settings()},
        )
        policy_cache_drop()
        new = policy_current(cached=False)
        audit_record(
            user=user,
            action="security.policy_changed",
            object_type="security_policy",
            object_id=row.pk,
            query={"old": _values(old), "new": _values(new), "previous_version": old.version},
            reason=reason.strip(),
            ip=ip,
        )
        # Another process may have cached the old version before this one commits.
        transaction.on_commit(policy_cache_drop)
    return row


def security_policy_history() -> QuerySet[SecurityPolicy]:
    return SecurityPolicy.objects.select_related("set_by").order_by("-id")
