from django.urls import include, path

from vehicles import views

# The app's pages, in its URL namespace.
pages = [
    path("", views.home, name="home"),
    path("counter/", views.counter, name="counter"),
    path("search/", views.search, name="search"),
    path("vehicles/<int:vehicle_id>/", views.detail, name="detail"),
    # Lifecycle operations at the counter, each followed by a printable receipt of its event.
    path("vehicles/<int:vehicle_id>/change/", views.change, name="change"),
    path("vehicles/<int:vehicle_id>/correct/", views.correct, name="correct"),
    path("vehicles/<int:vehicle_id>/transfer/", views.transfer, name="transfer"),
    path("vehicles/<int:vehicle_id>/replace-plate/", views.replace_plate, name="replace_plate"),
    path("vehicles/<int:vehicle_id>/deregister/", views.deregister, name="deregister"),
    path("vehicles/<int:vehicle_id>/events/<int:event_id>/receipt/", views.receipt, name="receipt"),
    path("certificates/<int:vehicle_id>/", views.certificate, name="certificate"),
    path("photos/<int:photo_id>/", views.photo, name="photo"),
    # Public: the page behind the QR code printed on a certificate.
    path("verify/<str:token>/", views.verify, name="verify"),
]

# What the project includes of this app: its API under /api/v1/ and its pages (vehicles:...).
urlpatterns = [
    path("api/v1/", include("vehicles.api.urls")),
    path("", include((pages, "vehicles"))),
]
