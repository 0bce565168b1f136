"""The whole API fuzzed against its own OpenAPI schema (schemathesis): every operation of
/api/schema/, requests generated from the schema (valid ones and invalid ones), sent in process to
the WSGI application on the test database as a leader (group `admin`) and as a clerk. Each response
must be no 5xx, carry a documented status code and content type, match the documented body, and an
invalid request must be refused with a 4xx.

Sessions sign the requests in (cookie and CSRF token, as a browser would), so the whole middleware
stack runs as in production. Each operation is one pytest test in its own rolled-back transaction:
what the fuzzing creates stays in the test database and is gone after the test.

Bounded for `make test`: FUZZ_EXAMPLES examples per operation and role (default 12) and no example
slower than FUZZ_DEADLINE_MS. README "Tests" has the measured time.
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
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests import factories

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
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


@pytest.fixture
def signed_in(settings) -> Iterator[dict[str, dict]]:
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
    try:
        yield sessions
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


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
