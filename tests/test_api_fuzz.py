"""The whole API fuzzed against its own OpenAPI schema (schemathesis): every operation of
/api/schema/, valid and invalid requests generated from it, sent in process to the WSGI application
as a leader, a clerk and an officer with duties, signed in by session and CSRF token so the whole
middleware stack runs. Each response: no 5xx, a documented status, content type and body, and a 4xx
for an invalid request. Each operation is one test in its own rolled-back transaction, bounded by
FUZZ_EXAMPLES and FUZZ_DEADLINE_MS (FUZZ_COVERAGE=1 adds boundary values). README "Tests" has the
measured time; docs/architecture.md#tests.
"""

import datetime
import json
import os
import re
from collections.abc import Iterator

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import User
from cases.alerts.duty_room import vehicle_arm
from cases.alerts.services import notifications_create
from cases.claims import services as claims
from cases.models import DutyCall, InsuranceClaim, Notification, TheftReport
from cases.workflow.services import case_link, report_assign, report_transition
from tests import factories
from tests.cases.alerting import owner_login, path, send
from tests.cases.casework import approved_case, case_number
from tests.cases.test_claims import stolen_and_filed
from tests.tracking import factories as tf
from tests.web.scene import stolen_bike
from vehicles.services.registration import vehicle_register

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
DEADLINE_MS = int(os.environ.get("FUZZ_DEADLINE_MS", "5000"))
COVERAGE = os.environ.get("FUZZ_COVERAGE", "") == "1"  # also the boundary values (several minutes more)
ROLES = ("admin", "clerk", "officer")  # the leader, the counter clerk and an officer with duties
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
CSRF_SECRET = "fuzzcsrf" * 4  # a 32-character CSRF secret, sent as cookie and header


def openapi_document() -> dict:
    """The document /api/schema/ serves, generated in process (JSON round trip: lazy strings)."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


# Random generation (fuzzing) only: the coverage phase sends every boundary value of every field
# deterministically, hundreds of requests per operation, several minutes for the whole API here.
FUZZ_CONFIG = SchemathesisConfig.from_dict(
    {"phases": {"examples": {"enabled": True}, "coverage": {"enabled": COVERAGE}, "fuzzing": {"enabled": True}}}
)
schema = schemathesis.openapi.from_dict(openapi_document(), config=FUZZ_CONFIG)
wsgi_application = get_wsgi_application()

# Ids of records the fixture seeds, by path parameter name: random ids find nothing (404), so half
# of the valid requests address these instead, and reach the views' work past the lookup.
KNOWN_IDS: dict[str, list[int]] = {}


@schema.hook("flatmap_case")
def _sometimes_known_records(context, case):
    names = [name for name in (case.path_parameters or {}) if KNOWN_IDS.get(name)]
    if not names or case.meta is None or not case.meta.generation.mode.is_positive:
        return st.just(case)  # an invalid path parameter stays as generated

    def addressed(ids: dict[str, int]):
        case.path_parameters = {**case.path_parameters, **ids}
        return case

    known = st.fixed_dictionaries({name: st.sampled_from(KNOWN_IDS[name]) for name in names})
    return st.one_of(st.just(case), known.map(addressed))


@pytest.fixture
def signed_in(settings, request) -> Iterator[dict[str, dict]]:
    """Cookies and headers of a signed-in session for each role. While the test runs, requests do
    not close the database connection at their end (Django's test client does the same): the test's
    transaction lives on it."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    settings.STOLEN_CHECK_RATE_PER_MINUTE = 1_000_000  # the public check's limit is tested on its own
    settings.EVIDENCE_VERIFY_RATE_PER_MINUTE = 1_000_000
    sessions = {}
    users = {role: factories.user(role) for role in ROLES}  # all of one station (13022901)
    for role, account in users.items():
        client = Client()
        client.force_login(account)
        sessions[role] = {
            "cookies": {
                django_settings.SESSION_COOKIE_NAME: client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                django_settings.CSRF_COOKIE_NAME: CSRF_SECRET,
            },
            "headers": {"X-CSRFToken": CSRF_SECRET},
        }
    KNOWN_IDS.clear()
    KNOWN_IDS.update(seeded_records(users, operation=request.node.name))
    try:
        yield sessions
    finally:
        KNOWN_IDS.clear()
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# The records an operation reaches, by the first segment of its path after /api/v1/: lists and lookups
# then answer with real rows (and their bodies are checked against the schema), not only with 404s.
RECORDS_FOR = {
    "vehicles": "registry",
    "terminals": "registry",
    "theft-reports": "registry",
    "cases": "registry",
    "case-links": "registry",
    "insurance-claims": "claims",
    "duty-calls": "calls",
    "my": "calls",
    "notifications": "notifications",
}


def seeded_records(users: dict[str, User], *, operation: str) -> dict[str, list[int]]:
    """What the operation's part of the API works on, seeded for the roles that fuzz it."""
    match = re.search(r"/api/v1/([^/\]]+)", operation)
    kind = RECORDS_FOR.get(match.group(1) if match else "")
    if kind == "registry":
        return registry_records(users)
    if kind == "claims":
        return {"claim_id": claim_records(users)}
    if kind == "calls":
        return {"call_id": duty_call_records()}
    if kind == "notifications":
        return {"notification_id": notification_records(users)}
    return {}


def registry_records(users: dict[str, User]) -> dict[str, list[int]]:
    """A stolen bike with its terminal, positions and theft report (taken by another officer of the
    station, the fuzzing officer assigned to it by the leader), an approved case both officers are on
    with the report linked, and a bike registered at the counter without a terminal."""
    officer, leader, clerk = users["officer"], users["admin"], users["clerk"]
    receiving = factories.user("officer")
    bike = stolen_bike(receiving)
    report_assign(leader=leader, report_id=bike.report.pk, officers=[officer])
    case = approved_case(filer=receiving, number=case_number(), officers=[receiving, officer])
    link = case_link(user=officer, case_id=case.pk, report_id=bike.report.pk)
    plain = vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=True
    ).vehicle
    return {
        "vehicle_id": [bike.vehicle.pk, plain.pk],
        "terminal_id": [bike.terminal.pk],
        "report_id": [bike.report.pk],
        "case_id": [case.pk],
        "link_id": [link.pk],
    }


def filed_theft(*, officer: User, clerk: User) -> TheftReport:
    """An insured bike, registered at the counter, stolen two hours ago and filed as a criminal case
    (its policy backdated a month, so it covered the bike on the day whatever the hour)."""
    vehicle = vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=True
    ).vehicle
    factories.insured_since(vehicle.pk)
    return stolen_and_filed(officer, vehicle)


def claim_records(users: dict[str, User]) -> list[int]:
    """An insurance claim at each step a request can move it from: eligible (submit), submitted
    (approve, reject), approved (pay), and paid for a bike found since (settle)."""
    officer, leader, clerk = users["officer"], users["admin"], users["clerk"]
    reports = [filed_theft(officer=officer, clerk=clerk) for _ in range(4)]
    made = claims.claims_make_eligible(now=timezone.now() + datetime.timedelta(days=61))  # 60 days waiting
    by_report = {claim.report_id: claim for claim in made}
    eligible, submitted, approved, paid = (by_report[report.pk] for report in reports)
    documents = list(claims.REQUIRED_DOCUMENTS)
    for claim in (submitted, approved, paid):
        claims.claim_submit(user=clerk, claim_id=claim.pk, documents=documents)
    for claim in (approved, paid):
        claims.claim_approve(user=leader, claim_id=claim.pk)
    claims.claim_pay(user=leader, claim_id=paid.pk)
    report_transition(user=officer, report_id=paid.report_id, to_status="recovered")
    statuses = dict(InsuranceClaim.objects.filter(pk__in=[c.pk for c in made]).values_list("pk", "status"))
    assert sorted(statuses.values()) == ["approved", "eligible", "paid", "submitted"], statuses
    return [eligible.pk, submitted.pk, approved.pk, paid.pk]


def duty_call_records() -> list[int]:
    """A rescue call (SOS) from a bike of the station, in its duty room, and the displacement call
    of an armed bike of the station that rode off."""
    now = timezone.now().replace(microsecond=0)
    rescued, armed = tf.terminal(), tf.terminal()
    send(rescued, tf.fix(0, base=now - datetime.timedelta(minutes=1), alarms=("sos",)))
    send(armed, tf.fix(0, base=now - datetime.timedelta(minutes=2), speed=0))  # parked
    vehicle_arm(user=owner_login(armed), vehicle_id=armed.vehicle_id, armed=True)
    send(armed, *path(now + datetime.timedelta(seconds=1), range(3)))  # then 340 m in three minutes
    calls = list(DutyCall.objects.order_by("pk").values_list("pk", "kind"))
    assert sorted(kind for _pk, kind in calls) == ["displacement", "rescue"], calls
    return [pk for pk, _kind in calls]


def notification_records(users: dict[str, User]) -> list[int]:
    """Two notifications for each role (of a sighting and a claim), one of them read."""
    for role, user in users.items():
        sighting = {"plate": f"({role})", "number": "B1", "time": timezone.now().isoformat(), "lat": 39.9, "lon": 117.7}
        notifications_create(users=[user], kind="sighting", message="sighting", params=sighting, link="/map/")
        eligible = {"number": f"({role})", "amount": "1200.00"}
        notifications_create(users=[user], kind="claim", message="claim_eligible", params=eligible, link="/claims/")
        Notification.objects.filter(user=user, kind="claim").update(read_at=timezone.now())
    return list(Notification.objects.filter(user__in=users.values()).order_by("pk").values_list("pk", flat=True))


@pytest.mark.django_db
@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=DEADLINE_MS,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failing request
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_schema(case, signed_in):
    for role in ROLES:
        session = signed_in[role]
        response = case.call(app=wsgi_application, cookies=session["cookies"], headers=session["headers"])
        case.validate_response(response, checks=CHECKS)
