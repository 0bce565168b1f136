"""The policy for theft reports, cases, sightings, evidence and the positions they open.

Asked everywhere as `user.has_perm(perm, obj)`; the duties themselves are in cases.tracing.duties.

Positions (PIPL art. 28: 行踪轨迹 are sensitive):
- the stolen-bike map (last positions of bikes under an open report) is every officer's patrol duty;
- a bike's trajectory and stops: its owner, or an officer with a duty on it (cases.tracing.duties); anyone
  else with a trace right (officers, leaders) only on a stated reason, listed for review;
- evidence export needs the duty itself, never a stated reason alone.
"""

from typing import Any

import rules
from django.conf import settings

from accounts.rules import has_station, is_clerk, is_county_leader, is_leader, is_officer, same_station
from cases.models import Case, TheftReport
from cases.tracing import duties
from vehicles.rules import has_owner_record


@rules.predicate
def owns_vehicle(user: Any, vehicle: Any) -> bool:
    return vehicle is not None and user.is_authenticated and vehicle.owner.user_id == user.pk


@rules.predicate
def has_vehicle_duty(user: Any, vehicle: Any) -> bool:
    return vehicle is not None and duties.vehicle_duty(user, vehicle.pk) is not None


@rules.predicate
def has_report_duty(user: Any, report: TheftReport | None) -> bool:
    return report is not None and duties.report_open(report) and duties.report_duty_holder(user, report)


@rules.predicate
def of_report_station(user: Any, report: TheftReport | None) -> bool:
    return report is not None and same_station(user, report.station_id)


@rules.predicate
def has_case_duty(user: Any, case: Case | None) -> bool:
    return case is not None and duties.case_duty_holder(user, case)


@rules.predicate
def of_case_station(user: Any, case: Case | None) -> bool:
    return case is not None and same_station(user, case.station_id)


@rules.predicate
def is_case_filer(user: Any, case: Case | None) -> bool:
    return case is not None and case.filed_by_id == user.pk


@rules.predicate
def approval_by_another_required(user: Any) -> bool:
    return bool(settings.CASE_APPROVAL_BY_ANOTHER)


@rules.predicate
def awaits_approval(user: Any, case: Case | None) -> bool:
    return case is not None and case.approved_by_id is None and case.status != Case.Status.CLOSED


station_or_county = of_report_station | is_county_leader

# --- positions ---------------------------------------------------------------------------------------------
# Patrol duty: where the bikes under an open report are now (the stolen map, stolen-near, map card).
rules.add_perm("cases.view_stolen_positions", is_officer)
# A trajectory or stops without a stated reason (obj: the vehicle).
rules.add_perm("cases.trace_vehicle", owns_vehicle | (is_officer & has_vehicle_duty))
# Officers hold duties on reports and cases; which duty covers a look, and from when, is
# cases.tracing.duties' answer (trajectory_access asks it once and records it as the basis).
rules.add_perm("cases.hold_duty", is_officer)
# A look on a stated reason alone (no object): audited with the reason and listed for review.
rules.add_perm("cases.trace_with_reason", is_officer | is_leader)
# 伴随分析: which bikes, stolen or not, were near a place: always on a stated reason.
rules.add_perm("cases.search_near_place", is_officer | is_leader)

# --- reports -------------------------------------------------------------------------------------------------
# Clerks and officers take reports at the counter or by phone; owners report their own bikes online.
rules.add_perm("cases.take_report", is_clerk | is_officer | has_owner_record)
# The owner's own pages and API (arming, alarms, emergency contact): a login linked to an owner.
rules.add_perm("cases.act_as_owner", has_owner_record)
rules.add_perm("cases.view_report", ((is_clerk | is_officer | is_leader) & station_or_county) | has_report_duty)
rules.add_perm("cases.handle_report", is_officer & (has_report_duty | of_report_station))
rules.add_perm("cases.assign_report", is_leader & has_station & of_report_station)
# A report's sightings are positions: its duty officers and its station's officers (duty room).
rules.add_perm("cases.view_report_sightings", is_officer & (has_report_duty | of_report_station))
rules.add_perm("cases.export_report_evidence", is_officer & has_report_duty)

# --- cases ---------------------------------------------------------------------------------------------------
rules.add_perm("cases.file_case", is_officer & has_station)
rules.add_perm(
    "cases.view_case_record",
    has_case_duty | (is_officer & of_case_station) | (is_leader & (of_case_station | is_county_leader)),
)
# A leader approves filings (of its station's cases, or any, for county leadership).
rules.add_perm("cases.approve_cases", is_leader)
rules.add_perm(
    "cases.approve_case_record",
    is_leader
    & awaits_approval
    & (of_case_station | is_county_leader)
    & ~(approval_by_another_required & is_case_filer),
)
rules.add_perm("cases.link_to_case", is_officer & has_case_duty)
rules.add_perm("cases.solve_case", is_officer & has_case_duty)
rules.add_perm("cases.export_case_evidence", is_officer & has_case_duty)
# 结案 / 撤销案件: decided by a leader of the case's station (or the county), not by its filer where
# the bureau asks for another person's approval.
rules.add_perm(
    "cases.close_case",
    is_leader & (of_case_station | is_county_leader) & ~(approval_by_another_required & is_case_filer),
)
# Case lists: an officer's own cases; a station's cases for its officers and leader (all, for the county).
rules.add_perm("cases.list_my_cases", is_officer)
rules.add_perm("cases.list_station_cases", (is_officer & has_station) | is_leader)
# Reports still undecided past REPORT_DECISION_DAYS: their station's leader (every station's, for the county).
rules.add_perm("cases.list_overdue_reports", is_leader)

# --- oversight -----------------------------------------------------------------------------------------------
# Leaders review the looks their station's staff took on a stated reason alone (cases.tracing.oversight).
rules.add_perm("cases.review_stated_reasons", is_leader)


# --- owners' own claims ----------------------------------------------------------------------------------
# The owner insured by the claimed policy sees the claim and its steps (web owner pages).
@rules.predicate
def insured_by_claim(user: Any, claim: Any) -> bool:
    return claim is not None and user.is_authenticated and claim.policy.owner.user_id == user.pk


rules.add_perm("cases.view_own_claim", insured_by_claim)
# The list of one's own claims (/my/claims/, the menu's 我的理赔): every login linked to an owner,
# with or without a claim yet (the page says there is none), so the menu does not change the day
# a claim is opened and costs no query on claims.
rules.add_perm("cases.list_own_claims", has_owner_record)
