"""Statistics benchmark: every dashboard query at county scale.

    .venv/bin/python bench/stats.py [--scale small|full]

small = 20,000 vehicles and 1,000 theft reports; full = 1,000,000 vehicles and 50,000 theft reports
(vehicles from `seed_demo --if-fewer N`, as bench/registry.py). What statistics need beyond the
registry is built here if absent and kept for the next run, marked so it can be told apart:
theft reports over the last two years (narrative "bench/stats.py seed") spread around the
county's towns, with their workflow steps (60 % filed, 45 % recovered after 0-60 days); alarms
(5 per 100 vehicles) from bench terminals with IMEIs 869997…; cases linking reports, rescue
duty-room calls, and a plate-rate estimate per township for this year.

Then the rollups are rebuilt (timed: what the beat task costs; the current month of the theft
figures is always counted live, the whole months before it come from the rollup) and each dashboard query is timed
through its selector, exactly as the API and the page call it, round-robin
(bench.time_interleaved). Baselines in the same run: `SELECT 1`, and the two queries the rollups
replace run against the source tables (plated bikes by township and station; registrations per
month and station over all events). Target: p50 < 200 ms per dashboard query at full scale.
"""

import datetime
import random
from typing import Any

import _common as bench

SCALES = {
    "small": {"vehicles": 20_000, "reports": 1_000, "runs": 15},
    "full": {"vehicles": 1_000_000, "reports": 50_000, "runs": 25},
}
WARMUP = 3
TARGET_MS = 200
BENCH_NOTE = "bench/stats.py seed"
IMEI_PREFIX = "869997"
ALARMS_PER_100 = 5
TERMINALS = 2_000
# Approximate town centres of the demo county (lat, lon); demo values, not survey data.
TOWNS = [(39.8826, 117.7390), (39.9005, 117.7050), (39.8600, 117.7800), (39.7700, 117.8000), (39.7400, 117.6500)]


def execute(sql: str, params: Any = None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def scalar(sql: str, params: Any = None) -> Any:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def bench_admin() -> Any:
    from django.contrib.auth.models import Group

    from accounts.models import User

    user = User.objects.filter(username="bench-stats-admin").first()
    if user is None:
        user = User.objects.create_user(username="bench-stats-admin", password=None)
        user.groups.add(Group.objects.get(name="admin"))
    return user


def seed_reports(target: int, user_id: int, rng: random.Random) -> int:
    """Theft reports received over the last two years, with their steps; returns how many were added."""
    from django.contrib.gis.geos import Point
    from django.utils import timezone

    from accounts.models import Station, Township
    from cases.models import TheftReport

    have = TheftReport.objects.filter(narrative=BENCH_NOTE).count()
    missing = target - have
    if missing <= 0:
        return 0
    stations = list(Station.objects.values_list("pk", flat=True))
    townships = list(Township.objects.values_list("code", flat=True))
    now = timezone.now()
    start = scalar("SELECT coalesce(max(id), 0) FROM cases_theftreport")
    batch: list[TheftReport] = []
    times: list[tuple[int, datetime.datetime]] = []
    for i in range(missing):
        lat, lon = rng.choice(TOWNS)
        received = now - datetime.timedelta(seconds=rng.randrange(2 * 365 * 86400))
        batch.append(
            TheftReport(
                number=f"BS{start + i + 1:010d}",
                channel="walk_in",
                station_id=rng.choice(stations),
                receiving_officer_id=user_id,
                unregistered_description="bench",
                reporter_name="报案人",
                reporter_phone="13800000000",
                last_seen_at=received - datetime.timedelta(hours=3),
                missing_at=received - datetime.timedelta(hours=1),
                place_address="玉田县",
                place_point=None
                if rng.random() < 0.05
                else Point(lon + rng.gauss(0, 0.02), lat + rng.gauss(0, 0.015), srid=4326),
                township_id=rng.choice(townships),
                narrative=BENCH_NOTE,
            )
        )
        times.append((i, received))
    created = TheftReport.objects.bulk_create(batch, batch_size=5_000)
    ids = [r.pk for r in created]
    received_at = [times[i][1] for i in range(len(ids))]
    execute(
        """UPDATE cases_theftreport t SET received_at = v.at, status_changed_at = v.at,
                  last_seen_at = v.at - interval '3 hours', missing_at = v.at - interval '1 hour'
           FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, at) WHERE t.id = v.id""",
        [ids, received_at],
    )
    # Steps: received for all; 60 % filed next day; 45 % recovered 0-60 days after receipt.
    execute(
        """
        WITH r AS (SELECT id, received_at, random() AS u, random() AS w FROM cases_theftreport WHERE id = ANY(%(ids)s))
        INSERT INTO cases_reporttransition (report_id, from_status, to_status, at, by_id, note)
        SELECT id, '', 'received', received_at, %(by)s, '' FROM r
        UNION ALL
        SELECT id, 'received', 'filed_criminal', received_at + interval '1 day', %(by)s, '' FROM r WHERE u < 0.6
        UNION ALL
        SELECT id, CASE WHEN u < 0.6 THEN 'filed_criminal' ELSE 'received' END, 'recovered',
               received_at + w * interval '60 days', %(by)s, ''
        FROM r WHERE u < 0.45 OR (u >= 0.6 AND w < 0.2)
        """,
        {"ids": ids, "by": user_id},
    )
    execute(
        """UPDATE cases_theftreport t SET status = 'recovered' FROM cases_reporttransition x
           WHERE x.report_id = t.id AND x.to_status = 'recovered' AND t.id = ANY(%s)""",
        [ids],
    )
    return len(ids)


def luhn(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def seed_alarms(vehicles: int, rng: random.Random) -> int:
    from django.utils import timezone

    from tracking.models import Alarm, Terminal

    target = vehicles * ALARMS_PER_100 // 100
    have = Alarm.objects.filter(terminal__imei__startswith=IMEI_PREFIX).count()
    if have >= target:
        return 0
    Terminal.objects.bulk_create(
        [Terminal(imei=luhn(f"{IMEI_PREFIX}{n:08d}"), protocol="gt06") for n in range(TERMINALS)],
        ignore_conflicts=True,
    )
    terminals = list(Terminal.objects.filter(imei__startswith=IMEI_PREFIX).values_list("pk", flat=True))
    vehicle_ids = list(
        __import__("vehicles.models", fromlist=["Vehicle"])
        .Vehicle.objects.order_by("?")
        .values_list("pk", flat=True)[:20_000]
    )
    kinds = [("vibration", 40), ("power_cut", 20), ("low_battery", 20), ("movement", 10), ("sos", 5), ("fall", 3),
             ("offline", 2)]  # fmt: skip
    names = [k for k, w in kinds for _ in range(w)]
    now = timezone.now()
    rows = [
        Alarm(
            terminal_id=rng.choice(terminals),
            vehicle_id=rng.choice(vehicle_ids),
            kind=rng.choice(names),
            at=now - datetime.timedelta(seconds=rng.randrange(2 * 365 * 86400), microseconds=rng.randrange(10**6)),
            status=rng.choice(["new", "acknowledged", "closed"]),
        )
        for _ in range(target - have)
    ]
    Alarm.objects.bulk_create(rows, batch_size=5_000, ignore_conflicts=True)
    return len(rows)


def seed_cases_and_calls(reports: int, user_id: int, rng: random.Random) -> None:
    from cases.models import Case, CaseLink, DutyCall, TheftReport
    from tracking.models import Alarm

    if not Case.objects.filter(summary=BENCH_NOTE).exists():
        report_rows = list(
            TheftReport.objects.filter(narrative=BENCH_NOTE).values_list("pk", "station_id", "received_at")
        )
        rng.shuffle(report_rows)
        cases, links = [], []
        for n in range(reports // 10):
            group = report_rows[n * 3 : n * 3 + rng.randint(1, 3)]
            if not group:
                break
            solved = rng.random() < 0.5
            cases.append(
                Case(
                    number=f"BSC{n:08d}",
                    kind="criminal",
                    station_id=group[0][1],
                    filed_on=(group[0][2] + datetime.timedelta(days=1)).date(),
                    approved_by_id=user_id,
                    status="solved" if solved else "open",
                    solved_with_positioning=solved and rng.random() < 0.6,
                    summary=BENCH_NOTE,
                )
            )
            links.append(group)
        created = Case.objects.bulk_create(cases, batch_size=5_000)
        CaseLink.objects.bulk_create(
            [
                CaseLink(case=c, report_id=r[0], linked_by_id=user_id)
                for c, group in zip(created, links, strict=True)
                for r in group
            ],
            batch_size=5_000,
        )
    if not DutyCall.objects.filter(note=BENCH_NOTE).exists():
        rescues = Alarm.objects.filter(kind__in=["sos", "fall"], vehicle__isnull=False).select_related("vehicle")
        calls = []
        for alarm in rescues.order_by("id")[: max(100, reports // 25)]:
            answered = rng.random() < 0.9
            calls.append(
                DutyCall(
                    kind="rescue",
                    station_id=alarm.vehicle.station_id,
                    alarm_id=alarm.pk,
                    vehicle_id=alarm.vehicle_id,
                    raised_at=alarm.at,
                    status="closed",
                    acknowledged_at=alarm.at + datetime.timedelta(seconds=rng.randrange(30, 1800))
                    if answered
                    else None,
                    closed_at=alarm.at + datetime.timedelta(hours=1),
                    note=BENCH_NOTE,
                )
            )
        DutyCall.objects.bulk_create(calls, batch_size=5_000, ignore_conflicts=True)


def seed_estimates(user_id: int) -> None:
    from django.db.models import Count
    from django.utils import timezone

    from accounts.models import Township
    from stats.models import PlateEstimate
    from vehicles.models import Owner

    year = timezone.localdate().year
    owners = dict(Owner.objects.values("township_id").annotate(n=Count("id")).values_list("township_id", "n"))
    for code in Township.objects.values_list("code", flat=True):
        if not PlateEstimate.objects.filter(township_id=code, year=year).exists():
            PlateEstimate.objects.create(
                township_id=code,
                year=year,
                estimated_bikes=max(100, int(owners.get(code, 0) * 1.8)),
                method="per_capita",
                note=BENCH_NOTE,
                entered_by_id=user_id,
            )


def main() -> None:
    args = bench.parse_args(__doc__.split("\n\n")[0])
    bench.setup_django()
    from django.core.management import call_command
    from django.utils import timezone

    from stats import selectors
    from stats.params import Filters, Period, default_period
    from stats.rollups import plated_refresh, registrations_refresh, thefts_refresh
    from vehicles.models import Vehicle

    scale = SCALES[args.scale]
    rng = random.Random()
    bench.log(f"stats bench, scale {args.scale}: {scale['vehicles']:,} vehicles, {scale['reports']:,} reports")
    with bench.Stopwatch() as seeding:
        call_command("seed_demo", if_fewer=scale["vehicles"])
        admin = bench_admin()
        added = seed_reports(scale["reports"], admin.pk, rng)
        vehicles = Vehicle.objects.count()
        alarms = seed_alarms(vehicles, rng)
        seed_cases_and_calls(scale["reports"], admin.pk, rng)
        seed_estimates(admin.pk)
        execute(
            "ANALYZE cases_theftreport, cases_reporttransition, tracking_alarm, cases_case, cases_caselink,"
            " cases_dutycall"
        )
    bench.log(f"{vehicles:,} vehicles; added {added:,} reports, {alarms:,} alarms ({seeding.seconds:.1f} s)")

    with bench.Stopwatch() as rebuild:
        registrations_refresh(rebuild=True)
    with bench.Stopwatch() as plated:
        plated_refresh()
    with bench.Stopwatch() as thefts:
        thefts_refresh()
    execute("ANALYZE stats_registrationday, stats_platedcount, stats_theftmonth")
    bench.log(
        f"rollups: registrations rebuilt in {rebuild.seconds:.1f} s, plated snapshot {plated.seconds:.1f} s,"
        f" theft months {thefts.seconds:.1f} s"
    )

    today = timezone.localdate()
    year = default_period(today)
    runs = list(range(WARMUP + scale["runs"]))
    cases = {
        "plate_rate_townships": (lambda _: selectors.plate_rate_townships(), runs),
        "plate_rate_stations": (lambda _: selectors.plate_rate_stations(), runs),
        "registrations_day_90d": (
            lambda _: selectors.registrations_series(
                Filters(period=Period(today - datetime.timedelta(days=89), today), granularity="day")
            ),
            runs,
        ),
        "registrations_week_1y": (
            lambda _: selectors.registrations_series(Filters(period=year, granularity="week")),
            runs,
        ),
        "registrations_month_6y": (
            lambda _: selectors.registrations_series(
                Filters(period=Period(today - datetime.timedelta(days=6 * 365), today), granularity="month")
            ),
            runs,
        ),
        "thefts_monthly_1y": (lambda _: selectors.thefts_monthly(Filters(period=year)), runs),
        "thefts_monthly_2y": (
            lambda _: selectors.thefts_monthly(Filters(period=Period(today - datetime.timedelta(days=2 * 365), today))),
            runs,
        ),
        "alarms_by_kind_1y": (lambda _: selectors.alarms_by_kind(Filters(period=year)), runs),
        "cases_monthly_1y": (lambda _: selectors.cases_monthly(Filters(period=year)), runs),
        "rescues_monthly_1y": (lambda _: selectors.rescues_monthly(Filters(period=year)), runs),
        "hotspots_500m_1y": (lambda _: selectors.theft_hotspots(Filters(period=year, cell_m=500)), runs),
    }
    baseline_select1 = bench.baseline_select1()
    samples = bench.time_interleaved(cases, warmup=WARMUP)

    # What the rollups save: the same figures from the source tables.
    plain_plated = bench.time_calls(
        lambda _: scalar(
            """SELECT count(*) FROM (SELECT o.township_id, v.station_id, count(*) FROM vehicles_plate p
               JOIN vehicles_vehicle v ON v.id = p.vehicle_id JOIN vehicles_owner o ON o.id = v.owner_id
               WHERE p.status = 'issued' GROUP BY 1, 2) x"""
        ),
        range(5),
        warmup=range(1),
    )
    plain_registrations = bench.time_calls(
        lambda _: scalar(
            """SELECT count(*) FROM (SELECT date_trunc('month', e.at AT TIME ZONE 'Asia/Shanghai'), v.station_id,
               e.kind, count(*) FROM vehicles_registrationevent e JOIN vehicles_vehicle v ON v.id = e.vehicle_id
               GROUP BY 1, 2, 3) x"""
        ),
        range(5),
        warmup=range(1),
    )

    results: dict[str, Any] = {"vehicles": vehicles, "theft_reports": scalar("SELECT count(*) FROM cases_theftreport")}
    for name in cases:
        results.update(bench.latency_keys(name, samples[name]))
    results.update(
        {
            "baseline_select1_p50_ms": bench.p50(baseline_select1),
            "baseline_plated_from_source_p50_ms": bench.p50(plain_plated),
            "baseline_registrations_month_from_source_p50_ms": bench.p50(plain_registrations),
            "rollup_registrations_rebuild_s": round(rebuild.seconds, 2),
            "rollup_plated_refresh_s": round(plated.seconds, 2),
            "rollup_thefts_refresh_s": round(thefts.seconds, 2),
            "alarms": scalar("SELECT count(*) FROM tracking_alarm"),
            "iterations": scale["runs"],
            "seed_seconds": round(seeding.seconds, 1),
            **bench.machine(),
        }
    )
    missed = [name for name in cases if results[f"{name}_p50_ms"] >= TARGET_MS]
    for name in cases:
        bench.log(
            f"{name:24s} p50 {results[f'{name}_p50_ms']:8.2f} ms  p99 {results[f'{name}_p99_ms']:8.2f} ms"
            f"  (target p50 < {TARGET_MS} ms{'  MISSED' if name in missed else ''})"
        )
    bench.log(
        f"baselines: SELECT 1 {results['baseline_select1_p50_ms']} ms; from source tables: plated"
        f" {results['baseline_plated_from_source_p50_ms']} ms, registrations by month"
        f" {results['baseline_registrations_month_from_source_p50_ms']} ms"
    )
    results["targets_missed"] = missed
    bench.emit("stats", args.scale, results)


if __name__ == "__main__":
    main()
