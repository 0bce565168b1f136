"""The figures on the dashboard and under /api/v1/stats/: one function per table.

Each returns a Table: columns (key and label) and rows of plain values, so the page, the JSON API
and the CSV/xlsx exports all print the same numbers. Rates are exact fractions (the page rounds
them for reading, the exports keep every digit); None means unknown (no estimate, nothing to
divide by), never zero.
"""

import datetime
import json
import statistics
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import Station, Township
from cases.figures import (
    CASES_MONTHLY_SQL,
    RESCUE_DAYS_SQL,
    THEFT_HOTSPOTS_SQL,
    THEFT_MONTHS_SQL,
    THEFT_MONTHS_TOUCHED_SQL,
    THEFT_REPORT_IDS_SQL,
)
from stats.models import PlatedCount, PlateEstimate, RollupState, StationArea, TheftMonth
from stats.params import Filters, Period
from stats.rollups import (
    ALARM_STATUSES,
    ALARMS,
    LATE_COMMIT_MARGIN,
    PLATED,
    REGISTRATIONS,
    RESCUES,
    THEFTS,
    day_start,
)
from tracking.selectors.alarms import ALARM_DAYS_SQL
from vehicles.models import RegistrationEvent
from vehicles.selectors import REGISTRATION_DAYS_LIVE_SQL

# Metric projection for the hotspot grid: WGS 84 / UTM zone 50N covers 114°E-120°E, the demo
# county (117.7°E) included. Another county sets STATS_GRID_SRID to its own UTM or CGCS2000 zone.
GRID_SRID = int(getattr(settings, "STATS_GRID_SRID", 32650))


@dataclass
class Table:
    name: str
    columns: list[tuple[str, Any]]  # (key, label)
    rows: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.name,
            "columns": [{"key": key, "label": str(label)} for key, label in self.columns],
            "rows": self.rows,
            **self.meta,
        }


def _rate(numerator: int, denominator: int | None) -> float | None:
    if not denominator:
        return None
    # Not rounded: 2 plated of 50,000 estimated is 0.00004, which four places would make 0.
    return numerator / denominator


def _fetch(sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    # PostGIS functions and the CTEs carry large cost estimates, which trip PostgreSQL's JIT; at
    # a county's size compiling takes longer (0.7-1.4 s measured) than running the query.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        # Grouping sets and medians sort their input: in memory, not in temporary files.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(sql, params)
        names = [c.name for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _bounds(period: Period) -> dict[str, Any]:
    return {
        "since": day_start(period.start),
        "until": day_start(period.end + datetime.timedelta(days=1)),
        "tz": settings.TIME_ZONE,
    }


def _stations() -> dict[int, Station]:
    return {s.pk: s for s in Station.objects.order_by("code")}


def _state(name: str) -> RollupState | None:
    return RollupState.objects.filter(name=name).first()


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime.date | datetime.datetime) else value


# --- plate rate ------------------------------------------------------------------------------------


def estimates_for(year: int) -> dict[str, PlateEstimate]:
    return {e.township_id: e for e in PlateEstimate.objects.filter(year=year)}


def station_areas() -> dict[int, list[str]]:
    """station id -> township codes of its area: StationArea rows, else the station located in
    the township (lowest code when several are)."""
    area_of: dict[str, int] = {}
    for station in Station.objects.order_by("-code"):
        area_of[station.township_id] = station.pk
    for row in StationArea.objects.all():
        area_of[row.township_id] = row.station_id
    areas: dict[int, list[str]] = defaultdict(list)
    for code, station_id in sorted(area_of.items()):
        areas[station_id].append(code)
    return areas


def _plated_meta(year: int) -> dict[str, Any]:
    state = _state(PLATED)
    return {"year": year, "plated_as_of": _iso(state.refreshed_at) if state and state.refreshed_at else None}


def plate_rate_townships(*, year: int | None = None) -> Table:
    """Plated bikes of owners living in each township ÷ that township's estimate for the year."""
    year = year or timezone.localdate().year
    plated: dict[str | None, int] = defaultdict(int)
    for township_id, count in PlatedCount.objects.values_list("township_id", "plated"):
        plated[township_id] += count
    estimates = estimates_for(year)
    rows = []
    for township in Township.objects.order_by("code"):
        estimate = estimates.get(township.code)
        count = plated.get(township.code, 0)
        rows.append(
            {
                "township": township.code,
                "township_name": township.name,
                "plated": count,
                "estimated": estimate.estimated_bikes if estimate else None,
                "method": estimate.method if estimate else None,
                "rate": _rate(count, estimate.estimated_bikes if estimate else None),
            }
        )
    if plated.get(None):
        rows.append(
            {
                "township": None,
                "township_name": str(_("owner's township not recorded")),
                "plated": plated[None],
                "estimated": None,
                "method": None,
                "rate": None,
            }
        )
    columns = [
        ("township", _("township code")),
        ("township_name", _("township")),
        ("plated", _("plated bikes")),
        ("estimated", _("estimated bikes")),
        ("method", _("estimation method")),
        ("rate", _("plate rate")),
    ]
    return Table("plate_rate_townships", columns, rows, _plated_meta(year))


def plate_rate_stations(*, year: int | None = None) -> Table:
    """A station's area is its townships (station_areas). Its plated bikes are those of owners
    living there; its estimate is the sum of their estimates, unknown if any township lacks one.
    `plated_at_counter` counts bikes registered at the station, wherever the owner lives."""
    year = year or timezone.localdate().year
    by_township: dict[str | None, int] = defaultdict(int)
    by_station: dict[int, int] = defaultdict(int)
    for township_id, station_id, count in PlatedCount.objects.values_list("township_id", "station_id", "plated"):
        by_township[township_id] += count
        by_station[station_id] += count
    estimates = estimates_for(year)
    areas = station_areas()
    rows = []
    for station in _stations().values():
        area = areas.get(station.pk, [])
        missing = [code for code in area if code not in estimates]
        estimated = None if missing or not area else sum(estimates[code].estimated_bikes for code in area)
        plated = sum(by_township.get(code, 0) for code in area)
        rows.append(
            {
                "station": station.code,
                "station_name": station.name,
                "townships": ",".join(area),
                "plated": plated,
                "estimated": estimated,
                "rate": _rate(plated, estimated),
                "missing_estimates": ",".join(missing),
                "plated_at_counter": by_station.get(station.pk, 0),
            }
        )
    columns = [
        ("station", _("station code")),
        ("station_name", _("station")),
        ("townships", _("townships in the area")),
        ("plated", _("plated bikes in the area")),
        ("estimated", _("estimated bikes in the area")),
        ("rate", _("plate rate")),
        ("missing_estimates", _("townships without an estimate")),
        ("plated_at_counter", _("plated bikes registered at this station")),
    ]
    return Table("plate_rate_stations", columns, rows, _plated_meta(year))


# --- registrations ---------------------------------------------------------------------------------

KINDS = [k.value for k in RegistrationEvent.Kind]


def _registration_params(first: datetime.date, last: datetime.date, station: Station | None) -> dict[str, Any]:
    state = _state(REGISTRATIONS)
    complete = state.complete_through if state and state.complete_through else datetime.date(1900, 1, 1)
    live_from = max(first, complete + datetime.timedelta(days=1))
    return {
        "complete": complete,
        "first": first,
        "last": last,
        "station": station.pk if station else None,
        "all_stations": list(Station.objects.values_list("pk", flat=True)),
        "kinds": KINDS,
        "tz": settings.TIME_ZONE,
        "live_since": day_start(live_from),
        "until": day_start(last + datetime.timedelta(days=1)),
    }


def _periods(period: Period, granularity: str) -> list[datetime.date]:
    """Every bucket start in the period, so empty weeks and months show as zero."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generate_series(date_trunc(%(g)s, %(s)s::date), %(e)s::date, ('1 ' || %(g)s)::interval)::date",
            {"g": granularity, "s": period.start, "e": period.end},
        )
        return [row[0] for row in cursor.fetchall()]


def registrations_series(filters: Filters) -> Table:
    """Registration events per day/week/month and registering station; with the plates on the road
    at the end of each bucket (registered − deregistered since the start of records)."""
    period, g = filters.period, filters.granularity
    params = _registration_params(datetime.date(1900, 1, 1), period.end, filters.station)
    params["g"] = g
    sql = f"""
        WITH d AS (
            SELECT day, station_id, kind, events FROM stats_registrationday
            WHERE day <= %(complete)s AND day >= %(first)s AND day <= %(last)s
              AND (%(station)s::bigint IS NULL OR station_id = %(station)s)
            UNION ALL{REGISTRATION_DAYS_LIVE_SQL}        ),
        b AS (
            -- Days before the first bucket fold into one row per station (bucket NULL): the plates
            -- already on the road when the period starts.
            SELECT CASE WHEN day >= %(bucket0)s THEN date_trunc(%(g)s, day)::date END AS bucket, station_id,
                   sum(events) FILTER (WHERE kind = 'register') AS registered,
                   sum(events) FILTER (WHERE kind = 'deregister') AS deregistered,
                   sum(events) FILTER (WHERE kind = 'transfer') AS transferred,
                   sum(events) FILTER (WHERE kind = 'replace_plate') AS replaced
            FROM d GROUP BY 1, 2
        )
        SELECT bucket, station_id, registered, deregistered, transferred, replaced FROM b
    """  # noqa: S608 (constants)
    buckets = _periods(period, g)
    params["bucket0"] = buckets[0] if buckets else period.start
    data = _fetch(sql, params)
    stations = _stations()
    wanted = [filters.station.pk] if filters.station else list(stations)
    found: dict[tuple[datetime.date, int], dict[str, Any]] = {}
    last_total: dict[int, int] = defaultdict(int)
    for r in data:
        net = int(r["registered"] or 0) - int(r["deregistered"] or 0)
        if r["bucket"] is None:
            last_total[r["station_id"]] += net
        else:
            found[(r["bucket"], r["station_id"])] = {**r, "net": net}
    rows = []
    for bucket in buckets:
        for station_id in wanted:
            hit = found.get((bucket, station_id))
            if hit is not None:
                last_total[station_id] += hit["net"]
            rows.append(
                {
                    "period": bucket.isoformat(),
                    "station": stations[station_id].code,
                    "station_name": stations[station_id].name,
                    "registered": int(hit["registered"] or 0) if hit else 0,
                    "deregistered": int(hit["deregistered"] or 0) if hit else 0,
                    "transferred": int(hit["transferred"] or 0) if hit else 0,
                    "replaced_plates": int(hit["replaced"] or 0) if hit else 0,
                    "plates_cumulative": last_total[station_id],
                }
            )
    columns = [
        ("period", _("period")),
        ("station", _("station code")),
        ("station_name", _("station")),
        ("registered", _("registrations")),
        ("deregistered", _("deregistrations")),
        ("transferred", _("transfers")),
        ("replaced_plates", _("plates replaced")),
        ("plates_cumulative", _("plates on the road (cumulative)")),
    ]
    return Table("registrations", columns, rows, {"granularity": g, "period": period.as_dict()})


REGISTRATION_EVENTS = ("registered", "deregistered", "transferred", "replaced_plates")


def registrations_folded(table: Table) -> dict[str, Any]:
    """The registrations table as a leader reads it: only the (period, station) rows where something
    happened, a total row for the whole period, and the periods with no event at any station folded
    into runs ("2025-05 to 2025-09") instead of a row of zeros per station.

    The API and its exports keep every bucket and station (a regular series for spreadsheets and
    charts); this is the page's reading of the same figures.
    """
    granularity = table.meta.get("granularity", "month")
    label = (lambda p: p[:7]) if granularity == "month" else (lambda p: p)
    periods: list[str] = []
    busy: set[str] = set()
    last_plates: dict[str, int] = {}
    total: dict[str, Any] = dict.fromkeys(REGISTRATION_EVENTS, 0)
    rows = []
    for row in table.rows:
        if not periods or periods[-1] != row["period"]:
            periods.append(row["period"])
        last_plates[row["station"]] = row["plates_cumulative"]
        if any(row[key] for key in REGISTRATION_EVENTS):
            busy.add(row["period"])
            rows.append({**row, "period": label(row["period"])})
            for key in REGISTRATION_EVENTS:
                total[key] += row[key]
    total["plates_cumulative"] = sum(last_plates.values())
    quiet_runs: list[tuple[str, str]] = []
    run: list[str] = []
    for period in [*periods, None]:
        if period is not None and period not in busy:
            run.append(label(period))
            continue
        if run:
            quiet_runs.append((run[0], run[-1]))
            run = []
    return {
        "table": Table(table.name, table.columns, rows, table.meta),
        "total": total,
        "quiet": len(periods) - len(busy),
        "quiet_runs": quiet_runs,
        "granularity": granularity,
    }


# --- thefts ----------------------------------------------------------------------------------------


def thefts_monthly(filters: Filters) -> Table:
    """Reports received per month and station (警情), with those later filed as a case, solved and
    recovered, counted in the month the report was received. Recovery rate = recovered ÷ reported;
    days to recovery run from receipt to the first `recovered` step. Rows with an empty month are
    the station's whole period; an empty station is all stations; both empty: the county total."""
    period = filters.period
    station_id = filters.station.pk if filters.station else None
    state = _state(THEFTS)
    cutoff = state.refreshed_at - LATE_COMMIT_MARGIN if state and state.refreshed_at else None
    # Whole months inside the period may come from the rollup; partial ones are counted live.
    first_full = period.start if period.start.day == 1 else _next_month(period.start)
    last_full = _month_start(period.end + datetime.timedelta(days=1)) - datetime.timedelta(days=1)
    last_full_month = _month_start(last_full) if last_full >= first_full else None
    bounds = _bounds(period)
    rolled_up = cutoff is not None and last_full_month is not None
    params = {
        **bounds,
        "station": station_id,
        "cutoff": cutoff,
        # Reports received outside [full_from, full_until) are in partial months: always live.
        "full_from": day_start(first_full) if last_full_month and rolled_up else bounds["until"],
        "full_until": day_start(_next_month(last_full_month)) if last_full_month and rolled_up else bounds["until"],
    }
    # Reports to count live: all those of partial months, and of every (month, station) where a
    # report arrived or moved along its workflow after the rollup was built (status_changed_at
    # moves with every step). Without a rollup, every report. Both lookups are index scans
    # (received_at, status_changed_at; then station and received_at per group), so the cost
    # follows the reports counted live, not the length of the period.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(THEFT_MONTHS_TOUCHED_SQL, params)
        pairs = cursor.fetchall()
        ids: list[int] = []
        if pairs:
            cursor.execute(
                THEFT_REPORT_IDS_SQL,
                {
                    **params,
                    "stations": [sid for _month, sid in pairs],
                    "los": [day_start(month) for month, _sid in pairs],
                    "his": [day_start(_next_month(month)) for month, _sid in pairs],
                },
            )
            ids = cursor.fetchone()[0] or []
    groups: dict[tuple[datetime.date, int], Mapping[str, Any]] = {}
    if ids:
        for r in _fetch(THEFT_MONTHS_SQL, {"tz": settings.TIME_ZONE, "ids": ids}):
            groups[(r["month"], r["station_id"])] = r
    if rolled_up:
        skip = set(pairs)
        rolled = TheftMonth.objects.filter(month__gte=first_full, month__lte=last_full_month)
        if station_id:
            rolled = rolled.filter(station_id=station_id)
        for m in rolled.values("month", "station_id", "reported", "filed", "solved", "recovered", "recovery_days"):
            if (m["month"], m["station_id"]) not in skip:
                groups[(m["month"], m["station_id"])] = m
    # The same groupings as SQL GROUPING SETS ((month, station), (month), (station), ()), pooled
    # medians from the recovered reports' days.
    pooled: dict[tuple[Any, Any], dict[str, Any]] = {}
    for (month, sid), g in groups.items():
        for key in ((month, sid), (month, None), (None, sid), (None, None)):
            acc = pooled.setdefault(key, {"reported": 0, "filed": 0, "solved": 0, "recovered": 0, "days": []})
            for name in ("reported", "filed", "solved", "recovered"):
                acc[name] += g[name]
            acc["days"].extend(g["recovery_days"])
    if not pooled:
        pooled[(None, None)] = {"reported": 0, "filed": 0, "solved": 0, "recovered": 0, "days": []}

    def order(key: tuple[Any, Any]) -> tuple[Any, ...]:
        month, sid = key
        return (month is None, month or datetime.date.min, sid is None, sid or 0)

    stations = _stations()
    rows = []
    for month, sid in sorted(pooled, key=order):
        acc = pooled[(month, sid)]
        station = stations.get(sid) if sid else None
        rows.append(
            {
                "month": month.isoformat()[:7] if month else None,
                "station": station.code if station else None,
                "station_name": station.name if station else None,
                "reported": acc["reported"],
                "filed": acc["filed"],
                "solved": acc["solved"],
                "recovered": acc["recovered"],
                "recovery_rate": _rate(acc["recovered"], acc["reported"]),
                "median_days_to_recovery": round(statistics.median(acc["days"]), 1) if acc["days"] else None,
            }
        )
    columns = [
        ("month", _("month")),
        ("station", _("station code")),
        ("station_name", _("station")),
        ("reported", _("thefts reported")),
        ("filed", _("filed as cases")),
        ("solved", _("solved")),
        ("recovered", _("recovered")),
        ("recovery_rate", _("recovery rate")),
        ("median_days_to_recovery", _("median days to recovery")),
    ]
    as_of = state.refreshed_at.isoformat() if state and state.refreshed_at else None
    return Table("thefts", columns, rows, {"period": filters.period.as_dict(), "rollup_as_of": as_of})


def _month_start(day: datetime.date) -> datetime.date:
    return day.replace(day=1)


def _next_month(day: datetime.date) -> datetime.date:
    return (day.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)


# --- alarms, cases, rescues ------------------------------------------------------------------------


def _rolled_and_live(name: str, period: Period) -> dict[str, Any]:
    """The days of the period a daily rollup holds (first..rolled_last) and the time range read
    live after them (since..until): they meet at the rollup's last complete day, so no row is
    counted twice. Without a rollup yet, everything is live."""
    state = _state(name)
    complete = state.complete_through if state and state.complete_through else None
    if complete is None:
        rolled_last, live_from = period.start - datetime.timedelta(days=1), period.start
    else:
        rolled_last = min(period.end, complete)
        live_from = max(period.start, complete + datetime.timedelta(days=1))
    return {
        "first": period.start,
        "rolled_last": rolled_last,
        "since": day_start(live_from),
        "until": day_start(period.end + datetime.timedelta(days=1)),
        "tz": settings.TIME_ZONE,
    }


def alarms_by_kind(filters: Filters) -> Table:
    """Terminal and derived alarms per month and kind; station = the bike's registering station.
    Rows with an empty month are the kind's total over the period. Closed days come from AlarmDay,
    which keeps them after retention removed the alarms; the days since are counted live."""
    params = {
        **_rolled_and_live(ALARMS, filters.period),
        "station": filters.station.pk if filters.station else None,
        "kinds": None,
        "statuses": ALARM_STATUSES,
    }
    sql = f"""
        WITH d AS (
            SELECT day, station_id, kind, alarms, handled FROM stats_alarmday
            WHERE day >= %(first)s AND day <= %(rolled_last)s
              AND (%(station)s::bigint IS NULL OR station_id = %(station)s)
            UNION ALL
            SELECT * FROM ({ALARM_DAYS_SQL}) AS live
        )
        SELECT date_trunc('month', day)::date AS month, kind, sum(alarms)::int AS alarms, sum(handled)::int AS handled
        FROM d
        GROUP BY GROUPING SETS ((1, 2), (2))
        HAVING sum(alarms) > 0
        ORDER BY 1 NULLS LAST, 2
    """  # noqa: S608 (constants)
    rows = [
        {
            "month": r["month"].isoformat()[:7] if r["month"] else None,
            "kind": r["kind"],
            "alarms": r["alarms"],
            "handled": r["handled"],
        }
        for r in _fetch(sql, params)
    ]
    columns = [
        ("month", _("month")),
        ("kind", _("alarm kind")),
        ("alarms", pgettext_lazy("statistics", "alarms")),  # a count column, not the alarm records
        ("handled", _("handled")),
    ]
    return Table("alarms", columns, rows, {"period": filters.period.as_dict()})


def cases_monthly(filters: Filters) -> Table:
    """Cases filed per month (filing date) and handling station: with reports linked, solved,
    solved with positioning data. A closed case counts as solved only if it was solved first
    (`solved_with_positioning` or status solved); closing alone is not solving."""
    params = {
        "since": filters.period.start,
        "until": filters.period.end,
        "station": filters.station.pk if filters.station else None,
    }
    stations = _stations()
    rows = []
    for r in _fetch(CASES_MONTHLY_SQL, params):
        station = stations.get(r["station_id"]) if r["station_id"] else None
        rows.append(
            {
                "month": r["month"].isoformat()[:7] if r["month"] else None,
                "station": station.code if station else None,
                "station_name": station.name if station else None,
                "filed": r["filed"],
                "with_reports": r["with_reports"],
                "linked_reports": int(r["linked_reports"]),
                "solved": r["solved"],
                "solved_with_positioning": r["solved_with_positioning"],
            }
        )
    columns = [
        ("month", _("month")),
        ("station", _("station code")),
        ("station_name", _("station")),
        ("filed", _("cases filed")),
        ("with_reports", _("cases with linked reports")),
        ("linked_reports", _("reports linked")),
        ("solved", _("solved")),
        ("solved_with_positioning", _("solved with positioning")),
    ]
    return Table("cases", columns, rows, {"period": filters.period.as_dict()})


RESCUE_ALARM_KINDS = ["sos", "fall", "collision", "rollover"]


def rescues_monthly(filters: Filters) -> Table:
    """SOS/fall calls per month and station: rescue duty calls raised and answered (acknowledged),
    median minutes to answer; plus the SOS/fall/collision alarms terminals sent, which exist even
    where no duty call was raised. Closed days come from RescueDay and AlarmDay (kept after
    retention removed the calls and alarms), the days since are counted live."""
    station_id = filters.station.pk if filters.station else None
    calls_sql = f"""
        WITH c AS (
            SELECT day, station_id, calls, answered, answer_minutes FROM stats_rescueday
            WHERE day >= %(first)s AND day <= %(rolled_last)s
              AND (%(station)s::bigint IS NULL OR station_id = %(station)s)
            UNION ALL
            SELECT * FROM ({RESCUE_DAYS_SQL}) AS live
        ),
        medians AS (
            SELECT date_trunc('month', c.day)::date AS month, c.station_id,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY m) AS median_minutes
            FROM c CROSS JOIN LATERAL unnest(c.answer_minutes) AS m
            GROUP BY 1, 2
        )
        SELECT t.month, t.station_id, t.calls, t.answered, medians.median_minutes
        FROM (SELECT date_trunc('month', day)::date AS month, station_id,
                     sum(calls)::int AS calls, sum(answered)::int AS answered
              FROM c GROUP BY 1, 2 HAVING sum(calls) > 0) AS t
        LEFT JOIN medians ON medians.month = t.month AND medians.station_id = t.station_id
    """  # noqa: S608 (constants)
    alarms_sql = f"""
        WITH a AS (
            SELECT day, station_id, alarms FROM stats_alarmday
            WHERE kind = ANY(%(kinds)s::text[]) AND station_id IS NOT NULL
              AND day >= %(first)s AND day <= %(rolled_last)s
              AND (%(station)s::bigint IS NULL OR station_id = %(station)s)
            UNION ALL
            SELECT day, station_id, alarms FROM ({ALARM_DAYS_SQL}) AS live WHERE station_id IS NOT NULL
        )
        SELECT date_trunc('month', day)::date AS month, station_id, sum(alarms)::int AS alarms
        FROM a GROUP BY 1, 2 HAVING sum(alarms) > 0
    """  # noqa: S608 (constants)
    common = {"station": station_id, "kinds": RESCUE_ALARM_KINDS, "statuses": ALARM_STATUSES}
    merged: dict[tuple[datetime.date, int], dict[str, Any]] = {}
    for r in _fetch(calls_sql, {**_rolled_and_live(RESCUES, filters.period), **common}):
        merged[(r["month"], r["station_id"])] = {**r, "alarms": 0}
    for r in _fetch(alarms_sql, {**_rolled_and_live(ALARMS, filters.period), **common}):
        key = (r["month"], r["station_id"])
        empty = {"month": key[0], "station_id": key[1], "calls": 0, "answered": 0, "median_minutes": None}
        merged.setdefault(key, empty)["alarms"] = r["alarms"]
    stations = _stations()
    rows = []
    for _key, r in sorted(merged.items()):
        station = stations[r["station_id"]]
        rows.append(
            {
                "month": r["month"].isoformat()[:7],
                "station": station.code,
                "station_name": station.name,
                "sos_fall_alarms": r["alarms"],
                "rescue_calls": r["calls"],
                "answered": r["answered"],
                "median_minutes_to_answer": round(r["median_minutes"], 1) if r["median_minutes"] is not None else None,
            }
        )
    columns = [
        ("month", _("month")),
        ("station", _("station code")),
        ("station_name", _("station")),
        ("sos_fall_alarms", _("SOS/fall alarms")),
        ("rescue_calls", _("rescue calls")),
        ("answered", _("answered")),
        ("median_minutes_to_answer", _("median minutes to answer")),
    ]
    return Table("rescues", columns, rows, {"period": filters.period.as_dict()})


# --- hotspots --------------------------------------------------------------------------------------


def theft_hotspots(filters: Filters, *, limit: int | None = None) -> dict[str, Any]:
    """Theft-report places counted on a square grid of `cell_m` metres in GRID_SRID, as a GeoJSON
    FeatureCollection of cell polygons (WGS 84), busiest first.

    ST_SnapToGrid with the origin at half a cell snaps each point to the centre of the cell it is
    in; the cell is that centre ± half a cell. Reports without a map point are counted apart."""
    s = filters.cell_m
    params = {
        **_bounds(filters.period),
        "station": filters.station.pk if filters.station else None,
        "srid": GRID_SRID,
        "s": float(s),
        "half": s / 2.0,
        "limit": limit,
    }
    features = []
    total = without_point = 0
    rank = 0
    for r in _fetch(THEFT_HOTSPOTS_SQL, params):
        total, without_point = r["total"], r["without_point"]
        if r["x"] is None:
            continue  # no report with a map point: the totals row alone
        rank += 1
        cell = f"{int(r['x'] // s)}:{int(r['y'] // s)}"
        features.append(
            {
                "type": "Feature",
                "id": cell,
                "geometry": json.loads(r["geometry"]),
                "properties": {
                    "rank": rank,
                    "cell": cell,
                    "reports": r["reports"],
                    "centre_lat": round(r["lat"], 6),
                    "centre_lon": round(r["lon"], 6),
                },
            }
        )
    columns = [
        ("rank", _("rank")),
        ("cell", _("grid cell")),
        ("reports", _("thefts reported")),
        ("centre_lat", _("centre latitude")),
        ("centre_lon", _("centre longitude")),
    ]
    return {
        "type": "FeatureCollection",
        "features": features,
        "table": "hotspots",
        "columns": [{"key": key, "label": str(label)} for key, label in columns],
        "cell_m": s,
        "grid_srid": GRID_SRID,
        "period": filters.period.as_dict(),
        "reports": total,
        "reports_without_point": without_point,
    }
