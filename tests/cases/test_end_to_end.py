"""The whole theft workflow through the real parts: a clerk registers two bikes and fits GT06
terminals (API), an officer takes their theft reports and files a case, the terminals speak GT06
over TCP to the gateway (a subprocess on the test database), the case officer is told of the
sighting, the stops of the bike show the other stolen bike at the same stash, that bike is linked
to the case, the bike is recovered and handed back, and the audit trail has every look and step.
"""

import datetime

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEntry
from cases.models import CaseLink, Notification, ReportTransition, Sighting
from tests import factories
from tests.tracking.gateway_harness import GatewayProcess, connect, recv_exact
from tracking import tasks
from tracking.models import Ping, TerminalInstallation
from tracking.protocols import gt06
from tracking.protocols.common import Fix
from vehicles.models import Vehicle

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

TOWN = (39.8826, 117.7390)  # Yutian town
STASH = (39.8700, 117.7800)  # a yard on the way to Hongqiao: where both bikes end up


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def fix(at: datetime.datetime, point: tuple[float, float], speed: float) -> Fix:
    return Fix(time=at, latitude=point[0], longitude=point[1], valid=True, speed_kmh=speed, course=90.0, satellites=9)


def ride(start: datetime.datetime, minutes: int, frm: tuple[float, float], to: tuple[float, float]) -> list[Fix]:
    """One fix a minute from `frm` to `to` (~5 km in 20 min: 15 km/h)."""
    return [
        fix(
            start + datetime.timedelta(minutes=m),
            (frm[0] + (to[0] - frm[0]) * m / minutes, frm[1] + (to[1] - frm[1]) * m / minutes),
            15.0,
        )
        for m in range(minutes)
    ]


def parked(start: datetime.datetime, minutes: int, at: tuple[float, float]) -> list[Fix]:
    return [fix(start + datetime.timedelta(minutes=m), at, 0.0) for m in range(minutes)]


def speak_gt06(gateway: GatewayProcess, imei: str, fixes: list[Fix]) -> None:
    """Log in as the terminal and send the fixes; every location is acknowledged after its commit."""
    with connect(gateway.ports["gt06"]) as sock:
        sock.sendall(gt06.encode_login(imei, 1))
        assert recv_exact(sock, 10) == gt06.login_ack(1)
        sock.sendall(b"".join(gt06.encode_location(f, 2 + i) for i, f in enumerate(fixes)))
        assert recv_exact(sock, 10 * len(fixes)) == b"".join(gt06.ack(0x12, 2 + i) for i in range(len(fixes)))


def register_with_terminal(clerk_api: APIClient, imei: str) -> dict:
    registered = clerk_api.post("/api/v1/registrations", factories.registration_payload(), format="json")
    assert registered.status_code == 201, registered.json()
    vehicle = registered.json()["vehicle"]
    terminal = clerk_api.post("/api/v1/terminals", {"imei": imei, "protocol": "gt06"}, format="json")
    assert terminal.status_code == 201, terminal.json()
    bound = clerk_api.post(
        f"/api/v1/terminals/{terminal.json()['id']}/bind",
        {"vehicle_id": vehicle["id"], "owner_consent": True},
        format="json",
    )
    assert bound.status_code == 201, bound.json()
    # Registered and fitted last week: the fixes below (hours ago) fall inside the fitting.
    TerminalInstallation.objects.filter(terminal_id=terminal.json()["id"]).update(
        installed_at=timezone.now() - datetime.timedelta(days=7)
    )
    return vehicle


def take_report(officer_api: APIClient, vehicle: dict, missing_at: datetime.datetime) -> dict:
    taken = officer_api.post(
        "/api/v1/theft-reports",
        {
            "channel": "walk_in",
            "plate": vehicle["plate"]["number"],
            "reporter_name": "李建国",
            "reporter_phone": "13900001111",
            "last_seen_at": (missing_at - datetime.timedelta(hours=1)).isoformat(),
            "missing_at": missing_at.isoformat(),
            "place_address": "玉田县无终街道",
            "latitude": TOWN[0],
            "longitude": TOWN[1],
        },
        format="json",
    )
    assert taken.status_code == 201, taken.json()
    return taken.json()


def step(officer_api: APIClient, report: dict, to_status: str, note: str = "", **filing: object) -> dict:
    moved = officer_api.post(
        f"/api/v1/theft-reports/{report['id']}/transition",
        {"to_status": to_status, "note": note, **filing},
        format="json",
    )
    assert moved.status_code == 200, moved.json()
    return moved.json()


def test_a_stolen_bike_is_traced_through_the_gateway_linked_with_its_ring_recovered_and_returned(gateway):
    cache.clear()  # the public check's rate limit
    clerk = factories.user("clerk")
    officer = factories.user("officer", first_name="强", last_name="赵")  # takes the reports
    detective = factories.user("officer", first_name="伟", last_name="李")  # handles the case
    clerk_api, officer_api, detective_api = api_for(clerk), api_for(officer), api_for(detective)

    bike = register_with_terminal(clerk_api, "864717003283581")
    other = register_with_terminal(clerk_api, "356307042441013")
    now = timezone.now().replace(microsecond=0)
    report = take_report(officer_api, bike, now - datetime.timedelta(hours=3))
    other_report = take_report(officer_api, other, now - datetime.timedelta(hours=6))
    # Filing the report opens its case, the detective on it, in the same step.
    number = "玉公刑立字〔2026〕0301号"
    filed = step(officer_api, report, "filed_criminal", "价值 3200 元", case_number=number, officer_ids=[detective.pk])
    [case] = filed["cases"]
    case_id = case["id"]
    # The station's leader approves the filing; from then on the detective has the case's duty.
    leader_api = api_for(factories.user("admin", first_name="军", last_name="张"))
    assert leader_api.post(f"/api/v1/cases/{case_id}/approve").status_code == 200
    assert Vehicle.objects.get(pk=bike["id"]).status == "stolen"

    # The other stolen bike stood at the stash earlier; then the bike is ridden there and left.
    t0 = now - datetime.timedelta(minutes=150)
    speak_gt06(gateway, "356307042441013", parked(t0, 40, STASH))
    t1 = now - datetime.timedelta(minutes=90)
    trip = ride(t1, 20, TOWN, STASH) + parked(t1 + datetime.timedelta(minutes=20), 45, STASH)
    speak_gt06(gateway, "864717003283581", trip)
    assert Ping.objects.filter(terminal__vehicle_id=bike["id"]).count() == len(trip)  # acked = stored

    # Derived work from the committed rows: one sighting, the case officer told once.
    tasks.process_outbox()
    [sighting] = Sighting.objects.filter(report_id=report["id"])
    assert sighting.started_at == t1 and sighting.notified_at is not None
    [told] = Notification.objects.filter(user=detective, kind="sighting")
    assert bike["plate"]["number"] in told.title
    assert not Notification.objects.filter(user=clerk).exists()

    # The detective traces the bike: its stop at the stash, and who else was there.
    stops = detective_api.get(
        f"/api/v1/vehicles/{bike['id']}/stops",
        {"since": (t1 - datetime.timedelta(hours=1)).isoformat(), "nearby_stolen": "true", "nearby_radius": 50},
    )
    assert stops.status_code == 200, stops.json()
    [stop] = stops.json()["stops"]
    assert stop["latitude"] == pytest.approx(STASH[0], abs=1e-4)
    assert stop["longitude"] == pytest.approx(STASH[1], abs=1e-4)
    assert [(v["vehicle_id"], v["report_number"]) for v in stop["nearby_stolen"]] == [
        (other["id"], other_report["number"])
    ]
    position = detective_api.get(f"/api/v1/vehicles/{bike['id']}/position")
    assert position.status_code == 200 and position.json()["position"]["latitude"] == pytest.approx(STASH[0], abs=1e-4)

    # One ring: the other bike's report joins the case.
    joined = step(detective_api, other_report, "filed_criminal", case_id=case_id)
    assert joined["cases"] == [case]
    detail = detective_api.get(f"/api/v1/cases/{case_id}").json()
    assert {link["report"] for link in detail["links"]} == {report["id"], other_report["id"]}
    assert CaseLink.objects.filter(case_id=case_id, unlinked_at__isnull=True).count() == 2

    # Recovered at the stash and handed back to the owner.
    step(detective_api, report, "recovered", "在堆场追回")
    step(detective_api, report, "returned", "已发还车主")
    assert Vehicle.objects.get(pk=bike["id"]).status == "registered"
    check = APIClient().get("/api/v1/public/stolen-check", {"plate": bike["plate"]["number"]})
    assert check.status_code == 200 and check.json()["stolen"] is False

    # The trail: every step with officer and time, every look at the positions.
    steps = list(ReportTransition.objects.filter(report_id=report["id"]).order_by("at", "pk"))
    assert [(s.to_status, s.by_id) for s in steps] == [
        ("received", officer.pk),
        ("filed_criminal", officer.pk),
        ("recovered", detective.pk),
        ("returned", detective.pk),
    ]
    looks = AuditEntry.objects.filter(user=detective, object_id=str(bike["id"]))
    assert {"trajectory.stops", "trajectory.position"} <= set(looks.values_list("action", flat=True))
    assert AuditEntry.objects.filter(user=detective, action__startswith="case.").exists()
