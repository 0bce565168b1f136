"""A stolen bike with a known way since the theft, stored through ingest_fixes (the real path).

The bike was last seen by its owner at `start - 10 min`; from `start` it rides 2 km east at
12 km/h (20 fixes, 30 s apart), stays 15 minutes at the market square (GPS jitter of a couple of
metres), then rides 1 km north. Its last position is 1 km north of the square.
"""

import datetime
import math
from dataclasses import dataclass

from django.utils import timezone

from cases.models import TheftReport
from cases.workflow.services import VehicleQuery, report_take
from tests.tracking import factories as tf
from tracking.ingest import Incoming, ingest_fixes
from tracking.models import Terminal, TerminalInstallation
from tracking.protocols.common import Fix
from vehicles.models import Plate, Vehicle

SQUARE = (39.8826, 117.7390)  # (lat, lon)
STEP = datetime.timedelta(seconds=30)
M_PER_DEG_LAT = 111_000.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(SQUARE[0]))
JITTER = [(0, 0), (2, -1), (-1, 2), (1, 1), (-2, 0), (0, -2)]
RIDE_IN, STAY, RIDE_OUT = 20, 30, 10


def at(east_m: float, north_m: float, origin: tuple[float, float] = SQUARE) -> tuple[float, float]:
    return origin[0] + north_m / M_PER_DEG_LAT, origin[1] + east_m / M_PER_DEG_LON


@dataclass
class StolenBike:
    vehicle: Vehicle
    terminal: Terminal
    report: TheftReport
    plate: str
    last: tuple[float, float]
    fixes: int


def way(start: datetime.datetime, origin: tuple[float, float] = SQUARE) -> list[Fix]:
    fixes = []
    for i in range(RIDE_IN + STAY + RIDE_OUT):
        if i < RIDE_IN:
            place, speed = at(-(RIDE_IN - i) * 100, 0, origin), 12.0
        elif i < RIDE_IN + STAY:
            place, speed = at(*JITTER[i % len(JITTER)], origin=origin), 0.0
        else:
            place, speed = at(0, (i - RIDE_IN - STAY + 1) * 100, origin), 12.0
        fixes.append(Fix(time=start + i * STEP, latitude=place[0], longitude=place[1], valid=True, speed_kmh=speed))
    return fixes


def stolen_bike(officer, *, start: datetime.datetime | None = None, origin=SQUARE, owner_user=None) -> StolenBike:
    start = start or timezone.now().replace(microsecond=0) - datetime.timedelta(hours=1)
    terminal = tf.terminal()
    TerminalInstallation.objects.filter(terminal=terminal).update(installed_at=start - datetime.timedelta(days=1))
    vehicle = terminal.vehicle
    if owner_user is not None:
        vehicle.owner.user = owner_user
        vehicle.owner.save(update_fields=["user"])
    fixes = way(start, origin)
    ingest_fixes([Incoming(terminal.pk, f) for f in fixes])
    plate = Plate.objects.get(vehicle=vehicle).number
    report = report_take(
        user=officer,
        channel="walk_in",
        vehicle_query=VehicleQuery(plate=plate),
        reporter_name="王秀英",
        reporter_phone="13812345678",
        last_seen_at=start - datetime.timedelta(minutes=10),
        missing_at=start + datetime.timedelta(minutes=40),
        place_address="玉田县无终街道兴隆路超市门口",
        place_point=at(-(RIDE_IN + 1) * 100, 0, origin),  # where the ride since the theft begins
    )
    last = (fixes[-1].latitude, fixes[-1].longitude)
    return StolenBike(vehicle, terminal, report, plate, last, len(fixes))


# Demo places in the county (lat, lon) away from the market square, for a map with clusters.
TOWNS = [(39.7700, 117.8000), (39.7400, 117.6500), (39.9600, 117.6800), (39.8300, 117.9000), (39.9400, 117.8600)]


def scattered_stolen_bikes(officer, count: int, *, seed: int = 7) -> list[Vehicle]:
    """`count` more stolen bikes, each with one position near one of TOWNS (a few hundred metres
    of spread, so the map shows clusters)."""
    import random

    rng = random.Random(seed)
    now = timezone.now().replace(microsecond=0)
    vehicles = []
    for i in range(count):
        terminal = tf.terminal()
        TerminalInstallation.objects.filter(terminal=terminal).update(installed_at=now - datetime.timedelta(days=2))
        town = TOWNS[i % len(TOWNS)]
        lat, lon = at(rng.uniform(-600, 600), rng.uniform(-600, 600), origin=town)
        time = now - datetime.timedelta(minutes=rng.randint(5, 600))
        ingest_fixes([Incoming(terminal.pk, Fix(time=time, latitude=lat, longitude=lon, valid=True, speed_kmh=0.0))])
        report_take(
            user=officer,
            channel="call_110",
            vehicle_query=VehicleQuery(plate=Plate.objects.get(vehicle=terminal.vehicle).number),
            reporter_name="刘芳",
            reporter_phone="13912345678",
            last_seen_at=time - datetime.timedelta(hours=3),
            missing_at=time - datetime.timedelta(hours=2),
            place_address="玉田县某小区车棚",
        )
        vehicles.append(terminal.vehicle)
    return vehicles
