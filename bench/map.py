"""Map benchmark: the officer map's data endpoint with 10,000 stolen-bike markers.

    .venv/bin/python bench/map.py [--scale small|full]

full = 10,000 bikes under an open theft report with a last position, small = 500, made when absent
and kept (terminals 869997…, reports "bench/map.py seed"). Measures, round-robin, against
DATABASE_URL: map_10k_markers (GET /map/markers.json as an officer through web.map_views; target
p50 < 300 ms), the same with MAP_TILES=amap, a poll that finds nothing new, and a `SELECT 1`
baseline. Details: docs/benchmarks.md#map.
"""

import datetime
import math
import random
from typing import Any

import _common as bench

SCALES = {"small": {"markers": 500, "runs": 15}, "full": {"markers": 10_000, "runs": 25}}
TARGET_MS = 300
IMEI_PREFIX = "869997"
BENCH_NOTE = "bench/map.py seed"
OFFICER = ("bench-map-officer", "officer", "13022901")
# Demo town centres (lat, lon) of the county; the bikes are spread ~1.5 km around them.
TOWNS = [
    (39.8826, 117.7390),
    (39.9005, 117.7050),
    (39.7700, 117.8000),
    (39.7400, 117.6500),
    (39.9600, 117.6800),
    (39.8300, 117.9000),
    (39.9400, 117.8600),
    (39.6800, 117.7400),
    (39.8000, 117.5800),
]


def officer() -> Any:
    from django.contrib.auth.models import Group

    from accounts.models import Station, User

    username, role, station_code = OFFICER
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User.objects.create_user(
            username=username, password=None, station=Station.objects.get(code=station_code)
        )
        user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


def missing_with_position() -> int:
    from web.map_selectors import MarkerFilter, stolen_markers

    return len(stolen_markers(filters=MarkerFilter()))


def imei(serial: int) -> str:
    from stdnum import luhn

    body = f"{IMEI_PREFIX}{serial:08d}"
    return body + luhn.calc_check_digit(body)


def register_bikes(count: int, rng: random.Random) -> None:
    """Registered bikes with an owner and a plate, written with bulk_create (the models' defaults
    fill any column added later). The owners' ID numbers are synthetic ("9…"), unique, not valid."""
    import decimal

    from django.db import transaction
    from django.utils import timezone

    from accounts.models import Station
    from vehicles.models import Owner, Plate, PlateKind, PlateSeries, Vehicle

    station = Station.objects.get(code=OFFICER[2])
    start = Owner.objects.filter(id_number__startswith="9").count()
    with transaction.atomic():
        series = PlateSeries.objects.filter(prefix="基准").first() or PlateSeries.objects.create(
            station=station,
            kind=PlateKind.GREEN,
            prefix="基准",
            first_number=1,
            last_number=9_999_999,
            next_number=1,
            active=False,  # bench plates only: counters never issue from it
        )
        owners = Owner.objects.bulk_create(
            [
                Owner(
                    name="基准车主",
                    id_number=f"9{start + i:017d}",
                    phone=f"139{rng.randrange(10**8):08d}",
                    address="河北省唐山市玉田县",
                )
                for i in range(count)
            ],
            batch_size=2000,
        )
        today = timezone.localdate()
        vehicles = Vehicle.objects.bulk_create(
            [
                Vehicle(
                    frame_number=f"9999225{start + i:08d}"[-15:],
                    motor_number=f"BM{start + i:08d}",
                    manufacturer="雅迪科技集团有限公司",
                    brand="雅迪",
                    model_name="TDT2312Z",
                    colour=rng.choice(["白", "黑", "红", "蓝", "灰"]),
                    production_date=today - datetime.timedelta(days=400),
                    purchase_date=today - datetime.timedelta(days=300),
                    purchase_price=decimal.Decimal("2999.00"),
                    owner=owner,
                    station=station,
                )
                for i, owner in enumerate(owners)
            ],
            batch_size=2000,
        )
        first = series.next_number
        Plate.objects.bulk_create(
            [
                Plate(number=f"基准{first + i:07d}", series=series, kind=PlateKind.GREEN, vehicle=vehicle)
                for i, vehicle in enumerate(vehicles)
            ],
            batch_size=2000,
        )
        PlateSeries.objects.filter(pk=series.pk).update(next_number=first + len(vehicles))


def seed(shortfall: int, user: Any, rng: random.Random) -> None:
    """`shortfall` more registered bikes with a terminal, a last position and an open report."""
    from django.contrib.gis.geos import Point
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import Station
    from cases.models import ReportStatus, TheftReport
    from tracking.models import LastPosition, Terminal, TerminalInstallation
    from vehicles.models import Vehicle

    def free() -> Any:
        return Vehicle.objects.filter(status=Vehicle.Status.REGISTERED, terminal__isnull=True).exclude(
            pk__in=TheftReport.objects.filter(vehicle__isnull=False).values("vehicle_id")
        )

    available = free().count()
    if available < shortfall:
        bench.log(f"{available:,} bikes without a terminal; registering {shortfall - available:,} more")
        register_bikes(shortfall - available, rng)
    vehicles = list(free().order_by("pk").values_list("pk", flat=True)[:shortfall])
    stations = list(Station.objects.values_list("pk", "code"))
    now = timezone.now()
    serial = Terminal.objects.filter(imei__startswith=IMEI_PREFIX).count()
    with transaction.atomic():
        terminals = Terminal.objects.bulk_create(
            [
                Terminal(imei=imei(serial + i), protocol=Terminal.Protocol.GT06, vehicle_id=vehicle_id, consent_at=now)
                for i, vehicle_id in enumerate(vehicles)
            ],
            batch_size=2000,
        )
        installed = now - datetime.timedelta(days=90)
        TerminalInstallation.objects.bulk_create(
            [
                TerminalInstallation(
                    terminal=t,
                    vehicle_id=t.vehicle_id,
                    installed_at=installed,
                    installed_by=user,
                    station_id=user.station_id,
                )
                for t in terminals
            ],
            batch_size=2000,
        )
        positions = []
        for t in terminals:
            lat0, lon0 = rng.choice(TOWNS)
            r, a = 1500 * math.sqrt(-2 * math.log(1 - rng.random())), 2 * math.pi * rng.random()
            lat = lat0 + r * math.sin(a) / 111_000
            lon = lon0 + r * math.cos(a) / (111_000 * math.cos(math.radians(lat0)))
            seen = now - datetime.timedelta(seconds=rng.randint(60, 3 * 86400))
            positions.append(
                LastPosition(
                    terminal=t, device_time=seen, received_at=seen, point=Point(lon, lat, srid=4326), valid=True
                )
            )
        LastPosition.objects.bulk_create(positions, batch_size=2000)
        reports = []
        for i, t in enumerate(terminals):
            station_id, code = rng.choice(stations)
            taken = now - datetime.timedelta(days=rng.randint(0, 60), minutes=rng.randint(0, 1440))
            reports.append(
                TheftReport(
                    number=f"BM{code}{serial + i:08d}",
                    channel=TheftReport.Channel.CALL_110,
                    station_id=station_id,
                    vehicle_id=t.vehicle_id,
                    reporter_name="基准测试",
                    reporter_phone="13800000000",
                    last_seen_at=taken - datetime.timedelta(hours=3),
                    missing_at=taken - datetime.timedelta(hours=1),
                    place_address="玉田县",
                    narrative=BENCH_NOTE,
                    status=ReportStatus.RECEIVED,
                )
            )
        created = TheftReport.objects.bulk_create(reports, batch_size=2000)
        # received_at is auto_now_add: spread the report dates so the date filter has something to do.
        for report, wanted in zip(created, reports, strict=True):
            report.received_at = wanted.last_seen_at + datetime.timedelta(hours=3)
        TheftReport.objects.bulk_update(created, ["received_at"], batch_size=2000)
        Vehicle.objects.filter(pk__in=vehicles).update(status=Vehicle.Status.STOLEN)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "ANALYZE cases_theftreport; ANALYZE tracking_lastposition; ANALYZE tracking_terminalinstallation"
        )


def main() -> None:
    args = bench.parse_args(__doc__.split("\n\n")[0])
    bench.setup_django()
    import json

    from django.test import RequestFactory, override_settings

    from web.map_views import map_markers

    config = SCALES[args.scale]
    target = config["markers"]
    rng = random.Random(20261128)
    user = officer()
    have = missing_with_position()
    bench.log(f"map bench, scale {args.scale}: {have:,} stolen bikes with a position, {target:,} wanted")
    if have < target:
        with bench.Stopwatch() as seeding:
            seed(target - have, user, rng)
        bench.log(f"seeded {target - have:,} stolen bikes in {seeding.seconds:.1f} s")
    markers = missing_with_position()

    factory = RequestFactory()
    sizes: list[int] = []

    def get(params: dict[str, str]) -> Any:
        request = factory.get("/map/markers.json", params)
        request.user = user
        response = map_markers(request)
        if response.status_code != 200:
            raise SystemExit(f"markers.json answered {response.status_code}: {response.content[:200]!r}")
        return response

    def full(_: int) -> None:
        sizes.append(len(get({}).content))

    def full_gcj02(_: int) -> None:
        with override_settings(MAP_TILES="amap"):
            get({})

    cursor = json.loads(get({}).content)["cursor"]
    polled: list[int] = []

    def poll(_: int) -> None:
        polled.append(len(json.loads(get({"since": cursor}).content)["rows"]))

    runs = list(range(config["runs"] + 3))
    baseline = bench.baseline_select1()
    samples = bench.time_interleaved(
        {
            "map_10k_markers": (full, runs),
            "map_10k_markers_gcj02": (full_gcj02, runs),
            "map_poll": (poll, runs),
        },
        warmup=3,
    )
    results = {
        "markers": markers,
        **bench.latency_keys("map_10k_markers", samples["map_10k_markers"]),
        "map_10k_markers_gcj02_p50_ms": bench.p50(samples["map_10k_markers_gcj02"]),
        "map_poll_p50_ms": bench.p50(samples["map_poll"]),
        "response_kb": round(max(sizes) / 1024, 1),
        "baseline_select1_p50_ms": bench.p50(baseline),
        "target_map_10k_markers_p50_ms": TARGET_MS,
        "machine": bench.machine(),
    }
    bench.log(
        f"{markers:,} markers: p50 {results['map_10k_markers_p50_ms']} ms, {results['response_kb']} kB; "
        f"poll p50 {results['map_poll_p50_ms']} ms (rows: {max(polled) if polled else 0})"
    )
    bench.emit("map", args.scale, results)


if __name__ == "__main__":
    main()
