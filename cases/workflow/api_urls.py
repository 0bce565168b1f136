from django.urls import path

from cases.workflow import api as views

urlpatterns = [
    path("theft-reports", views.ReportCreateApi.as_view(), name="theft-report-create"),
    path("theft-reports/<int:report_id>", views.ReportDetailApi.as_view(), name="theft-report-detail"),
    path(
        "theft-reports/<int:report_id>/transition", views.ReportTransitionApi.as_view(), name="theft-report-transition"
    ),
    path("theft-reports/<int:report_id>/assign", views.ReportAssignApi.as_view(), name="theft-report-assign"),
    path("cases", views.CaseCreateApi.as_view(), name="case-create"),
    path("cases/<int:case_id>", views.CaseDetailApi.as_view(), name="case-detail"),
    path("cases/<int:case_id>/approve", views.CaseApproveApi.as_view(), name="case-approve"),
    path("cases/<int:case_id>/links", views.CaseLinkApi.as_view(), name="case-link"),
    path("case-links/<int:link_id>/unlink", views.CaseUnlinkApi.as_view(), name="case-unlink"),
    path("cases/<int:case_id>/solve", views.CaseSolveApi.as_view(), name="case-solve"),
    path("cases/<int:case_id>/close", views.CaseCloseApi.as_view(), name="case-close"),
    path("public/stolen-check", views.StolenCheckApi.as_view(), name="public-stolen-check"),
]
