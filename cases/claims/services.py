"""Theft-loss insurance claims (丢失险理赔, docs/domain.md#claims).

    eligible ──submit──▶ submitted ──approve──▶ approved ──pay──▶ paid
        └──────────────reject────────┴──────────reject────┘

A claim is born by the eligibility task, never by hand, once a filed case's bike is still missing
after the waiting period. Every step is a conditional update plus an append-only ClaimStep. The
bike turning up rejects every unpaid claim; after payment it freezes the record until the
settlement is recorded. One live claim per report and per policy is a partial unique constraint, so
the task is idempotent on any number of workers. See docs/architecture.md#claims.
"""

import datetime
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Min, OuterRef, Q, QuerySet, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop

from accounts.audit import audit_record
from accounts.models import User
from cases.alerts.services import notifications_create
from cases.models import (
    MISSING_STATUSES,
    ClaimStep,
    InsuranceClaim,
    Notification,
    ReportStatus,
    ReportTransition,
    TheftReport,
)
from ebike_registry.lengths import stored_length
from ebike_registry.problems import Problems
from vehicles.models import InsurancePolicy, InsuranceScheme, Vehicle
from vehicles.services.insurance import policy_payout_amount
from vehicles.services.registration import vehicle_freeze, vehicle_unfreeze

logger = logging.getLogger(__name__)

Status = InsuranceClaim.Status
Action = ClaimStep.Action

# A case was filed (立案 or 治安受案) and the bike is still missing.
FILED_STATUSES = {ReportStatus.FILED_CRIMINAL, ReportStatus.FILED_PUBLIC_ORDER}
CLAIMABLE_REPORT_STATUSES = FILED_STATUSES | {ReportStatus.SOLVED}
UNPAID_STATUSES: set[str] = {Status.ELIGIBLE, Status.SUBMITTED, Status.APPROVED}

# What a clerk or leader types is kept whole or refused, never cut: a step's note holds 500
# characters, a settlement's note after its outcome's code ("to_insurer: "), a rejection's reason
# the claim's 300.
NOTE_LENGTH = stored_length(ClaimStep, "note")
SETTLE_NOTE_LENGTH = NOTE_LENGTH - max(len(f"{outcome}: ") for outcome in InsuranceClaim.AfterRecovery.values)
REJECTION_LENGTH = stored_length(InsuranceClaim, "rejection_reason")

# Documents the owner brings to submit a claim (docs/domain.md#claims). The invoice is asked for but not
# required: the filing record holds the purchase date and price when it is lost.
DOCUMENTS: dict[str, Any] = {
    "report_receipt": gettext_lazy("theft report receipt (接报案回执)"),
    "filing_proof": gettext_lazy("case-filing proof (立案证明)"),
    "registration": gettext_lazy("plate and registration certificate"),
    "assignment_of_rights": gettext_lazy("assignment of rights (权益转让书)"),
    "invoice": gettext_lazy("purchase invoice"),
}
REQUIRED_DOCUMENTS = ("report_receipt", "filing_proof", "registration", "assignment_of_rights")
SETTLEMENTS = {InsuranceClaim.AfterRecovery.REFUND, InsuranceClaim.AfterRecovery.TO_INSURER}

# Notes the system writes on steps are stored in a fixed form and put into words when shown
# (step_note_text), so a Chinese page never shows an English note nor an English page a Chinese one.
RECOVERED_BEFORE_PAYMENT = gettext_noop("The bike was recovered before payment.")
REPORT_WITHDRAWN = gettext_noop("The theft report was withdrawn.")
SYSTEM_REASONS = {RECOVERED_BEFORE_PAYMENT, REPORT_WITHDRAWN}
RECOVERED_NOTE_PREFIX = "after payment, report "
_ELIGIBLE_NOTE = re.compile(r"^filed (\d{4}-\d{2}-\d{2}), unrecovered after (\d+) days; policy (\S+)$")


def waiting_days(scheme: InsuranceScheme) -> int:
    override = settings.CLAIM_WAITING_DAYS
    return scheme.waiting_days if override is None else int(override)


def report_filed_at(report: TheftReport) -> datetime.datetime | None:
    """When the report was first filed as a case: the waiting period starts there."""
    return (
        ReportTransition.objects.filter(report=report, to_status__in=FILED_STATUSES)
        .order_by("at", "id")
        .values_list("at", flat=True)
        .first()
    )


def claim_policy(report: TheftReport) -> InsurancePolicy | None:
    """The policy that covered the bike on the day it went missing (expired since or not)."""
    if report.vehicle_id is None:
        return None
    day = timezone.localdate(report.missing_at)
    return (
        InsurancePolicy.objects.select_related("scheme", "vehicle")
        .filter(vehicle_id=report.vehicle_id, starts_on__lte=day, ends_on__gte=day)
        .exclude(status=InsurancePolicy.Status.CANCELLED)
        .order_by("-starts_on")
        .first()
    )


# --- the eligibility task -----------------------------------------------------------------------------


def claim_candidates(*, now: datetime.datetime) -> QuerySet[TheftReport]:
    """Filed reports of registered bikes still missing, without any claim (a rejected claim is not
    reborn every hour), filed long enough ago for the shortest waiting period in use."""
    shortest = settings.CLAIM_WAITING_DAYS
    if shortest is None:
        shortest = InsuranceScheme.objects.aggregate(m=Min("waiting_days"))["m"] or 0
    filed = (
        ReportTransition.objects.filter(report=OuterRef("pk"), to_status__in=FILED_STATUSES)
        .order_by("at", "id")
        .values("at")[:1]
    )
    return (
        TheftReport.objects.filter(vehicle__isnull=False, status__in=CLAIMABLE_REPORT_STATUSES, claims__isnull=True)
        .annotate(filed_at=Subquery(filed))
        .filter(filed_at__lte=now - datetime.timedelta(days=shortest))
        .order_by("pk")
    )


def claims_make_eligible(*, now: datetime.datetime | None = None) -> list[InsuranceClaim]:
    """Make every claim whose waiting period has passed eligible; returns the claims made now.

    Each report is handled in its own transaction, so one bad row does not hold back the others.
    """
    now = now or timezone.now()
    made = []
    for report_id in claim_candidates(now=now).values_list("pk", flat=True):
        try:
            claim = _make_eligible(report_id=report_id, now=now)
        except Exception:  # a broken row is logged and retried next run; the others go on
            logger.exception("claim eligibility failed for theft report %s", report_id)
            continue
        if claim is not None:
            made.append(claim)
    return made


def _make_eligible(*, report_id: int, now: datetime.datetime) -> InsuranceClaim | None:
    with transaction.atomic():
        report = (
            TheftReport.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("vehicle__owner", "receiving_officer")
            .filter(pk=report_id)
            .first()
        )
        if report is None:  # another worker holds it right now
            return None
        if report.status not in CLAIMABLE_REPORT_STATUSES or report.claims.exists():
            return None
        filed_at = report_filed_at(report)
        policy = claim_policy(report)
        if filed_at is None or policy is None:
            return None
        days = waiting_days(policy.scheme)
        if filed_at + datetime.timedelta(days=days) > now:
            return None
        if (
            InsuranceClaim.objects.filter(policy=policy)
            .exclude(status=Status.REJECTED)
            .filter(after_recovery="")
            .exists()
        ):
            return None
        amount = policy_payout_amount(policy=policy, on=timezone.localdate(report.missing_at))
        try:
            with transaction.atomic():
                claim = InsuranceClaim.objects.create(
                    report=report, policy=policy, status=Status.ELIGIBLE, amount=amount, eligible_at=now
                )
        except IntegrityError:  # the constraint saw a claim made concurrently
            return None
        note = (
            f"filed {timezone.localdate(filed_at).isoformat()}, unrecovered after {days} days; policy {policy.number}"
        )
        ClaimStep.objects.create(
            claim=claim, action=Action.ELIGIBLE, from_status="", to_status=Status.ELIGIBLE, note=note
        )
        audit_record(
            user=None,
            action="claim.eligible",
            object_type="insurance_claim",
            object_id=claim.pk,
            query={"report": report.number, "policy": policy.number, "amount": str(amount)},
        )
        _notify(
            claim,
            [report.receiving_officer, report.vehicle.owner.user],  # type: ignore[union-attr]  # a claim's report names a bike
            "claim_eligible",
            {"number": report.number, "amount": str(amount)},
        )
        return claim


def _notify(claim: InsuranceClaim, users: Iterable[User | None], message: str, params: dict[str, Any]) -> None:
    """Tell the users; each notification opens a page its reader may see: the owner of the claimed
    policy gets the owner's claim page, staff the claim page of the office."""
    owner_user_id = claim.policy.owner.user_id
    for user in {u for u in users if u is not None}:
        link = (
            reverse("web:owner-claim", args=[claim.pk])
            if user.pk == owner_user_id
            else reverse("claims:detail", args=[claim.pk])
        )
        notifications_create(users=[user], kind=Notification.Kind.CLAIM, message=message, params=params, link=link)


# --- steps -------------------------------------------------------------------------------------------------


def _length_problem(problems: Problems, field: str, text: str, limit: int) -> None:
    if len(text) > limit:
        problems.add(field, _("Keep it to %(n)d characters; it is stored whole.") % {"n": limit})


def _require(user: User, perm: str, message: str) -> None:
    if not (user.is_authenticated and user.has_perm(perm)):
        raise PermissionDenied(message)


def _step(
    *,
    user: User | None,
    claim: InsuranceClaim,
    action: str,
    to_status: str,
    note: str,
    updates: dict[str, Any],
    from_statuses: set[str],
) -> InsuranceClaim:
    """Move the claim from its current status (which must be one of `from_statuses`) to `to_status`
    with a conditional update, and record the step. Runs inside the caller's transaction."""
    old = claim.status
    updated = (
        InsuranceClaim.objects.filter(pk=claim.pk, status=old)
        .filter(status__in=from_statuses)
        .update(status=to_status, **updates)
    )
    if updated != 1:
        raise ValidationError({"status": _("The claim was changed by someone else a moment ago; reload it.")})
    ClaimStep.objects.create(claim=claim, action=action, from_status=old, to_status=to_status, by=user, note=note)
    audit_record(
        user=user,
        action=f"claim.{action}",
        object_type="insurance_claim",
        object_id=claim.pk,
        query={"from": old, "to": to_status},
        reason=note[:200],
    )
    claim.refresh_from_db()
    return claim


def _state_problem(problems: Problems, claim: InsuranceClaim, allowed: set[str], action_label: str) -> None:
    if claim.status not in allowed:
        problems.add(
            "status",
            _("A claim that is %(status)s cannot be %(action)s.")
            % {"status": Status(claim.status).label, "action": action_label},
        )


def _missing_problem(problems: Problems, claim: InsuranceClaim) -> None:
    if claim.report.status not in MISSING_STATUSES:
        problems.add(
            "status", _("The bike is no longer missing (report %(s)s).") % {"s": claim.report.get_status_display()}
        )


def _locked(claim_id: int) -> InsuranceClaim:
    return InsuranceClaim.objects.select_for_update(of=("self",)).select_related("report", "policy").get(pk=claim_id)


def documents_problems(documents: object) -> list[str]:
    if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
        return [_("Give the documents as a list of codes.")]
    messages = []
    unknown = sorted(set(documents) - set(DOCUMENTS))
    if unknown:
        messages.append(
            _("Unknown document codes: %(codes)s; known are %(known)s.")
            % {"codes": ", ".join(unknown), "known": ", ".join(DOCUMENTS)}
        )
    missing = [code for code in REQUIRED_DOCUMENTS if code not in documents]
    if missing:
        messages.append(
            _("Missing documents: %(names)s.") % {"names": "、".join(str(DOCUMENTS[code]) for code in missing)}
        )
    return messages


def claim_submit(*, user: User, claim_id: int, documents: list[str], note: str = "") -> InsuranceClaim:
    """The owner (or agent) hands in the claim documents at the counter; everything missing is listed at once."""
    _require(user, "cases.submit_claim", _("Your role cannot submit insurance claims."))
    with transaction.atomic():
        claim = _locked(claim_id)
        problems = Problems()
        for message in documents_problems(documents):
            problems.add("documents", message)
        _state_problem(problems, claim, {Status.ELIGIBLE}, _("submitted"))
        _missing_problem(problems, claim)
        _length_problem(problems, "note", note, NOTE_LENGTH)
        problems.raise_if_any()
        return _step(
            user=user,
            claim=claim,
            action=Action.SUBMIT,
            to_status=Status.SUBMITTED,
            note=note,
            updates={"submitted_at": timezone.now(), "documents": sorted(set(documents))},
            from_statuses={Status.ELIGIBLE},
        )


def claim_approve(*, user: User, claim_id: int, note: str = "") -> InsuranceClaim:
    _require(user, "cases.decide_claim", _("Your role cannot decide insurance claims."))
    with transaction.atomic():
        claim = _locked(claim_id)
        problems = Problems()
        _state_problem(problems, claim, {Status.SUBMITTED}, _("approved"))
        _missing_problem(problems, claim)
        _length_problem(problems, "note", note, NOTE_LENGTH)
        problems.raise_if_any()
        return _step(
            user=user,
            claim=claim,
            action=Action.APPROVE,
            to_status=Status.APPROVED,
            note=note,
            updates={"decided_at": timezone.now(), "decided_by": user},
            from_statuses={Status.SUBMITTED},
        )


def claim_reject(*, user: User, claim_id: int, reason: str) -> InsuranceClaim:
    _require(user, "cases.decide_claim", _("Your role cannot decide insurance claims."))
    with transaction.atomic():
        claim = _locked(claim_id)
        problems = Problems()
        if len(reason.strip()) < 2:
            problems.add("reason", _("Give the reason for the rejection; it is told to the owner."))
        _length_problem(problems, "reason", reason.strip(), REJECTION_LENGTH)
        _state_problem(problems, claim, UNPAID_STATUSES, _("rejected"))
        problems.raise_if_any()
        return _reject(user=user, claim=claim, reason=reason.strip())


def _reject(*, user: User | None, claim: InsuranceClaim, reason: str) -> InsuranceClaim:
    return _step(
        user=user,
        claim=claim,
        action=Action.REJECT,
        to_status=Status.REJECTED,
        note=reason,
        updates={"decided_at": timezone.now(), "decided_by": user, "rejection_reason": reason},
        from_statuses=UNPAID_STATUSES,
    )


def claim_pay(*, user: User, claim_id: int, note: str = "") -> InsuranceClaim:
    """The insurer paid: the policy ends as claimed. The bike stays on the stolen lists."""
    _require(user, "cases.pay_claim", _("Your role cannot record claim payments."))
    with transaction.atomic():
        claim = _locked(claim_id)
        problems = Problems()
        _state_problem(problems, claim, {Status.APPROVED}, _("paid"))
        _missing_problem(problems, claim)
        _length_problem(problems, "note", note, NOTE_LENGTH)
        problems.raise_if_any()
        now = timezone.now()
        claim = _step(
            user=user,
            claim=claim,
            action=Action.PAY,
            to_status=Status.PAID,
            note=note,
            updates={"paid_at": now},
            from_statuses={Status.APPROVED},
        )
        InsurancePolicy.objects.filter(pk=claim.policy_id, status=InsurancePolicy.Status.ACTIVE).update(
            status=InsurancePolicy.Status.CLAIMED, ended_at=now
        )
        return claim


def settlement_pending(claim: InsuranceClaim) -> bool:
    """Paid, the bike found since, and neither refund nor hand-over recorded yet."""
    return claim.status == Status.PAID and not claim.after_recovery and claim.report.status not in MISSING_STATUSES


def claim_settle(*, user: User, claim_id: int, outcome: str, note: str = "") -> InsuranceClaim:
    """After a paid claim's bike is recovered: the owner refunds the payout and takes the bike back
    (the policy is reinstated while its term runs), or the bike passes to the insurer (the counter
    then records the transfer registration to the insurer). Either way the record is unfrozen."""
    _require(user, "cases.settle_claim", _("Your role cannot record claim settlements."))
    with transaction.atomic():
        claim = _locked(claim_id)
        problems = Problems()
        if outcome not in SETTLEMENTS:
            problems.add("outcome", _("The outcome is refund or to_insurer."))
        if claim.status != Status.PAID:
            problems.add("status", _("Only a paid claim is settled after recovery."))
        elif claim.after_recovery:
            problems.add("status", _("This claim was already settled."))
        elif claim.report.status in MISSING_STATUSES:
            problems.add("status", _("The bike has not been recovered; nothing to settle."))
        _length_problem(problems, "note", note, SETTLE_NOTE_LENGTH)
        problems.raise_if_any()
        now = timezone.now()
        updated = InsuranceClaim.objects.filter(pk=claim.pk, status=Status.PAID, after_recovery="").update(
            after_recovery=outcome, after_recovery_at=now
        )
        if updated != 1:
            raise ValidationError({"status": _("The claim was changed by someone else a moment ago; reload it.")})
        label = InsuranceClaim.AfterRecovery(outcome).label
        ClaimStep.objects.create(
            claim=claim,
            action=Action.SETTLE,
            from_status=Status.PAID,
            to_status=Status.PAID,
            by=user,
            note=f"{outcome}: {note}".strip(" :"),
        )
        audit_record(
            user=user,
            action="claim.settle",
            object_type="insurance_claim",
            object_id=claim.pk,
            query={"outcome": outcome},
            reason=note[:200],
        )
        vehicle = Vehicle.objects.get(pk=claim.policy.vehicle_id)
        if vehicle.status == Vehicle.Status.FROZEN:
            vehicle_unfreeze(
                user=user, station=claim.report.station, vehicle_id=vehicle.pk, reason=f"{claim.report.number}: {label}"
            )
        if outcome == InsuranceClaim.AfterRecovery.REFUND:
            policy = claim.policy
            if (
                policy.status == InsurancePolicy.Status.CLAIMED
                and policy.ends_on >= timezone.localdate()
                and not InsurancePolicy.objects.filter(
                    vehicle_id=policy.vehicle_id, status=InsurancePolicy.Status.ACTIVE
                )
                .exclude(pk=policy.pk)
                .exists()
            ):
                InsurancePolicy.objects.filter(pk=policy.pk).update(status=InsurancePolicy.Status.ACTIVE, ended_at=None)
        claim.refresh_from_db()
        return claim


def claims_on_bike_found(*, user: User, report: TheftReport, to_status: str) -> None:
    """Called by report_transition, in its transaction, when a report leaves the missing statuses
    (recovered or withdrawn): unpaid claims end, a paid one freezes the record until settled."""
    # Stored untranslated and shown in the reader's language (step_note_text).
    reason = RECOVERED_BEFORE_PAYMENT if to_status == ReportStatus.RECOVERED else REPORT_WITHDRAWN
    claims = list(
        InsuranceClaim.objects.select_for_update(of=("self",))
        .select_related("report", "policy")
        .filter(report=report)
        .filter(Q(status__in=UNPAID_STATUSES) | Q(status=Status.PAID, after_recovery=""))
        .order_by("pk")
    )
    for claim in claims:
        if claim.status in UNPAID_STATUSES:
            _reject(user=user, claim=claim, reason=reason)
            continue
        ClaimStep.objects.create(
            claim=claim,
            action=Action.RECOVERED,
            from_status=Status.PAID,
            to_status=Status.PAID,
            by=user,
            note=f"{RECOVERED_NOTE_PREFIX}{to_status}",
        )
        vehicle = Vehicle.objects.get(pk=claim.policy.vehicle_id)
        if vehicle.status == Vehicle.Status.REGISTERED:
            vehicle_freeze(user=user, station=report.station, vehicle_id=vehicle.pk, reason=report.number)
        _notify(
            claim,
            [report.vehicle.owner.user if report.vehicle else None],
            "claim_found_after_payout",
            {"number": report.number},
        )


# --- what owners and staff read --------------------------------------------------------------------------


def document_names(codes: Iterable[str]) -> list[str]:
    """Claim documents by their names in the active language (an unknown code shows as stored)."""
    return [str(DOCUMENTS.get(code, code)) for code in codes]


def reason_text(reason: str) -> str:
    """A rejection reason: the system's own in the reader's language, a person's as written."""
    return _(reason) if reason in SYSTEM_REASONS else reason


def step_note_text(step: ClaimStep) -> str:
    """A step's note in the active language: notes the system wrote are put into words here; what
    a clerk typed is shown as typed."""
    note = step.note
    eligible = _ELIGIBLE_NOTE.match(note) if step.action == Action.ELIGIBLE else None
    if eligible:
        return _("Case filed on %(date)s and the bike still missing after %(days)s days; policy %(policy)s.") % {
            "date": eligible.group(1),
            "days": eligible.group(2),
            "policy": eligible.group(3),
        }
    if step.action == Action.RECOVERED and note.startswith(RECOVERED_NOTE_PREFIX):
        status = note.removeprefix(RECOVERED_NOTE_PREFIX)
        label = ReportStatus(status).label if status in ReportStatus.values else status
        return _("Report %(status)s after payment: refund the payout or hand the bike to the insurer.") % {
            "status": label
        }
    if step.action == Action.SETTLE:
        outcome, _sep, rest = note.partition(":")
        if outcome in InsuranceClaim.AfterRecovery.values:
            label = str(InsuranceClaim.AfterRecovery(outcome).label)
            return f"{label}: {rest.strip()}" if rest.strip() else label
    return reason_text(note)


@dataclass(frozen=True)
class PolicyStanding:
    """Where an owner's theft-loss insurance on one bike stands today.

    state: "in_force", "not_started", "expired", "claimed" (paid out: the policy has ended),
    "cancelled", or "none" (never enrolled); `paid` is the paid claim of a claimed policy,
    `open_claim` a claim under way."""

    state: str
    policy: InsurancePolicy | None = None
    paid: InsuranceClaim | None = None
    open_claim: InsuranceClaim | None = None


def policy_standing(
    policy: InsurancePolicy, *, claims_of_policy: list[InsuranceClaim], today: datetime.date
) -> PolicyStanding:
    paid = next((c for c in claims_of_policy if c.status == Status.PAID), None)
    open_claim = next((c for c in claims_of_policy if c.status in UNPAID_STATUSES), None)
    if policy.status == InsurancePolicy.Status.CLAIMED:
        state = "claimed"
    elif policy.status == InsurancePolicy.Status.CANCELLED:
        state = "cancelled"
    elif today > policy.ends_on:
        state = "expired"
    elif today < policy.starts_on:
        state = "not_started"
    else:
        state = "in_force"
    return PolicyStanding(state, policy, paid, open_claim)


def owner_policies_standing(
    *, owner_id: int, vehicle_ids: list[int], today: datetime.date | None = None
) -> dict[int, list[PolicyStanding]]:
    """Each bike's policies insuring this owner, newest first, with where each stands: what "my
    bikes" and the policy page say (a paid claim ends the policy: claimed, with amount and date)."""
    today = today or timezone.localdate()
    policies = list(
        InsurancePolicy.objects.filter(vehicle_id__in=vehicle_ids, owner_id=owner_id)
        .select_related("scheme")
        .order_by("-starts_on", "-pk")
    )
    by_policy: dict[int, list[InsuranceClaim]] = {}
    for claim in InsuranceClaim.objects.filter(policy__in=policies).order_by("-eligible_at", "-pk"):
        by_policy.setdefault(claim.policy_id, []).append(claim)
    standing: dict[int, list[PolicyStanding]] = {vid: [] for vid in vehicle_ids}
    for policy in policies:
        standing[policy.vehicle_id].append(
            policy_standing(policy, claims_of_policy=by_policy.get(policy.pk, []), today=today)
        )
    return standing


def owner_claims(*, owner_id: int) -> QuerySet[InsuranceClaim]:
    """The claims on policies insuring this owner, newest first, with their steps."""
    return (
        InsuranceClaim.objects.filter(policy__owner_id=owner_id)
        .select_related("report", "policy__vehicle", "policy__scheme")
        .prefetch_related("steps")
        .order_by("-eligible_at", "-pk")
    )
