from django.urls import path

from cases.alerts import views

app_name = "alerts"

urlpatterns = [
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read-all/", views.notifications_read_all, name="notifications-read-all"),
    path("notifications/<int:notification_id>/read/", views.notification_read, name="notification-read"),
    path("duty/", views.duty_room, name="duty"),
    path("duty/<int:call_id>/<str:action>/", views.duty_step, name="duty-step"),
    path("my/alarms/", views.owner_alarms, name="my-alarms"),
    path("my/alarms/arm/<int:vehicle_id>/", views.owner_arm, name="my-arm"),
    path("my/alarms/<int:call_id>/answer/", views.owner_answer, name="my-answer"),
    path("my/emergency-contact/", views.owner_contact, name="my-contact"),
]
