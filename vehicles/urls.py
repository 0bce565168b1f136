from django.urls import path

from vehicles import views

app_name = "vehicles"

urlpatterns = [
    path("", views.home, name="home"),
    path("counter/", views.counter, name="counter"),
    path("search/", views.search, name="search"),
    path("vehicles/<int:vehicle_id>/", views.detail, name="detail"),
    path("certificates/<int:vehicle_id>/", views.certificate, name="certificate"),
    path("photos/<int:photo_id>/", views.photo, name="photo"),
    # Public: the page behind the QR code printed on a certificate.
    path("verify/<str:token>/", views.verify, name="verify"),
]
