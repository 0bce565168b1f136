"""Writing the audit trail (MLPS level 3: date, time, type, subject, object, result)."""

from typing import Any

from django.http import HttpRequest

from accounts.models import AuditEntry, User


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_record(
    *,
    user: User | None,
    action: str,
    object_type: str = "",
    object_id: object = "",
    query: dict[str, Any] | None = None,
    result_count: int | None = None,
    reason: str = "",
    ip: str | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        user=user if user is not None and user.is_authenticated else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id != "" else "",
        query=query or {},
        result_count=result_count,
        reason=reason[:200],
        ip=ip,
    )
