"""Owner pages that tell the truth (issue 18, point 11): insurance through the policy's whole life,
the owner's claims with their steps, notifications that open a page their reader may see and read in
the reader's language, arming and open alarms on /my/, a theft report started from a confirmed
alarm filled with what the system knows, a position written out, and the sign-in page's wording."""

import datetime
import itertools
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import AuditEntry
from cases.alerts.services import notifications_create
from cases.claims import services as claims
from cases.models import DutyCall, Notification, ReportStatus, TheftReport
from cases.workflow.services import CaseFiling, VehicleQuery, report_take, report_transition
from tests import factories
from tests.cases.alerting import owner_login, path, send
from tests.cases.test_claims import ALL_DOCUMENTS, after
from tests.cases.test_claims import bike as insured_bike
from tests.tracking import factories as tf
from tracking.models import TerminalInstallation
from vehicles.models import InsurancePolicy, Plate

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(db):
    return factories.user("admin")


_case_numbers = itertools.count(1)


def stolen_and_filed(officer, vehicle):
    """Reported stolen two hours ago at the counter and filed as a criminal case."""
    now = timezone.now()
    report = report_take(
        user=officer,
        channel="walk_in",
        vehicle_query=VehicleQuery(plate=Plate.objects.get(vehicle=vehicle).number),
        reporter_name="王秀英",
        reporter_phone="13812345678",
        last_seen_at=now - datetime.timedelta(hours=10),
        missing_at=now - datetime.timedelta(hours=2),
        place_address="玉田县无终街道兴隆路超市门口",
    )
    filing = CaseFiling(case_number=f"A{next(_case_numbers):022d}")
    return report_transition(user=officer, report_id=report.pk, to_status="filed_criminal", filing=filing)


def paid_claim(clerk, officer, admin):
    vehicle = insured_bike(clerk, age_months=5)
    stolen_and_filed(officer, vehicle)
    (claim,) = claims.claims_make_eligible(now=after(61))
    claims.claim_submit(user=clerk, claim_id=claim.pk, documents=ALL_DOCUMENTS)
    claims.claim_approve(user=admin, claim_id=claim.pk)
    return claims.claim_pay(user=admin, claim_id=claim.pk, note="转账凭证 2026-001")


def zh(client, url: str):
    return client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans")


# --- insurance through the policy's whole life ---------------------------------------------------------


def test_after_a_payout_my_bikes_says_the_claim_was_paid_with_amount_and_date_not_uninsured(
    client, clerk, officer, admin
):
    claim = paid_claim(clerk, officer, admin)
    owner = claim.policy.owner.user
    client.force_login(owner)
    html = client.get(reverse("web:owner-bikes")).content.decode()
    assert 'data-state="claimed"' in html
    paid_on = timezone.localtime(claim.paid_at).strftime("%Y-%m-%d")
    assert f"1200.00 yuan paid on {paid_on}" in html
    assert "Not enrolled" not in html

    zh_html = zh(client, reverse("web:owner-bikes")).content.decode()
    assert "未参保" not in zh_html and "1200.00" in zh_html


def test_the_policy_page_shows_the_amount_paid_and_the_dates(client, clerk, officer, admin):
    claim = paid_claim(clerk, officer, admin)
    client.force_login(claim.policy.owner.user)
    response = client.get(reverse("web:owner-policy", args=[claim.policy.vehicle_id]))
    html = response.content.decode()
    policy = claim.policy
    assert 'data-state="claimed"' in html
    assert '<td class="num paid-amount">1200.00 yuan</td>' in html
    assert timezone.localtime(claim.paid_at).strftime("%Y-%m-%d %H:%M") in html
    assert f"{policy.starts_on:%Y-%m-%d} – {policy.ends_on:%Y-%m-%d}" in html
    assert reverse("web:owner-claim", args=[claim.pk]) in html


def test_an_expired_policy_says_expired_with_its_end_date(client, clerk, owner_user):
    vehicle = insured_bike(clerk)
    vehicle.owner.user = owner_user
    vehicle.owner.save(update_fields=["user"])
    ended = timezone.localdate() - datetime.timedelta(days=3)
    InsurancePolicy.objects.filter(vehicle=vehicle).update(
        starts_on=ended - datetime.timedelta(days=1000), ends_on=ended
    )
    client.force_login(owner_user)
    bikes = client.get(reverse("web:owner-bikes")).content.decode()
    assert 'data-state="expired"' in bikes and f"ended on {ended:%Y-%m-%d}" in bikes
    policy = client.get(reverse("web:owner-policy", args=[vehicle.pk])).content.decode()
    assert 'data-state="expired"' in policy and "Payout if the bike were stolen today" not in policy


def test_a_policy_in_force_shows_its_term_and_what_it_would_pay_today(client, clerk, owner_user):
    vehicle = insured_bike(clerk, age_months=5)
    vehicle.owner.user = owner_user
    vehicle.owner.save(update_fields=["user"])
    client.force_login(owner_user)
    bikes = client.get(reverse("web:owner-bikes")).content.decode()
    assert 'data-state="in_force"' in bikes
    policy = client.get(reverse("web:owner-policy", args=[vehicle.pk])).content.decode()
    assert "Payout if the bike were stolen today" in policy and "1200.00 yuan" in policy


# --- my claims; a notification opens a page its reader may see ------------------------------------------


def test_the_claim_notification_opens_the_owners_claim_page_and_the_old_link_redirects_there(
    client, clerk, officer, admin
):
    claim = paid_claim(clerk, officer, admin)
    owner = claim.policy.owner.user
    note = Notification.objects.get(user=owner, kind="claim")
    assert note.link == reverse("web:owner-claim", args=[claim.pk])
    assert Notification.objects.get(user=officer, kind="claim").link == reverse("claims:detail", args=[claim.pk])
    client.force_login(owner)
    opened = client.post(reverse("alerts:notification-read", args=[note.pk]), {"next": "link"}, follow=True)
    assert opened.status_code == 200
    html = opened.content.decode()
    assert 'id="claim-amount">1200.00<' in html and claim.report.number in html
    # A link written before owners had their page (/claims/<id>/) takes the owner to it.
    old = client.get(reverse("claims:detail", args=[claim.pk]))
    assert old.status_code == 302 and old["Location"] == reverse("web:owner-claim", args=[claim.pk])
    assert AuditEntry.objects.filter(action="claim.view", object_id=str(claim.pk), user=owner).exists()


def test_another_owner_cannot_open_the_claim(client, clerk, officer, admin, owner_user):
    claim = paid_claim(clerk, officer, admin)
    someone = insured_bike(clerk)
    someone.owner.user = owner_user
    someone.owner.save(update_fields=["user"])
    client.force_login(owner_user)
    assert client.get(reverse("web:owner-claim", args=[claim.pk])).status_code == 403
    assert client.get(reverse("claims:detail", args=[claim.pk])).status_code == 403
    assert claim.report.number not in client.get(reverse("web:owner-claims")).content.decode()


def test_my_claims_lists_each_claim_with_its_steps(client, clerk, officer, admin):
    claim = paid_claim(clerk, officer, admin)
    client.force_login(claim.policy.owner.user)
    html = client.get(reverse("web:owner-claims")).content.decode()
    assert f'data-claim="{claim.pk}"' in html
    for action in ("became eligible", "submitted", "approved", "paid"):
        assert f"<strong>{action}</strong>" in html
    assert "转账凭证 2026-001" in html  # what the clerk wrote, as written


def test_claim_pages_in_chinese_show_step_notes_and_documents_by_their_chinese_names(client, clerk, officer, admin):
    claim = paid_claim(clerk, officer, admin)
    client.force_login(claim.policy.owner.user)
    html = zh(client, reverse("web:owner-claim", args=[claim.pk])).content.decode()
    assert "unrecovered after" not in html and "filed 20" not in html
    assert "report_receipt" not in html and "assignment_of_rights" not in html
    assert "权益转让书" in html and "60" in html
    staff = factories.user("admin")
    client.force_login(staff)
    office = zh(client, reverse("claims:detail", args=[claim.pk])).content.decode()
    assert "unrecovered after" not in office and "report_receipt" not in office


def test_a_bike_found_before_payment_is_told_in_the_readers_language(client, clerk, officer):
    vehicle = insured_bike(clerk)
    report = stolen_and_filed(officer, vehicle)
    (claim,) = claims.claims_make_eligible(now=after(61))
    report_transition(user=officer, report_id=report.pk, to_status=ReportStatus.RECOVERED, note="找回")
    client.force_login(vehicle.owner.user)
    english = client.get(reverse("web:owner-claim", args=[claim.pk])).content.decode()
    chinese = zh(client, reverse("web:owner-claim", args=[claim.pk])).content.decode()
    assert "The bike was recovered before payment." in english
    assert "The bike was recovered before payment." not in chinese


# --- notifications in the reader's language ------------------------------------------------------------


def test_notifications_are_rendered_in_the_readers_language_when_shown(client, officer):
    with translation.override("zh-hans"):  # the sender's process language does not matter
        notifications_create(
            users=[officer],
            kind=Notification.Kind.DISPLACEMENT,
            message="owner_confirmed",
            params={"plate": "玉田A12345"},
            link=reverse("alerts:duty"),
        )
    note = Notification.objects.get(user=officer)
    assert (note.message, note.params) == ("owner_confirmed", {"plate": "玉田A12345"})
    client.force_login(officer)
    english = client.get(reverse("alerts:notifications")).content.decode()
    chinese = zh(client, reverse("alerts:notifications")).content.decode()
    assert "Owner confirms the theft of 玉田A12345: act now" in english
    assert "Owner confirms the theft" not in chinese and "玉田A12345" in chinese
    api = client.get("/api/v1/notifications", HTTP_ACCEPT_LANGUAGE="en").json()
    assert api["results"][0]["title"] == "Owner confirms the theft of 玉田A12345: act now"


def test_a_notification_stored_as_a_sentence_before_is_still_shown(client, officer):
    Notification.objects.create(user=officer, kind="review", title="上周有 3 次陈述理由的查看", body="请审核。")
    client.force_login(officer)
    html = client.get(reverse("alerts:notifications")).content.decode()
    assert "上周有 3 次陈述理由的查看" in html and "请审核。" in html


def test_notification_times_and_alarm_kinds_are_shown_in_the_readers_terms(client, officer):
    raised = timezone.make_aware(datetime.datetime(2026, 12, 6, 8, 30))
    notifications_create(
        users=[officer],
        kind=Notification.Kind.RESCUE,
        message="rescue",
        params={"plate": "玉田A00001", "alarm": "sos", "time": raised.isoformat()},
    )
    client.force_login(officer)
    html = client.get(reverse("alerts:notifications")).content.decode()
    assert "Rescue call: 玉田A00001 (SOS)" in html and "Raised at 2026-12-06 08:30" in html


# --- /my/: arming and open alarms; a report started from a confirmed alarm ------------------------------


@pytest.fixture
def armed_bike(client):
    """A bike with a terminal parked in Yutian town, armed by its owner through the page."""
    terminal = tf.terminal()
    TerminalInstallation.objects.filter(terminal=terminal).update(
        installed_at=timezone.now() - datetime.timedelta(days=1)
    )
    send(terminal, tf.fix(0, base=timezone.now(), speed=0))  # parked after its owner registered it
    owner = owner_login(terminal)
    client.force_login(owner)
    assert client.post(reverse("alerts:my-arm", args=[terminal.vehicle_id]), {"armed": "1"}).status_code == 302
    return terminal, owner


def test_my_bikes_shows_the_arming_state(client, armed_bike):
    terminal, _owner = armed_bike
    html = client.get(reverse("web:owner-bikes")).content.decode()
    assert 'data-armed="1"' in html and ">armed<" in html
    client.post(reverse("alerts:my-arm", args=[terminal.vehicle_id]), {"armed": "0"})
    html = client.get(reverse("web:owner-bikes")).content.decode()
    assert 'data-armed="0"' in html and ">not armed<" in html


def ride_off(terminal) -> DutyCall:
    start = timezone.now().replace(microsecond=0) + datetime.timedelta(seconds=1)
    send(terminal, *path(start, range(0, 3)))
    return DutyCall.objects.get(vehicle_id=terminal.vehicle_id)


def test_my_bikes_shows_an_open_alarm_with_the_answer_buttons(client, armed_bike):
    terminal, _owner = armed_bike
    call = ride_off(terminal)
    html = client.get(reverse("web:owner-bikes")).content.decode()
    assert f'data-call="{call.pk}"' in html
    assert reverse("alerts:my-answer", args=[call.pk]) in html


def test_a_report_started_from_a_confirmed_alarm_arrives_filled(client, armed_bike):
    terminal, _owner = armed_bike
    call = ride_off(terminal)
    answered = client.post(reverse("alerts:my-answer", args=[call.pk]), {"answer": "confirmed"})
    assert answered.status_code == 302
    form_url = answered["Location"]
    assert f"call={call.pk}" in form_url
    response = client.get(form_url)
    form = response.context["form"]
    armed_at = terminal.__class__.objects.get(pk=terminal.pk).armed_changed_at
    minute = "%Y-%m-%dT%H:%M"
    html = response.content.decode()
    assert f'name="last_seen_at" value="{timezone.localtime(armed_at):{minute}}"' in html
    assert f'name="missing_at" value="{timezone.localtime(call.raised_at):{minute}}"' in html
    assert form["vehicle"].value() == terminal.vehicle_id
    # The parked point is the bike's last fix before it was armed, not where the alarm went off.
    assert form["place_latitude"].value() == pytest.approx(39.8826)
    assert form["place_longitude"].value() == pytest.approx(117.7390)
    assert 'id="from-alarm"' in html and "39.882600, 117.739000" in html
    assert form["place_address"].value() == "无终街道"  # the gazetteer's name for that point
    # Sent as it came, the report carries the parked point.
    data = {
        "vehicle": terminal.vehicle_id,
        "last_seen_at": f"{timezone.localtime(armed_at):{minute}}",
        "missing_at": f"{timezone.localtime(call.raised_at):{minute}}",
        "place_address": "",
        "place_latitude": "39.8826",
        "place_longitude": "117.739",
        "township_code": "",
        "locked": "unknown",
        "reporter_phone": "13812345678",
        "narrative": "",
    }
    sent = client.post(reverse("web:owner-report-theft"), data)
    assert sent.status_code == 302, sent.context["form"].errors
    report = TheftReport.objects.get(vehicle_id=terminal.vehicle_id)
    assert report.place_point.y == pytest.approx(39.8826) and report.place_point.x == pytest.approx(117.739)


def test_a_call_that_is_not_the_owners_confirmed_one_fills_nothing(client, armed_bike, clerk):
    terminal, _owner = armed_bike
    call = ride_off(terminal)  # not answered yet
    response = client.get(reverse("web:owner-report-theft") + f"?vehicle={terminal.vehicle_id}&call={call.pk}")
    assert response.status_code == 200 and response.context["from_alarm"] is None
    assert b'id="from-alarm"' not in response.content


def test_without_an_address_or_a_point_the_report_names_the_place_field(client, clerk, owner_user):
    vehicle = insured_bike(clerk)
    vehicle.owner.user = owner_user
    vehicle.owner.save(update_fields=["user"])
    client.force_login(owner_user)
    now = timezone.localtime()
    response = client.post(
        reverse("web:owner-report-theft"),
        {
            "vehicle": vehicle.pk,
            "last_seen_at": (now - datetime.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"),
            "missing_at": (now - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "place_address": "",
            "reporter_phone": "",
            "locked": "unknown",
        },
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "place_address" in errors and "reporter_phone" in errors  # every problem at once


# --- where is my bike, written out ---------------------------------------------------------------------


def fitted_yesterday():
    terminal = tf.terminal()
    TerminalInstallation.objects.filter(terminal=terminal).update(
        installed_at=timezone.now() - datetime.timedelta(days=1)
    )
    return terminal


def test_where_is_my_bike_writes_out_the_coordinates_and_the_place(client):
    terminal = fitted_yesterday()
    send(terminal, tf.fix(0, base=timezone.now() - datetime.timedelta(minutes=1), lat=39.8837, lon=117.7384))
    owner = owner_login(terminal)
    client.force_login(owner)
    html = client.get(reverse("web:owner-position", args=[terminal.vehicle_id])).content.decode()
    assert 'id="position-lat">39.883700° N<' in html and 'id="position-lon">117.738400° E<' in html
    assert 'id="position-place">玉田县人民政府<' in html


def test_a_position_far_from_any_listed_place_still_has_its_coordinates(client):
    terminal = fitted_yesterday()
    send(terminal, tf.fix(0, base=timezone.now() - datetime.timedelta(minutes=1), lat=39.95, lon=117.9))
    client.force_login(owner_login(terminal))
    html = client.get(reverse("web:owner-position", args=[terminal.vehicle_id])).content.decode()
    assert "39.950000° N" in html and 'id="position-place"' not in html


# --- signing in ------------------------------------------------------------------------------------------


def test_an_owner_sent_to_sign_in_from_my_pages_reads_owner_wording(client):
    response = client.get(reverse("web:owner-bikes"), follow=True)
    html = response.content.decode()
    assert 'id="owner-login"' in html and "Bike owners: log in" in html
    staff = client.get(reverse("login") + "?next=/vehicles/").content.decode()
    assert 'id="owner-login"' not in staff


def test_claim_amount_in_the_notification_is_kept_exact(client, clerk, officer):
    vehicle = insured_bike(clerk)
    stolen_and_filed(officer, vehicle)
    claims.claims_make_eligible(now=after(61))
    note = Notification.objects.get(user=vehicle.owner.user)
    assert note.params == {"number": note.params["number"], "amount": "1200.00"}
    assert Decimal(note.params["amount"]) == Decimal("1200.00")


def _menu(response) -> str:
    return re.search(r'<nav class="nav".*?</nav>', response.content.decode(), re.S).group(0)


def test_the_menu_offers_my_claims_to_every_owner_and_to_no_one_else(client, clerk, officer, admin, owner_user):
    claims_url = reverse("web:owner-claims")
    bike = insured_bike(clerk)  # insured, no claim yet
    bike.owner.user = owner_user
    bike.owner.save(update_fields=["user"])
    client.force_login(owner_user)
    assert f'<a href="{claims_url}">我的理赔</a>' in _menu(zh(client, reverse("web:owner-bikes")))
    opened = zh(client, claims_url)
    assert opened.status_code == 200
    assert f'<a href="{claims_url}" aria-current="page">我的理赔</a>' in _menu(opened)
    # The owner of a paid claim finds it through the menu too; staff have no such entry or page.
    claim = paid_claim(clerk, officer, admin)
    client.force_login(claim.policy.owner.user)
    menu = _menu(zh(client, reverse("web:owner-bikes")))
    assert claims_url in menu
    assert f'data-claim="{claim.pk}"' in client.get(claims_url).content.decode()
    for staff in (clerk, officer, admin):
        client.force_login(staff)
        assert claims_url not in _menu(zh(client, reverse("vehicles:home")))
        assert client.get(claims_url).status_code == 403
