from django.urls import path

from cases.tracing import api as tracing

urlpatterns = [
    path("vehicles/<int:vehicle_id>/position", tracing.VehiclePositionApi.as_view(), name="vehicle-position"),
    path("vehicles/<int:vehicle_id>/trajectory", tracing.VehicleTrajectoryApi.as_view(), name="vehicle-trajectory"),
    path("vehicles/<int:vehicle_id>/stops", tracing.VehicleStopsApi.as_view(), name="vehicle-stops"),
    path("tracing/near", tracing.TracingNearApi.as_view(), name="tracing-near"),
    path("stolen/near", tracing.StolenNearApi.as_view(), name="stolen-near"),
]
