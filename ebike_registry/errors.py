"""Error pages: the API answers in JSON whatever failed, the site with its HTML pages."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404. A path under /api/ that matches no route (e.g. /api/v1/vehicles/abc, whose id is
    no integer) gets the API's JSON 404 body, like an unknown record; other paths the 404 page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": _("Not found.")}, status=404)
    return defaults.page_not_found(request, exception)
