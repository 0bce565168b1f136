from django.urls import path

from cases.evidence import api as views

urlpatterns = [
    path("theft-reports/<int:report_id>/evidence", views.ReportEvidenceApi.as_view(), name="theft-report-evidence"),
    path("cases/<int:case_id>/evidence", views.CaseEvidenceApi.as_view(), name="case-evidence"),
    path("evidence/public-key", views.PublicKeyApi.as_view(), name="evidence-public-key"),
    path("evidence/verify", views.VerifyApi.as_view(), name="evidence-verify"),
]
