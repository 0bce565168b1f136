from django.urls import path

from cases.alerts import api as views

urlpatterns = [
    path("notifications", views.NotificationListApi.as_view(), name="notifications"),
    path("notifications/unread-count", views.NotificationUnreadCountApi.as_view(), name="notifications-unread"),
    path("notifications/read-all", views.NotificationReadAllApi.as_view(), name="notifications-read-all"),
    path("notifications/<int:notification_id>/read", views.NotificationReadApi.as_view(), name="notification-read"),
    path("duty-calls", views.DutyCallListApi.as_view(), name="duty-calls"),
    path("duty-calls/<int:call_id>", views.DutyCallDetailApi.as_view(), name="duty-call"),
    path("duty-calls/<int:call_id>/<str:action>", views.DutyCallActionApi.as_view(), name="duty-call-step"),
    path("my/vehicles", views.MyVehiclesApi.as_view(), name="my-vehicles"),
    path("my/vehicles/<int:vehicle_id>/arm", views.VehicleArmApi.as_view(), name="my-vehicle-arm"),
    path("my/alarms", views.MyAlarmsApi.as_view(), name="my-alarms"),
    path("my/alarms/<int:call_id>/answer", views.MyAlarmAnswerApi.as_view(), name="my-alarm-answer"),
    path("my/emergency-contact", views.MyEmergencyContactApi.as_view(), name="my-emergency-contact"),
    path("theft-reports/<int:report_id>/sightings", views.ReportSightingsApi.as_view(), name="theft-report-sightings"),
]
