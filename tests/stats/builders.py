"""Small, exactly known data sets for the statistics tests, written with explicit timestamps.

Registration history is dated in the past here, which the counter services (stamping "now")
cannot do; the rows are the same ones vehicle_register and vehicle_deregister write.
"""

import datetime
import itertools
import zoneinfo
from decimal import Decimal

from django.contrib.gis.geos import Point
from django.db import connection

from accounts.models import Station, User
from cases.models import Case, CaseLink, DutyCall, ReportStatus, TheftReport
from tests import factories
from tracking.models import Alarm, Terminal
from vehicles.models import Owner, Plate, PlateSeries, RegistrationEvent, Vehicle

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
_n = itertools.count(1)


def at(text: str) -> datetime.datetime:
    """'2026-03-02 10:00' in county time."""
    return datetime.datetime.fromisoformat(text).replace(tzinfo=TZ)


def bike(*, clerk: User, station: str, township: str | None, when: str) -> Vehicle:
    n = next(_n)
    moment = at(when)
    st = Station.objects.get(code=station)
    owner = Owner.objects.create(
        name=f"车主{n}",
        id_number=factories.resident_id(seq=n % 1000, birth=f"19{50 + n // 1000:02d}0101"),
        phone=factories.phone(),
        address="河北省唐山市玉田县",
        township_id=township,
    )
    vehicle = Vehicle.objects.create(
        frame_number=factories.frame_number(900_000 + n),
        motor_number=f"ST{n:08d}",
        manufacturer="雅迪科技集团有限公司",
        brand="雅迪",
        model_name="T1",
        colour="白",
        production_date=datetime.date(2025, 1, 1),
        purchase_date=datetime.date(2025, 2, 1),
        purchase_price=Decimal("2000.00"),
        owner=owner,
        station=st,
        registered_at=moment,
    )
    series = PlateSeries.objects.filter(station=st, kind="green").first()
    plate = Plate.objects.create(
        number=f"T{station[-2:]}{n:05d}", series=series, kind="green", vehicle=vehicle, issued_at=moment
    )
    RegistrationEvent.objects.create(
        vehicle=vehicle, kind="register", at=moment, clerk=clerk, station=st, owner=owner, plate=plate
    )
    return vehicle


def deregister(*, clerk: User, vehicle: Vehicle, when: str) -> None:
    moment = at(when)
    Plate.objects.filter(vehicle=vehicle, status="issued").update(status="void", ended_at=moment)
    Vehicle.objects.filter(pk=vehicle.pk).update(status="deregistered")
    RegistrationEvent.objects.create(
        vehicle=vehicle, kind="deregister", at=moment, clerk=clerk, station=vehicle.station, owner=vehicle.owner
    )


def transition(*, report: TheftReport, officer: User, old: str, new: str, when: datetime.datetime) -> None:
    """A workflow step as of `when`. Steps are append-only (never updated afterwards), so one in the
    past is inserted with its time, as the demo seeder does."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO cases_reporttransition (report_id, from_status, to_status, at, by_id, note)"
            " VALUES (%s, %s, %s, %s, %s, '')",
            [report.pk, old, new, when, officer.pk],
        )


def report(
    *,
    officer: User,
    station: str,
    received: str,
    point: tuple[float, float] | None = None,
    steps: list[tuple[str, str]] = (),
) -> TheftReport:
    """A theft report received at `received`, then the workflow steps [(status, when), …]."""
    n = next(_n)
    received_at = at(received)
    r = TheftReport.objects.create(
        number=f"STAT{n:06d}",
        channel="walk_in",
        station=Station.objects.get(code=station),
        receiving_officer=officer,
        unregistered_description="test bike",
        reporter_name="报案人",
        reporter_phone=factories.phone(),
        last_seen_at=received_at - datetime.timedelta(hours=3),
        missing_at=received_at - datetime.timedelta(hours=1),
        place_address="玉田县",
        place_point=Point(point[1], point[0], srid=4326) if point else None,
    )
    TheftReport.objects.filter(pk=r.pk).update(received_at=received_at)
    transition(report=r, officer=officer, old="", new="received", when=received_at)
    old, changed = "received", received_at
    for status, when in steps:
        changed = at(when)
        transition(report=r, officer=officer, old=old, new=status, when=changed)
        old = status
    TheftReport.objects.filter(pk=r.pk).update(status=old, status_changed_at=changed)
    return r


def terminal(vehicle: Vehicle) -> Terminal:
    n = next(_n)
    return Terminal.objects.create(imei=f"86{n:013d}", protocol="gt06", vehicle=vehicle)


def alarm(*, term: Terminal, kind: str, when: str) -> Alarm:
    return Alarm.objects.create(terminal=term, vehicle=term.vehicle, kind=kind, at=at(when))


def case(
    *,
    approver: User,
    station: str,
    filed_on: str,
    reports: list[TheftReport],
    status: str = "open",
    positioning: bool = False,
) -> Case:
    c = Case.objects.create(
        number=f"C{next(_n):08d}",
        kind="criminal",
        station=Station.objects.get(code=station),
        filed_on=datetime.date.fromisoformat(filed_on),
        approved_by=approver,
        status=status,
        solved_with_positioning=positioning,
    )
    for r in reports:
        CaseLink.objects.create(case=c, report=r, linked_by=approver)
    return c


def rescue(*, vehicle: Vehicle, raised: str, answered: str | None) -> DutyCall:
    return DutyCall.objects.create(
        kind="rescue",
        station=vehicle.station,
        alarm_id=next(_n),
        vehicle=vehicle,
        raised_at=at(raised),
        acknowledged_at=at(answered) if answered else None,
        status="acknowledged" if answered else "new",
    )


__all__ = ["ReportStatus"]
