"""What the project includes of the cases app: its API under /api/v1/ (cases/api/urls.py) and its
pages, one include per capability, each in its URL namespace (cases:, alerts:, claims:, evidence:).
Tracing has no pages of its own: the officer map (web/) shows it."""

from django.urls import include, path

urlpatterns = [
    path("api/v1/", include("cases.api.urls")),
    path("", include("cases.workflow.urls")),
    path("", include("cases.alerts.urls")),
    path("", include("cases.claims.urls")),
    path("", include("cases.evidence.urls")),
]
