from django.urls import path

from tracking import views

app_name = "tracking"

urlpatterns = [
    path("vehicles/<int:vehicle_id>/terminal/", views.fit, name="fit"),
    path("vehicles/<int:vehicle_id>/terminal/identity/", views.identity, name="identity"),
]
