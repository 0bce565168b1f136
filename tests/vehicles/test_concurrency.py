import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from tests import factories
from vehicles.models import Owner, Plate, PlateSeries, Vehicle
from vehicles.services.registration import vehicle_register

COUNTERS = 20


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_simultaneous_registrations_at_one_station_get_distinct_consecutive_plates():
    clerks = [factories.user("clerk", station_code="13022907") for _ in range(COUNTERS)]
    series = PlateSeries.objects.get(station__code="13022907", kind="green")
    start = series.next_number
    inputs = [(factories.owner_data(), factories.vehicle_data()) for _ in range(COUNTERS)]
    barrier = threading.Barrier(COUNTERS)
    plates: list[str] = []
    errors: list[BaseException] = []

    def counter(index: int) -> None:
        try:
            owner, vehicle = inputs[index]
            barrier.wait(timeout=30)
            result = vehicle_register(clerk=clerks[index], owner=owner, vehicle=vehicle, insurance_consent=True)
            plates.append(result.plate.number)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=counter, args=(i,)) for i in range(COUNTERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    expected = {f"{series.prefix}{n:05d}" for n in range(start, start + COUNTERS)}
    assert set(plates) == expected  # 20 distinct numbers, none skipped
    series.refresh_from_db()
    assert series.next_number == start + COUNTERS
    assert Plate.objects.filter(series=series).count() == COUNTERS


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_counters_registering_the_same_bike_at_once_register_it_once():
    clerks = [factories.user("clerk") for _ in range(2)]
    vehicle = factories.vehicle_data()
    owners = [factories.owner_data(), factories.owner_data()]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def counter(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            vehicle_register(clerk=clerks[index], owner=owners[index], vehicle=vehicle, insurance_consent=False)
            outcomes.append("registered")
        except Exception as exc:
            outcomes.append(type(exc).__name__ + str(getattr(exc, "message_dict", "")))
        finally:
            connection.close()

    threads = [threading.Thread(target=counter, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes)[1] == "registered"
    assert outcomes.count("registered") == 1
    refused = next(o for o in outcomes if o != "registered")
    assert refused.startswith("ValidationError") and "vehicle.frame_number" in refused
    # The refused counter's plate number went back to the series: no gap.
    series = PlateSeries.objects.get(station=clerks[0].station, kind="green")
    assert Plate.objects.filter(series=series).count() == series.next_number - series.first_number


def _at_once(count, work):
    """Run work(index) in `count` threads released together, each on its own connection; return
    what each returned or raised."""
    barrier = threading.Barrier(count)
    outcomes: list[object] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[index] = work(index)
        except Exception as exc:
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_same_new_owner_registering_two_bikes_at_two_counters_at_once_gets_one_owner_record():
    clerks = [factories.user("clerk") for _ in range(2)]
    owner = factories.owner_data()
    vehicles = [factories.vehicle_data(), factories.vehicle_data()]

    outcomes = _at_once(
        2,
        lambda i: vehicle_register(clerk=clerks[i], owner=owner, vehicle=vehicles[i], insurance_consent=False),
    )

    assert all(not isinstance(o, Exception) for o in outcomes), outcomes
    assert Owner.objects.filter(id_number=owner["id_number"]).count() == 1
    assert {o.owner.pk for o in outcomes} == {Owner.objects.get(id_number=owner["id_number"]).pk}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_one_new_id_number_under_two_names_at_once_is_refused_with_the_field_named():
    clerks = [factories.user("clerk") for _ in range(2)]
    id_number = factories.resident_id()
    owners = [factories.owner_data(id_number=id_number, name=name) for name in ("王秀英", "李建国")]
    vehicles = [factories.vehicle_data(), factories.vehicle_data()]

    outcomes = _at_once(
        2,
        lambda i: vehicle_register(clerk=clerks[i], owner=owners[i], vehicle=vehicles[i], insurance_consent=False),
    )

    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 1, outcomes
    assert isinstance(refused[0], ValidationError)
    assert "registered a moment ago under another name" in refused[0].message_dict["owner.id_number"][0]
    assert Owner.objects.filter(id_number=id_number).count() == 1
    assert Vehicle.objects.count() == 1
