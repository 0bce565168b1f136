from django.urls import path

from vehicles.api import views

urlpatterns = [
    path("registrations", views.RegistrationApi.as_view(), name="registration-create"),
    path("vehicles", views.VehicleSearchApi.as_view(), name="vehicle-search"),
    path("vehicles/<int:vehicle_id>", views.VehicleDetailApi.as_view(), name="vehicle-detail"),
    path("vehicles/<int:vehicle_id>/change", views.VehicleChangeApi.as_view(), name="vehicle-change"),
    path("vehicles/<int:vehicle_id>/correct", views.VehicleCorrectApi.as_view(), name="vehicle-correct"),
    path("vehicles/<int:vehicle_id>/transfer", views.VehicleTransferApi.as_view(), name="vehicle-transfer"),
    path("vehicles/<int:vehicle_id>/replace-plate", views.PlateReplaceApi.as_view(), name="plate-replace"),
    path("vehicles/<int:vehicle_id>/deregister", views.VehicleDeregisterApi.as_view(), name="vehicle-deregister"),
    path("vehicles/<int:vehicle_id>/photos", views.VehiclePhotoApi.as_view(), name="vehicle-photo-add"),
    path("townships", views.TownshipListApi.as_view(), name="township-list"),
    path("stations", views.StationListApi.as_view(), name="station-list"),
]
