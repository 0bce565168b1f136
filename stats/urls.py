from django.urls import path

from stats import views

app_name = "stats"

urlpatterns = [
    path("stats/", views.dashboard, name="dashboard"),
    path("stats/estimates/", views.estimates, name="estimates"),
]
