"""Statistics are for the bureau's leadership: asked of the policy (stats.rules)."""

from typing import Any

from rest_framework.permissions import BasePermission


def is_stats_admin(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.has_perm("stats.view_statistics"))


class IsStatsAdmin(BasePermission):
    message = "Statistics are for the bureau's leadership."

    def has_permission(self, request: Any, view: Any) -> bool:
        return is_stats_admin(request.user)
