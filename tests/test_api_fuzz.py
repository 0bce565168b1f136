"""The whole API fuzzed against its own OpenAPI schema (schemathesis): every operation of
/api/schema/, requests generated from the schema (valid ones and invalid ones), sent in process to
the WSGI application on the test database as a leader (group `admin`) and as a clerk. Each response
must be no 5xx, carry a documented status code and content type, match the documented body, and an
invalid request must be refused with a 4xx.

Sessions sign the requests in (cookie and CSRF token, as a browser would), so the whole middleware
stack runs as in production. Each operation is one pytest test in its own rolled-back transaction:
what the fuzzing creates stays in the test database and is gone after the test.

Bounded for `make test`: FUZZ_EXAMPLES generated requests per operation (default 25), each sent as
both roles, none slower than FUZZ_DEADLINE_MS; FUZZ_COVERAGE=1 adds schemathesis' boundary-value
phase (minutes more). README "Tests" has the measured time.
"""

import json
import os
from collections.abc import Iterator

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
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

from cases.services import case_link
from tests import factories
from tests.cases.casework import approved_case
from tests.web.scene import stolen_bike
from vehicles.services.registration import vehicle_register

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
DEADLINE_MS = int(os.environ.get("FUZZ_DEADLINE_MS", "5000"))
COVERAGE = os.environ.get("FUZZ_COVERAGE", "") == "1"  # also the boundary values (several minutes more)
ROLES = ("admin", "clerk")  # the leader and the counter clerk
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
    sessions = {}
    for role in ROLES:
        client = Client()
        client.force_login(factories.user(role))
        sessions[role] = {
            "cookies": {
                django_settings.SESSION_COOKIE_NAME: client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                django_settings.CSRF_COOKIE_NAME: CSRF_SECRET,
            },
            "headers": {"X-CSRFToken": CSRF_SECRET},
        }
    KNOWN_IDS.clear()
    if "{" in request.node.name:  # an operation with path parameters: give it records to address
        KNOWN_IDS.update(seeded_records())
    try:
        yield sessions
    finally:
        KNOWN_IDS.clear()
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def seeded_records() -> dict[str, list[int]]:
    """A stolen bike with its terminal, positions and theft report, a case it is linked to, and a
    bike registered at the counter without a terminal."""
    officer = factories.user("officer")
    bike = stolen_bike(officer)
    case = approved_case(filer=officer, number="2026-FUZZ-1", officers=[officer])
    link = case_link(user=officer, case_id=case.pk, report_id=bike.report.pk)
    clerk = factories.user("clerk")
    owner, vehicle = factories.owner_data(), factories.vehicle_data()
    plain = vehicle_register(clerk=clerk, owner=owner, vehicle=vehicle, insurance_consent=True).vehicle
    return {
        "vehicle_id": [bike.vehicle.pk, plain.pk],
        "terminal_id": [bike.terminal.pk],
        "report_id": [bike.report.pk],
        "case_id": [case.pk],
        "link_id": [link.pk],
    }


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
