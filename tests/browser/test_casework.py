"""An officer files a theft report as a criminal case from the report page (the case opened in the
same step), the station's leader approves the filing, and the officer links a second report to the
case and marks it solved with positioning data."""

import re

import pytest

from cases.models import Case, TheftReport
from cases.workflow.services import case_approve
from tests import factories
from tests.browser.conftest import log_in, screenshot
from tests.cases.casework import case_number, station_leader, walk_in_report
from vehicles.services.registration import vehicle_register

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def reported(officer, clerk, hours_ago: int) -> TheftReport:
    bike = vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=True
    ).vehicle
    return walk_in_report(officer, bike, missing_hours_ago=hours_ago, seen_hours_before=2)


def test_an_officer_files_a_case_from_a_report_links_a_second_report_and_marks_it_solved(page, live_server):
    officer = factories.user("officer", first_name="强", last_name="赵")
    clerk = factories.user("clerk")
    first, second = reported(officer, clerk, 3), reported(officer, clerk, 6)
    number = case_number()
    log_in(page, live_server, officer)

    page.goto(f"{live_server.url}/reports/{first.pk}/")
    page.select_option("#id_to_status", "filed_criminal")
    page.fill("#id_note", "价值 3200 元")
    page.fill("#id_case_number", "2026-17")  # not as the case platform issues them
    page.click("form.report-step button[type=submit]")
    box = page.locator(".field.invalid", has=page.locator("#id_case_number"))
    assert box.locator(".error").count() == 1
    assert page.input_value("#id_note") == "价值 3200 元"  # what was typed is kept
    screenshot(page, "report-filing", full_page=True)

    page.fill("#id_case_number", number)
    page.click("form.report-step button[type=submit]")
    page.wait_for_url(f"{live_server.url}/reports/{first.pk}/")
    page.locator(f"a:text('{number}')").first.wait_for()
    case = Case.objects.get(number=number)
    case_approve(approver=station_leader(officer), case_id=case.pk)

    page.click(f"a:text('{number}')")
    page.wait_for_url(f"{live_server.url}/cases/{case.pk}/")
    page.fill("#id_link-report_number", second.number)
    page.click("form.case-link button[type=submit]")
    page.wait_for_url(f"{live_server.url}/cases/{case.pk}/")
    links = page.locator("table.case-links")
    assert first.number in links.inner_text() and second.number in links.inner_text()

    page.check("#id_solve-with_positioning")
    page.click("form.case-solve button[type=submit]")
    page.wait_for_url(f"{live_server.url}/cases/{case.pk}/")
    page.locator("table.case-history").wait_for()
    case.refresh_from_db()
    assert case.status == "solved" and case.solved_with_positioning
    # The report filed into the case is solved with it; the one linked while still received keeps its
    # own filing decision to be made on its page.
    assert TheftReport.objects.get(pk=first.pk).status == "solved"
    assert TheftReport.objects.get(pk=second.pk).status == "received"
    assert page.locator("form.case-solve").count() == 0
    history = page.locator("table.case-history").inner_text()
    assert len(re.findall(re.escape(second.number), history)) == 1
    screenshot(page, "case", full_page=True)
