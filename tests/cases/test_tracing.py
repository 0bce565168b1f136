"""Tracing on the real database: small known trajectories stored through ingest_fixes, then the
selectors, the access rules and the API.

The scene: bike A rides 4 km east at 12 km/h into the market square S, stays 30 minutes (GPS
jitter of a couple of metres), then rides 4 km north; one of its fixes on the way is a 5 km jump
(flagged an outlier) and one has no GPS lock. Stolen bike B comes from the north-east an hour in,
waits 15 minutes 14 m from S and leaves east. Stolen bike D stays 3 km west. Fixes are 30 s apart.
"""

import datetime
import math

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import AuditEntry
from cases.models import Case
from cases.tracing import selectors as tracing
from cases.workflow.services import VehicleQuery, case_link, report_take, report_transition
from tests.cases.casework import approved_case, report_step
from tests.tracking import factories as tf
from tracking.ingest import Incoming, ingest_fixes
from tracking.models import TerminalInstallation
from tracking.protocols.common import Fix
from tracking.services import terminal_bind, terminal_unbind
from vehicles.models import Plate

pytestmark = pytest.mark.django_db

S = (39.8826, 117.7390)  # the market square (lat, lon)
STEP = datetime.timedelta(seconds=30)
M_PER_DEG_LAT = 111_000.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(S[0]))
JITTER = [(0, 0), (2, -1), (-1, 2), (1, 1), (-2, 0), (0, -2)]  # metres east, north


def at(east_m: float, north_m: float) -> tuple[float, float]:
    return S[0] + north_m / M_PER_DEG_LAT, S[1] + east_m / M_PER_DEG_LON


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot((a[0] - b[0]) * M_PER_DEG_LAT, (a[1] - b[1]) * M_PER_DEG_LON)


def fix(time: datetime.datetime, place: tuple[float, float], *, valid: bool = True, speed: float = 12.0) -> Fix:
    return Fix(time=time, latitude=place[0], longitude=place[1], valid=valid, speed_kmh=speed, course=90.0)


def bike_with_terminal(since: datetime.datetime):
    """A registered bike with a GT06 terminal fitted before `since` (the fitting is backdated so
    the fixes below fall inside the installation)."""
    terminal = tf.terminal()
    TerminalInstallation.objects.filter(terminal=terminal).update(installed_at=since - datetime.timedelta(days=1))
    return terminal


def report(officer, vehicle, *, last_seen_at: datetime.datetime):
    return report_take(
        user=officer,
        channel="walk_in",
        vehicle_query=VehicleQuery(plate=Plate.objects.get(vehicle=vehicle).number),
        reporter_name="王秀英",
        reporter_phone="13812345678",
        last_seen_at=last_seen_at,
        missing_at=last_seen_at + datetime.timedelta(minutes=30),
        place_address="玉田县无终街道兴隆路超市门口",
    )


@pytest.fixture
def base():
    return timezone.now().replace(second=0, microsecond=0) - datetime.timedelta(hours=3)


@pytest.fixture
def scene(officer, base):
    """Bikes A (open report), B (stolen, passes S later), D (stolen, elsewhere) and their fixes."""
    a, b, d = (bike_with_terminal(base) for _ in range(3))
    fixes_a = []
    for i in range(141):
        time = base + i * STEP
        if i < 40:  # riding east into S, 100 m per fix
            place = at(-(40 - i) * 100, 0)
        elif i <= 100:  # staying at S
            place = at(*JITTER[i % len(JITTER)])
        else:  # riding north
            place = at(0, (i - 100) * 100)
        if i == 120:
            place = at(5000, 2000)  # a jump no bike makes in 30 s
        fixes_a.append(fix(time, place, valid=i != 130, speed=0.0 if 40 <= i <= 100 else 12.0))
    fixes_b = []
    for i in range(120, 181):  # 60 min in: arrives from the north-east, stays 15 min, leaves east
        time = base + i * STEP
        if i < 124:
            place = at(10 + (124 - i) * 100, 10 + (124 - i) * 100)
        elif i <= 154:
            place = at(10 + JITTER[i % 6][0], 10 + JITTER[i % 6][1])
        else:
            place = at(10 + (i - 154) * 100, 10)
        fixes_b.append(fix(time, place))
    fixes_d = [fix(base + i * STEP, at(-3000 + JITTER[i % 6][0], JITTER[i % 6][1])) for i in range(0, 100)]
    result = ingest_fixes(
        [Incoming(a.pk, f) for f in fixes_a]
        + [Incoming(b.pk, f) for f in fixes_b]
        + [Incoming(d.pk, f) for f in fixes_d]
    )
    assert result.stored == 141 + 61 + 100 and result.outliers == 1
    report_a = report(officer, a.vehicle, last_seen_at=base - datetime.timedelta(minutes=10))
    report_b = report(officer, b.vehicle, last_seen_at=base - datetime.timedelta(hours=2))
    report_d = report(officer, d.vehicle, last_seen_at=base - datetime.timedelta(hours=2))
    return {
        "a": a.vehicle,
        "b": b.vehicle,
        "d": d.vehicle,
        "reports": (report_a, report_b, report_d),
        "end": base + 181 * STEP,
    }


# --- selectors -----------------------------------------------------------------------------------------


def test_stops_find_the_half_hour_at_the_square(scene, base):
    found = tracing.vehicle_stops(vehicle_id=scene["a"].pk, since=base, until=scene["end"])
    assert found.found == 1
    stop = found.stops[0]
    assert stop.rank == 1 and stop.pings == 61
    assert stop.arrival == base + 40 * STEP and stop.departure == base + 100 * STEP
    assert abs(stop.dwell_seconds - 30 * 60) <= 60
    assert metres((stop.latitude, stop.longitude), S) < 3
    assert stop.spread_m < 3 and not stop.before_since and not stop.ongoing
    # Longer than the stay: no stop. A period that starts during the stay: the stop began before.
    assert tracing.vehicle_stops(vehicle_id=scene["a"].pk, since=base, until=scene["end"], min_minutes=31).found == 0
    late = tracing.vehicle_stops(vehicle_id=scene["a"].pk, since=base + 45 * STEP, until=base + 90 * STEP)
    assert late.found == 1 and late.stops[0].before_since and late.stops[0].ongoing


def test_stops_rank_by_dwell_and_merge_a_gps_jump(officer, base):
    terminal = bike_with_terminal(base)
    fixes = []
    for i in range(120):
        time = base + i * STEP
        if i < 40:  # 20 min at home, with one 40 m GPS jump at minute 10
            place = at(40, 0) if i == 20 else at(*JITTER[i % 6])
        elif i < 50:  # ride 1 km east
            place = at((i - 39) * 100, 0)
        elif i < 80:  # 15 min at the shop
            place = at(1000 + JITTER[i % 6][0], JITTER[i % 6][1])
        else:
            place = at(1000, (i - 79) * 100)
        fixes.append(fix(time, place))
    ingest_fixes([Incoming(terminal.pk, f) for f in fixes])
    found = tracing.vehicle_stops(vehicle_id=terminal.vehicle.pk, since=base, until=base + 120 * STEP)
    # Home first (19.5 min; the jumped fix left out, the stays either side of it one stop), then the shop.
    assert [s.pings for s in found.stops] == [39, 31]
    home, shop = found.stops
    assert home.dwell_seconds == 39 * 30 and home.before_since and home.spread_m < 3
    assert metres((shop.latitude, shop.longitude), at(1000, 0)) < 3 and shop.dwell_seconds == 30 * 30


def test_a_slow_push_along_the_street_is_not_a_stop(base):
    terminal = bike_with_terminal(base)
    # 20 minutes at 0.6 m/s (each step "still"), 720 m in all.
    ingest_fixes([Incoming(terminal.pk, fix(base + i * STEP, at(i * 18, 0))) for i in range(41)])
    assert tracing.vehicle_stops(vehicle_id=terminal.vehicle.pk, since=base, until=base + 41 * STEP).found == 0


def test_trajectory_counts_simplifies_and_leaves_out_outliers(scene, base):
    result = tracing.vehicle_trajectory(vehicle_id=scene["a"].pk, since=base, until=scene["end"], point_cap=50)
    assert (result.count, result.outliers, result.invalid, result.line_count) == (141, 1, 1, 139)
    assert 2 <= result.simplified_count < 10 < result.line_count
    # The line keeps the corner at S and never goes to the 5 km jump.
    assert min(metres((lat, lon), S) for lon, lat in result.line) < 5
    assert max(metres((lat, lon), S) for lon, lat in result.line) < 4_100
    # A page of 50 points in time order, outlier flagged, and the next page after it.
    assert len(result.points) == 50 and result.truncated and result.next_after == base + 49 * STEP
    rest = tracing.vehicle_trajectory(
        vehicle_id=scene["a"].pk, since=base, until=scene["end"], point_cap=5000, after=result.next_after
    )
    assert rest.points[0].time == base + 50 * STEP and len(rest.points) == 91 and not rest.truncated
    assert [p.outlier for p in rest.points].count(True) == 1 and [p.valid for p in rest.points].count(False) == 1
    geojson = tracing.trajectory_geojson(result, basis="test")
    assert geojson["type"] == "FeatureCollection" and geojson["features"][0]["geometry"]["type"] == "LineString"
    assert geojson["metadata"]["simplified_count"] == result.simplified_count


def test_positions_follow_the_terminal_not_the_bike_it_is_on_now(clerk, base):
    terminal = bike_with_terminal(base)
    first_bike = terminal.vehicle
    ingest_fixes([Incoming(terminal.pk, fix(base + i * STEP, at(i * 100, 0))) for i in range(10)])
    terminal_unbind(clerk=clerk, terminal_id=terminal.pk, reason="moved to another bike")
    second = tf.terminal(bound=True)
    second_bike = second.vehicle
    terminal_unbind(clerk=clerk, terminal_id=second.pk, reason="faulty")
    terminal_bind(clerk=clerk, terminal_id=terminal.pk, vehicle_id=second_bike.pk, owner_consent=True)
    moved = base + 10 * STEP
    TerminalInstallation.objects.filter(terminal=terminal, vehicle=first_bike).update(removed_at=moved)
    TerminalInstallation.objects.filter(terminal=terminal, vehicle=second_bike).update(installed_at=moved)
    ingest_fixes([Incoming(terminal.pk, fix(base + i * STEP, at(1000, i * 100))) for i in range(10, 20)])

    until = base + 20 * STEP
    assert tracing.vehicle_trajectory(vehicle_id=first_bike.pk, since=base, until=until).count == 10
    assert tracing.vehicle_trajectory(vehicle_id=second_bike.pk, since=base, until=until).count == 10
    now_on_second = tracing.vehicle_position(vehicle_id=second_bike.pk)
    assert now_on_second.device_time == base + 19 * STEP and now_on_second.age_seconds > 0
    # The first bike's last known position is its last fix before the terminal was moved.
    assert tracing.vehicle_position(vehicle_id=first_bike.pk).device_time == base + 9 * STEP


def test_near_finds_exactly_the_bikes_at_the_place_in_the_window(scene, base):
    first = tracing.vehicles_near(
        latitude=S[0], longitude=S[1], radius_m=30, since=base + 15 * 2 * STEP, until=base + 55 * 2 * STEP
    )
    assert [v.vehicle_id for v in first.vehicles] == [scene["a"].pk]
    seen = first.vehicles[0]
    assert (seen.first_seen, seen.last_seen, seen.pings) == (base + 40 * STEP, base + 100 * STEP, 61)
    assert seen.min_distance_m < 1 and seen.open_report == scene["reports"][0].number and seen.plate
    later = tracing.vehicles_near(
        latitude=S[0], longitude=S[1], radius_m=30, since=base + 55 * 2 * STEP, until=base + 90 * 2 * STEP
    )
    assert [v.vehicle_id for v in later.vehicles] == [scene["b"].pk]
    assert 10 < later.vehicles[0].min_distance_m < 18
    both = tracing.vehicles_near(latitude=S[0], longitude=S[1], radius_m=30, since=base, until=scene["end"])
    assert [v.vehicle_id for v in both.vehicles] == [scene["a"].pk, scene["b"].pk]  # closest first
    close = tracing.vehicles_near(latitude=S[0], longitude=S[1], radius_m=10, since=base, until=scene["end"])
    assert [v.vehicle_id for v in close.vehicles] == [scene["a"].pk]  # B waited 14 m away


def test_other_stolen_bikes_seen_at_a_stop(officer, scene, base):
    stop = tracing.vehicle_stops(vehicle_id=scene["a"].pk, since=base, until=scene["end"]).stops[0]
    visits = tracing.stolen_at_place(
        latitude=stop.latitude, longitude=stop.longitude, radius_m=50, exclude_vehicle_id=scene["a"].pk
    )
    assert [(v.vehicle_id, v.report_number) for v in visits] == [(scene["b"].pk, scene["reports"][1].number)]
    assert visits[0].pings == 31 and visits[0].first_seen == base + 124 * STEP
    # Not excluding A, A is there too; once B is recovered it is no longer missing.
    everyone = tracing.stolen_at_place(latitude=stop.latitude, longitude=stop.longitude, radius_m=50)
    assert {v.vehicle_id for v in everyone} == {scene["a"].pk, scene["b"].pk}
    report_transition(user=officer, report_id=scene["reports"][1].pk, to_status="recovered")
    after = tracing.stolen_at_place(latitude=stop.latitude, longitude=stop.longitude, radius_m=50)
    assert [v.vehicle_id for v in after] == [scene["a"].pk]


def test_stolen_bikes_last_positions_near_a_point(scene):
    found, truncated = tracing.stolen_near(latitude=S[0], longitude=S[1], radius_km=3.5)
    # A ended 4 km north, B 2.6 km east, D 3 km west.
    assert [p.vehicle_id for p in found] == [scene["b"].pk, scene["d"].pk] and not truncated
    assert found[0].report_number == scene["reports"][1].number and 2_500 < found[0].distance_m < 2_700
    assert [p.vehicle_id for p in tracing.stolen_near(latitude=S[0], longitude=S[1], radius_km=5)[0]] == [
        scene["b"].pk,
        scene["d"].pk,
        scene["a"].pk,
    ]


def test_stolen_near_follows_the_report_and_the_fitting(officer, clerk, base):
    terminal = bike_with_terminal(base)
    vehicle = terminal.vehicle
    ingest_fixes([Incoming(terminal.pk, fix(base, at(300, 0)))])

    def found() -> list[int]:
        return [p.vehicle_id for p in tracing.stolen_near(latitude=S[0], longitude=S[1], radius_km=1)[0]]

    assert found() == []  # not reported
    taken = report(officer, vehicle, last_seen_at=base - datetime.timedelta(hours=1))
    assert found() == [vehicle.pk]
    ingest_fixes([Incoming(terminal.pk, fix(base + 20 * STEP, at(2300, 0)))])  # ridden 2 km further east
    assert found() == []
    ingest_fixes([Incoming(terminal.pk, fix(base + 40 * STEP, at(600, 0)))])  # and back
    assert found() == [vehicle.pk]
    report_step(user=officer, report_id=taken.pk, to_status="filed_criminal")
    report_transition(user=officer, report_id=taken.pk, to_status="recovered", note="found at the market")
    assert found() == []  # recovered: no longer missing

    second = bike_with_terminal(base)
    report(officer, second.vehicle, last_seen_at=base - datetime.timedelta(hours=1))
    assert found() == []  # reported, but its terminal has not spoken yet
    ingest_fixes([Incoming(second.pk, fix(base + STEP, at(0, 200)))])  # the first position of the terminal
    assert found() == [second.vehicle.pk]
    terminal_unbind(clerk=clerk, terminal_id=second.pk, reason="taken off by the thief")
    assert found() == []  # the terminal's positions are no longer the bike's
    terminal_bind(clerk=clerk, terminal_id=second.pk, vehicle_id=second.vehicle.pk, owner_consent=True)
    assert found() == []  # fitted again now: its last position predates this fitting
    ingest_fixes([Incoming(second.pk, fix(timezone.now(), at(0, 100)))])
    assert found() == [second.vehicle.pk]


def test_stolen_near_looks_past_close_bikes_whose_positions_predate_their_fitting(officer, clerk, base):
    """Only the closest candidates are joined with their fitting first; when those all drop out
    (positions from before the terminal was fitted again), the search goes on to the others."""
    stale = []
    for n in range(4):  # the 4 closest: refitted after their last position
        terminal = bike_with_terminal(base)
        ingest_fixes([Incoming(terminal.pk, fix(base, at(0, 20 + 10 * n)))])
        report(officer, terminal.vehicle, last_seen_at=base - datetime.timedelta(hours=1))
        terminal_unbind(clerk=clerk, terminal_id=terminal.pk, reason="checked at the station")
        terminal_bind(clerk=clerk, terminal_id=terminal.pk, vehicle_id=terminal.vehicle.pk, owner_consent=True)
        stale.append(terminal.vehicle.pk)
    farther = bike_with_terminal(base)
    ingest_fixes([Incoming(farther.pk, fix(timezone.now(), at(0, 300)))])
    report(officer, farther.vehicle, last_seen_at=base - datetime.timedelta(hours=1))
    found, truncated = tracing.stolen_near(latitude=S[0], longitude=S[1], radius_km=1, limit=1)
    assert [p.vehicle_id for p in found] == [farther.vehicle.pk] and not truncated


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda b: tracing.vehicle_trajectory(vehicle_id=1, since=b, until=b), "until"),
        (lambda b: tracing.vehicle_trajectory(vehicle_id=1, since=b - datetime.timedelta(days=32), until=b), "since"),
        (lambda b: tracing.vehicle_trajectory(vehicle_id=1, since=b, until=b + STEP, point_cap=0), "limit"),
        (lambda b: tracing.vehicle_stops(vehicle_id=1, since=b, until=b + STEP, radius_m=5), "radius"),
        (lambda b: tracing.vehicle_stops(vehicle_id=1, since=b, until=b + STEP, min_minutes=0), "min_minutes"),
        (
            lambda b: tracing.vehicles_near(
                latitude=S[0], longitude=S[1], radius_m=50, since=b, until=b + datetime.timedelta(hours=25)
            ),
            "since",
        ),
        (lambda b: tracing.vehicles_near(latitude=91, longitude=S[1], radius_m=50, since=b, until=b + STEP), "lat"),
        (
            lambda b: tracing.vehicles_near(latitude=S[0], longitude=S[1], radius_m=6000, since=b, until=b + STEP),
            "radius",
        ),
        (lambda b: tracing.stolen_near(latitude=S[0], longitude=181, radius_km=5), "lon"),
        (lambda b: tracing.stolen_near(latitude=S[0], longitude=S[1], radius_km=60), "radius_km"),
        (lambda b: tracing.stolen_at_place(latitude=S[0], longitude=S[1], radius_m=50, days=91), "nearby_days"),
    ],
)
def test_bad_input_names_the_field(call, field, base):
    with pytest.raises(ValidationError) as excinfo:
        call(base)
    assert field in excinfo.value.message_dict


# --- access and audit, through the API -----------------------------------------------------------------


def audits(action: str, vehicle_id: int | None = None):
    entries = AuditEntry.objects.filter(action=action).order_by("id")
    return entries.filter(object_id=str(vehicle_id)) if vehicle_id is not None else entries


def iso(value: datetime.datetime) -> str:
    return value.isoformat()


def test_officer_sees_a_reported_bike_and_the_look_is_audited(officer_api, officer, scene, base):
    a = scene["a"]
    response = officer_api.get(
        f"/api/v1/vehicles/{a.pk}/trajectory", {"since": iso(base), "until": iso(scene["end"]), "limit": 20}
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    meta = body["metadata"]
    assert meta["basis"] == f"open_report:{scene['reports'][0].number}"
    assert (meta["count"], meta["returned_points"], meta["truncated"]) == (141, 20, True)
    assert body["features"][0]["properties"]["kind"] == "line" and len(body["features"]) == 21
    entry = audits("trajectory.view", a.pk).get()
    assert entry.user == officer and entry.result_count == 141
    assert entry.query["basis"] == meta["basis"] and entry.query["since"] == timezone.localtime(base).isoformat()

    # Without since, the trajectory starts when the owner last saw the bike.
    default = officer_api.get(f"/api/v1/vehicles/{a.pk}/trajectory", {"line": "false"}).json()["metadata"]
    assert default["since"] == timezone.localtime(scene["reports"][0].last_seen_at).isoformat()
    assert default["simplified_count"] == 0 and default["count"] == 141

    stops = officer_api.get(f"/api/v1/vehicles/{a.pk}/stops", {"since": iso(base), "nearby_stolen": "true"})
    assert stops.status_code == 200, stops.json()
    first = stops.json()["stops"][0]
    assert first["dwell_seconds"] == 1800 and first["pings"] == 61
    assert [v["vehicle_id"] for v in first["nearby_stolen"]] == [scene["b"].pk]
    stops_entry = audits("trajectory.stops", a.pk).get()
    assert stops_entry.query["nearby_vehicles"] == [scene["b"].pk] and stops_entry.result_count == 1

    position = officer_api.get(f"/api/v1/vehicles/{a.pk}/position").json()
    assert position["position"]["device_time"] == timezone.localtime(base + 140 * STEP).isoformat()
    assert audits("trajectory.position", a.pk).get().result_count == 1


def test_without_an_open_report_an_officer_states_a_reason(officer_api, officer, base):
    terminal = bike_with_terminal(base)
    ingest_fixes([Incoming(terminal.pk, fix(base + i * STEP, at(i * 100, 0))) for i in range(5)])
    url = f"/api/v1/vehicles/{terminal.vehicle.pk}/trajectory"
    params = {"since": iso(base), "until": iso(base + 10 * STEP)}

    refused = officer_api.get(url, params)
    assert refused.status_code == 403 and "state the reason" in refused.json()["detail"]
    assert audits("trajectory.view", terminal.vehicle.pk).get().query["refused"]

    short = officer_api.get(url, {**params, "reason": "查"})
    assert short.status_code == 400 and "reason" in short.json()

    allowed = officer_api.get(url, {**params, "reason": "协查虹桥镇盗窃案线索"})
    assert allowed.status_code == 200 and allowed.json()["metadata"]["basis"] == "stated_reason"
    entry = audits("trajectory.view", terminal.vehicle.pk).last()
    assert (
        entry.reason == "协查虹桥镇盗窃案线索" and entry.query["basis"] == "stated_reason" and entry.result_count == 5
    )


def test_a_bike_linked_to_an_open_case_is_visible_on_the_case(officer_api, officer, base):
    terminal = bike_with_terminal(base)
    case = approved_case(filer=officer, number="玉公(刑)立字[2025]0042号", kind="criminal", officers=[officer])
    case_link(user=officer, case_id=case.pk, vehicle_id=terminal.vehicle.pk, reason="嫌疑人使用的车辆")
    url = f"/api/v1/vehicles/{terminal.vehicle.pk}/stops"
    # A case of bikes without reports opens their positions from the day it was filed: not before.
    filed = timezone.make_aware(datetime.datetime.combine(case.filed_on, datetime.time()))
    early = officer_api.get(url, {"since": iso(filed - STEP), "until": iso(filed)})
    assert early.status_code == 403 and "reason" in early.json()["detail"]
    Case.objects.filter(pk=case.pk).update(filed_on=case.filed_on - datetime.timedelta(days=1))  # filed yesterday
    response = officer_api.get(url, {"since": iso(base), "until": iso(base + STEP)})
    assert response.status_code == 200 and response.json()["basis"] == f"case:{case.number}"
    Case.objects.filter(pk=case.pk).update(status=Case.Status.CLOSED)
    assert officer_api.get(url, {"since": iso(base), "until": iso(base + STEP)}).status_code == 403


def test_owner_sees_their_own_bike_from_when_it_became_theirs(api, owner_user, base):
    terminal = tf.terminal()
    vehicle = terminal.vehicle
    vehicle.owner.user = owner_user
    vehicle.owner.save(update_fields=["user"])
    registered = timezone.now()
    ingest_fixes([Incoming(terminal.pk, fix(registered + (i + 1) * STEP, at(i * 50, 0))) for i in range(3)])
    api.force_authenticate(owner_user)
    url = f"/api/v1/vehicles/{vehicle.pk}/trajectory"
    mine = api.get(url, {"since": iso(registered - datetime.timedelta(seconds=5)), "until": iso(registered + 5 * STEP)})
    assert mine.status_code == 403 and "became yours" in mine.json()["detail"]
    since = TerminalInstallation.objects.get(terminal=terminal).installed_at
    ok = api.get(url, {"since": iso(since), "until": iso(registered + 5 * STEP)})
    assert ok.status_code == 200 and ok.json()["metadata"]["basis"] == "owner"
    assert ok.json()["metadata"]["count"] == 3
    # Without since, an owner's trajectory starts when the bike became theirs (not a day back).
    default = api.get(url, {"until": iso(registered + 5 * STEP)})
    assert default.status_code == 200 and default.json()["metadata"]["count"] == 3
    # Owners do not see other owners' stolen bikes at their stops, nor search places.
    assert api.get(f"/api/v1/vehicles/{vehicle.pk}/stops", {"since": iso(since)}).status_code == 200
    nearby = api.get(f"/api/v1/vehicles/{vehicle.pk}/stops", {"since": iso(since), "nearby_stolen": "true"})
    assert nearby.status_code == 403 and "Only officers" in nearby.json()["detail"]
    near = {
        "lat": S[0],
        "lon": S[1],
        "radius": 50,
        "since": iso(base),
        "until": iso(base + STEP),
        "reason": "看看附近有什么车",
    }
    assert api.get("/api/v1/tracing/near", near).status_code == 403


def test_someone_elses_bike_and_a_clerk_are_refused(api, owner_user, clerk_api, scene, base):
    api.force_authenticate(owner_user)
    url = f"/api/v1/vehicles/{scene['a'].pk}/trajectory"
    assert api.get(url).status_code == 403
    refused = clerk_api.get(url, {"reason": "柜台查询车辆轨迹"})
    assert refused.status_code == 403 and "Only the owner and the officers" in refused.json()["detail"]
    assert clerk_api.get("/api/v1/stolen/near", {"lat": S[0], "lon": S[1], "radius_km": 5}).status_code == 403
    assert api.get(f"/api/v1/vehicles/{scene['a'].pk}/position").status_code == 403


def test_an_administrator_always_states_a_reason(admin_user, scene, base):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(admin_user)
    url = f"/api/v1/vehicles/{scene['a'].pk}/trajectory"
    assert client.get(url).status_code == 403  # an open report is not an administrator's duty
    ok = client.get(url, {"reason": "系统审计抽查（工单 2025-118）"})
    assert ok.status_code == 200 and ok.json()["metadata"]["basis"] == "stated_reason"


def test_near_search_needs_a_reason_and_audits_the_bikes_found(officer_api, officer, scene, base):
    params = {"lat": S[0], "lon": S[1], "radius": 30, "since": iso(base), "until": iso(scene["end"])}
    missing = officer_api.get("/api/v1/tracing/near", params)
    assert missing.status_code == 400 and "reason" in missing.json()
    response = officer_api.get("/api/v1/tracing/near", {**params, "reason": "兴隆路超市盗窃案现场伴随分析"})
    assert response.status_code == 200, response.json()
    assert [v["vehicle_id"] for v in response.json()["vehicles"]] == [scene["a"].pk, scene["b"].pk]
    entry = audits("trajectory.near").get()
    assert entry.query["vehicles"] == [scene["a"].pk, scene["b"].pk] and entry.reason.startswith("兴隆路")

    stolen = officer_api.get("/api/v1/stolen/near", {"lat": S[0], "lon": S[1], "radius_km": 3.5}).json()
    assert [r["vehicle_id"] for r in stolen["results"]] == [scene["b"].pk, scene["d"].pk]
    assert stolen["basis"] == "open_reports" and audits("stolen.near").get().result_count == 2


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        ("trajectory", {"since": "yesterday"}, "since"),
        ("trajectory", {"limit": 0}, "limit"),
        ("trajectory", {"tolerance": 1000}, "tolerance"),
        ("stops", {"radius": 5}, "radius"),
        ("stops", {"nearby_stolen": "true", "nearby_days": 100}, "nearby_days"),
        ("near", {"lat": 95, "lon": S[1], "radius": 50, "reason": "现场伴随分析"}, "lat"),
        ("near", {"lat": S[0], "lon": S[1], "radius": 50, "reason": "现场伴随分析", "hours": 25}, "since"),
        ("near", {"lon": S[1], "radius": 50, "reason": "现场伴随分析"}, "lat"),
        ("stolen", {"lat": S[0], "lon": S[1], "radius_km": 0}, "radius_km"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter_and_nothing_is_recorded(
    officer_api, scene, base, url, params, field
):
    params = dict(params)
    if url == "near":
        hours = params.pop("hours", 1)
        params |= {"since": iso(base), "until": iso(base + datetime.timedelta(hours=hours))}
    path_ = {
        "trajectory": f"/api/v1/vehicles/{scene['a'].pk}/trajectory",
        "stops": f"/api/v1/vehicles/{scene['a'].pk}/stops",
        "near": "/api/v1/tracing/near",
        "stolen": "/api/v1/stolen/near",
    }[url]
    before = AuditEntry.objects.count()
    response = officer_api.get(path_, params)
    assert response.status_code == 400 and field in response.json(), response.json()
    assert AuditEntry.objects.count() == before


def test_paging_cursor_outside_the_period_and_limits(officer_api, scene, base):
    url = f"/api/v1/vehicles/{scene['a'].pk}/trajectory"
    period = {"since": iso(base), "until": iso(scene["end"])}
    outside = officer_api.get(url, {**period, "after": iso(base - datetime.timedelta(hours=1))})
    assert outside.status_code == 400 and "after" in outside.json()
    first = officer_api.get("/api/v1/stolen/near", {"lat": S[0], "lon": S[1], "radius_km": 3.5, "limit": 1}).json()
    assert [r["vehicle_id"] for r in first["results"]] == [scene["b"].pk] and first["truncated"]


def test_unknown_vehicle_is_404(officer_api):
    assert officer_api.get("/api/v1/vehicles/999999999/trajectory").status_code == 404


def test_the_schema_documents_every_tracing_operation(officer_api):  # the schema is for staff
    schema = officer_api.get("/api/schema/", {"format": "json"}).json()
    operations = {op["operationId"] for item in schema["paths"].values() for op in item.values()}
    assert {"vehicle_position", "vehicle_trajectory", "vehicle_stops", "tracing_near", "stolen_near"} <= operations
    stops = schema["paths"]["/api/v1/vehicles/{vehicle_id}/stops"]["get"]
    assert {"since", "min_minutes", "radius", "nearby_stolen", "reason"} <= {p["name"] for p in stops["parameters"]}
