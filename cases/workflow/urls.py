from django.urls import path

from cases.workflow import views

app_name = "cases"

urlpatterns = [
    path("reports/new/", views.report_new, name="report-new"),
    path("reports/<int:report_id>/", views.report_detail, name="report"),
    path("reports/<int:report_id>/receipt/", views.receipt, name="receipt"),
    path("reports/<int:report_id>/decision/", views.report_decision, name="decision"),
    path("reports/undecided/", views.reports_undecided, name="reports-undecided"),
    path("cases/", views.case_list, name="case-list"),
    path("cases/mine/", views.my_cases, name="my-cases"),
    path("cases/<int:case_id>/", views.case_detail, name="case"),
    path("stolen-check/", views.stolen_check, name="stolen-check"),
    path("reviews/stated-reasons/", views.reason_reviews, name="reason-reviews"),
]
