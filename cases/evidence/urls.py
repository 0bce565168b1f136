from django.urls import path

from cases.evidence import views as evidence_views

app_name = "evidence"

urlpatterns = [
    path("reports/<int:report_id>/evidence/", evidence_views.report_evidence, name="report"),
    path("cases/<int:case_id>/evidence/", evidence_views.case_evidence, name="case"),
]
