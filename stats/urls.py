from django.urls import include, path

from stats import views

# The app's pages, in its URL namespace.
pages = [
    path("stats/", views.dashboard, name="dashboard"),
    path("stats/estimates/", views.estimates, name="estimates"),
]

# What the project includes of this app: its API under /api/v1/ and its pages (stats:...).
urlpatterns = [
    path("api/v1/", include("stats.api.urls")),
    path("", include((pages, "stats"))),
]
