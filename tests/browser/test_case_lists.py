"""The case pages not driven by test_casework.py, in the browser as their roles use them: an officer
decides not to file a report and prints the reporter's notice (and the filing decision of another),
finds his case under 我的案件 and the station's cases by status; the station's leader finds a report
still undecided past the deadline. Every page passes the Content-Security-Policy (page fixture)."""

import datetime
import re

import pytest
from django.utils import timezone

from cases.models import TheftReport
from tests import factories
from tests.browser.conftest import log_in, screenshot
from tests.browser.test_casework import reported
from tests.cases.casework import case_number, report_step, station_leader

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_an_officer_prints_the_decision_notices_and_finds_his_cases(page, live_server):
    officer = factories.user("officer", first_name="强", last_name="赵")
    clerk = factories.user("clerk")
    filed, refused = reported(officer, clerk, 3), reported(officer, clerk, 5)
    number = case_number()
    report_step(user=officer, report_id=filed.pk, to_status="filed_criminal", case_number=number)
    log_in(page, live_server, officer)

    # Not filed, with the reason, on the report page; the notice names it and how to ask for review.
    page.goto(f"{live_server.url}/reports/{refused.pk}/")
    page.select_option("#id_to_status", "not_filed")
    page.fill("#id_note", "车辆已由家属骑走，不构成盗窃")
    page.click("form.report-step button[type=submit]")
    page.wait_for_url(f"{live_server.url}/reports/{refused.pk}/")
    assert TheftReport.objects.get(pk=refused.pk).status == "not_filed"
    page.click("text=立案决定文书")
    page.wait_for_url(f"{live_server.url}/reports/{refused.pk}/decision/")
    notice = page.inner_text("article.decision-notice")
    for expected in ("不予立案通知书", refused.number, "车辆已由家属骑走，不构成盗窃", "复议", "复核"):
        assert expected in notice, expected
    addressee = page.locator("article.decision-notice tr").first
    assert addressee.locator("th").inner_text() == "致" and addressee.locator("td").inner_text() == "赵敏"
    page.evaluate("window.print = () => { window.__printed = true; }")
    page.click("[data-print]")
    assert page.evaluate("window.__printed === true")
    page.emulate_media(media="print")
    assert not page.is_visible(".toolbar")
    screenshot(page, "decision-notice-refused", full_page=True)
    page.emulate_media(media="screen")

    # The filed report's notice carries the case number.
    page.goto(f"{live_server.url}/reports/{filed.pk}/decision/")
    notice = page.inner_text("article.decision-notice")
    assert "立案决定书" in notice and number in notice

    # 我的案件 from the menu: the case he is on, awaiting approval; the station's cases by status.
    page.click("nav.nav >> text=我的案件")
    page.wait_for_url(f"{live_server.url}/cases/mine/")
    row = page.locator("table.case-list tr", has_text=number)
    assert "侦查中" in row.inner_text() and "待审批" in row.inner_text()  # filed, not yet approved
    assert row.locator("td").nth(4).inner_text() == "1"  # one report linked
    page.click(".toolbar >> text=本所案件")
    page.wait_for_url(f"{live_server.url}/cases/")
    assert number in page.inner_text("table.case-list")
    page.select_option("#id_status", "solved")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"/cases/\?status=solved$"))
    assert number not in page.inner_text("table.case-list")
    page.select_option("#id_status", "open")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"/cases/\?status=open$"))
    page.click(f"table.case-list >> text={number}")
    page.wait_for_url(re.compile(r"/cases/\d+/$"))
    assert filed.number in page.inner_text("table.case-links")


def test_the_station_leader_sees_a_report_undecided_past_the_deadline(page, live_server, settings):
    settings.REPORT_DECISION_DAYS = 3
    officer = factories.user("officer")
    clerk = factories.user("clerk")
    overdue, recent = reported(officer, clerk, 2), reported(officer, clerk, 1)
    TheftReport.objects.filter(pk=overdue.pk).update(received_at=timezone.now() - datetime.timedelta(days=5))
    leader = station_leader(officer)
    log_in(page, live_server, leader)

    page.click("nav.nav >> text=超期未决警情")
    page.wait_for_url(f"{live_server.url}/reports/undecided/")
    table = page.locator("table.reports-undecided")
    row = table.locator("tr", has_text=overdue.number)
    assert row.locator("td").nth(2).inner_text() == "2"  # received 5 days ago, due after 3
    assert recent.number not in table.inner_text()
    screenshot(page, "reports-undecided", full_page=True)
    row.locator("a").click()
    page.wait_for_url(f"{live_server.url}/reports/{overdue.pk}/")
