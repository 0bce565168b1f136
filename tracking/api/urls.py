from django.urls import path

from tracking.api import views

urlpatterns = [
    path("terminals", views.TerminalListCreateApi.as_view(), name="terminal-list"),
    path("terminals/<int:terminal_id>/bind", views.TerminalBindApi.as_view(), name="terminal-bind"),
    path("terminals/<int:terminal_id>/unbind", views.TerminalUnbindApi.as_view(), name="terminal-unbind"),
    path("vehicles/<int:vehicle_id>/replace-terminal", views.TerminalReplaceApi.as_view(), name="terminal-replace"),
    path("vehicles/<int:vehicle_id>/terminal", views.TerminalFitApi.as_view(), name="terminal-fit"),
    path("pings", views.PingIngestApi.as_view(), name="pings-ingest"),
]
