"""The security administrator's page: the security policy in force beside its defaults and floor,
a change with its reason, and every version before it (accounts.security_policy)."""

from collections.abc import Iterable
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from accounts import roles
from accounts.audit import client_ip
from accounts.models import COOLOFF_MINUTES_BOUNDS, FAILURE_LIMIT_BOUNDS, RETENTION_DAYS_BOUNDS
from accounts.request_types import AuthedHttpRequest
from accounts.security_policy import (
    Policy,
    policy_current,
    policy_defaults,
    retention_settings,
    second_factor_floor,
    security_policy_history,
    security_policy_set,
)
from ebike_registry.forms import place_problems, problem_dict

ROLE_LABELS = {
    roles.OWNER: gettext_lazy("Owner"),
    roles.CLERK: gettext_lazy("Clerk"),
    roles.OFFICER: gettext_lazy("Officer"),
    roles.LEADER: gettext_lazy("Leader"),
    roles.SYSADMIN: gettext_lazy("System administrator"),
    roles.AUDITADMIN: gettext_lazy("Audit administrator"),
    roles.SECADMIN: gettext_lazy("Security administrator"),
}
HISTORY_ROWS = 50


def _labels(names: Iterable[str]) -> list[Any]:
    """Role names as the page shows them, in the order of ROLE_LABELS (unknown names as they are)."""
    names = set(names)
    return [label for role, label in ROLE_LABELS.items() if role in names] + sorted(names - ROLE_LABELS.keys())


def _number(bounds: tuple[int, int], **kwargs: Any) -> forms.IntegerField:
    # The browser is told the bounds; the service checks them and says what is wrong.
    return forms.IntegerField(widget=forms.NumberInput(attrs={"min": bounds[0], "max": bounds[1]}), **kwargs)


class SecurityPolicyForm(forms.Form):
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)
    login_failure_limit = _number(FAILURE_LIMIT_BOUNDS, label=gettext_lazy("Failed sign-ins before a lockout"))
    lockout_cooloff_minutes = _number(COOLOFF_MINUTES_BOUNDS, label=gettext_lazy("Lockout cool-off (minutes)"))
    second_factor_roles = forms.MultipleChoiceField(
        label=gettext_lazy("Roles that sign in with a second factor"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason for the change"),
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("Recorded with the new version and in the audit trail."),
    )

    def __init__(self, *args: Any, retention: dict[str, list[str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        floor = second_factor_floor()
        cast(forms.ChoiceField, self.fields["second_factor_roles"]).choices = [
            (role, _("%(role)s (required)") % {"role": label} if role in floor else label)
            for role, label in ROLE_LABELS.items()
        ]
        self.retention_names = list(retention)
        for setting, tables in retention.items():
            self.fields[setting] = _number(RETENTION_DAYS_BOUNDS, label=setting, help_text=", ".join(tables))

    def retention_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.retention_names]


def _initial(policy: Policy, retention: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "version": policy.version,
        "login_failure_limit": policy.login_failure_limit,
        "lockout_cooloff_minutes": policy.lockout_cooloff_minutes,
        "second_factor_roles": sorted(policy.second_factor_roles),
        **{setting: policy.retention_period(setting) for setting in retention},
    }


@login_required
@require_http_methods(["GET", "POST"])
def security_policy(request: AuthedHttpRequest) -> HttpResponse:
    """安全策略: lockout, second factor and retention periods, set by the security administrator."""
    if not request.user.has_perm("accounts.set_security_policy"):
        raise PermissionDenied(_("The security administrator sets the security policy."))
    retention = retention_settings()
    current = policy_current(cached=False)
    form = SecurityPolicyForm(request.POST or None, retention=retention, initial=_initial(current, retention))
    if request.method == "POST" and form.is_valid():
        try:
            row = _policy_set(request, form.cleaned_data, retention)
        except ValidationError as exc:
            current, form = _policy_refused(request, exc, form, retention=retention, current=current)
        else:
            message = _("Version %(version)d of the security policy is in force.") % {"version": row.pk}
            messages.success(request, message)
            return redirect("security-policy")
    context = _policy_context(form, current, retention)
    return render(request, "accounts/security_policy.html", context, status=400 if form.errors else 200)


def _policy_set(request: AuthedHttpRequest, values: dict[str, Any], retention: dict[str, list[str]]) -> Any:
    return security_policy_set(
        user=request.user,
        based_on=values["version"],
        login_failure_limit=values["login_failure_limit"],
        lockout_cooloff_minutes=values["lockout_cooloff_minutes"],
        second_factor_roles=values["second_factor_roles"],
        retention_days={setting: values[setting] for setting in retention},
        reason=values["reason"],
        ip=client_ip(request),
    )


def _policy_refused(
    request: HttpRequest,
    exc: ValidationError,
    form: SecurityPolicyForm,
    *,
    retention: dict[str, list[str]],
    current: Policy,
) -> tuple[Policy, SecurityPolicyForm]:
    """The refusal at the form's fields. When another version came into force meanwhile: show it,
    keep what was typed, and let the next submission be made from it."""
    if NON_FIELD_ERRORS in exc.message_dict:
        current = policy_current(cached=False)
        data = request.POST.copy()
        data["version"] = "" if current.version is None else str(current.version)
        form = SecurityPolicyForm(data, retention=retention, initial=_initial(current, retention))
        form.is_valid()
    place_problems(problem_dict(exc), page=form, beside_parse_errors=True)
    return current, form


def _policy_context(form: SecurityPolicyForm, current: Policy, retention: dict[str, list[str]]) -> dict[str, Any]:
    defaults = policy_defaults()
    return {
        "form": form,
        "current": current,
        "defaults": defaults,
        "floor": _labels(second_factor_floor()),
        "current_roles": _labels(current.second_factor_roles),
        "retention": [
            {
                "setting": setting,
                "tables": tables,
                "current": current.retention_period(setting),
                "default": defaults.retention_period(setting),
            }
            for setting, tables in retention.items()
        ],
        "bounds": {
            "failures": FAILURE_LIMIT_BOUNDS,
            "cooloff": COOLOFF_MINUTES_BOUNDS,
            "retention": RETENTION_DAYS_BOUNDS,
        },
        "history": [
            {
                "row": row,
                "roles": _labels(row.second_factor_roles),
                "retention": sorted(row.retention_days.items()),
            }
            for row in security_policy_history()[:HISTORY_ROWS]
        ],
    }
