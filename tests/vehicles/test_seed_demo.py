import io
from collections import Counter, defaultdict

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import User
from demo import values as demo_data
from tests import factories
from vehicles.identifiers import (
    credit_code_problem,
    frame_number_problem,
    motor_number_problem,
    phone_problem,
    resident_id_problem,
)
from vehicles.models import InsurancePolicy, Owner, Plate, PlateSeries, RegistrationEvent, Vehicle
from vehicles.selectors import vehicle_state_from_events
from vehicles.services.plates import plate_format, plate_kind_for
from vehicles.services.registration import vehicle_register


def seed(**options):
    out = io.StringIO()
    call_command("seed_demo", verbosity=0, stdout=out, **options)
    return out.getvalue()


def series_numbers() -> dict[int, list[int]]:
    """Plate numbers drawn from each series (any status), as integers."""
    prefixes = dict(PlateSeries.objects.values_list("id", "prefix"))
    drawn: dict[int, list[int]] = defaultdict(list)
    for series_id, number in Plate.objects.values_list("series_id", "number"):
        drawn[series_id].append(int(number.removeprefix(prefixes[series_id])))
    return drawn


def assert_series_gap_free():
    drawn = series_numbers()
    for series in PlateSeries.objects.all():
        numbers = sorted(drawn.get(series.pk, []))
        assert numbers == list(range(series.first_number, series.next_number)), series


# --- value generators (no database) ------------------------------------------------------------


@pytest.mark.parametrize("size", [2, 3, 10, 999, 1000, 4097])
def test_keyed_permutation_is_a_bijection(size):
    permutation = demo_data.KeyedPermutation(size, key=size)
    assert sorted(permutation(i) for i in range(size)) == list(range(size))


def test_identity_generators_give_valid_unique_values():
    ids = [demo_data.resident_id_for_index(i, area="130229", male=i % 3 == 0)[0] for i in range(1, 5001)]
    assert len(set(ids)) == len(ids)
    assert all(resident_id_problem(value) is None for value in ids)
    assert all(int(value[16]) % 2 == (1 if i % 3 == 0 else 0) for i, value in enumerate(ids, start=1))
    codes = [demo_data.credit_code_for_index(i) for i in range(1, 2001)]
    assert len(set(codes)) == len(codes)
    assert all(credit_code_problem(code) is None for code in codes)
    serials = {demo_data.frame_serial_for_index(i) for i in range(5000)}
    assert len(serials) == 5000 and min(serials) >= 10_000_000 and max(serials) < 100_000_000


# --- the command against the database ----------------------------------------------------------


@pytest.mark.django_db
def test_seed_makes_valid_consistent_records():
    before = dict(PlateSeries.objects.values_list("id", "next_number"))
    output = seed(vehicles=400, batch=150, seed=11)
    assert "400 vehicles" in output

    vehicles = list(Vehicle.objects.select_related("owner"))
    assert len(vehicles) == 400
    owners = list(Owner.objects.all())
    assert 200 < len(owners) < 400  # people own 1-3 bikes, companies a few more
    kinds = Counter(owner.kind for owner in owners)
    assert kinds[Owner.Kind.ORGANISATION] >= 1
    for owner in owners:
        assert phone_problem(owner.phone) is None, owner.phone
        assert len(owner.name) >= 2 and owner.address.startswith("河北省唐山市玉田县")
        assert owner.township_id is not None
        if owner.kind == Owner.Kind.PERSON:
            assert resident_id_problem(owner.id_number) is None, owner.id_number
        else:
            assert credit_code_problem(owner.id_number) is None, owner.id_number
            assert owner.agent_name and resident_id_problem(owner.agent_id_number) is None

    frames = [vehicle.frame_number for vehicle in vehicles]
    assert len(set(frames)) == len(frames)
    motors = [vehicle.motor_number for vehicle in vehicles]
    assert len(set(motors)) == len(motors)
    for vehicle in vehicles:
        assert frame_number_problem(vehicle.frame_number) is None and len(vehicle.frame_number) == 15
        assert vehicle.frame_number[4] == "2" and vehicle.frame_number[5:7] == f"{vehicle.production_date:%y}"
        assert motor_number_problem(vehicle.motor_number) is None
        assert 1500 <= vehicle.purchase_price <= 6000
        assert vehicle.production_date <= vehicle.purchase_date <= vehicle.registered_at.date()
        assert bool(vehicle.ccc_certificate_no) == vehicle.conforming
        if vehicle.use_type == Vehicle.UseType.COMMERCIAL:
            assert vehicle.owner.kind == Owner.Kind.ORGANISATION

    # Plates: one issued plate per registered bike, from its station's series, of the right kind.
    plates_by_vehicle = defaultdict(list)
    for plate in Plate.objects.select_related("series"):
        plates_by_vehicle[plate.vehicle_id].append(plate)
    statuses = Counter(vehicle.status for vehicle in vehicles)
    assert statuses[Vehicle.Status.REGISTERED] > 350 and statuses[Vehicle.Status.DEREGISTERED] >= 1
    for vehicle in vehicles:
        (plate,) = plates_by_vehicle[vehicle.pk]
        expected_status = Plate.Status.ISSUED if vehicle.status == Vehicle.Status.REGISTERED else None
        if expected_status:
            assert plate.status == Plate.Status.ISSUED
        else:
            assert plate.status in {Plate.Status.RECOVERED, Plate.Status.VOID} and plate.ended_at is not None
        assert plate.series.station_id == vehicle.station_id
        assert (
            plate.kind == plate.series.kind == plate_kind_for(conforming=vehicle.conforming, use_type=vehicle.use_type)
        )
        number = int(plate.number.removeprefix(plate.series.prefix))
        assert plate.number == plate_format(plate.series.prefix, number)
        assert plate.series.first_number <= number < plate.series.next_number
        assert (plate.expires_on is not None) == (plate.kind == "white")
    plate_kinds = Counter(plate.kind for plates in plates_by_vehicle.values() for plate in plates)
    assert plate_kinds["green"] > 300 and plate_kinds["yellow"] >= 1 and plate_kinds["white"] >= 10

    # Series advanced without gaps from where they were.
    for series in PlateSeries.objects.all():
        assert series.next_number >= before[series.pk]
    assert_series_gap_free()

    # History: a register event per bike, replaying to the record; deregistrations recorded too.
    events = Counter(RegistrationEvent.objects.values_list("vehicle_id", "kind"))
    clerks = set(
        User.objects.filter(username__startswith="demo-clerk-", groups__name="clerk").values_list("pk", flat=True)
    )
    assert len(clerks) == 20
    assert set(RegistrationEvent.objects.values_list("clerk_id", flat=True)) <= clerks
    for vehicle in vehicles:
        assert events[(vehicle.pk, "register")] == 1
        assert events[(vehicle.pk, "deregister")] == (1 if vehicle.status == Vehicle.Status.DEREGISTERED else 0)
        state = vehicle_state_from_events(vehicle.pk)
        assert state["frame_number"] == vehicle.frame_number and state["status"] == vehicle.status
        assert state["owner_id"] == vehicle.owner_id and state["purchase_price"] == str(vehicle.purchase_price)
        plate = plates_by_vehicle[vehicle.pk][0]
        assert state["plate"] == (plate.number if vehicle.status == Vehicle.Status.REGISTERED else None)

    # Policies: most owners consent; numbers unique; cancelled with the deregistration.
    policies = list(InsurancePolicy.objects.select_related("vehicle"))
    assert 340 <= len(policies) <= 400
    assert len({policy.number for policy in policies}) == len(policies)
    for policy in policies:
        assert policy.owner_id == policy.vehicle.owner_id
        assert policy.starts_on == timezone.localdate(policy.vehicle.registered_at)
        assert policy.consent_at == policy.vehicle.registered_at
        active = policy.vehicle.status == Vehicle.Status.REGISTERED
        assert policy.status == (InsurancePolicy.Status.ACTIVE if active else InsurancePolicy.Status.CANCELLED)


@pytest.mark.django_db
def test_counter_registration_after_seeding_gets_the_next_number(clerk):
    seed(vehicles=250, seed=3)
    series = PlateSeries.objects.get(station=clerk.station, kind="green")
    expected = plate_format(series.prefix, series.next_number)
    result = vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=True
    )
    assert result.plate.number == expected
    series.refresh_from_db()
    assert series.next_number == int(expected.removeprefix(series.prefix)) + 1
    assert_series_gap_free()


@pytest.mark.django_db
def test_running_again_adds_more_and_if_fewer_tops_up():
    seed(vehicles=150, batch=60, seed=1)
    seed(vehicles=150, batch=70, seed=1)  # same seed on purpose: unique values must not repeat
    assert Vehicle.objects.count() == 300
    assert Vehicle.objects.values("frame_number").distinct().count() == 300
    assert "nothing to add" in seed(if_fewer=250)
    assert Vehicle.objects.count() == 300
    seed(if_fewer=340)
    assert Vehicle.objects.count() == 340
    assert (
        Plate.objects.filter(status="issued").values("number").distinct().count()
        == Plate.objects.filter(status="issued").count()
    )
    assert_series_gap_free()


@pytest.mark.django_db
def test_an_exhausted_series_gets_a_follow_on_block():
    green = PlateSeries.objects.get(station__code="13022901", kind="green")
    PlateSeries.objects.filter(pk=green.pk).update(last_number=3)
    output = seed(vehicles=300, seed=2)
    assert "follow-on plate series" in output
    follow_on = PlateSeries.objects.filter(station__code="13022901", kind="green").exclude(pk=green.pk).get()
    assert (follow_on.prefix, follow_on.first_number) == (green.prefix, 4)
    green.refresh_from_db()
    assert green.next_number == 4 and follow_on.next_number > 4
    assert_series_gap_free()


@pytest.mark.django_db
def test_a_generator_bug_fails_loudly(monkeypatch):
    monkeypatch.setattr(demo_data, "frame_number", lambda brand, year, serial: "175722500000001")
    with pytest.raises(CommandError, match=r"duplicate Vehicle\.frame_number"):
        seed(vehicles=20)
    monkeypatch.undo()
    monkeypatch.setattr(demo_data, "resident_id_check_char", lambda first17: "Z")
    with pytest.raises(CommandError, match="generator bug"):
        seed(vehicles=20)
    assert Vehicle.objects.count() == 0
