"""Alarm and rescue figures over a year and more, after retention removed the rows (issue 16).

Alarms and duty calls go after 180 days; the daily counts (stats.rollups AlarmDay, RescueDay)
written by the beat task keep a leader's figures whole. On the real test database, with retention
run as tests/tracking/test_retention.py runs it.
"""

import datetime

import pytest
from django.db import ProgrammingError, connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from cases.models import DutyCall
from stats import selectors
from stats.models import AlarmDay, RollupState
from stats.params import Filters, Period
from stats.rollups import day_start, rollups_rebuild
from stats.tasks import refresh_rollups
from tests import factories
from tests.accounts.test_db_roles import django_connected_as
from tests.stats import builders as b
from tests.stats.conftest import A, B
from tracking.models import Alarm, Terminal
from tracking.retention import retention_apply

pytestmark = pytest.mark.django_db


def ago(days: float, **more: float) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=days, **more)


def noon(days_ago: int) -> datetime.datetime:
    """Noon (county time) that many days ago: an hour either side stays on the same day whenever
    the test runs (`ago` an hour before midnight puts "an hour later" on the next day)."""
    day = timezone.localdate() - datetime.timedelta(days=days_ago)
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(12)))


def alarm(term: Terminal, at: datetime.datetime, kind: str, status: str = "new") -> Alarm:
    return Alarm.objects.create(terminal=term, vehicle=term.vehicle, kind=kind, at=at, status=status)


def rescue_call(term: Terminal, raised: datetime.datetime, answer_minutes: float | None) -> DutyCall:
    """A rescue call the duty room has closed (retention takes only closed calls)."""
    sos = alarm(term, raised, "sos")
    return DutyCall.objects.create(
        kind="rescue",
        station=term.vehicle.station,
        alarm_id=sos.pk,
        vehicle=term.vehicle,
        raised_at=raised,
        acknowledged_at=raised + datetime.timedelta(minutes=answer_minutes) if answer_minutes is not None else None,
        status="closed",
        closed_at=raised + datetime.timedelta(hours=1),
    )


@pytest.fixture
def terminals(db):
    clerk = factories.user("clerk")
    bikes = {
        "a": b.bike(clerk=clerk, station=A, township="130229001", when="2025-01-02 09:00"),
        "b": b.bike(clerk=clerk, station=B, township="130229105", when="2025-01-02 10:00"),
    }
    terms = {name: b.terminal(bike) for name, bike in bikes.items()}
    terms["none"] = Terminal.objects.create(imei="869990000000017", protocol="gt06")  # fitted to no bike
    return terms


@pytest.fixture
def history(terminals):
    """Alarms and closed rescue calls every few days over the last 400 days, today's included."""
    a, bb, none = terminals["a"], terminals["b"], terminals["none"]
    for n, days in enumerate(range(0, 400, 3)):
        at = ago(days, hours=1)
        alarm(a, at, "vibration", status="closed" if n % 2 else "new")
        alarm(bb, at - datetime.timedelta(minutes=5), "power_cut", status="acknowledged")
        if n % 4 == 0:
            alarm(none, at, "offline")
        if n % 5 == 0:
            alarm(bb, at - datetime.timedelta(minutes=9), "fall")
            rescue_call(a, at - datetime.timedelta(minutes=7), answer_minutes=n % 13 + 0.5 if n % 3 else None)
    # A day that retention thins without emptying it: a call still open keeps its alarm and itself.
    old = ago(200, hours=2)
    open_call = rescue_call(a, old, answer_minutes=None)
    DutyCall.objects.filter(pk=open_call.pk).update(status="new", closed_at=None)
    rescue_call(a, old + datetime.timedelta(minutes=1), answer_minutes=3)
    return terminals


def year(today: datetime.date | None = None) -> dict[str, str]:
    today = today or timezone.localdate()
    return {"start": (today - datetime.timedelta(days=364)).isoformat(), "end": today.isoformat()}


def all_400_days() -> dict[str, str]:
    today = timezone.localdate()
    return {"start": (today - datetime.timedelta(days=401)).isoformat(), "end": today.isoformat()}


def leader_figures(client: APIClient) -> dict[tuple[str, str], dict]:
    """What a leader reads: the alarm and rescue tables through the API, over the year and over the
    whole 400 days, for the county and for station A."""
    figures = {}
    for table in ("alarms", "rescues"):
        for span, period in (("year", year()), ("all", all_400_days())):
            for station in ("", A):
                response = client.get(f"/api/v1/stats/{table}", {**period, "station": station} if station else period)
                assert response.status_code == 200, response.content
                figures[(table, span, station)] = response.json()["rows"]
    return figures


def test_a_years_figures_are_the_same_after_retention_removed_the_rows(history, admin_api, admin_user):
    admin_client = Client()
    admin_client.force_login(admin_user)
    before = leader_figures(admin_api)
    page_before = admin_client.get("/stats/", year()).context["tables"]
    assert sum(r["alarms"] for r in before[("alarms", "year", "")] if r["month"] is None) > 300
    assert any(r["rescue_calls"] for r in before[("rescues", "all", "")])

    refresh_rollups()  # the beat task; its first run counts every day there are rows for
    assert leader_figures(admin_api) == before  # the rolled-up days read as the live rows did

    alarms, calls = Alarm.objects.count(), DutyCall.objects.count()
    retention_apply()
    assert Alarm.objects.count() < alarms * 0.6 and DutyCall.objects.count() < calls * 0.6
    assert Alarm.objects.filter(at__lt=ago(181)).count() == DutyCall.objects.filter(raised_at__lt=ago(181)).count() == 1

    assert leader_figures(admin_api) == before
    page_after = admin_client.get("/stats/", year()).context["tables"]
    for table in ("alarms", "rescues"):
        assert page_after[table].rows == page_before[table].rows
    # Running the refresh again, or a rebuild, recounts only what is whole: nothing is lowered.
    refresh_rollups()
    rollups_rebuild()
    assert leader_figures(admin_api) == before
    # Without the daily counts the year would have shrunk to what retention left.
    RollupState.objects.filter(name__in=["alarms", "rescues"]).delete()
    assert leader_figures(admin_api) != before


def test_raising_the_period_later_does_not_recount_days_retention_already_thinned(history, admin_api, settings):
    refresh_rollups()
    retention_apply()
    before = leader_figures(admin_api)
    settings.ALARM_RETENTION_DAYS = settings.DUTY_CALL_RETENTION_DAYS = 800
    refresh_rollups()
    assert leader_figures(admin_api) == before
    state = RollupState.objects.get(name="alarms")
    assert state.final_before >= timezone.localdate() - datetime.timedelta(days=180)


def test_a_late_alarm_and_one_handled_since_count_after_the_next_run(terminals, admin_api):
    a, bb = terminals["a"], terminals["b"]
    ten_days_ago = noon(10)
    alarm(a, ten_days_ago, "vibration")
    sos = alarm(bb, ten_days_ago, "sos")
    refresh_rollups()
    month = timezone.localtime(ten_days_ago).strftime("%Y-%m")

    def vibrations() -> tuple[int, int]:
        rows = admin_api.get("/api/v1/stats/alarms", year()).json()["rows"]
        row = next(r for r in rows if (r["month"], r["kind"]) == (month, "vibration"))
        return row["alarms"], row["handled"]

    def rescues_b() -> tuple[int, int, int, float | None]:
        rows = admin_api.get("/api/v1/stats/rescues", year()).json()["rows"]
        r = next(r for r in rows if (r["month"], r["station"]) == (month, B))
        return r["sos_fall_alarms"], r["rescue_calls"], r["answered"], r["median_minutes_to_answer"]

    assert vibrations() == (1, 0)
    assert rescues_b() == (1, 0, 0, None)
    # A terminal's buffered alarm of that day arrives now; the duty room handles the first one and
    # a rescue call of that day is recorded late, answered after 6 minutes.
    alarm(a, ten_days_ago + datetime.timedelta(hours=1), "vibration")
    Alarm.objects.filter(kind="vibration", at=ten_days_ago).update(status="acknowledged")
    DutyCall.objects.create(
        kind="rescue",
        station=bb.vehicle.station,
        alarm_id=sos.pk,
        vehicle=bb.vehicle,
        raised_at=ten_days_ago,
        acknowledged_at=ten_days_ago + datetime.timedelta(minutes=6),
        status="closed",
    )
    assert vibrations() == (1, 0)  # the day is rolled up: unchanged until the next run
    refresh_rollups()
    assert vibrations() == (2, 1)
    assert rescues_b() == (1, 1, 1, 6.0)
    refresh_rollups()  # again: the same numbers
    assert vibrations() == (2, 1)
    assert AlarmDay.objects.filter(kind="vibration").count() == 1


def test_a_bike_moved_to_another_station_takes_its_recent_alarms_along_without_empty_rows(terminals):
    a = terminals["a"]
    alarm(a, ago(5), "sos")
    refresh_rollups()
    period = Period(timezone.localdate() - datetime.timedelta(days=30), timezone.localdate())

    def stations() -> list[tuple[str, int]]:
        return [(r["station"], r["sos_fall_alarms"]) for r in selectors.rescues_monthly(Filters(period=period)).rows]

    assert stations() == [(A, 1)]
    a.vehicle.station = factories.station(B)
    a.vehicle.save(update_fields=["station"])
    refresh_rollups()  # as the live rows count it now
    assert stations() == [(B, 1)]
    assert AlarmDay.objects.get(station__code=A).alarms == 0  # kept at zero: the app role deletes nothing here


def test_the_rolled_up_days_and_todays_live_alarms_meet_without_counting_twice(terminals):
    a = terminals["a"]
    today = timezone.localdate()
    yesterday = today - datetime.timedelta(days=1)
    midnight = day_start(today)
    alarm(a, midnight - datetime.timedelta(seconds=1), "sos")  # yesterday's last second
    alarm(a, midnight, "sos")  # today's first
    refresh_rollups()
    assert RollupState.objects.get(name="alarms").complete_through == yesterday
    assert AlarmDay.objects.get(day=yesterday, kind="sos").alarms == 1
    assert not AlarmDay.objects.filter(day=today).exists()  # today is read live

    def sos(period: Period) -> int:
        rows = selectors.alarms_by_kind(Filters(period=period)).rows
        return next((r["alarms"] for r in rows if r["month"] is None and r["kind"] == "sos"), 0)

    assert sos(Period(yesterday, today)) == 2
    assert (sos(Period(yesterday, yesterday)), sos(Period(today, today))) == (1, 1)
    alarm(a, timezone.now(), "sos")  # counted at once, before any refresh
    assert sos(Period(yesterday, today)) == 3
    rescues = selectors.rescues_monthly(Filters(period=Period(yesterday, today))).rows
    assert sum(r["sos_fall_alarms"] for r in rescues) == 3


def test_the_refresh_runs_as_the_app_role_which_cannot_delete_the_counts(db):
    # Over its own connection: the test's uncommitted rows are not there, the privileges are.
    with django_connected_as("app"):
        refresh_rollups()  # the beat task runs on the app role's worker
        with connection.cursor() as cursor, pytest.raises(ProgrammingError, match="permission denied"):
            cursor.execute("DELETE FROM stats_alarmday")
