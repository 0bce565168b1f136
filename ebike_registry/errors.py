"""Error pages: the API answers in JSON whatever failed, the site with its HTML pages."""

from django.conf import settings
from django.core.exceptions import BadRequest, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop as noop
from django.views import defaults

# Django's size limits, raised while a request is read: each answered 413 naming its limit.
SIZE_LIMITS = {
    RequestDataTooBig: ("DATA_UPLOAD_MAX_MEMORY_SIZE", noop("The request body is larger than %(limit)s bytes.")),
    TooManyFieldsSent: ("DATA_UPLOAD_MAX_NUMBER_FIELDS", noop("The request has more than %(limit)s fields.")),
    TooManyFilesSent: ("DATA_UPLOAD_MAX_NUMBER_FILES", noop("The request has more than %(limit)s files.")),
}


def size_limit_detail(exc: Exception) -> str | None:
    """The message of a Django size limit `exc` went over, or None when it is no such limit."""
    for kind, (setting, message) in SIZE_LIMITS.items():
        if isinstance(exc, kind):
            return _(message) % {"limit": getattr(settings, setting)}
    return None


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400: a request refused before any view could answer it (a NUL in its query string or
    form body, more fields than the limit, a body too large to read): the API's JSON, or a page
    saying why. Only our own refusals (BadRequest) and the size limits are named; any other
    (a forbidden Host header …) gets a general sentence, as Django's own page does."""
    size = size_limit_detail(exception)
    if size is not None:
        status, message = 413, size
    elif type(exception) is BadRequest and exception.args:
        status, message = 400, str(exception)
    else:
        status, message = 400, _("The request could not be read.")
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=status)
    return render(request, "400.html", {"message": message}, status=status)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404. A path under /api/ that matches no route (e.g. /api/v1/vehicles/abc, whose id is
    no integer) gets the API's JSON 404 body, like an unknown record; other paths the 404 page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": _("Not found.")}, status=404)
    return defaults.page_not_found(request, exception)
