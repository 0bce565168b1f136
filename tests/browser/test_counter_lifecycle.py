"""A clerk transfers a bike and replaces its plate through the counter pages (issue 18, point 1): the
missing consent is shown at its field with everything typed kept, the transfer ends on a printable
receipt with signature lines, the plate replacement offers the new certificate, and the record page
shows both in its history."""

import re

import pytest

from tests import factories
from tests.browser.conftest import log_in, screenshot
from vehicles.models import Plate, RegistrationEvent, Vehicle
from vehicles.services.registration import vehicle_register

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

BUYER_ID = "440524188001010014"  # passes GB 11643 (docs/domain.md#identity-numbers)


def test_clerk_transfers_a_bike_and_replaces_its_plate(page, live_server, settings):
    settings.PLATE_REPLACE_KEEPS_NUMBER = False
    clerk = factories.user("clerk", first_name="静", last_name="王")
    vehicle = vehicle_register(
        clerk=clerk,
        owner=factories.owner_data(name="赵丽华"),
        vehicle=factories.vehicle_data(),
        insurance_consent=True,
        documents=["invoice"],
    ).vehicle
    old_plate = Plate.objects.get(vehicle=vehicle).number
    log_in(page, live_server, clerk)

    # The record page offers the operations; the clerk opens the transfer.
    page.goto(f"{live_server.url}/vehicles/{vehicle.pk}/")
    page.click(".operations >> text=转移登记")
    page.wait_for_url(re.compile(rf"/vehicles/{vehicle.pk}/transfer/$"))
    page.fill("#id_new_owner-name", "刘洋")
    page.fill("#id_new_owner-id_number", BUYER_ID)
    page.fill("#id_new_owner-phone", "13912345678")
    page.fill("#id_new_owner-address", "河北省唐山市玉田县无终街道兴隆路18号")
    page.check("input[name=documents][value=transfer_agreement]")
    page.click("form.lifecycle button.primary")

    # Refused: the consent is missing, said at its field; what was typed is still there.
    page.wait_for_selector(".problems")
    box = page.locator(".field.invalid", has=page.locator("#id_previous_owner_consent_0"))
    assert "原车主" in box.locator(".error").inner_text()
    assert page.input_value("#id_new_owner-name") == "刘洋"
    assert page.is_checked("input[name=documents][value=transfer_agreement]")
    assert not RegistrationEvent.objects.filter(vehicle=vehicle, kind="transfer").exists()
    screenshot(page, "transfer-refused")

    page.check("input[name=previous_owner_consent][value=in_person]")
    page.click("form.lifecycle button.primary")
    page.wait_for_url(re.compile(r"/events/\d+/receipt/$"))
    assert Vehicle.objects.get(pk=vehicle.pk).owner.name == "刘洋"
    receipt = page.inner_text("article.lifecycle-receipt")
    for expected in (
        "转移登记回执",
        "赵丽华",
        "刘洋",
        old_plate,
        "原车主（签字）",
        "新车主（签字）",
        "经办民警（签字）",
    ):
        assert expected in receipt

    # Printing: the button calls the browser's print (script file, no inline handler) and the
    # printed page is the receipt alone.
    page.evaluate("window.print = () => { window.__printed = true; }")
    page.click("[data-print]")
    assert page.evaluate("window.__printed === true")
    page.emulate_media(media="print")
    assert not page.is_visible(".toolbar")
    screenshot(page, "transfer-receipt-print", full_page=True)
    page.emulate_media(media="screen")

    # Plate replacement: lost plate, a new number, and the new certificate to print.
    page.goto(f"{live_server.url}/vehicles/{vehicle.pk}/")
    page.click(".operations >> text=补领/换领号牌")
    page.check("input[name=reason][value=lost]")
    page.click("form.lifecycle button.primary")
    page.wait_for_url(re.compile(r"/events/\d+/receipt/$"))
    new_plate = Plate.objects.get(vehicle=vehicle, status="issued").number
    assert new_plate != old_plate
    assert "号牌丢失" in page.inner_text("article.lifecycle-receipt")
    screenshot(page, "plate-replacement-receipt")
    page.click("text=打印新登记证书")
    page.wait_for_url(re.compile(rf"/certificates/{vehicle.pk}/$"))
    assert new_plate in page.content()

    # The history shows both, the transfer with the consent recorded.
    page.goto(f"{live_server.url}/vehicles/{vehicle.pk}/")
    history = page.inner_text("table.history")
    assert "本人到场" in history and "补领/换领号牌" in history and "号牌丢失" in history
    screenshot(page, "record-operations", full_page=True)


def test_clerk_changes_corrects_and_deregisters_a_bike_with_a_receipt_for_each(page, live_server):
    clerk = factories.user("clerk", first_name="静", last_name="王")
    vehicle = vehicle_register(
        clerk=clerk,
        owner=factories.owner_data(name="赵丽华"),
        vehicle=factories.vehicle_data(colour="白", brand="雅迪"),
        insurance_consent=True,
        documents=["invoice"],
    ).vehicle
    plate = Plate.objects.get(vehicle=vehicle).number
    log_in(page, live_server, clerk)

    def printed_receipt(title: str) -> str:
        page.wait_for_url(re.compile(r"/events/\d+/receipt/$"))
        receipt = page.inner_text("article.lifecycle-receipt")
        assert title in receipt and plate in receipt and "经办民警（签字）" in receipt
        page.evaluate("window.print = () => { window.__printed = true; }")
        page.click("[data-print]")
        assert page.evaluate("window.__printed === true")
        return receipt

    # 变更登记: a new colour; without a reason the page says so at its field and keeps the colour typed.
    page.goto(f"{live_server.url}/vehicles/{vehicle.pk}/")
    page.click(".operations >> text=变更登记")
    page.wait_for_url(re.compile(rf"/vehicles/{vehicle.pk}/change/$"))
    assert page.input_value("#id_vehicle-colour") == "白"  # filled in from the record
    page.fill("#id_vehicle-colour", "黑")
    page.click("form.lifecycle button.primary")
    page.wait_for_selector(".problems")
    assert page.locator(".field.invalid", has=page.locator("#id_reason")).locator(".error").count() == 1
    assert page.input_value("#id_vehicle-colour") == "黑"
    page.fill("#id_reason", "车身重新喷漆")
    page.click("form.lifecycle button.primary")
    receipt = printed_receipt("变更登记回执")
    assert "黑" in receipt and "车身重新喷漆" in receipt
    screenshot(page, "change-receipt", full_page=True)
    assert Vehicle.objects.get(pk=vehicle.pk).colour == "黑"

    # 更正: the brand entered wrongly at registration.
    page.goto(f"{live_server.url}/vehicles/{vehicle.pk}/")
    page.click(".operations >> text=更正")
    page.wait_for_url(re.compile(rf"/vehicles/{vehicle.pk}/correct/$"))
    page.fill("#id_vehicle-brand", "爱玛")
    page.fill("#id_reason", "登记时品牌录入错误")
    page.click("form.lifecycle button.primary")
    assert "登记时品牌录入错误" in printed_receipt("更正回执")
    assert Vehicle.objects.get(pk=vehicle.pk).brand == "爱玛"

    # 注销登记: no longer used, the plate handed back; afterwards the record offers only a correction
    # and says why the rest are refused.
    page.goto(f"{live_server.url}/vehicles/{vehicle.pk}/")
    page.click(".operations >> text=注销登记")
    page.wait_for_url(re.compile(rf"/vehicles/{vehicle.pk}/deregister/$"))
    page.check("input[name=reason][value=not_used]")
    page.check("input[name=plate_returned][value=yes]")
    page.click("form.lifecycle button.primary")
    assert "不再使用" in printed_receipt("注销登记回执")
    screenshot(page, "deregister-receipt", full_page=True)
    assert Vehicle.objects.get(pk=vehicle.pk).status == Vehicle.Status.DEREGISTERED
    assert Plate.objects.get(vehicle=vehicle, number=plate).status == Plate.Status.RECOVERED
    page.goto(f"{live_server.url}/vehicles/{vehicle.pk}/")
    assert page.locator(".operations .op-allowed").all_inner_texts() == ["更正"]
    assert page.locator(".operations .op-refused", has_text="转移登记").inner_text().count("不可办理") == 1
    history = page.inner_text("table.history")
    assert "变更登记" in history and "更正" in history and "注销登记" in history
