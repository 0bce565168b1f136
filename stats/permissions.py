"""Statistics are for the bureau's leadership and IT: the admin role (or a superuser)."""

from typing import Any

from rest_framework.permissions import BasePermission

from accounts.roles import ADMIN


def is_stats_admin(user: Any) -> bool:
    if not (user and user.is_authenticated and user.is_active):
        return False
    return bool(user.is_superuser or user.groups.filter(name=ADMIN).exists())


class IsStatsAdmin(BasePermission):
    message = "Statistics are for administrators."

    def has_permission(self, request: Any, view: Any) -> bool:
        return is_stats_admin(request.user)
