"""Everything the API takes from outside is bounded before any work is done on it: each string of a
request body or query has a maximum length (or is one of a closed list, a date, a file), each list a
maximum count, and the schema says so. A value over its limit is refused with 400 naming the field,
and nothing is stored: it never reaches a column too short for it (a 500) or a query."""

import datetime
import ipaddress
import json
import uuid

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from rest_framework.test import APIClient

from accounts.models import AuditEntry
from cases.models import CaseStep, TheftReport
from tests import factories
from tests.cases.casework import approved_case, case_number
from tests.cases.test_api import report_payload
from tracking.models import Ping, Terminal
from tracking.services import ingest_token_create
from vehicles.models import Vehicle

pytestmark = pytest.mark.django_db

# Strings bounded by what they are, not by a length (a decimal by its digits, in its pattern).
BOUNDED_FORMATS = {"date", "date-time", "binary", "uuid", "uri", "email", "decimal"}
# Request bodies taken whole: the evidence check reads any body, as sent, within the request size
# limit (DATA_UPLOAD_MAX_MEMORY_SIZE, tests/tracking/test_body_limits.py).
WHOLE_BODIES = {("/api/v1/evidence/verify", "post")}


def _document() -> dict:
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


def _unbounded(schema: dict, where: str, components: dict, seen: set[str]) -> list[str]:
    """Paths of strings without maxLength and lists without maxItems that a client may send."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        seen.add(name)
        return _unbounded(components[name], where, components, seen)
    found = []
    for part in schema.get("allOf", []) + schema.get("oneOf", []) + schema.get("anyOf", []):
        found += _unbounded(part, where, components, seen)
    kind = schema.get("type")
    if kind == "object":
        for name, field in schema.get("properties", {}).items():
            if not field.get("readOnly"):
                found += _unbounded(field, f"{where}.{name}", components, seen)
    elif kind == "array":
        if "maxItems" not in schema:
            found.append(f"{where} (a list without maxItems)")
        found += _unbounded(schema.get("items", {}), f"{where}[]", components, seen)
    elif kind == "string" and not {"maxLength", "enum"} & schema.keys() and schema.get("format") not in BOUNDED_FORMATS:
        found.append(f"{where} (a string without maxLength)")
    return found


def test_every_string_and_list_a_client_sends_has_a_limit_in_the_schema():
    document = _document()
    components = document["components"]["schemas"]
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    found += _unbounded(parameter["schema"], f"{where} ?{parameter['name']}", components, set())
            if (path, method) in WHOLE_BODIES:
                continue
            for content in operation.get("requestBody", {}).get("content", {}).values():
                found += _unbounded(content["schema"], where, components, set())
    assert found == [], "\n".join(found)


@pytest.fixture
def bike(clerk_api):
    return clerk_api.post("/api/v1/registrations", factories.registration_payload(), format="json").json()["vehicle"]


@pytest.mark.parametrize(
    ("field", "value", "limit"),
    [
        ("narrative", "车停在集市东口，" * 300, 2000),
        ("owner_id_number", "1" * 21, 20),
        ("frame_number", "A" * 21, 20),
        ("township_code", "1" * 10, 9),
    ],
)
def test_a_theft_report_over_a_limit_is_refused_naming_the_field(officer_api, bike, field, value, limit):
    response = officer_api.post(
        "/api/v1/theft-reports", report_payload(plate=bike["plate"]["number"], **{field: value}), format="json"
    )
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert str(limit) in response.json()[field][0]
    assert not TheftReport.objects.exists()
    assert Vehicle.objects.get(pk=bike["id"]).status == "registered"


def test_a_theft_report_with_a_plate_longer_than_any_plate_is_refused(officer_api, bike):
    response = officer_api.post("/api/v1/theft-reports", report_payload(plate="冀B" + "1" * 15), format="json")
    assert response.status_code == 400
    assert "16" in response.json()["plate"][0]
    assert not TheftReport.objects.exists()


def test_a_solve_note_longer_than_a_case_step_holds_is_refused_and_the_case_stays_open(officer_api, officer):
    case = approved_case(filer=officer, number=case_number(), officers=[officer])
    response = officer_api.post(
        f"/api/v1/cases/{case.pk}/solve", {"with_positioning": True, "note": "经定位找回。" * 100}, format="json"
    )
    assert response.status_code == 400
    assert "500" in response.json()["note"][0]
    case.refresh_from_db()
    assert case.status != "solved"
    assert not CaseStep.objects.filter(case=case, action=CaseStep.Action.SOLVE).exists()


def test_a_case_summary_over_its_limit_is_refused(officer_api, officer):
    response = officer_api.post(
        "/api/v1/cases",
        {"number": case_number(), "kind": "criminal", "officer_ids": [officer.pk], "summary": "案情" * 1001},
        format="json",
    )
    assert response.status_code == 400
    assert "2000" in response.json()["summary"][0]


def test_the_public_stolen_check_refuses_a_plate_longer_than_any_plate():
    response = APIClient().get("/api/v1/public/stolen-check", {"plate": "冀B" + "1" * 200})
    assert response.status_code == 400
    assert "16" in response.json()["plate"][0]


def test_a_record_opened_with_an_overlong_reason_is_refused_and_not_audited(officer_api, bike):
    before = AuditEntry.objects.count()
    response = officer_api.get(f"/api/v1/vehicles/{bike['id']}", {"reason": "核查" * 101})
    assert response.status_code == 400
    assert "200" in response.json()["reason"][0]
    assert AuditEntry.objects.count() == before


def test_a_terminal_lookup_names_a_missing_or_overlong_imei(officer_api):
    missing = officer_api.get("/api/v1/terminals")
    assert missing.status_code == 400
    assert missing.json() == {"imei": ["Give the IMEI to look up."]}
    overlong = officer_api.get("/api/v1/terminals", {"imei": "8" * 21})
    assert overlong.status_code == 400
    assert "20" in overlong.json()["imei"][0]


def test_statistics_for_a_station_code_longer_than_any_code_are_refused():
    leader = APIClient()
    leader.force_authenticate(factories.user("admin"))
    response = leader.get("/api/v1/stats/thefts", {"station": "1" * 13})
    assert response.status_code == 400
    assert "12" in response.json()["station"][0]


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"terminal": "8" * 16}, "terminal", "at most 15 characters"),
        ({"alarms": ["sos"] * 17}, "alarms", "at most 16 alarm names"),
    ],
)
def test_an_http_ping_over_a_limit_is_refused_naming_the_field(overrides, field, words):
    _token, raw = ingest_token_create(name="车卫士平台")
    ping = {
        "terminal": "868120300000001",
        "time": (timezone.now() - datetime.timedelta(seconds=5)).isoformat(),
        "latitude": 39.87,
        "longitude": 117.8,
        **overrides,
    }
    response = APIClient().post("/api/v1/pings", {"pings": [ping]}, format="json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 400, response.json()
    assert words in response.json()["pings"]["0"][field][0]
    assert not Ping.objects.exists()


# "[[[[…]]]]": a few hundred kilobytes nested past Python's recursion limit.
DEEP = b"[" * 100_000 + b"]" * 100_000
# One ping as raw JSON, its terminal to be filled in.
PING = b'{"terminal": "IMEI", "time": "2026-12-06T08:00:00Z", "latitude": 39.87, "longitude": 117.8}'


def test_a_json_body_nested_past_any_limit_is_a_400_and_stores_nothing(clerk_api):
    clerk_api.raise_request_exception = False
    response = clerk_api.generic("POST", "/api/v1/registrations", DEEP, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"] == "JSON parse error - the body is nested too deeply."
    assert not Vehicle.objects.exists()


def post_pings(body: bytes):
    """POST a raw JSON body to the pings API with a fresh integration token."""
    _token, raw = ingest_token_create(name="车卫士平台")
    return APIClient(raise_request_exception=False).generic(
        "POST", "/api/v1/pings", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}"
    )


def test_pings_nested_past_any_limit_are_a_400_and_store_nothing():
    for body in (DEEP, b'{"pings": [' + DEEP + b"]}"):
        response = post_pings(body)
        assert response.status_code == 400
        assert "nested too deeply" in response.json()["detail"]
    assert not Ping.objects.exists() and not Terminal.objects.exists()


def test_the_evidence_check_answers_a_nested_body_not_a_bundle():
    client = APIClient(raise_request_exception=False)
    address = str(ipaddress.IPv6Address(uuid.uuid4().int))  # its own budget (tests/cases/test_public_check_limit.py)
    for body in (DEEP, b'{"format": "x", "manifest": ' + DEEP + b"}"):
        response = client.generic(
            "POST", "/api/v1/evidence/verify", body, content_type="application/json", REMOTE_ADDR=address
        )
        assert response.status_code == 200
        assert response.json()["valid"] is False
        assert "nested deeper than any bundle" in response.json()["problems"][0]


def test_a_nul_in_a_json_string_is_a_400_before_any_query():
    """PostgreSQL text cannot hold NUL: an IMEI carrying one used to reach the terminal lookup (a 500)."""
    response = post_pings(PING.replace(b"IMEI", b"86812030\\u00000001"))
    assert response.status_code == 400
    assert response.json() == {"detail": "Null characters are not allowed."}
    assert not Ping.objects.exists()


def test_a_nul_in_a_form_body_is_a_400_naming_the_field_and_changes_nothing():
    from stats.models import PlateEstimate

    leader = APIClient()
    leader.force_authenticate(factories.user("admin"))
    body = "township_code=130229%00001&year=2026&estimated_bikes=100&method=other"
    response = leader.generic("POST", "/api/v1/stats/estimates", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.json() == {"township_code": ["Null characters are not allowed."]}
    assert not PlateEstimate.objects.exists()


def test_the_text_of_an_escaped_backslash_before_u0000_is_ordinary_text(officer_api, bike):
    narrative = "锁上写着 \\u0000 字样"  # a backslash typed before "u0000": no NUL in it
    response = officer_api.post(
        "/api/v1/theft-reports", report_payload(plate=bike["plate"]["number"], narrative=narrative), format="json"
    )
    assert response.status_code == 201, response.json()
    assert TheftReport.objects.get().narrative == narrative


def test_a_lone_surrogate_in_a_json_string_is_a_400_and_an_emoji_pair_is_text():
    response = post_pings(PING.replace(b"IMEI", b"\\ud800"))
    assert response.status_code == 400
    assert response.json() == {"detail": "Surrogate characters are not allowed."}
    assert not Ping.objects.exists()
    # An emoji sent as ASCII JSON is a pair of surrogate escapes: one character, accepted.
    response = post_pings(PING.replace(b"IMEI", b"86812030000\\ud83d\\udeb2"))
    assert response.status_code == 400
    assert response.json()["terminal"] == ["Unknown or retired terminal 86812030000🚲."]  # read as text


def test_a_query_string_over_the_field_limit_is_a_json_413_from_the_api_and_a_page_saying_so(clerk_api, settings):
    from django.test import Client

    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    query = "&".join(f"f{n}=x" for n in range(20))
    clerk_api.raise_request_exception = False
    response = clerk_api.get(f"/api/v1/vehicles?{query}")
    assert response.status_code == 413
    assert response.json() == {"detail": "The request has more than 10 fields."}
    page = Client(raise_request_exception=False).get(f"/stolen-check/?{query}")
    assert page.status_code == 413
    assert "The request has more than 10 fields." in page.content.decode()


def test_a_page_refusing_a_nul_says_why(client):
    response = client.get("/stolen-check/", {"plate": "玉A\x00"})
    assert response.status_code == 400
    assert "Null characters are not allowed." in response.content.decode()
    assert "The request could not be read" in response.content.decode()
