"""Insurance claims on the real database: the eligibility task, the lifecycle through the service,
the API and the page, and what a recovery does before and after payment."""

import datetime
import threading
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEntry
from cases.claims import services as claims
from cases.models import ClaimStep, InsuranceClaim, Notification
from cases.tasks import claims_make_eligible as beat_task
from cases.workflow.services import VehicleQuery, report_take, report_transition
from tests import factories
from tests.cases.casework import report_step
from vehicles.models import InsurancePolicy, InsuranceScheme, Plate, RegistrationEvent, Vehicle
from vehicles.services.registration import vehicle_register, vehicle_transfer

pytestmark = pytest.mark.django_db

ALL_DOCUMENTS = ["report_receipt", "filing_proof", "registration", "assignment_of_rights", "invoice"]


def bike(clerk, *, age_months: int = 5):
    """A registered, insured bike bought `age_months` months ago (its owner has a login)."""
    bought = timezone.localdate() - relativedelta(months=age_months, days=3)
    registration = vehicle_register(
        clerk=clerk,
        owner=factories.owner_data(),
        vehicle=factories.vehicle_data(purchase_date=bought, production_date=bought - datetime.timedelta(days=30)),
        insurance_consent=True,
    )
    vehicle = registration.vehicle
    # Registered and insured the week it was bought.
    starts = bought + datetime.timedelta(days=7)
    InsurancePolicy.objects.filter(vehicle=vehicle).update(
        starts_on=starts, ends_on=starts + relativedelta(months=36) - datetime.timedelta(days=1)
    )
    owner_login = factories.user("owner", station_code=None)
    vehicle.owner.user = owner_login
    vehicle.owner.save(update_fields=["user"])
    return vehicle


def stolen_and_filed(officer, vehicle, *, status: str = "filed_criminal"):
    now = timezone.now()
    report = report_take(
        user=officer,
        channel="walk_in",
        vehicle_query=VehicleQuery(plate=Plate.objects.get(vehicle=vehicle).number),
        reporter_name="王秀英",
        reporter_phone="13812345678",
        last_seen_at=now - datetime.timedelta(hours=10),
        missing_at=now - datetime.timedelta(hours=2),
        place_address="玉田县无终街道兴隆路超市门口",
    )
    return report_step(user=officer, report_id=report.pk, to_status=status, note="价值 2999 元")


def after(days: int) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(days=days)


@pytest.fixture
def admin(db):
    return factories.user("admin")


@pytest.fixture
def filed(officer, clerk):
    return stolen_and_filed(officer, bike(clerk, age_months=5))


def eligible_claim(filed) -> InsuranceClaim:
    (claim,) = claims.claims_make_eligible(now=after(61))
    return claim


# --- eligibility -------------------------------------------------------------------------------------


def test_a_filed_case_unrecovered_for_60_days_makes_the_claim_eligible_with_the_band_amount(filed, officer):
    assert claims.claims_make_eligible(now=after(59)) == []
    (claim,) = claims.claims_make_eligible(now=after(60) + datetime.timedelta(minutes=1))
    assert claim.report == filed and claim.status == "eligible"
    # Bought 5 months before the theft: the "under 12 months" band of the default scheme.
    assert claim.amount == Decimal("1200.00")
    assert claim.policy == InsurancePolicy.objects.get(vehicle=filed.vehicle)
    step = ClaimStep.objects.get(claim=claim)
    assert (step.action, step.to_status, step.by) == ("eligible", "eligible", None)
    assert "60 days" in step.note
    # The receiving officer and the owner hear of it, each with a link to a claim page they may see.
    notified = {n.user: n.link for n in Notification.objects.filter(kind="claim")}
    assert notified == {officer: f"/claims/{claim.pk}/", filed.vehicle.owner.user: f"/my/claims/{claim.pk}/"}
    assert AuditEntry.objects.filter(action="claim.eligible", object_id=str(claim.pk)).exists()


def test_amount_follows_the_age_band_and_the_deductible(officer, clerk):
    InsuranceScheme.objects.filter(is_default=True).update(deductible_percent=Decimal("20"))
    older = stolen_and_filed(officer, bike(clerk, age_months=18))
    oldest = stolen_and_filed(officer, bike(clerk, age_months=30))
    stolen_and_filed(officer, bike(clerk, age_months=40))  # its 3-year policy ended before the theft
    made = {c.report_id: c.amount for c in claims.claims_make_eligible(now=after(61))}
    assert made == {older.pk: Decimal("720.00"), oldest.pk: Decimal("480.00")}  # 900 and 600 less 20 %


def test_the_waiting_period_is_the_schemes_or_the_county_setting(filed, settings):
    InsuranceScheme.objects.filter(is_default=True).update(waiting_days=90)
    assert claims.claims_make_eligible(now=after(61)) == []
    settings.CLAIM_WAITING_DAYS = 30
    assert len(claims.claims_make_eligible(now=after(31))) == 1


def test_reports_not_filed_received_or_unregistered_get_no_claim(officer, clerk):
    stolen_and_filed(officer, bike(clerk), status="not_filed")
    received = report_take(
        user=officer,
        channel="walk_in",
        vehicle_query=VehicleQuery(plate=Plate.objects.get(vehicle=bike(clerk)).number),
        reporter_name="王秀英",
        reporter_phone="13812345678",
        last_seen_at=timezone.now() - datetime.timedelta(hours=3),
        missing_at=timezone.now() - datetime.timedelta(hours=1),
        place_address="玉田县无终街道",
    )
    assert received.status == "received"
    uninsured = bike(clerk)
    InsurancePolicy.objects.filter(vehicle=uninsured).update(status=InsurancePolicy.Status.CANCELLED)
    stolen_and_filed(officer, uninsured)
    assert claims.claims_make_eligible(now=after(400)) == []


def test_the_beat_task_is_idempotent(filed):
    assert beat_task.apply().get() == 0  # filed today: nothing is due yet
    assert len(claims.claims_make_eligible(now=after(61))) == 1
    assert claims.claims_make_eligible(now=after(62)) == []
    assert InsuranceClaim.objects.filter(report=filed).count() == 1


def test_a_rejected_claim_is_not_made_again(filed, admin):
    claim = eligible_claim(filed)
    claims.claim_reject(user=admin, claim_id=claim.pk, reason="保单条款不适用")
    assert claims.claims_make_eligible(now=after(90)) == []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_workers_running_the_task_at_once_make_one_claim_per_report():
    clerk, officer = factories.user("clerk"), factories.user("officer")
    reports = [stolen_and_filed(officer, bike(clerk)) for _ in range(3)]
    workers = 4
    barrier = threading.Barrier(workers)
    made: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=30)
            made.extend(c.pk for c in claims.claims_make_eligible(now=after(61)))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(InsuranceClaim.objects.values_list("report_id", flat=True)) == sorted(r.pk for r in reports)
    assert len(made) == len(set(made)) == 3
    assert ClaimStep.objects.filter(action="eligible").count() == 3


# --- lifecycle ---------------------------------------------------------------------------------------------


def test_the_whole_lifecycle_records_who_when_and_why(filed, clerk, admin):
    claim = eligible_claim(filed)
    claims.claim_submit(user=clerk, claim_id=claim.pk, documents=ALL_DOCUMENTS, note="车主本人递交")
    claims.claim_approve(user=admin, claim_id=claim.pk, note="材料齐全")
    claim = claims.claim_pay(user=admin, claim_id=claim.pk, note="转账凭证 2026-001")
    assert claim.status == "paid" and claim.paid_at and claim.submitted_at and claim.decided_by == admin
    steps = list(ClaimStep.objects.filter(claim=claim).values_list("action", "from_status", "to_status", "by", "note"))
    assert steps == [
        ("eligible", "", "eligible", None, steps[0][4]),
        ("submit", "eligible", "submitted", clerk.pk, "车主本人递交"),
        ("approve", "submitted", "approved", admin.pk, "材料齐全"),
        ("pay", "approved", "paid", admin.pk, "转账凭证 2026-001"),
    ]
    assert InsurancePolicy.objects.get(pk=claim.policy_id).status == "claimed"
    # Paid, but the bike is still missing: the record stays stolen (on the alarm lists), not deregistered.
    assert Vehicle.objects.get(pk=filed.vehicle_id).status == "stolen"
    # Steps are append-only.
    with pytest.raises(Exception, match="append-only"):
        ClaimStep.objects.filter(claim=claim).update(note="changed")


def test_out_of_order_steps_and_missing_documents_are_refused_at_once(filed, clerk, admin):
    claim = eligible_claim(filed)
    with pytest.raises(ValidationError) as excinfo:
        claims.claim_approve(user=admin, claim_id=claim.pk)
    assert excinfo.value.message_dict == {"status": ["A claim that is eligible cannot be approved."]}
    with pytest.raises(ValidationError) as excinfo:
        claims.claim_submit(user=clerk, claim_id=claim.pk, documents=["report_receipt", "passport"])
    (unknown, missing) = excinfo.value.message_dict["documents"]
    assert "passport" in unknown
    assert "case-filing proof" in missing and "assignment of rights" in missing and "invoice" not in missing
    with pytest.raises(ValidationError) as excinfo:
        claims.claim_reject(user=admin, claim_id=claim.pk, reason=" ")
    assert "reason" in excinfo.value.message_dict
    claim.refresh_from_db()
    assert claim.status == "eligible" and ClaimStep.objects.filter(claim=claim).count() == 1


def test_roles_are_checked(filed, clerk, officer):
    claim = eligible_claim(filed)
    with pytest.raises(PermissionDenied):
        claims.claim_approve(user=clerk, claim_id=claim.pk)
    with pytest.raises(PermissionDenied):
        claims.claim_pay(user=officer, claim_id=claim.pk)


def test_recovery_before_payment_ends_the_claim(filed, clerk, officer):
    claim = eligible_claim(filed)
    claims.claim_submit(user=clerk, claim_id=claim.pk, documents=ALL_DOCUMENTS)
    report_transition(user=officer, report_id=filed.pk, to_status="recovered", note="在废品站找到")
    claim.refresh_from_db()
    assert claim.status == "rejected" and claim.rejection_reason == "The bike was recovered before payment."
    assert claim.decided_by == officer
    assert Vehicle.objects.get(pk=filed.vehicle_id).status == "registered"


def test_recovery_after_payment_freezes_the_record_until_the_owner_refunds(filed, clerk, officer, admin):
    claim = eligible_claim(filed)
    claims.claim_submit(user=clerk, claim_id=claim.pk, documents=ALL_DOCUMENTS)
    claims.claim_approve(user=admin, claim_id=claim.pk)
    claims.claim_pay(user=admin, claim_id=claim.pk)
    with pytest.raises(ValidationError, match="not been recovered"):
        claims.claim_settle(user=clerk, claim_id=claim.pk, outcome="refund")

    report_transition(user=officer, report_id=filed.pk, to_status="recovered", note="")
    vehicle = Vehicle.objects.get(pk=filed.vehicle_id)
    assert vehicle.status == "frozen"
    assert RegistrationEvent.objects.filter(vehicle=vehicle, kind="freeze").exists()
    claim.refresh_from_db()
    assert claim.status == "paid" and claims.settlement_pending(claim)
    assert ClaimStep.objects.filter(claim=claim, action="recovered").exists()
    # Frozen: no transfer while the payout is unsettled.
    with pytest.raises(ValidationError, match="frozen"):
        vehicle_transfer(clerk=clerk, vehicle_id=vehicle.pk, new_owner=factories.owner_data(), insurance_consent=False)

    claim = claims.claim_settle(user=clerk, claim_id=claim.pk, outcome="refund", note="车主退回 1200 元")
    assert claim.after_recovery == "refund" and claim.after_recovery_at and not claims.settlement_pending(claim)
    assert Vehicle.objects.get(pk=vehicle.pk).status == "registered"
    assert InsurancePolicy.objects.get(pk=claim.policy_id).status == "active"  # cover reinstated
    with pytest.raises(ValidationError, match="already settled"):
        claims.claim_settle(user=clerk, claim_id=claim.pk, outcome="to_insurer")


def test_a_bike_handed_to_the_insurer_keeps_the_policy_claimed(filed, clerk, officer, admin):
    claim = eligible_claim(filed)
    claims.claim_submit(user=clerk, claim_id=claim.pk, documents=ALL_DOCUMENTS)
    claims.claim_approve(user=admin, claim_id=claim.pk)
    claims.claim_pay(user=admin, claim_id=claim.pk)
    report_transition(user=officer, report_id=filed.pk, to_status="recovered")
    claim = claims.claim_settle(user=admin, claim_id=claim.pk, outcome="to_insurer")
    assert claim.after_recovery == "to_insurer"
    assert InsurancePolicy.objects.get(pk=claim.policy_id).status == "claimed"
    assert Vehicle.objects.get(pk=filed.vehicle_id).status == "registered"  # ready for the transfer registration


def test_a_settlement_note_is_kept_whole_after_its_outcome_or_refused(filed, clerk, officer, admin, admin_api):
    claim = eligible_claim(filed)
    claims.claim_submit(user=clerk, claim_id=claim.pk, documents=ALL_DOCUMENTS)
    claims.claim_approve(user=admin, claim_id=claim.pk)
    claims.claim_pay(user=admin, claim_id=claim.pk)
    report_transition(user=officer, report_id=filed.pk, to_status="recovered")
    longest = "保险公司收车" * 81 + "已交"  # 488 characters: with "to_insurer: " the step's 500
    url = f"/api/v1/insurance-claims/{claim.pk}/settle"

    over = admin_api.post(url, {"outcome": "to_insurer", "note": longest + "。"}, format="json")
    assert over.status_code == 400 and set(over.json()) == {"note"}
    with pytest.raises(ValidationError) as refused:
        claims.claim_settle(user=admin, claim_id=claim.pk, outcome="to_insurer", note=longest + "。")
    assert "488" in refused.value.message_dict["note"][0]
    claim.refresh_from_db()
    assert claim.after_recovery == "" and not ClaimStep.objects.filter(claim=claim, action="settle").exists()

    settled = admin_api.post(url, {"outcome": "to_insurer", "note": longest}, format="json")
    assert settled.status_code == 200
    step = ClaimStep.objects.get(claim=claim, action="settle")
    assert step.note == f"to_insurer: {longest}" and claims.step_note_text(step).endswith(longest)


def test_a_note_or_a_rejection_reason_over_its_column_is_refused_not_cut(filed, clerk, admin):
    claim = eligible_claim(filed)
    with pytest.raises(ValidationError) as refused:
        claims.claim_submit(user=clerk, claim_id=claim.pk, documents=ALL_DOCUMENTS, note="材" * 501)
    assert set(refused.value.message_dict) == {"note"}
    with pytest.raises(ValidationError) as refused:
        claims.claim_reject(user=admin, claim_id=claim.pk, reason="不" * 301)
    assert set(refused.value.message_dict) == {"reason"}
    claim.refresh_from_db()
    assert claim.status == "eligible" and ClaimStep.objects.filter(claim=claim).count() == 1


# --- API -------------------------------------------------------------------------------------------------


@pytest.fixture
def clerk_client_api(clerk):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(clerk)
    return client


@pytest.fixture
def admin_api(admin):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(admin)
    return client


def test_api_lifecycle_and_errors(filed, admin, clerk_client_api, admin_api, officer_api):
    claim = eligible_claim(filed)
    url = f"/api/v1/insurance-claims/{claim.pk}"
    listed = clerk_client_api.get("/api/v1/insurance-claims", {"status": "eligible"}).json()
    assert [c["id"] for c in listed["results"]] == [claim.pk]
    assert listed["results"][0]["amount"] == "1200.00" and listed["results"][0]["report_number"] == filed.number

    bad = clerk_client_api.post(f"{url}/submit", {"documents": ["report_receipt"], "note": "x" * 600}, format="json")
    assert bad.status_code == 400
    assert set(bad.json()) == {"note"}  # field errors first; nothing recorded
    bad = clerk_client_api.post(f"{url}/submit", {"documents": ["report_receipt"]}, format="json")
    assert bad.status_code == 400 and "Missing documents" in bad.json()["documents"][0]
    assert clerk_client_api.get(url).json()["status"] == "eligible"

    assert clerk_client_api.post(f"{url}/approve", {}, format="json").status_code == 403
    ok = clerk_client_api.post(f"{url}/submit", {"documents": ALL_DOCUMENTS}, format="json")
    assert ok.status_code == 200 and ok.json()["status"] == "submitted"
    again = clerk_client_api.post(f"{url}/submit", {"documents": ALL_DOCUMENTS}, format="json")
    assert again.status_code == 400 and again.json()["status"] == ["A claim that is submitted cannot be submitted."]
    assert admin_api.post(f"{url}/reject", {}, format="json").json() == {"reason": ["This field is required."]}
    assert admin_api.post(f"{url}/approve", {"note": "材料齐全"}, format="json").json()["status"] == "approved"
    paid = admin_api.post(f"{url}/pay", {"note": "凭证 001"}, format="json").json()
    assert paid["status"] == "paid"
    assert [s["action"] for s in paid["steps"]] == ["eligible", "submit", "approve", "pay"]
    assert paid["steps"][2]["by"] == admin.username

    settle = admin_api.post(f"{url}/settle", {"outcome": "keep"}, format="json")
    assert settle.status_code == 400 and "outcome" in settle.json()
    assert officer_api.post(f"{url}/settle", {"outcome": "refund"}, format="json").status_code == 403
    assert clerk_client_api.get("/api/v1/insurance-claims", {"status": "lost"}).status_code == 400
    assert clerk_client_api.get("/api/v1/insurance-claims/999999").status_code == 404


def test_schema_documents_the_claim_operations(clerk_api):  # the schema is for staff
    schema = clerk_api.get("/api/schema/", {"format": "json"}).json()
    operations = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert {
        "insurance_claim_list",
        "insurance_claim_detail",
        "insurance_claim_submit",
        "insurance_claim_approve",
        "insurance_claim_reject",
        "insurance_claim_pay",
        "insurance_claim_settle",
    } <= operations


# --- pages -----------------------------------------------------------------------------------------------


def test_clerk_submits_on_the_claim_page_and_sees_what_is_missing(filed, clerk, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    claim = eligible_claim(filed)
    client = Client()
    client.force_login(clerk)
    report_page = client.get(f"/reports/{filed.pk}/")
    assert f"/claims/{claim.pk}/" in report_page.content.decode()
    page = client.get(f"/claims/{claim.pk}/")
    assert page.status_code == 200 and "1200.00" in page.content.decode()
    refused = client.post(f"/claims/{claim.pk}/", {"action": "submit", "submit-documents": ["report_receipt"]})
    assert refused.status_code == 400
    claim.refresh_from_db()
    assert claim.status == "eligible"
    done = client.post(
        f"/claims/{claim.pk}/", {"action": "submit", "submit-documents": ALL_DOCUMENTS, "submit-note": "本人"}
    )
    assert done.status_code == 302
    claim.refresh_from_db()
    assert claim.status == "submitted"
    assert client.post(f"/claims/{claim.pk}/", {"action": "approve"}).status_code == 403
    assert client.get("/claims/?status=submitted").status_code == 200


def test_reading_claims_is_audited_on_the_api_and_the_pages(filed, clerk):
    from django.test import Client
    from rest_framework.test import APIClient

    from accounts.models import AuditEntry

    claim = eligible_claim(filed)
    api = APIClient()
    api.force_authenticate(clerk)
    assert api.get("/api/v1/insurance-claims").status_code == 200
    assert api.get(f"/api/v1/insurance-claims/{claim.pk}").status_code == 200
    page = Client()
    page.force_login(clerk)
    assert page.get("/claims/").status_code == 200
    assert page.get(f"/claims/{claim.pk}/").status_code == 200
    reads = AuditEntry.objects.filter(user=clerk, action__startswith="claim.")
    actions = list(reads.values_list("action", "object_id"))
    assert sorted(actions) == sorted(
        [("claim.list", ""), ("claim.view", str(claim.pk)), ("claim.list", ""), ("claim.view", str(claim.pk))]
    )
