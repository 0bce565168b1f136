from django.urls import path

from stats.api import views

urlpatterns = [
    path("stats/plate-rate/townships", views.PlateRateTownshipsApi.as_view(), name="stats-plate-rate-townships"),
    path("stats/plate-rate/stations", views.PlateRateStationsApi.as_view(), name="stats-plate-rate-stations"),
    path("stats/registrations", views.RegistrationsApi.as_view(), name="stats-registrations"),
    path("stats/thefts", views.TheftsApi.as_view(), name="stats-thefts"),
    path("stats/alarms", views.AlarmsApi.as_view(), name="stats-alarms"),
    path("stats/cases", views.CasesApi.as_view(), name="stats-cases"),
    path("stats/rescues", views.RescuesApi.as_view(), name="stats-rescues"),
    path("stats/hotspots", views.HotspotsApi.as_view(), name="stats-hotspots"),
    path("stats/estimates", views.EstimatesApi.as_view(), name="stats-estimates"),
    path("stats/estimates/import", views.EstimatesImportApi.as_view(), name="stats-estimates-import"),
]
