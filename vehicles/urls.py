from django.urls import path

from vehicles import views

app_name = "vehicles"

urlpatterns = [
    path("", views.home, name="home"),
    path("certificates/<int:vehicle_id>/", views.certificate, name="certificate"),
]
