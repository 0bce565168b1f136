"""Session rules of signing in: the idle timeout that background polling does not extend, and no
page or API for a session that still owes its second factor."""

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponseBase, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from accounts.audit import audit_record, client_ip
from accounts.signin import signin_pending

# The last real activity (epoch seconds) of a signed-in session.
LAST_ACTIVITY_KEY = "signin_last_activity"
# Requests the pages make on their own (map polling, the duty room's refresh) say so with this
# header (X-Background-Request: 1), or, for a page reload that cannot send headers, with
# ?auto_refresh=1. They do not count as activity.
BACKGROUND_HEADER = "X-Background-Request"
BACKGROUND_PARAM = "auto_refresh"
# Writing the session on every click is not needed for a timeout counted in minutes.
ACTIVITY_RESOLUTION_S = 30


def is_background(request: HttpRequest) -> bool:
    return request.headers.get(BACKGROUND_HEADER) == "1" or request.GET.get(BACKGROUND_PARAM) == "1"


def wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return (
        request.path_info.startswith("/api/")
        or is_background(request)
        or ("application/json" in accept and "text/html" not in accept)
    )


class IdleTimeoutMiddleware:
    """Ends a session after SESSION_IDLE_MINUTES without real activity (audited as auth.idle_timeout);
    the next page goes to the login page, a background or API request gets a JSON 401."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        session = request.session
        if session.get(SESSION_KEY) is not None:
            now = time.time()
            last = session.get(LAST_ACTIVITY_KEY)
            idle_s = settings.SESSION_IDLE_MINUTES * 60
            if last is not None and now - last > idle_s:
                return self._end(request, idle_minutes=int((now - last) // 60))
            if last is None or (not is_background(request) and now - last >= ACTIVITY_RESOLUTION_S):
                session[LAST_ACTIVITY_KEY] = int(now)
        return self.get_response(request)

    def _end(self, request: HttpRequest, *, idle_minutes: int) -> HttpResponseBase:
        user = request.user
        audit_record(
            user=user,
            action="auth.idle_timeout",
            object_type="user",
            object_id=user.pk,
            query={"idle_minutes": idle_minutes, "limit_minutes": settings.SESSION_IDLE_MINUTES},
            ip=client_ip(request),
        )
        request.session.flush()
        request.user = AnonymousUser()
        message = _("You were signed out after %(minutes)d minutes without activity. Please sign in again.") % {
            "minutes": settings.SESSION_IDLE_MINUTES
        }
        messages.info(request, message)  # shown on the login page, also after a poll's page reloads
        if wants_json(request):
            return JsonResponse({"detail": message, "code": "session_idle_timeout"}, status=401)
        return redirect_to_login(request.get_full_path())


# Views a session that owes its second factor may still reach.
SIGN_IN_VIEWS = frozenset({"login", "logout", "second-factor", "second-factor-enrol", "set_language", "admin:logout"})


class SecondFactorMiddleware:
    """Between the password and the code a session reaches only the sign-in steps: pages redirect to
    the code step, API and background requests get a JSON 403 naming the missing second factor."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponseBase | None:
        if not signin_pending(request) or not request.user.is_authenticated:
            return None
        match = request.resolver_match
        if match is not None and match.view_name in SIGN_IN_VIEWS:
            return None
        if wants_json(request):
            return JsonResponse(
                {
                    "detail": _(
                        "This account has not given its second factor (a one-time code) yet. "
                        "Finish signing in on the sign-in page first."
                    ),
                    "code": "second_factor_required",
                },
                status=403,
            )
        return HttpResponseRedirect(f"{reverse('second-factor')}?{urlencode({'next': request.get_full_path()})}")
