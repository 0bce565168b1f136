"""Fitting a terminal names every problem at once (issue 18, point 7): the terminal's fields, the
terminal's state, the bike's state and the owner's consent, in the service, the API and the page."""

import re

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from tests import factories
from tests.tracking import factories as tf
from tracking.models import Terminal, TerminalInstallation
from tracking.services import terminal_fit, terminal_fit_check
from vehicles.services.registration import (
    vehicle_deregister,
    vehicle_freeze,
    vehicle_mark_stolen,
    vehicle_register,
)

pytestmark = pytest.mark.django_db

BAD_IMEI = "864717003283582"  # the Luhn digit is wrong
# A JT/T 808 terminal without its phone, with a bad IMEI, and no consent: three problems at once.
BAD_JT808 = {"imei": BAD_IMEI, "protocol": "jt808", "phone": "", "owner_consent": False}


@pytest.fixture
def vehicle(clerk):
    return vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=True
    ).vehicle


def _put_in_state(state: str, vehicle, clerk, officer) -> None:
    if state == "stolen":
        vehicle_mark_stolen(officer=officer, vehicle_id=vehicle.pk, reason="报案")
    elif state == "frozen":
        vehicle_freeze(user=officer, vehicle_id=vehicle.pk, reason="理赔后追回")
    elif state == "deregistered":
        vehicle_deregister(clerk=clerk, vehicle_id=vehicle.pk, reason="destroyed", plate_returned=True)
    elif state == "fitted":
        other = tf.terminal(bound=False)
        terminal_fit(clerk=clerk, vehicle_id=vehicle.pk, terminal_id=other.pk, owner_consent=True)


STATE_WORDS = {
    "stolen": "reported stolen",
    "frozen": "insurance claim",
    "deregistered": "deregistered",
    "fitted": "already has a terminal",
}


# --- the service ----------------------------------------------------------------------------------


def test_a_bad_imei_a_missing_phone_and_no_consent_are_named_together(vehicle):
    problems = terminal_fit_check(vehicle_id=vehicle.pk, **BAD_JT808)
    assert set(problems.by_field) == {"imei", "phone", "owner_consent"}
    assert "Luhn" in problems.by_field["imei"][0]


@pytest.mark.parametrize("state", STATE_WORDS)
def test_the_bikes_state_is_named_with_the_terminals_problems_and_the_consent(state, vehicle, clerk, officer):
    _put_in_state(state, vehicle, clerk, officer)
    problems = terminal_fit_check(vehicle_id=vehicle.pk, **BAD_JT808)
    assert set(problems.by_field) == {"vehicle", "imei", "phone", "owner_consent"}
    assert STATE_WORDS[state] in " ".join(problems.by_field["vehicle"])


@pytest.mark.parametrize("state", ["stolen", "frozen", "deregistered"])
def test_a_bike_in_that_state_takes_no_terminal_even_when_all_else_is_right(state, vehicle, clerk, officer):
    _put_in_state(state, vehicle, clerk, officer)
    imei = tf.imei()
    with pytest.raises(ValidationError) as refused:
        terminal_fit(clerk=clerk, vehicle_id=vehicle.pk, imei=imei, protocol="gt06", owner_consent=True)
    assert set(refused.value.message_dict) == {"vehicle"}
    assert not Terminal.objects.filter(imei=imei).exists()  # nothing registered on the way


def test_a_registered_terminal_fitted_elsewhere_or_retired_is_named_at_the_imei(vehicle, clerk):
    elsewhere = tf.terminal(clerk=clerk)
    problems = terminal_fit_check(vehicle_id=vehicle.pk, imei=elsewhere.imei, protocol="jt808", owner_consent=False)
    assert set(problems.by_field) == {"imei", "protocol", "owner_consent"}
    assert "fitted to another bike" in problems.by_field["imei"][0]
    assert "GT06" in problems.by_field["protocol"][0]
    retired = tf.terminal(bound=False)
    Terminal.objects.filter(pk=retired.pk).update(active=False)
    problems = terminal_fit_check(vehicle_id=vehicle.pk, imei=retired.imei, owner_consent=True)
    assert problems.by_field == {"imei": ["This terminal is retired."]}


def test_a_key_for_a_gt06_terminal_is_named_with_the_rest(vehicle):
    problems = terminal_fit_check(vehicle_id=vehicle.pk, imei=BAD_IMEI, osmand_key=True, owner_consent=False)
    assert set(problems.by_field) == {"imei", "osmand_key", "owner_consent"}


def test_a_spare_registered_terminal_is_fitted_as_it_is(vehicle, clerk):
    spare = tf.terminal(bound=False)
    assert not terminal_fit_check(vehicle_id=vehicle.pk, imei=spare.imei, protocol="", owner_consent=True)
    installation, key = terminal_fit(clerk=clerk, vehicle_id=vehicle.pk, imei=spare.imei, owner_consent=True)
    assert (installation.terminal_id, installation.vehicle_id, key) == (spare.pk, vehicle.pk, "")


# --- the API --------------------------------------------------------------------------------------


def test_the_fit_api_answers_400_naming_every_field_and_the_bike(clerk_api, vehicle, clerk, officer):
    _put_in_state("stolen", vehicle, clerk, officer)
    response = clerk_api.post(f"/api/v1/vehicles/{vehicle.pk}/terminal", BAD_JT808, format="json")
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"imei", "phone", "owner_consent", "vehicle"}
    assert "reported stolen" in body["vehicle"][0]
    assert not Terminal.objects.exists()


def test_the_fit_api_checks_the_rest_when_a_field_does_not_parse(clerk_api, vehicle):
    response = clerk_api.post(
        f"/api/v1/vehicles/{vehicle.pk}/terminal",
        {"protocol": "jt808", "heartbeat_interval_s": "often", "owner_consent": False},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"imei", "heartbeat_interval_s", "phone", "owner_consent"}
    assert body["imei"] == ["This field is required."]
    assert body["heartbeat_interval_s"] == ["A valid integer is required."]


def test_the_fit_api_registers_and_fits_in_one_step(clerk_api, vehicle, clerk):
    imei = tf.imei()
    response = clerk_api.post(
        f"/api/v1/vehicles/{vehicle.pk}/terminal",
        {"imei": imei, "protocol": "osmand", "osmand_key": True, "owner_consent": True},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["installation"]["installed_by"] == clerk.username
    assert len(body["osmand_key"]) == 20
    assert Terminal.objects.get(imei=imei).vehicle_id == vehicle.pk
    assert clerk_api.post("/api/v1/vehicles/999999/terminal", {}, format="json").status_code == 404


def test_the_bind_api_refuses_a_stolen_bike_with_the_missing_consent(clerk_api, vehicle, clerk, officer):
    _put_in_state("stolen", vehicle, clerk, officer)
    spare = tf.terminal(bound=False)
    response = clerk_api.post(
        f"/api/v1/terminals/{spare.pk}/bind", {"vehicle_id": vehicle.pk, "owner_consent": False}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()) == {"vehicle", "owner_consent"}
    assert not TerminalInstallation.objects.filter(terminal=spare).exists()


# --- the page -------------------------------------------------------------------------------------


@pytest.fixture
def clerk_client(clerk):
    client = Client()
    client.force_login(clerk)
    return client


def _field_errors(page: str, field: str) -> str:
    """The error block the page shows under one field ("" when none)."""
    found = re.search(rf'<div class="errors" id="id_{field}_error">(.*?)</div>', page, re.S)
    return found.group(1) if found else ""


def test_the_page_shows_every_problem_at_its_field_and_the_bikes_state_above(clerk_client, vehicle, clerk, officer):
    _put_in_state("frozen", vehicle, clerk, officer)
    form = {"fit": "1", "imei": BAD_IMEI, "protocol": "jt808", "phone": "", "source": "aftermarket"}
    response = clerk_client.post(f"/vehicles/{vehicle.pk}/terminal/", form)
    assert response.status_code == 400
    page = response.content.decode()
    assert "Luhn" in _field_errors(page, "imei")
    assert "terminal phone" in _field_errors(page, "phone")
    assert "consent" in _field_errors(page, "owner_consent")
    assert "insurance claim is open" in page
    assert not Terminal.objects.exists()


def test_the_page_names_the_consent_even_when_a_field_does_not_parse(clerk_client, vehicle):
    form = {"fit": "1", "imei": "", "protocol": "gt06", "source": "aftermarket", "osmand_key": "on"}
    response = clerk_client.post(f"/vehicles/{vehicle.pk}/terminal/", form)
    assert response.status_code == 400
    page = response.content.decode()
    assert "This field is required." in _field_errors(page, "imei")
    assert "consent" in _field_errors(page, "owner_consent")
    assert "Only OsmAnd terminals" in _field_errors(page, "osmand_key")


def test_the_page_says_before_typing_that_a_stolen_bike_takes_no_terminal(clerk_client, vehicle, clerk, officer):
    assert 'id="fit-refused"' not in clerk_client.get(f"/vehicles/{vehicle.pk}/terminal/").content.decode()
    _put_in_state("stolen", vehicle, clerk, officer)
    page = clerk_client.get(f"/vehicles/{vehicle.pk}/terminal/").content.decode()
    assert 'id="fit-refused"' in page and "record its recovery" in page


@pytest.mark.parametrize("state", ["stolen", "frozen"])
def test_a_stolen_or_frozen_bikes_terminal_is_not_swapped(state, clerk_api, vehicle, clerk, officer):
    fitted = tf.terminal(bound=False)
    terminal_fit(clerk=clerk, vehicle_id=vehicle.pk, terminal_id=fitted.pk, owner_consent=True)
    _put_in_state(state, vehicle, clerk, officer)
    spare = tf.terminal(bound=False)
    response = clerk_api.post(
        f"/api/v1/vehicles/{vehicle.pk}/replace-terminal",
        {"new_terminal_id": spare.pk, "reason": "进水损坏"},
        format="json",
    )
    assert response.status_code == 400
    assert STATE_WORDS[state] in response.json()["vehicle"][0]
    assert Terminal.objects.get(pk=fitted.pk).vehicle_id == vehicle.pk  # still fitted: nothing was undone
    assert Terminal.objects.get(pk=spare.pk).vehicle_id is None
