"""Counter and office pages for insurance claims: the queue, and one claim with its steps and the
form for the next step the user's role may record. The pages call cases.claims.services like the API."""

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from accounts.audit import audit_record
from accounts.request_types import AuthedHttpRequest
from cases.claims import services as claims
from cases.models import ClaimStep, InsuranceClaim
from ebike_registry.forms import place_problems, problem_dict

ACTIONS = {
    "submit": "cases.submit_claim",
    "approve": "cases.decide_claim",
    "reject": "cases.decide_claim",
    "pay": "cases.pay_claim",
    "settle": "cases.settle_claim",
}


class SubmitForm(forms.Form):
    documents = forms.MultipleChoiceField(
        label=gettext_lazy("Documents presented"),
        choices=list(claims.DOCUMENTS.items()),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    note = forms.CharField(label=gettext_lazy("Note"), max_length=claims.NOTE_LENGTH, required=False)


class NoteForm(forms.Form):
    note = forms.CharField(label=gettext_lazy("Note"), max_length=claims.NOTE_LENGTH, required=False)


class RejectForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason for the rejection"), max_length=claims.REJECTION_LENGTH, required=False
    )


class SettleForm(forms.Form):
    outcome = forms.ChoiceField(
        label=gettext_lazy("Settlement"),
        choices=[c for c in InsuranceClaim.AfterRecovery.choices if c[0]],
        widget=forms.RadioSelect,
    )
    note = forms.CharField(label=gettext_lazy("Note"), max_length=claims.SETTLE_NOTE_LENGTH, required=False)


FORMS: dict[str, type[forms.Form]] = {
    "submit": SubmitForm,
    "approve": NoteForm,
    "reject": RejectForm,
    "pay": NoteForm,
    "settle": SettleForm,
}


def _available(claim: InsuranceClaim) -> list[str]:
    """The steps the claim's state allows now (the user's role is checked separately)."""
    if claim.status == InsuranceClaim.Status.ELIGIBLE:
        return ["submit", "reject"]
    if claim.status == InsuranceClaim.Status.SUBMITTED:
        return ["approve", "reject"]
    if claim.status == InsuranceClaim.Status.APPROVED:
        return ["pay", "reject"]
    if claims.settlement_pending(claim):
        return ["settle"]
    return []


def _run(request: AuthedHttpRequest, claim: InsuranceClaim, action: str, data: dict) -> None:
    user = request.user
    if action == "submit":
        claims.claim_submit(user=user, claim_id=claim.pk, documents=data["documents"], note=data["note"])
    elif action == "approve":
        claims.claim_approve(user=user, claim_id=claim.pk, note=data["note"])
    elif action == "reject":
        claims.claim_reject(user=user, claim_id=claim.pk, reason=data["reason"])
    elif action == "pay":
        claims.claim_pay(user=user, claim_id=claim.pk, note=data["note"])
    elif action == "settle":
        claims.claim_settle(user=user, claim_id=claim.pk, outcome=data["outcome"], note=data["note"])


@login_required
@permission_required("cases.view_insuranceclaim", raise_exception=True)
@require_GET
def claim_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    queryset = InsuranceClaim.objects.select_related("report", "policy__vehicle").order_by("-eligible_at", "-id")
    if status in InsuranceClaim.Status.values:
        queryset = queryset.filter(status=status)
    page = Paginator(queryset, 50).get_page(request.GET.get("page"))
    query = {"status": status, "page": page.number}
    audit_record(
        request=request,
        action="claim.list",
        object_type="insurance_claim",
        query=query,
        result_count=len(page.object_list),
    )
    context = {"page": page, "status": status, "statuses": InsuranceClaim.Status.choices}
    return render(request, "cases/claim_list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def claim_detail(request: AuthedHttpRequest, claim_id: int) -> HttpResponse:
    """One claim with its steps, and the form of each next step the user's role may record."""
    claim = get_object_or_404(_claim_queryset(), pk=claim_id)
    if not request.user.has_perm("cases.view_insuranceclaim"):
        # The insured owner following a link here (an older notification) reads their own page.
        if request.method == "GET" and request.user.has_perm("cases.view_own_claim", claim):
            return redirect("web:owner-claim", claim_id=claim.pk)
        raise PermissionDenied(_("Your role cannot see insurance claims."))
    bound: dict[str, forms.Form] = {}
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action not in FORMS:
            return HttpResponseBadRequest(_("Unknown step."))
        bound[action] = _step_form(request, action)
        if _step_record(request, claim, action, bound[action]):
            messages.success(request, _("The step was recorded."))
            return redirect("claims:detail", claim_id=claim.pk)
    else:
        audit_record(request=request, action="claim.view", object_type="insurance_claim", object_id=claim.pk)
    return render(
        request, "cases/claim_detail.html", _claim_context(request, claim, bound), status=400 if bound else 200
    )


def _claim_queryset() -> QuerySet[InsuranceClaim]:
    return InsuranceClaim.objects.select_related(
        "report__station", "policy__vehicle", "policy__scheme", "policy__owner", "decided_by"
    ).prefetch_related(Prefetch("steps", queryset=ClaimStep.objects.select_related("by")))


def _step_form(request: HttpRequest, action: str) -> forms.Form:
    """The posted step's form, for a role that may record the step."""
    if not request.user.has_perm(ACTIONS[action]):
        raise PermissionDenied(_("Your role cannot record this step."))
    return FORMS[action](request.POST, prefix=action)


def _step_record(request: AuthedHttpRequest, claim: InsuranceClaim, action: str, form: forms.Form) -> bool:
    """Record the step when its form parses; False with the service's refusal at the form's fields."""
    if not form.is_valid():
        return False
    try:
        _run(request, claim, action, form.cleaned_data)
    except ValidationError as exc:
        place_problems(problem_dict(exc), page=form)
        return False
    return True


def _claim_context(request: HttpRequest, claim: InsuranceClaim, bound: dict[str, forms.Form]) -> dict[str, Any]:
    allowed = [a for a in _available(claim) if request.user.has_perm(ACTIONS[a])]
    return {
        "claim": claim,
        "steps": [(step, claims.step_note_text(step)) for step in claim.steps.all()],
        "documents": claims.document_names(claim.documents),
        "rejection_reason": claims.reason_text(claim.rejection_reason),
        "step_forms": [(a, bound.get(a) or FORMS[a](prefix=a)) for a in allowed],
        "settlement_pending": claims.settlement_pending(claim),
        "required_documents": [claims.DOCUMENTS[c] for c in claims.REQUIRED_DOCUMENTS],
    }
