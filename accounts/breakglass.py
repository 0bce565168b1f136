"""The superuser is the break-glass account: it passes every permission check, so every request it
makes is written to the audit trail (method, path, query keys, result status)."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from accounts.audit import audit_record, client_ip


class BreakGlassAuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_superuser:
            audit_record(
                user=user,
                action="breakglass.request",
                query={
                    "method": request.method,
                    "path": request.path[:200],
                    "params": sorted(request.GET.keys())[:20],
                    "status": response.status_code,
                },
                reason="superuser",
                ip=client_ip(request),
            )
        return response
