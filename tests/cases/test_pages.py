import pytest
from django.core.cache import cache
from django.test import Client

from cases.models import TheftReport
from tests import factories
from tests.cases.casework import case_number
from vehicles.models import Plate
from vehicles.services.registration import vehicle_register

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer_client(officer):
    client = Client()
    client.force_login(officer)
    return client


@pytest.fixture
def bike(clerk):
    return vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=True
    ).vehicle


def form(**overrides):
    data = {
        "channel": "walk_in",
        "reporter_name": "赵敏",
        "reporter_phone": "13700001111",
        "last_seen_at": "2026-11-27T20:00",
        "missing_at": "2026-11-28T07:30",
        "place_address": "玉田县亮甲店镇中学门口",
        "locked": "true",
    }
    data.update(overrides)
    return data


def test_officer_takes_a_report_and_gets_a_printable_receipt(officer_client, bike):
    plate = Plate.objects.get(vehicle=bike).number
    response = officer_client.post("/reports/new/", form(plate=plate), follow=True)
    assert response.status_code == 200
    report = TheftReport.objects.get()
    page = response.content.decode()
    assert report.number in page and "137****1111" in page
    assert f'<strong class="plate">{plate}</strong>' in page  # the receipt names the bike by its plate
    detail = officer_client.get(f"/reports/{report.pk}/")
    assert "filed_criminal" in detail.content.decode()  # the allowed next steps are offered
    assert f'<strong class="plate">{plate}</strong>' in detail.content.decode()


def test_the_login_page_is_for_owners_too(client):
    page = client.get("/login/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "工作人员登录" not in page
    assert "车主" in page


def test_every_problem_is_shown_at_once_and_nothing_is_saved(officer_client):
    response = officer_client.post(
        "/reports/new/", form(reporter_phone="123", missing_at="2026-11-27T19:00", plate="玉Z00000")
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "11 digits" in page and "last seen after" in page and "describe the bike" in page
    assert 'value="赵敏"' in page
    assert not TheftReport.objects.exists()


def test_the_workflow_step_is_recorded_from_the_page(officer_client, bike):
    officer_client.post("/reports/new/", form(frame_number=bike.frame_number))
    report = TheftReport.objects.get()
    filing = {"to_status": "filed_criminal", "note": "立案", "case_number": case_number()}
    officer_client.post(f"/reports/{report.pk}/", filing)
    report.refresh_from_db()
    assert report.status == "filed_criminal"
    wrong = officer_client.post(f"/reports/{report.pk}/", {"to_status": "returned"})
    assert wrong.status_code == 400


def test_owners_cannot_open_the_report_pages(owner_user):
    client = Client()
    client.force_login(owner_user)
    assert client.get("/reports/new/").status_code == 403


def test_public_stolen_check_page(client, officer_client, bike):
    cache.clear()
    plate = Plate.objects.get(vehicle=bike).number
    assert "Not reported stolen" in client.get("/stolen-check/", {"plate": plate}).content.decode()
    officer_client.post("/reports/new/", form(plate=plate))
    page = client.get("/stolen-check/", {"plate": plate}).content.decode()
    assert "Reported stolen on" in page
    assert bike.owner.name not in page
    assert "either a plate number" in client.get("/stolen-check/", {"plate": "x", "frame": "y"}).content.decode()
