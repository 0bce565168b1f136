from django.urls import path

from cases import views

app_name = "cases"

urlpatterns = [
    path("reports/new/", views.report_new, name="report-new"),
    path("reports/<int:report_id>/", views.report_detail, name="report"),
    path("reports/<int:report_id>/receipt/", views.receipt, name="receipt"),
    path("cases/<int:case_id>/", views.case_detail, name="case"),
    path("stolen-check/", views.stolen_check, name="stolen-check"),
    path("reviews/stated-reasons/", views.reason_reviews, name="reason-reviews"),
]
