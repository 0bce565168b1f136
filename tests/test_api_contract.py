"""What the fuzzing (tests/test_api_fuzz.py) found, pinned as plain tests: the API answers in JSON
with a 4xx for bad input where it gave HTML or a 500, and its schema says what it really sends."""

import re
from pathlib import Path

import pytest
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_an_api_path_that_matches_no_route_is_a_json_404(clerk_api):
    response = clerk_api.get("/api/v1/vehicles/not-a-number")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}
    page = Client().get("/vehicles/not-a-number/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_a_nul_character_in_a_query_is_refused_naming_the_parameter(clerk_api):
    response = clerk_api.get("/api/v1/terminals", {"imei": "86\x0012"})
    assert response.status_code == 400
    assert response.json() == {"imei": ["Null characters are not allowed."]}
    assert Client().get("/stolen-check/", {"plate": "玉A\x00"}).status_code == 400


def test_yes_no_parameters_take_true_or_false_only(officer_api):
    for path, name in [("/api/v1/notifications", "unread"), ("/api/v1/duty-calls", "closed")]:
        refused = officer_api.get(path, {name: "perhaps"})
        assert refused.status_code == 400 and refused.json() == {name: ["Use true or false."]}, path
        for value in ("true", "FALSE", "1", ""):
            assert officer_api.get(path, {name: value}).status_code == 200, (path, value)


@pytest.fixture
def document(clerk_api) -> dict:
    return clerk_api.get("/api/schema/", {"format": "json"}).json()


def test_paged_lists_are_documented_as_pages(document, officer_api):
    page = document["paths"]["/api/v1/notifications"]["get"]["responses"]["200"]["content"]["application/json"]
    schema = document["components"]["schemas"][page["schema"]["$ref"].rsplit("/", 1)[1]]
    assert set(schema["properties"]) == {"count", "next", "previous", "results"}
    assert set(officer_api.get("/api/v1/notifications").json()) == {"count", "next", "previous", "results"}


def test_the_schema_documents_errors_and_values_that_may_be_null(document):
    operation = document["paths"]["/api/v1/vehicles/{vehicle_id}"]["get"]
    assert {"200", "400", "401", "403", "404"} <= set(operation["responses"])
    assert "413" in document["paths"]["/api/v1/registrations"]["post"]["responses"]
    assert "429" in document["paths"]["/api/v1/public/stolen-check"]["get"]["responses"]
    link = document["components"]["schemas"]["LinkOutput"]["properties"]
    assert link["unlinked_by"]["nullable"] is True  # no one has unlinked a live link
    assert "nullable" not in link["linked_by"]
    assert list(document["paths"]["/api/v1/registrations"]["post"]["requestBody"]["content"]) == ["application/json"]


def test_credentials_for_an_api_token_are_strings_not_numbers(clerk):
    signed_in = APIClient()
    signed_in.force_login(clerk)
    refused = signed_in.post("/api/v1/auth/token", {"username": 1, "password": 1}, format="json")
    assert refused.status_code == 400
    assert refused.json() == {"username": ["Not a valid string."], "password": ["Not a valid string."]}
    assert signed_in.post("/api/v1/auth/token", {}, format="json").status_code == 201  # the session alone
    by_password = APIClient().post("/api/v1/auth/token", {"username": clerk.username, "password": 1}, format="json")
    assert by_password.status_code == 400 and by_password.json() == {"password": ["Not a valid string."]}


def test_the_duty_call_steps_are_documented_as_the_three_there_are(document):
    parameters = document["paths"]["/api/v1/duty-calls/{call_id}/{action}"]["post"]["parameters"]
    action = next(parameter for parameter in parameters if parameter["name"] == "action")
    assert sorted(action["schema"]["enum"]) == ["acknowledge", "close", "dispatch"]


def test_the_readme_names_the_query_parameters_the_api_takes(document):
    """Every `GET /api/v1/…?name=&…` the README shows uses the parameter names of the schema (the
    crime-scene search takes since/until, not from/to)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    paths = {re.sub(r"\{[^}]*\}", "{}", path): operations for path, operations in document["paths"].items()}
    shown = re.findall(r"`GET (/api/v1/[^`?]+)\?([^`]+)`", readme)
    assert len(shown) >= 5 and any(path == "/api/v1/tracing/near" for path, _ in shown)
    for path, query in shown:
        operation = paths[re.sub(r"\{[^}]*\}", "{}", path)]["get"]
        known = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        names = {part.split("=", 1)[0] for part in re.split(r"[&|]", query)}
        assert names <= known, f"README: {path} documents {sorted(names - known)}; the API takes {sorted(known)}"
