"""Races around filing: two officers filing one case number at the same moment get one case and a
clear refusal on `number`; an officer without a station is told why instead of a server error."""

import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from cases.models import Case
from cases.workflow.services import case_file, report_assign
from tests import factories
from tests.cases.casework import report_step, station_leader, walk_in_report
from vehicles.services.registration import vehicle_register


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_officers_filing_one_case_number_at_once_get_one_case_and_a_clear_refusal():
    officers = [factories.user("officer") for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def file(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[index] = case_file(
                filer=officers[index], number="玉公刑立字〔2026〕101号", kind="criminal", officers=[officers[index]]
            )
        except Exception as exc:
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=file, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 1, outcomes
    assert isinstance(refused[0], ValidationError)
    assert "玉公刑立字〔2026〕101号" in refused[0].message_dict["number"][0]
    assert Case.objects.count() == 1


@pytest.mark.django_db
def test_an_officer_without_a_station_filing_is_told_why(officer_api):
    stationless = factories.user("officer", station_code=None)
    with pytest.raises(PermissionDenied):
        case_file(filer=stationless, number="X-1", kind="criminal", officers=[stationless])
    assert not Case.objects.exists()


@pytest.mark.django_db
def test_an_officer_without_a_station_filing_a_report_he_holds_the_duty_of_is_told_why(officer, clerk):
    bike = vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=True
    ).vehicle
    report = walk_in_report(officer, bike)
    stationless = factories.user("officer", station_code=None)
    report_assign(leader=station_leader(officer), report_id=report.pk, officers=[stationless])
    status = report.status
    with pytest.raises(ValidationError) as refused:
        report_step(user=stationless, report_id=report.pk, to_status="filed_criminal")
    assert refused.value.message_dict["case_number"] == ["Only an officer of a police station files cases."]
    assert not Case.objects.exists()
    report.refresh_from_db()
    assert report.status == status
