"""The server-rendered counter pages, driven through Django's test client on the real database."""

import contextlib
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core import signing
from django.core.management import call_command
from django.test import override_settings

from accounts.models import AuditEntry
from tests import factories
from vehicles.certificates import SALT, certificate_token, certificate_verify
from vehicles.models import InsurancePolicy, Owner, Plate, PlateSeries, RegistrationEvent, Vehicle
from vehicles.services.registration import (
    plate_replace,
    vehicle_change,
    vehicle_deregister,
    vehicle_mark_stolen,
    vehicle_register,
)

pytestmark = pytest.mark.django_db

COUNTER = "/counter/"
SEARCH = "/search/"


@pytest.fixture(scope="module", autouse=True)
def _catalogues_compiled():
    """The pages default to Chinese; make sure the .mo files exist when pytest runs without setup."""
    stale = [
        po
        for po in Path(settings.BASE_DIR, "locale").glob("*/LC_MESSAGES/django.po")
        if not po.with_suffix(".mo").exists() or po.with_suffix(".mo").stat().st_mtime < po.stat().st_mtime
    ]
    if stale:
        with contextlib.chdir(settings.BASE_DIR):
            call_command("compilemessages", ignore_patterns=[".venv", "var", "staticfiles"], verbosity=0)
        with override_settings(LOCALE_PATHS=list(settings.LOCALE_PATHS)):
            pass  # changing LOCALE_PATHS drops the translations Django cached before compiling


@pytest.fixture(autouse=True)
def _production_default_language(settings):
    # These tests check what a counter sees: Chinese unless the user picks English.
    settings.LANGUAGE_CODE = "zh-hans"


def form_post(owner=None, vehicle=None, *, consent=True, documents=("id_card", "invoice", "ccc_certificate")):
    """What the browser sends when the clerk fills in the counter form."""
    owner = owner if owner is not None else factories.owner_data()
    vehicle = vehicle if vehicle is not None else factories.vehicle_data()
    data = {f"owner-{key}": str(value) for key, value in owner.items()}
    for key, value in vehicle.items():
        if key == "conforming":
            if value:
                data["vehicle-conforming"] = "on"
        else:
            data[f"vehicle-{key}"] = str(value)
    data["documents"] = list(documents)
    if consent:
        data["insurance_consent"] = "on"
    return data


def register(clerk, **vehicle_overrides):
    return vehicle_register(
        clerk=clerk,
        owner=factories.owner_data(),
        vehicle=factories.vehicle_data(**vehicle_overrides),
        insurance_consent=True,
        documents=["invoice"],
    )


def row_counts():
    return {m.__name__: m.objects.count() for m in (Owner, Vehicle, Plate, RegistrationEvent, InsurancePolicy)}


def text(response) -> str:
    return response.content.decode()


# --- counter ---------------------------------------------------------------------------------------


def test_counter_form_is_in_chinese_with_every_section(client, clerk):
    client.force_login(clerk)
    response = client.get(COUNTER)
    assert response.status_code == 200
    page = text(response)
    for heading in ("电动自行车户籍化管理系统", "车主", "车辆", "材料", "保险", "来历承诺书", "无终街道"):
        assert heading in page
    assert "不是办理登记的条件" in page  # enrolment in the policy is voluntary
    consent = re.search(r'<input[^>]*name="insurance_consent"[^>]*>', page).group(0)
    assert "checked" not in consent


def test_counter_is_refused_to_roles_without_the_counter_permission(client, officer, owner_user):
    assert client.get(COUNTER).status_code == 302  # anonymous: to the login page
    for user in (officer, owner_user):
        client.force_login(user)
        assert client.get(COUNTER).status_code == 403
        assert client.post(COUNTER, form_post()).status_code == 403
    assert Vehicle.objects.count() == 0


def test_clerk_without_a_station_is_told_why_registration_is_refused(client):
    clerk = factories.user("clerk", station_code=None)
    client.force_login(clerk)
    response = client.post(COUNTER, form_post())
    assert response.status_code == 403
    assert "未分配所属派出所" in text(response)
    assert Vehicle.objects.count() == 0


def test_registration_through_the_form_leads_to_the_certificate(client, clerk):
    owner = factories.owner_data(id_number="130229198503151230", phone="13812345678")
    client.force_login(clerk)

    response = client.post(COUNTER, form_post(owner=owner), follow=True)

    vehicle = Vehicle.objects.get()
    plate = vehicle.plates.get()
    assert response.redirect_chain == [(f"/certificates/{vehicle.pk}/", 302)]
    page = text(response)
    assert "电动自行车登记证书" in page
    assert f"已发放号牌 {plate.number}" in page
    assert plate.number in page and "plate-green" in page
    assert "130229********1230" in page and "130229198503151230" not in page
    assert "138****5678" in page and "13812345678" not in page
    assert "<svg" in page and 'class="qr"' in page
    assert vehicle.policies.get().number in page
    event = vehicle.events.get()
    assert event.documents == ["id_card", "invoice", "ccc_certificate"]
    assert AuditEntry.objects.filter(user=clerk, action="certificate.view", object_id=str(vehicle.pk)).count() == 1


def test_without_consent_the_bike_is_registered_and_not_insured(client, clerk):
    client.force_login(clerk)
    response = client.post(COUNTER, form_post(consent=False), follow=True)
    assert response.status_code == 200
    assert "未参保" in text(response)
    assert Vehicle.objects.count() == 1 and InsurancePolicy.objects.count() == 0


def test_every_problem_is_shown_at_once_with_the_typed_values_kept(client, clerk):
    taken = factories.vehicle_data()
    vehicle_register(clerk=clerk, owner=factories.owner_data(), vehicle=taken, insurance_consent=True)
    before = row_counts()
    client.force_login(clerk)

    data = form_post(
        owner=factories.owner_data(id_number="130229198503151231", phone="12345", name="李建国"),
        vehicle=factories.vehicle_data(frame_number=taken["frame_number"], production_date="2025-02-30"),
    )
    response = client.post(COUNTER, data)

    assert response.status_code == 200
    page = text(response)
    assert "身份证号码校验码不正确" in page
    assert "手机号码为 11 位" in page
    assert "该车已登记" in page
    assert "输入一个有效的日期" in page  # malformed date: a parsing problem, reported with the others
    assert "不予登记：有 4 个问题需要处理" in page
    for typed in ("130229198503151231", "12345", taken["frame_number"], "2025-02-30", "李建国"):
        assert f'value="{typed}"' in page
    assert row_counts() == before


def test_a_form_that_parses_is_still_refused_with_all_service_problems(client, clerk):
    client.force_login(clerk)
    data = form_post(
        owner=factories.owner_data(kind="organisation", name="玉田县快送物流有限公司", id_number="91350100M000100Y43"),
        vehicle=factories.vehicle_data(purchase_date="2030-01-01"),
    )
    response = client.post(COUNTER, data)
    page = text(response)
    assert "单位车主须由经办人办理" in page
    assert "请输入经办人身份证号码" in page
    assert "购买日期不能晚于今天" in page
    assert Vehicle.objects.count() == 0


def test_a_station_out_of_plate_numbers_is_told_so_and_nothing_is_written(client, clerk):
    PlateSeries.objects.filter(station=clerk.station, kind="green").update(first_number=1, last_number=1, next_number=2)
    before = row_counts()
    client.force_login(clerk)
    response = client.post(COUNTER, form_post())
    assert response.status_code == 200
    assert "号牌已用完" in text(response)
    assert row_counts() == before


# --- certificate and verification -------------------------------------------------------------------


def test_certificate_needs_a_staff_role(client, owner_user, clerk):
    registration = register(clerk)
    url = f"/certificates/{registration.vehicle.pk}/"
    assert client.get(url).status_code == 302
    client.force_login(owner_user)
    assert client.get(url).status_code == 403
    assert not AuditEntry.objects.filter(action="certificate.view").exists()


def test_certificate_qr_points_at_the_public_base_url(client, clerk, settings):
    settings.PUBLIC_BASE_URL = "https://ebike.yutian.example/"
    registration = register(clerk)
    client.force_login(clerk)
    page = text(client.get(f"/certificates/{registration.vehicle.pk}/"))
    # The token carries the second it was signed in: read it off the page rather than sign another.
    match = re.search(r'href="https://ebike\.yutian\.example/verify/([^/"]+)/"', page)
    assert match, "the QR's link is on the public base URL"
    verified = certificate_verify(match.group(1))
    assert verified is not None
    assert (verified.vehicle.pk, verified.plate_number) == (registration.vehicle.pk, registration.plate.number)


def test_temporary_plate_shows_its_expiry(client, clerk):
    registration = register(clerk, conforming=False, ccc_certificate_no="")
    Plate.objects.filter(pk=registration.plate.pk).update(expires_on="2025-04-30")
    client.force_login(clerk)
    page = text(client.get(f"/certificates/{registration.vehicle.pk}/"))
    assert "临时号牌有效期至 2025-04-30" in page
    assert "已过期" in page
    assert "plate-white" in page


def test_verification_page_shows_validity_without_personal_data(client, clerk):
    owner = factories.owner_data(name="王秀英", id_number="130229198503151230", phone="13812345678")
    registration = vehicle_register(clerk=clerk, owner=owner, vehicle=factories.vehicle_data(), insurance_consent=False)
    token = certificate_token(vehicle_id=registration.vehicle.pk, plate_number=registration.plate.number)

    response = client.get(f"/verify/{token}/")  # anyone holding the certificate, not logged in

    assert response.status_code == 200
    page = text(response)
    assert "有效" in page
    assert registration.plate.number in page and "雅迪" in page and "TDT2312Z" in page
    for personal in ("王秀英", "130229198503151230", "130229********1230", "13812345678", "138****5678", "兴隆路"):
        assert personal not in page


@pytest.mark.parametrize(
    ("operation", "verdict"),
    [("deregister", "已注销"), ("mark_stolen", "已报失窃"), ("replace_plate", "号牌已作废")],
)
def test_verification_page_shows_what_happened_since_printing(client, clerk, officer, operation, verdict):
    registration = register(clerk)
    pk = registration.vehicle.pk
    token = certificate_token(vehicle_id=pk, plate_number=registration.plate.number)
    if operation == "deregister":
        vehicle_deregister(clerk=clerk, vehicle_id=pk, reason="destroyed", plate_returned=True)
    elif operation == "mark_stolen":
        vehicle_mark_stolen(officer=officer, vehicle_id=pk, reason="车主报案")
    else:
        plate_replace(clerk=clerk, vehicle_id=pk, reason="号牌遗失")

    page = text(client.get(f"/verify/{token}/"))

    assert verdict in page
    assert ">有效<" not in page


def test_forged_certificate_is_not_recognised(client, clerk):
    registration = register(clerk)
    # Someone who knows the token format but not the server's key.
    forged = signing.dumps(
        {"v": registration.vehicle.pk, "p": registration.plate.number}, key="guessed-key", salt=SALT, compress=True
    )
    response = client.get(f"/verify/{forged}/")
    assert response.status_code == 404
    assert "无法识别此证书" in text(response)
    assert registration.plate.number not in text(response)


# --- search and detail ----------------------------------------------------------------------------


def test_search_masks_identity_for_a_clerk_and_shows_it_to_an_officer(client, clerk, officer):
    owner = factories.owner_data(id_number="130229198503151230", phone="13812345678")
    registration = vehicle_register(clerk=clerk, owner=owner, vehicle=factories.vehicle_data(), insurance_consent=False)
    query = {"plate": registration.plate.number, "reason": "路面检查"}

    client.force_login(clerk)
    page = text(client.get(SEARCH, query))
    assert "找到 1 条记录" in page
    assert "130229********1230" in page and "138****5678" in page
    assert "130229198503151230" not in page and "13812345678" not in page

    client.force_login(officer)
    page = text(client.get(SEARCH, query))
    assert "130229198503151230" in page and "13812345678" in page

    audits = AuditEntry.objects.filter(action="vehicle.search").order_by("id")
    assert [(a.user, a.result_count, a.reason) for a in audits] == [(clerk, 1, "路面检查"), (officer, 1, "路面检查")]


def test_search_explains_a_too_short_partial_plate(client, officer):
    client.force_login(officer)
    response = client.get(SEARCH, {"plate_contains": "A0"})
    assert response.status_code == 200
    assert "号牌部分号码至少输入 3 个字符" in text(response)
    assert 'value="A0"' in text(response)


def test_search_without_criteria_asks_for_one(client, officer):
    client.force_login(officer)
    assert "请至少填写一项查询条件" in text(client.get(SEARCH, {"reason": "x"}))
    assert not AuditEntry.objects.filter(action="vehicle.search").exists()


def test_search_is_refused_to_an_owner(client, owner_user):
    client.force_login(owner_user)
    assert client.get(SEARCH, {"plate": "A00001"}).status_code == 403


def test_detail_page_shows_the_history_masked_for_a_clerk(client, clerk):
    registration = register(clerk)
    vehicle_change(
        clerk=clerk,
        vehicle_id=registration.vehicle.pk,
        vehicle={"colour": "红"},
        owner={"phone": "13987654321"},
        reason="车主换号",
    )
    client.force_login(clerk)

    response = client.get(f"/vehicles/{registration.vehicle.pk}/")

    assert response.status_code == 200
    page = text(response)
    assert "登记历史" in page
    assert "注册登记" in page and "变更登记" in page and "车主换号" in page
    assert clerk.username in page
    assert "139****4321" in page and "13987654321" not in page
    assert "车身颜色" in page and "红" in page
    assert registration.policy.number in page
    assert f"/certificates/{registration.vehicle.pk}/" in page
    assert AuditEntry.objects.filter(user=clerk, action="vehicle.view", object_id=str(registration.vehicle.pk)).exists()


def test_detail_carries_the_searchs_reason_to_the_audit_trail_and_refuses_a_longer_one(client, officer):
    clerk = factories.user("clerk")
    vehicle = register(clerk).vehicle
    client.force_login(officer)
    opened = client.get(f"/vehicles/{vehicle.pk}/", {"reason": "协" * 200})
    assert opened.status_code == 200
    (look,) = AuditEntry.objects.filter(user=officer, action="vehicle.view_full")
    assert look.reason == "协" * 200

    refused = client.get(f"/vehicles/{vehicle.pk}/", {"reason": "协" * 201})
    assert refused.status_code == 400
    assert "事由超过 200 个字符" in text(refused)  # said, not cut to fit the audit row
    assert AuditEntry.objects.filter(user=officer, action="vehicle.view_full").count() == 1
    assert vehicle.frame_number not in text(refused)  # nothing of the record shown


def test_detail_of_a_missing_record_is_not_found(client, officer):
    client.force_login(officer)
    assert client.get("/vehicles/999999/").status_code == 404


# --- languages and navigation ---------------------------------------------------------------------


def test_pages_switch_to_english(client, clerk):
    client.force_login(clerk)
    assert "窗口登记" in text(client.get(COUNTER))

    response = client.post("/i18n/setlang/", {"language": "en", "next": COUNTER}, follow=True)

    page = text(response)
    assert response.redirect_chain[-1][0] == COUNTER
    assert "Counter registration" in page and "Electric Bicycle Registration System" in page
    assert "Enrolment is voluntary" in page
    assert "窗口登记" not in page


def test_english_problems_read_in_english(client, clerk):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(clerk)
    data = form_post(owner=factories.owner_data(phone="12345"))
    page = text(client.post(COUNTER, data))
    assert "A mobile number has 11 digits" in page
    assert "Registration refused: 1 problem to resolve" in page


def test_navigation_follows_the_role(client, clerk, officer):
    client.force_login(clerk)
    page = text(client.get("/"))
    assert COUNTER in page and SEARCH in page
    client.force_login(officer)
    page = text(client.get("/"))
    assert COUNTER not in page and SEARCH in page
