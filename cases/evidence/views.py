"""Officer pages: export a report's or a case's evidence (signed JSON bundle or PDF) from the
report and case pages. The export itself is audited by cases.evidence.services."""

from django import forms
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from accounts.audit import client_ip
from cases.evidence import services as evidence
from cases.evidence.api import _file
from cases.models import Case, TheftReport


class ExportForm(forms.Form):
    format = forms.ChoiceField(
        label=_("Format"), choices=[("pdf", _("printable PDF")), ("json", _("signed JSON bundle"))], initial="pdf"
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=200,
        required=False,
        help_text=_("Who asked for it and why (court, procuratorate …); required without a case duty."),
    )


def _export(request: HttpRequest, export, back: str, **ids: int) -> HttpResponse:
    form = ExportForm(request.POST)
    problems: dict[str, list[str]] = {}
    if form.is_valid():
        fmt = form.cleaned_data["format"]
        try:
            bundle = export(
                user=request.user, fmt=fmt, reason=form.cleaned_data["reason"], ip=client_ip(request), **ids
            )
        except ValidationError as exc:
            problems = exc.message_dict
        else:
            return _file(bundle, fmt, bundle.manifest["subject"]["number"])
    else:
        problems = {field: [str(error) for error in errors] for field, errors in form.errors.items()}
    return render(request, "cases/evidence_error.html", {"problems": problems, "back": back}, status=400)


@login_required
@permission_required("cases.export_evidence", raise_exception=True)
@require_POST
def report_evidence(request: HttpRequest, report_id: int) -> HttpResponse:
    if not request.user.has_perm("cases.export_report_evidence", get_object_or_404(TheftReport, pk=report_id)):
        raise PermissionDenied(_("Only the receiving and assigned officers of an open report export its evidence."))
    return _export(request, evidence.report_evidence_export, f"/reports/{report_id}/", report_id=report_id)


@login_required
@permission_required("cases.export_evidence", raise_exception=True)
@require_POST
def case_evidence(request: HttpRequest, case_id: int) -> HttpResponse:
    if not request.user.has_perm("cases.export_case_evidence", get_object_or_404(Case, pk=case_id)):
        raise PermissionDenied(_("Only the officers of an approved case export its evidence."))
    return _export(request, evidence.case_evidence_export, f"/cases/{case_id}/", case_id=case_id)
