"""The cases app's API endpoints (under /api/v1/), one include per capability."""

from django.urls import include, path

urlpatterns = [
    path("", include("cases.workflow.api_urls")),
    path("", include("cases.tracing.api_urls")),
    path("", include("cases.alerts.api_urls")),
    path("", include("cases.claims.api_urls")),
    path("", include("cases.evidence.api_urls")),
]
