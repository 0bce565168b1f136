"""Query strings with a NUL character are refused before any view reads them.

PostgreSQL text cannot hold NUL (0x00): a search or lookup that passed one on would fail with a
server error. Form and serializer fields already refuse it in bodies (Django's and DRF's
ProhibitNullCharactersValidator); query parameters reach views as raw strings, hence this guard.
"""

from collections.abc import Callable

from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _


class RefuseNulInQueryMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        bad = sorted({key for key, values in request.GET.lists() if "\x00" in key or any("\x00" in v for v in values)})
        if bad:
            message = _("Null characters are not allowed.")
            if request.path.startswith("/api/"):
                return JsonResponse({name.replace("\x00", "\\0"): [message] for name in bad}, status=400)
            raise BadRequest(message)
        return self.get_response(request)
