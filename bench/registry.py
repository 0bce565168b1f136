"""Registry benchmark: filing-record lookups and a counter registration at county scale.

    .venv/bin/python bench/registry.py [--scale small|full]

small = 20,000 vehicles, full = 1,000,000 (`seed_demo --if-fewer N`). Times, round-robin, the exact
plate, frame number and owner ID number lookups and the partial plate through
vehicles.selectors.vehicle_search as the API calls it (audit row included), and a registration end
to end through vehicles.services.registration.vehicle_register; baselines `SELECT 1` and a bare
commit. Targets (2 cores): exact p50 < 5 ms, partial plate p50 < 50 ms, registration p50 < 50 ms.
Details: docs/benchmarks.md#registry.
"""

import datetime
import random
from decimal import Decimal
from typing import Any

import _common as bench

SCALES = {"small": 20_000, "full": 1_000_000}
LOOKUPS = {"small": 200, "full": 300}
REGISTRATIONS = {"small": 60, "full": 150}
WARMUP = 30
TARGETS_MS = {"lookup_plate": 5, "lookup_frame": 5, "lookup_id_number": 5, "partial_plate": 50, "register": 50}
OFFICER_STATION, CLERK_STATION = "13022901", "13022907"


def bench_users() -> tuple[Any, Any]:
    """An officer who searches and a clerk who registers (created once, no usable password)."""
    from django.contrib.auth.models import Group

    from accounts.models import Station, User

    users = []
    for username, role, station_code in (
        ("bench-officer", "officer", OFFICER_STATION),
        ("bench-clerk", "clerk", CLERK_STATION),
    ):
        station = Station.objects.get(code=station_code)
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_user(
                username=username,
                password=None,
                station=station,
                registration_point=station.points.order_by("id").first(),
            )
            user.groups.add(Group.objects.get(name=role))
        users.append(User.objects.get(pk=user.pk))  # fresh: no cached permissions from creation
    return users[0], users[1]


def sample_records(count: int, vehicles: int, rng: random.Random) -> list[tuple[str, str, str]]:
    """(plate, frame number, owner ID number) of random registered bikes: untimed set-up."""
    from django.db import connection

    percent = min(100.0, 100.0 * 3 * count / max(vehicles, 1))
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT p.number, v.frame_number, o.id_number
            FROM vehicles_vehicle v TABLESAMPLE BERNOULLI (%s) REPEATABLE (%s)
            JOIN vehicles_owner o ON o.id = v.owner_id
            JOIN vehicles_plate p ON p.vehicle_id = v.id AND p.status = 'issued'
            WHERE v.status = 'registered'
            """,
            [percent, rng.randrange(1 << 30)],
        )
        rows = cursor.fetchall()
    rng.shuffle(rows)
    if len(rows) < count:
        raise SystemExit(f"only {len(rows)} registered vehicles to sample; seeding failed?")
    return rows[:count]


def plate_fragment(plate: str, rng: random.Random) -> str:
    digits = "".join(c for c in plate if c.isdigit())
    length = rng.choice((3, 4, 5))
    start = rng.randrange(len(digits) - length + 1)
    return digits[start : start + length]


def fresh_registrations(count: int, rng: random.Random) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Valid counter input for new owners and bikes not yet in the registry (checked, untimed)."""
    from django.utils import timezone

    from accounts.models import Township
    from demo import values as demo
    from vehicles.models import Owner, Vehicle

    townships = dict(Township.objects.values_list("code", "name"))
    today = timezone.localdate()
    inputs = []
    while len(inputs) < count:
        male = rng.random() < 0.55
        birth_year = rng.randint(1960, 2004)
        id_number = demo.random_resident_id(rng, male=male, born_from=birth_year, born_to=birth_year)
        brand = demo.pick_brand(rng)
        production = today - datetime.timedelta(days=rng.randint(20, 200))
        frame = demo.frame_number(brand, production.year, rng.randrange(10_000_000, 100_000_000))
        motor = demo.motor_number(brand, production.year, demo.pick_voltage(rng), rng.randrange(10**7, 10**8))
        if Owner.objects.filter(id_number=id_number).exists() or Vehicle.objects.filter(frame_number=frame).exists():
            continue
        if Vehicle.objects.filter(motor_number=motor).exists():
            continue
        township = rng.choice(sorted(townships))
        model = rng.choice(brand.models)
        owner = {
            "kind": "person",
            "name": demo.person_name(rng, male=male, birth_year=birth_year),
            "id_number": id_number,
            "phone": demo.mobile_phone(rng),
            "address": demo.address(rng, township_code=township, township_name=townships[township]),
            "township_code": township,
        }
        vehicle = {
            "frame_number": frame,
            "motor_number": motor,
            "manufacturer": brand.manufacturer,
            "brand": brand.name,
            "model_name": model,
            "colour": demo.pick_colour(rng),
            "production_date": production,
            "use_type": "self_use",
            "purchase_date": production + datetime.timedelta(days=rng.randint(5, 19)),
            "purchase_price": Decimal(demo.price(rng, brand)),
            "ccc_certificate_no": demo.ccc_certificate_no(brand, model, production.year),
            "conforming": True,
            "electronic_id": "",
            "qr_payload": "",
        }
        inputs.append((owner, vehicle))
    return inputs


def main() -> None:
    args = bench.parse_args(__doc__.split("\n\n")[0])
    bench.setup_django()
    from django.core.management import call_command

    from vehicles.models import Vehicle
    from vehicles.selectors import vehicle_search
    from vehicles.services.registration import vehicle_register

    target = SCALES[args.scale]
    rng = random.Random()
    bench.log(f"registry bench, scale {args.scale}: making sure there are {target:,} vehicles")
    with bench.Stopwatch() as seeding:
        call_command("seed_demo", if_fewer=target)
    vehicles = Vehicle.objects.count()
    officer, clerk = bench_users()

    lookups = LOOKUPS[args.scale]
    records = sample_records(WARMUP + lookups, vehicles, rng)
    plates = [plate for plate, _frame, _id in records]
    frames = [frame for _plate, frame, _id in records]
    id_numbers = [id_number for _plate, _frame, id_number in records]
    fragments = [plate_fragment(plate, rng) for plate in rng.sample(plates, len(plates))]
    registrations = fresh_registrations(REGISTRATIONS[args.scale] + 5, rng)
    bench.log(f"{vehicles:,} vehicles; {len(records)} sampled records, {len(registrations)} fresh registrations")

    partial_hits: list[int] = []

    def search(key: str):  # as VehicleSearchApi.get calls it
        def run(value: str) -> None:
            result = vehicle_search(user=officer, criteria={key: value}, reason="bench", ip="127.0.0.1")
            if key == "plate_contains":
                partial_hits.append(len(result.vehicles))
            elif not result.vehicles:
                raise SystemExit(f"lookup by {key}={value!r} found nothing")

        return run

    baseline_select1 = bench.baseline_select1()
    baseline_commit = bench.baseline_commit()
    samples = bench.time_interleaved(
        {
            "lookup_plate": (search("plate"), plates),
            "lookup_frame": (search("frame_number"), frames),
            "lookup_id_number": (search("id_number"), id_numbers),
            "partial_plate": (search("plate_contains"), fragments),
        },
        warmup=WARMUP,
    )

    def register(data: tuple[dict[str, Any], dict[str, Any]]) -> None:
        owner, vehicle = data
        vehicle_register(
            clerk=clerk,
            owner=owner,
            vehicle=vehicle,
            insurance_consent=True,
            documents=["id_card", "invoice", "ccc_certificate"],
        )

    samples["register"] = bench.time_calls(register, registrations[5:], warmup=registrations[:5])

    results: dict[str, Any] = {"vehicles": vehicles}
    for name in ("lookup_plate", "lookup_frame", "lookup_id_number", "partial_plate", "register"):
        results.update(bench.latency_keys(name, samples[name]))
    results.update(
        {
            "baseline_select1_p50_ms": bench.p50(baseline_select1),
            "baseline_commit_p50_ms": bench.p50(baseline_commit),
            "lookup_iterations": lookups,
            "register_iterations": len(samples["register"]),
            "partial_plate_hits_p50": bench.p50([float(n) for n in partial_hits]),
            "seed_seconds": round(seeding.seconds, 1),
            **bench.machine(),
        }
    )
    missed = [name for name, limit in TARGETS_MS.items() if results[f"{name}_p50_ms"] >= limit]
    for name, limit in TARGETS_MS.items():
        bench.log(
            f"{name:17s} p50 {results[f'{name}_p50_ms']:8.2f} ms  p99 {results[f'{name}_p99_ms']:8.2f} ms"
            f"  (target p50 < {limit} ms{'  MISSED' if name in missed else ''})"
        )
    bench.log(
        f"baseline: SELECT 1 p50 {results['baseline_select1_p50_ms']} ms,"
        f" commit p50 {results['baseline_commit_p50_ms']} ms"
    )
    results["targets_missed"] = missed
    bench.emit("registry", args.scale, results)


if __name__ == "__main__":
    main()
