"""Requests carrying a NUL character in a query string or a form body are refused before any view
reads them (JSON bodies: ebike_registry.parsers.JSONParser).

PostgreSQL text cannot hold NUL (0x00): a search, a lookup or a write that passed one on would fail
with a server error. Form and serializer fields refuse it (Django's and DRF's
ProhibitNullCharactersValidator), but query parameters and a few page actions reach views as raw
strings, hence this guard.
"""

from collections.abc import Callable

from django.core.exceptions import BadRequest, RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.utils.translation import gettext as _

FORM_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _nul_names(data: QueryDict) -> list[str]:
    return sorted({key for key, values in data.lists() if "\x00" in key or any("\x00" in v for v in values)})


def _form_body(request: HttpRequest) -> QueryDict | None:
    """A urlencoded body that holds a NUL, parsed apart to name its fields (Django parses it again
    from the same bytes); None for any other body, or one over the size limits (the view answers
    that with its 413 or 400)."""
    if request.method not in FORM_BODY_METHODS or request.content_type != "application/x-www-form-urlencoded":
        return None
    try:
        body = request.body
    except RequestDataTooBig:
        return None
    if b"%00" not in body and b"\x00" not in body:
        return None  # every ordinary form: no second parse
    try:
        return QueryDict(body, encoding=request.encoding)
    except TooManyFieldsSent:
        return None


class RefuseNulMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        bad = _nul_names(request.GET)
        form = _form_body(request)
        if form is not None:
            bad += _nul_names(form)
        if bad:
            message = _("Null characters are not allowed.")
            if request.path.startswith("/api/"):
                return JsonResponse({name.replace("\x00", "\\0"): [message] for name in bad}, status=400)
            raise BadRequest(message)
        return self.get_response(request)
