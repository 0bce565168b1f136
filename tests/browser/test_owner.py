"""An owner logs in, sees their bike, reports its theft online (bad input first), and gets the
receipt; pages outside the owner's role answer a proper 403; a bike without a terminal shows why
there is no position."""

import datetime

import pytest
from django.utils import timezone

from cases.models import TheftReport
from tests import factories
from tests.browser.conftest import log_in, screenshot
from vehicles.models import Vehicle
from vehicles.services.registration import vehicle_register

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def owner_with_bike():
    clerk = factories.user("clerk")
    user = factories.user("owner", station_code=None, first_name="秀英", last_name="王")
    result = vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=True
    )
    result.vehicle.owner.user = user
    result.vehicle.owner.save(update_fields=["user"])
    return user, result.vehicle, result.plate.number


def local(dt: datetime.datetime) -> str:
    return timezone.localtime(dt).strftime("%Y-%m-%dT%H:%M")


def test_owner_reports_a_theft_online(page, live_server, owner_with_bike):
    user, vehicle, plate = owner_with_bike
    log_in(page, live_server, user)
    page.click("nav >> text=我的车辆")
    card = page.locator(f".bike[data-vehicle='{vehicle.pk}']")
    assert plate in card.inner_text()
    screenshot(page, "owner-bikes")

    card.locator("text=报告此车被盗").click()
    assert page.input_value("#id_vehicle") == str(vehicle.pk)
    now = timezone.now()
    # Found missing before it was last seen, no place, a bad phone: all shown at once.
    page.fill("#id_last_seen_at", local(now - datetime.timedelta(hours=1)))
    page.fill("#id_missing_at", local(now - datetime.timedelta(hours=3)))
    page.fill("#id_reporter_phone", "123")
    page.fill("#id_narrative", "停在楼下车棚，早上发现不见了。")
    page.click("main form button[type=submit]")
    page.wait_for_selector(".problems")
    for field in ("#id_last_seen_at", "#id_place_address", "#id_reporter_phone"):
        assert page.locator(".field.invalid", has=page.locator(field)).count() == 1, field
    assert page.input_value("#id_narrative") == "停在楼下车棚，早上发现不见了。"
    assert page.input_value("#id_reporter_phone") == "123"
    assert not TheftReport.objects.exists()

    page.fill("#id_last_seen_at", local(now - datetime.timedelta(hours=5)))
    page.fill("#id_place_address", "玉田县无终街道兴隆路12号楼下车棚")
    page.fill("#id_reporter_phone", "13812345678")
    page.click("main form button[type=submit]")
    page.wait_for_selector("#report-number")
    report = TheftReport.objects.get()
    assert page.inner_text("#report-number") == report.number
    assert report.channel == TheftReport.Channel.ONLINE and report.vehicle == vehicle
    assert Vehicle.objects.get(pk=vehicle.pk).status == Vehicle.Status.STOLEN
    screenshot(page, "owner-report")


def test_owner_pages_say_why_there_is_no_position_and_refuse_staff_pages(page, live_server, owner_with_bike):
    user, vehicle, _plate = owner_with_bike
    other = vehicle_register(
        clerk=factories.user("clerk"),
        owner=factories.owner_data(),
        vehicle=factories.vehicle_data(),
        insurance_consent=False,
    ).vehicle
    log_in(page, live_server, user)
    page.goto(f"{live_server.url}/my/bikes/{vehicle.pk}/position/")
    assert page.locator("#no-position").is_visible()
    assert "未安装防盗定位终端" in page.inner_text("#no-position")
    for path in ("/map/", "/counter/", f"/my/bikes/{other.pk}/policy/"):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 403, path
        assert page.locator("main h1").count() == 1 and page.locator("main .card").count() == 1
    screenshot(page, "owner-403")
