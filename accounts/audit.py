"""Writing the audit trail (MLPS level 3: date, time, type, subject, object, result)."""

import ipaddress
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest

from accounts.models import AuditEntry, User
from ebike_registry.lengths import stored_length

if TYPE_CHECKING:
    from rest_framework.request import Request

# The legal basis recorded for a look taken on a stated reason alone (no duty): such looks are
# listed for the station leader's review (cases.tracing.oversight).
STATED_REASON = "stated_reason"


# A reason typed for the trail (a search's, a look's legal basis) fits the row whole: where it is
# typed, a longer one is refused, never cut to this.
REASON_LENGTH = stored_length(AuditEntry, "reason")


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's real address: the socket's peer, or, behind TRUSTED_PROXY_COUNT reverse proxies,
    the address the outermost of them saw.

    Each proxy appends the address of its own peer to X-Forwarded-For, so with N proxies the entry N
    from the right was written by the outermost one; anything left of it came from the client and
    is ignored. A request with fewer entries than that did not come through every proxy: its
    socket's address is the answer. The audit, the sign-in lockout and the rate limits all ask here.
    """
    if request is None:
        return None
    remote = request.META.get("REMOTE_ADDR") or None
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < hops:
        return remote
    try:
        return str(ipaddress.ip_address(forwarded[-hops]))
    except ValueError:
        return remote


def audit_record(
    *,
    user: User | AnonymousUser | None = None,  # an anonymous visitor is recorded as no user
    action: str,
    object_type: str = "",
    object_id: object = "",
    query: dict[str, Any] | None = None,
    result_count: int | None = None,
    reason: str = "",
    ip: str | None = None,
    request: "HttpRequest | Request | None" = None,
) -> AuditEntry:
    """One entry of the trail. A page or an API view passes its `request` for `user` and `ip`: the
    request's user and its client address."""
    if request is not None:
        user, ip = request.user, client_ip(request)
    return AuditEntry.objects.create(
        user=user if user is not None and user.is_authenticated else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id != "" else "",
        query=query or {},
        result_count=result_count,
        reason=reason[:REASON_LENGTH],
        ip=ip,
    )
