"""The cases app's pages, one include per capability; each keeps its URL namespace (cases:, alerts:,
claims:, evidence:). Tracing has no pages of its own: the officer map (web/) shows it."""

from django.urls import include, path

urlpatterns = [
    path("", include("cases.workflow.urls")),
    path("", include("cases.alerts.urls")),
    path("", include("cases.claims.urls")),
    path("", include("cases.evidence.urls")),
]
