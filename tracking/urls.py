from django.urls import include, path

from tracking import views

# The app's pages, in its URL namespace.
pages = [
    path("vehicles/<int:vehicle_id>/terminal/", views.fit, name="fit"),
    path("vehicles/<int:vehicle_id>/terminal/identity/", views.identity, name="identity"),
]

# What the project includes of this app: its API under /api/v1/ and its pages (tracking:...).
urlpatterns = [
    path("api/v1/", include("tracking.api.urls")),
    path("", include((pages, "tracking"))),
]
