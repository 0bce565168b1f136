from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from ebike_registry import api_docs, health, metrics

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),  # for the Prometheus scraper only
    # Browsers ask for /favicon.ico whatever the page says: our own icon, from the static files.
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("web/favicon.ico")), name="favicon"),
    path("api/schema/", api_docs.SchemaView.as_view(), name="schema"),
    path("api/docs/", api_docs.api_docs, name="api-docs"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    # One module per app: each includes its API (under api/v1/) and its pages.
    path("", include("accounts.urls")),
    path("", include("vehicles.urls")),
    path("", include("tracking.urls")),
    path("", include("cases.urls")),
    path("", include("stats.urls")),
    path("", include("web.urls")),
]
handler400 = "ebike_registry.errors.bad_request"
handler404 = "ebike_registry.errors.not_found"
# MEDIA_URL is never served: photos and scanned documents go through vehicles.views.photo.
