"""Demo activity for the statistics: what the dashboard shows beyond the registry itself.

`seed_demo` makes owners, bikes and plates; this adds, marked with DEMO_NOTE so it can be told
apart from real records (and is not added twice):
- theft reports received over the last two years around the county's towns (5 % without a map
  point), with their workflow steps: all received, 60 % filed as criminal cases the next day,
  45 % recovered 1-60 days after receipt (plus 8 % never filed but recovered); no step is dated
  in the future, and each report's status is its last step;
- alarms from demo terminals (IMEIs 869997…, 5 per 100 vehicles) of the usual kinds;
- cases linking one to three reports each (half solved, most of those with positioning data) and
  answered duty-room rescue calls for the SOS and fall alarms;
- a plate-rate estimate per township for this year (per-capita method).

Used by `manage.py seed_demo_activity`, bench/stats.py and the dashboard's browser test.
"""

import datetime
import random
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group
from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from accounts.models import Station, Township, User
from accounts.roles import ADMIN
from cases.models import Case, CaseLink, DutyCall, TheftReport
from stats.models import PlateEstimate
from tracking.models import Alarm, Terminal
from tracking.protocols.common import luhn_check_digit
from vehicles.models import Owner, Vehicle

DEMO_NOTE = "demo activity (seed_demo_activity)"
DEMO_USER = "demo-stats-admin"
IMEI_PREFIX = "869997"
ALARMS_PER_100 = 5
TERMINALS = 2_000
HISTORY = datetime.timedelta(days=2 * 365)
# Approximate town centres of the demo county (lat, lon); demo values, not survey data.
TOWNS = [(39.8826, 117.7390), (39.9005, 117.7050), (39.8600, 117.7800), (39.7700, 117.8000), (39.7400, 117.6500)]
ALARM_KINDS = [
    ("vibration", 40),
    ("power_cut", 20),
    ("low_battery", 20),
    ("movement", 10),
    ("sos", 5),
    ("fall", 3),
    ("offline", 2),
]


@dataclass
class Seeded:
    reports: int = 0
    alarms: int = 0
    cases: int = 0
    calls: int = 0
    estimates: int = 0


def _execute(sql: str, params: Any = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def demo_admin() -> User:
    """The account the demo records name as receiving officer, approver and estimator."""
    user = User.objects.filter(username=DEMO_USER).first()
    if user is None:
        user = User.objects.create_user(username=DEMO_USER, password=None)
        user.groups.add(Group.objects.get(name=ADMIN))
    return user


def _imei(serial: int) -> str:
    body = f"{IMEI_PREFIX}{serial:08d}"
    return body + str(luhn_check_digit(body))  # IMEIs are checked at the counter and by the gateway


def seed_reports(target: int, user: User, rng: random.Random) -> int:
    """Theft reports up to `target` demo reports in all, with their steps; returns how many were added."""
    missing = target - TheftReport.objects.filter(narrative=DEMO_NOTE).count()
    if missing <= 0:
        return 0
    stations = list(Station.objects.values_list("pk", flat=True))
    townships = list(Township.objects.values_list("code", flat=True))
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM cases_theftreport")
        start = cursor.fetchone()[0]
    reports, received = [], []
    for i in range(missing):
        lat, lon = rng.choice(TOWNS)
        at = now - datetime.timedelta(seconds=rng.randrange(int(HISTORY.total_seconds())))
        received.append(at)
        reports.append(
            TheftReport(
                number=f"DS{start + i + 1:010d}",
                channel=TheftReport.Channel.WALK_IN,
                station_id=rng.choice(stations),
                receiving_officer=user,
                unregistered_description="demo",
                reporter_name="报案人",
                reporter_phone="13800000000",
                last_seen_at=at - datetime.timedelta(hours=3),
                missing_at=at - datetime.timedelta(hours=1),
                place_address="玉田县",
                place_point=None
                if rng.random() < 0.05
                else Point(lon + rng.gauss(0, 0.02), lat + rng.gauss(0, 0.015), srid=4326),
                township_id=rng.choice(townships),
                narrative=DEMO_NOTE,
            )
        )
    ids = [r.pk for r in TheftReport.objects.bulk_create(reports, batch_size=5_000)]
    # received_at is auto_now_add: the spread over two years is written afterwards.
    _execute(
        """UPDATE cases_theftreport t SET received_at = v.at, status_changed_at = v.at,
                  last_seen_at = v.at - interval '3 hours', missing_at = v.at - interval '1 hour'
           FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, at) WHERE t.id = v.id""",
        [ids, received],
    )
    _execute(
        """
        WITH r AS (
            SELECT id, received_at, received_at + interval '1 day' AS filed_at,
                   received_at + interval '1 day' + random() * interval '59 days' AS recovered_at, random() AS u
            FROM cases_theftreport WHERE id = ANY(%(ids)s)
        ),
        s AS (  -- no step in the future: a report taken today is still only received
            SELECT id, received_at, u,
                   CASE WHEN u < 0.6 AND filed_at <= now() THEN filed_at END AS filed_at,
                   CASE WHEN (u < 0.45 OR (u >= 0.6 AND u < 0.68)) AND recovered_at <= now() THEN recovered_at END
                       AS recovered_at
            FROM r
        )
        INSERT INTO cases_reporttransition (report_id, from_status, to_status, at, by_id, note)
        SELECT id, '', 'received', received_at, %(by)s, '' FROM s
        UNION ALL
        SELECT id, 'received', 'filed_criminal', filed_at, %(by)s, '' FROM s WHERE filed_at IS NOT NULL
        UNION ALL
        SELECT id, CASE WHEN filed_at IS NOT NULL THEN 'filed_criminal' ELSE 'received' END, 'recovered',
               recovered_at, %(by)s, ''
        FROM s WHERE recovered_at IS NOT NULL AND (filed_at IS NOT NULL OR u >= 0.6)
        """,
        {"ids": ids, "by": user.pk},
    )
    _execute(
        """UPDATE cases_theftreport t SET status = x.to_status, status_changed_at = x.at
           FROM (SELECT DISTINCT ON (report_id) report_id, to_status, at FROM cases_reporttransition
                 WHERE report_id = ANY(%s) ORDER BY report_id, at DESC) x
           WHERE x.report_id = t.id""",
        [ids],
    )
    return len(ids)


def seed_alarms(rng: random.Random) -> int:
    """Alarms up to ALARMS_PER_100 per 100 vehicles, from the demo terminals, over two years."""
    target = Vehicle.objects.count() * ALARMS_PER_100 // 100
    have = Alarm.objects.filter(terminal__imei__startswith=IMEI_PREFIX).count()
    if have >= target:
        return 0
    Terminal.objects.bulk_create(
        [Terminal(imei=_imei(n), protocol="gt06") for n in range(TERMINALS)],
        ignore_conflicts=True,
    )
    terminals = list(Terminal.objects.filter(imei__startswith=IMEI_PREFIX).values_list("pk", flat=True))
    vehicles = list(Vehicle.objects.order_by("?").values_list("pk", flat=True)[:20_000])
    kinds = [kind for kind, weight in ALARM_KINDS for _ in range(weight)]
    now = timezone.now()
    span = int(HISTORY.total_seconds()) * 1_000_000
    rows = [
        Alarm(
            terminal_id=rng.choice(terminals),
            vehicle_id=rng.choice(vehicles),
            kind=rng.choice(kinds),
            at=now - datetime.timedelta(microseconds=rng.randrange(span)),
            status=rng.choice(["new", "acknowledged", "closed"]),
        )
        for _ in range(target - have)
    ]
    Alarm.objects.bulk_create(rows, batch_size=5_000, ignore_conflicts=True)
    return len(rows)


def seed_cases(reports: int, user: User, rng: random.Random) -> int:
    """About one case per ten demo reports, each linking one to three of them."""
    if Case.objects.filter(summary=DEMO_NOTE).exists():
        return 0
    rows = list(TheftReport.objects.filter(narrative=DEMO_NOTE).values_list("pk", "station_id", "received_at"))
    rng.shuffle(rows)
    cases, groups = [], []
    for n in range(reports // 10):
        group = rows[n * 3 : n * 3 + rng.randint(1, 3)]
        if not group:
            break
        solved = rng.random() < 0.5
        cases.append(
            Case(
                number=f"DSC{n:08d}",
                kind=Case.Kind.CRIMINAL,
                station_id=group[0][1],
                filed_on=timezone.localtime(group[0][2] + datetime.timedelta(days=1)).date(),
                approved_by=user,
                status="solved" if solved else "open",
                solved_with_positioning=solved and rng.random() < 0.6,
                summary=DEMO_NOTE,
            )
        )
        groups.append(group)
    created = Case.objects.bulk_create(cases, batch_size=5_000)
    CaseLink.objects.bulk_create(
        [
            CaseLink(case=case, report_id=row[0], linked_by=user)
            for case, group in zip(created, groups, strict=True)
            for row in group
        ],
        batch_size=5_000,
    )
    return len(created)


def seed_rescue_calls(reports: int, rng: random.Random) -> int:
    """Closed duty-room rescue calls for SOS and fall alarms, nine in ten acknowledged."""
    if DutyCall.objects.filter(note=DEMO_NOTE).exists():
        return 0
    alarms = Alarm.objects.filter(kind__in=["sos", "fall"], vehicle__isnull=False).select_related("vehicle")
    calls = []
    for alarm in alarms.order_by("id")[: max(100, reports // 25)]:
        vehicle = alarm.vehicle
        if vehicle is None:  # none: the query asks for alarms with a bike
            continue
        answered = rng.random() < 0.9
        calls.append(
            DutyCall(
                kind=DutyCall.Kind.RESCUE,
                station_id=vehicle.station_id,
                alarm_id=alarm.pk,
                vehicle_id=vehicle.pk,
                raised_at=alarm.at,
                status=DutyCall.Status.CLOSED,
                acknowledged_at=alarm.at + datetime.timedelta(seconds=rng.randrange(30, 1800)) if answered else None,
                closed_at=alarm.at + datetime.timedelta(hours=1),
                note=DEMO_NOTE,
            )
        )
    return len(DutyCall.objects.bulk_create(calls, batch_size=5_000, ignore_conflicts=True))


def seed_estimates(user: User) -> int:
    """An estimate for this year for each township without one: 1.8 bikes per owner living there."""
    year = timezone.localdate().year
    owners = dict(Owner.objects.values("township_id").annotate(n=Count("id")).values_list("township_id", "n"))
    added = 0
    for code in Township.objects.values_list("code", flat=True):
        _, made = PlateEstimate.objects.get_or_create(
            township_id=code,
            year=year,
            defaults={
                "estimated_bikes": max(100, int(owners.get(code, 0) * 1.8)),
                "method": "per_capita",
                "note": DEMO_NOTE,
                "entered_by": user,
            },
        )
        added += made
    return added


def seed_activity(reports: int, *, rng: random.Random | None = None) -> Seeded:
    """Everything above, in one transaction; the registry (seed_demo) comes first."""
    rng = rng or random.Random()  # noqa: S311 - demo data, not security
    with transaction.atomic():
        user = demo_admin()
        seeded = Seeded()
        seeded.reports = seed_reports(reports, user, rng)
        seeded.alarms = seed_alarms(rng)
        seeded.cases = seed_cases(reports, user, rng)
        seeded.calls = seed_rescue_calls(reports, rng)
        seeded.estimates = seed_estimates(user)
    _execute(
        "ANALYZE cases_theftreport, cases_reporttransition, tracking_alarm, cases_case, cases_caselink, cases_dutycall"
    )
    return seeded
