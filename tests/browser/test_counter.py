"""A clerk registers a bike through the counter form: a wrong ID number and phone are shown next
to their fields with everything typed kept; corrected, the bike is registered and the
certificate opens."""

import re

import pytest

from tests import factories
from tests.browser.conftest import log_in, screenshot
from vehicles.models import Owner, Vehicle

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

GOOD_ID = "130229198503151230"  # passes GB 11643 (docs/domain.md#identity-numbers)
BAD_ID = "130229198503151231"  # wrong check character


def fill_counter(page, *, id_number: str, phone: str) -> None:
    page.fill("#id_owner-name", "赵丽华")
    page.fill("#id_owner-id_number", id_number)
    page.fill("#id_owner-phone", phone)
    page.fill("#id_owner-address", "河北省唐山市玉田县无终街道兴隆路12号")
    page.fill("#id_vehicle-frame_number", factories.frame_number(90001))
    page.fill("#id_vehicle-motor_number", "YD48V00090001")
    page.fill("#id_vehicle-manufacturer", "雅迪科技集团有限公司")
    page.fill("#id_vehicle-brand", "雅迪")
    page.fill("#id_vehicle-model_name", "TDT2312Z")
    page.fill("#id_vehicle-colour", "白")
    page.fill("#id_vehicle-production_date", "2025-01-10")
    page.fill("#id_vehicle-purchase_date", "2025-03-01")
    page.fill("#id_vehicle-purchase_price", "2999.00")
    page.fill("#id_vehicle-ccc_certificate_no", "2023011119567890")
    for document in ("id_card", "invoice", "ccc_certificate"):
        page.check(f"input[name=documents][value={document}]")
    page.check("#id_insurance_consent")


def test_clerk_registers_a_bike_through_the_form(page, live_server):
    clerk = factories.user("clerk", first_name="静", last_name="王")
    log_in(page, live_server, clerk)
    page.click("nav >> text=窗口登记")
    fill_counter(page, id_number=BAD_ID, phone="1381234")
    page.click("form.counter button[type=submit]")

    page.wait_for_selector(".problems")
    for field in ("#id_owner-id_number", "#id_owner-phone"):
        box = page.locator(".field.invalid", has=page.locator(field))
        assert box.locator(".error").count() >= 1
    assert page.input_value("#id_owner-id_number") == BAD_ID
    assert page.input_value("#id_owner-name") == "赵丽华"
    assert page.input_value("#id_vehicle-brand") == "雅迪"
    assert page.is_checked("#id_insurance_consent")
    assert not Vehicle.objects.exists()
    screenshot(page, "counter")  # the problems listed at once, each also next to its field
    screenshot(page, "counter-errors-full", full_page=True)

    page.fill("#id_owner-id_number", GOOD_ID)
    page.fill("#id_owner-phone", "13812345678")
    page.click("form.counter button[type=submit]")
    page.wait_for_url(re.compile(r"/certificates/\d+/$"))
    vehicle = Vehicle.objects.get()
    assert vehicle.owner == Owner.objects.get(id_number=GOOD_ID)
    assert vehicle.plates.get().number in page.content()
    screenshot(page, "certificate-browser")
