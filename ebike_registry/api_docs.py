"""The OpenAPI schema and Swagger UI, for staff roles only.

Swagger UI's files come from drf-spectacular-sidecar (our own static files, no CDN); the page is
the split variant, whose start-up script is a separate request, and our own template moves its
inline <style> to static/css/swagger_ui.css, so it runs under the strict Content-Security-Policy.
"""

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.roles import STAFF_ROLES, user_roles


def is_staff_role(user: object) -> bool:
    return bool(user_roles(user) & set(STAFF_ROLES))


class IsStaffRole(BasePermission):
    message = "The API documentation is for the bureau's staff (clerk, officer or admin role)."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_staff_role(request.user)


class SchemaView(SpectacularAPIView):
    permission_classes = [IsStaffRole]


class SwaggerView(SpectacularSwaggerSplitView):
    permission_classes = [IsStaffRole]
    template_name = "api/swagger_ui.html"


_swagger = SwaggerView.as_view(url_name="schema")


def api_docs(request: HttpRequest) -> HttpResponseBase:
    """Swagger UI: anonymous visitors are sent to the login page, other non-staff get the 403 page."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not is_staff_role(request.user):
        raise PermissionDenied(IsStaffRole.message)
    return _swagger(request)
