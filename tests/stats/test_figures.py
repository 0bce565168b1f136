"""The figures a leader reads, on a county whose every number is known (conftest.county)."""

import pytest
from django.contrib.gis.geos import GEOSGeometry, Point

from stats import selectors
from stats.models import PlateEstimate, RollupState
from stats.params import Filters, Period
from stats.rollups import registrations_refresh, rollups_rebuild, thefts_refresh
from tests.stats import builders as b
from tests.stats.conftest import A, B

pytestmark = pytest.mark.django_db

MARCH_APRIL = Period(start=b.at("2026-03-01 00:00").date(), end=b.at("2026-04-30 00:00").date())


def rows_by(table, *keys):
    return {tuple(r[k] for k in keys): r for r in table.rows}


def test_plate_rate_by_township(county):
    rows = rows_by(selectors.plate_rate_townships(), "township")
    assert (rows[("130229001",)]["plated"], rows[("130229001",)]["estimated"], rows[("130229001",)]["rate"]) == (
        2,
        4,
        0.5,
    )
    assert rows[("130229001",)]["method"] == "survey"
    assert (rows[("130229105",)]["plated"], rows[("130229105",)]["estimated"], rows[("130229105",)]["rate"]) == (
        3,
        6,
        0.5,
    )
    # No estimate: unknown, not zero, not a guess.
    assert rows[("130229201",)]["plated"] == 1
    assert rows[("130229201",)]["estimated"] is None and rows[("130229201",)]["rate"] is None
    assert rows[("130229102",)]["plated"] == 0 and rows[("130229102",)]["rate"] is None


def test_plate_rate_by_station_area(county, admin_user):
    rows = rows_by(selectors.plate_rate_stations(), "station")
    a, bb = rows[(A,)], rows[(B,)]
    assert (a["townships"], a["plated"], a["estimated"], a["rate"], a["plated_at_counter"]) == (
        "130229001",
        2,
        4,
        0.5,
        3,
    )
    # B's area has 105 and 201; 201 has no estimate, so the area's rate is unknown.
    assert (bb["townships"], bb["plated"], bb["estimated"], bb["rate"]) == ("130229105,130229201", 4, None, None)
    assert bb["missing_estimates"] == "130229201" and bb["plated_at_counter"] == 3
    PlateEstimate.objects.create(
        township_id="130229201", year=county["year"], estimated_bikes=4, method="prior_year", entered_by=admin_user
    )
    bb = rows_by(selectors.plate_rate_stations(), "station")[(B,)]
    assert (bb["plated"], bb["estimated"], bb["rate"], bb["missing_estimates"]) == (4, 10, 0.4, "")
    # A township with no station and no area row belongs to no station.
    assert all("130229203" not in r["townships"] for r in selectors.plate_rate_stations().rows)


def test_estimate_of_another_year_is_not_used(county, admin_user):
    PlateEstimate.objects.create(
        township_id="130229201", year=county["year"] - 1, estimated_bikes=4, method="survey", entered_by=admin_user
    )
    assert rows_by(selectors.plate_rate_townships(), "township")[("130229201",)]["rate"] is None
    assert rows_by(selectors.plate_rate_townships(year=county["year"] - 1), "township")[("130229201",)]["rate"] == 0.25


@pytest.mark.parametrize("rolled_up", [False, True])
def test_registrations_by_month_with_cumulative_plates(county, rolled_up):
    if rolled_up:
        rollups_rebuild()
        assert RollupState.objects.get(name="registrations").complete_through is not None
    table = selectors.registrations_series(Filters(period=MARCH_APRIL, granularity="month"))
    rows = rows_by(table, "period", "station")
    assert len(table.rows) == 2 * 20  # every station, every month, zeros included
    march, april = "2026-03-01", "2026-04-01"
    assert (
        rows[(march, A)]["registered"],
        rows[(march, A)]["deregistered"],
        rows[(march, A)]["plates_cumulative"],
    ) == (
        3,
        0,
        3,
    )
    assert (
        rows[(april, A)]["registered"],
        rows[(april, A)]["deregistered"],
        rows[(april, A)]["plates_cumulative"],
    ) == (
        1,
        1,
        3,
    )
    assert (rows[(march, B)]["registered"], rows[(march, B)]["plates_cumulative"]) == (1, 1)
    assert (rows[(april, B)]["registered"], rows[(april, B)]["plates_cumulative"]) == (2, 3)
    assert rows[(march, "13022903")]["registered"] == 0


def test_registrations_by_day_and_week_and_the_running_total_before_the_period(county):
    days = Period(start=b.at("2026-04-05 00:00").date(), end=b.at("2026-04-15 00:00").date())
    rows = rows_by(
        selectors.registrations_series(Filters(period=days, granularity="day", station=None)), "period", "station"
    )
    # Plates before the period are carried in: A had 3 on the road on 04-04.
    assert rows[("2026-04-05", A)]["plates_cumulative"] == 4
    assert rows[("2026-04-09", A)]["plates_cumulative"] == 4
    assert (rows[("2026-04-10", A)]["deregistered"], rows[("2026-04-10", A)]["plates_cumulative"]) == (1, 3)
    assert (rows[("2026-04-15", B)]["registered"], rows[("2026-04-15", B)]["plates_cumulative"]) == (2, 3)
    weeks = rows_by(
        selectors.registrations_series(Filters(period=MARCH_APRIL, granularity="week")), "period", "station"
    )
    assert weeks[("2026-03-02", A)]["registered"] == 2  # Monday 2 March
    assert weeks[("2026-02-23", A)]["registered"] == 0  # the week 1 March falls in


def test_series_equal_before_and_after_the_rollup_and_the_live_tail_sees_today(county, clerk):
    from django.utils import timezone

    from tests import factories
    from vehicles.services.registration import vehicle_register

    today = timezone.localdate()
    period = Period(start=MARCH_APRIL.start, end=today)
    live = selectors.registrations_series(Filters(period=period, granularity="month")).rows
    registrations_refresh()
    assert RollupState.objects.get(name="registrations").complete_through < today
    assert selectors.registrations_series(Filters(period=period, granularity="month")).rows == live
    # A registration now shows at once (the live tail), with the rollup untouched.
    vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=False
    )
    rows = rows_by(selectors.registrations_series(Filters(period=period, granularity="month")), "period", "station")
    this_month = today.replace(day=1).isoformat()
    assert rows[(this_month, A)]["registered"] == 1
    assert rows[(this_month, A)]["plates_cumulative"] == 4


def test_plated_snapshot_follows_transfers_and_deregistrations(county, admin_user):
    from stats.rollups import plated_refresh
    from tests import factories
    from vehicles.services.registration import vehicle_deregister, vehicle_transfer

    clerk = factories.user("clerk", station_code=B)
    # b1's owner (105) sells to someone in 001: the rate moves from 105 to 001.
    vehicle_transfer(
        clerk=clerk,
        vehicle_id=county["bikes"]["b1"].pk,
        new_owner=factories.owner_data(township_code="130229001"),
        insurance_consent=False,
        previous_owner_consent="in_person",
        documents=["transfer_agreement"],
    )
    vehicle_deregister(clerk=clerk, vehicle_id=county["bikes"]["b2"].pk, reason="not_used", plate_returned=True)
    before = rows_by(selectors.plate_rate_townships(), "township")
    assert before[("130229001",)]["plated"] == 2  # the snapshot is not refreshed yet
    plated_refresh()
    rows = rows_by(selectors.plate_rate_townships(), "township")
    assert (rows[("130229001",)]["plated"], rows[("130229001",)]["rate"]) == (3, 0.75)
    assert (rows[("130229105",)]["plated"], rows[("130229105",)]["rate"]) == (1, 1 / 6)


@pytest.mark.parametrize("rolled_up", [False, True])
def test_thefts_by_month_and_station(county, rolled_up):
    if rolled_up:
        thefts_refresh()
    table = selectors.thefts_monthly(Filters(period=MARCH_APRIL))
    rows = rows_by(table, "month", "station")
    march_a = rows[("2026-03", A)]
    assert (march_a["reported"], march_a["filed"], march_a["solved"], march_a["recovered"]) == (4, 2, 0, 3)
    assert (march_a["recovery_rate"], march_a["median_days_to_recovery"]) == (0.75, 4.0)
    april_b = rows[("2026-04", B)]
    assert (april_b["reported"], april_b["filed"], april_b["solved"], april_b["recovered"]) == (1, 1, 1, 1)
    assert (april_b["recovery_rate"], april_b["median_days_to_recovery"]) == (1.0, 1.0)
    assert ("2026-04", A) not in rows  # A had no report received in April
    # Month totals, station totals and the county total: medians over the pooled reports.
    assert (rows[("2026-03", None)]["reported"], rows[("2026-03", None)]["recovered"]) == (4, 3)
    assert (rows[(None, A)]["reported"], rows[(None, A)]["median_days_to_recovery"]) == (4, 4.0)
    total = rows[(None, None)]
    assert (total["reported"], total["recovered"], total["recovery_rate"], total["median_days_to_recovery"]) == (
        5,
        4,
        0.8,
        3.0,
    )


def test_thefts_filtered_by_station_and_period(county):
    march = Period(start=MARCH_APRIL.start, end=b.at("2026-03-31 00:00").date())
    rows = rows_by(selectors.thefts_monthly(Filters(period=march, station=county_station(B))), "month", "station")
    assert rows[(None, None)]["reported"] == 0 and rows[(None, None)]["recovery_rate"] is None


def county_station(code):
    from accounts.models import Station

    return Station.objects.get(code=code)


def test_alarms_by_kind(county):
    a2, b2 = county["bikes"]["a2"], county["bikes"]["b2"]
    ta, tb = b.terminal(a2), b.terminal(b2)
    b.alarm(term=ta, kind="sos", when="2026-03-03 10:00")
    b.alarm(term=ta, kind="sos", when="2026-03-08 10:00")
    b.alarm(term=ta, kind="power_cut", when="2026-03-09 10:00")
    b.alarm(term=tb, kind="sos", when="2026-04-20 10:00")
    b.alarm(term=tb, kind="sos", when="2026-05-20 10:00")  # outside the period
    rows = rows_by(selectors.alarms_by_kind(Filters(period=MARCH_APRIL)), "month", "kind")
    assert rows[("2026-03", "sos")]["alarms"] == 2
    assert rows[("2026-03", "power_cut")]["alarms"] == 1
    assert rows[("2026-04", "sos")]["alarms"] == 1
    assert (rows[(None, "sos")]["alarms"], rows[(None, "power_cut")]["alarms"]) == (3, 1)
    only_b = rows_by(selectors.alarms_by_kind(Filters(period=MARCH_APRIL, station=county_station(B))), "month", "kind")
    assert only_b[(None, "sos")]["alarms"] == 1 and (None, "power_cut") not in only_b


def test_cases_linked_and_solved_with_positioning(county, admin_user):
    from django.utils import timezone

    r = county["reports"]
    c1 = b.case(
        approver=admin_user,
        station=A,
        filed_on="2026-03-15",
        reports=[r["r1"], r["r2"], r["r3"]],
        status="solved",
        positioning=True,
    )
    b.case(approver=admin_user, station=A, filed_on="2026-03-20", reports=[])
    b.case(approver=admin_user, station=B, filed_on="2026-04-03", reports=[r["r5"]], status="solved")
    # An unlinked report no longer counts.
    c1.links.filter(report=r["r3"]).update(unlinked_at=timezone.now(), unlinked_by=admin_user, unlink_reason="x")
    rows = rows_by(selectors.cases_monthly(Filters(period=MARCH_APRIL)), "month", "station")
    m = rows[("2026-03", A)]
    assert (m["filed"], m["with_reports"], m["linked_reports"], m["solved"], m["solved_with_positioning"]) == (
        2,
        1,
        2,
        1,
        1,
    )
    t = rows[(None, None)]
    assert (t["filed"], t["with_reports"], t["linked_reports"], t["solved"], t["solved_with_positioning"]) == (
        3,
        2,
        3,
        2,
        1,
    )


def test_rescue_calls_answered(county):
    a2, a3, a4 = (county["bikes"][k] for k in ("a2", "a3", "a4"))
    b.rescue(vehicle=a2, raised="2026-03-03 10:00", answered="2026-03-03 10:04")
    b.rescue(vehicle=a3, raised="2026-03-08 10:00", answered="2026-03-08 10:10")
    b.rescue(vehicle=a4, raised="2026-03-09 10:00", answered=None)
    term = b.terminal(a2)
    b.alarm(term=term, kind="sos", when="2026-03-03 09:59")
    b.alarm(term=term, kind="fall", when="2026-04-01 09:59")
    rows = rows_by(selectors.rescues_monthly(Filters(period=MARCH_APRIL)), "month", "station")
    m = rows[("2026-03", A)]
    assert (m["rescue_calls"], m["answered"], m["median_minutes_to_answer"], m["sos_fall_alarms"]) == (3, 2, 7.0, 1)
    # A month with alarms and no duty call still shows.
    april = rows[("2026-04", A)]
    assert (april["rescue_calls"], april["answered"], april["median_minutes_to_answer"], april["sos_fall_alarms"]) == (
        0,
        0,
        None,
        1,
    )


def test_hotspot_grid_cells(county):
    geo = selectors.theft_hotspots(Filters(period=MARCH_APRIL, cell_m=1000))
    assert geo["type"] == "FeatureCollection"
    assert (geo["reports"], geo["reports_without_point"]) == (5, 1)
    cells = [(f["properties"]["cell"], f["properties"]["reports"], f["properties"]["rank"]) for f in geo["features"]]
    assert cells == [("560:4415", 3, 1), ("565:4410", 1, 2)]
    hot = GEOSGeometry(str(geo["features"][0]["geometry"]).replace("'", '"'), srid=4326)
    lat, lon = county["hot"]
    assert hot.contains(Point(lon, lat, srid=4326))
    hot.transform(32650)
    assert hot.area == pytest.approx(1_000_000, rel=1e-4)  # 6-decimal GeoJSON coordinates
    # Filtered by period: only April (r5 in the hot cell).
    april = Period(start=b.at("2026-04-01 00:00").date(), end=MARCH_APRIL.end)
    geo = selectors.theft_hotspots(Filters(period=april, cell_m=1000))
    assert [(f["id"], f["properties"]["reports"]) for f in geo["features"]] == [("560:4415", 1)]
    # Another cell size: the id is (floor(x / size), floor(y / size)); x = 560,500 m, y = 4,415,500 m.
    geo = selectors.theft_hotspots(Filters(period=MARCH_APRIL, cell_m=300), limit=1)
    assert [(f["id"], f["properties"]["reports"]) for f in geo["features"]] == [("1868:14718", 3)]


def test_refresh_redoes_the_last_closed_days_for_late_commits(county):
    import datetime

    from django.utils import timezone

    from stats.tasks import refresh_rollups

    today = timezone.localdate()
    yesterday = today - datetime.timedelta(days=1)
    refresh_rollups()  # the beat task
    assert RollupState.objects.get(name="registrations").complete_through == yesterday
    # An event stamped yesterday that committed after that refresh (a transaction over midnight).
    b.bike(clerk=county["clerk"], station=B, township="130229105", when=f"{yesterday} 23:59")
    period = Period(start=yesterday, end=yesterday)
    day = rows_by(selectors.registrations_series(Filters(period=period, granularity="day")), "station")
    assert day[(B,)]["registered"] == 0  # the rollup has yesterday already, without it
    refresh_rollups()
    day = rows_by(selectors.registrations_series(Filters(period=period, granularity="day")), "station")
    assert (day[(B,)]["registered"], day[(B,)]["plates_cumulative"]) == (1, 4)


def test_refresh_notices_past_events_imported_later_and_rebuilds(county):
    from stats.tasks import refresh_rollups

    refresh_rollups()
    march = Period(start=MARCH_APRIL.start, end=b.at("2026-03-31 00:00").date())
    before = rows_by(selectors.registrations_series(Filters(period=march, granularity="month")), "station")
    assert before[(B,)]["registered"] == 1
    b.bike(clerk=county["clerk"], station=B, township="130229105", when="2026-03-11 10:00")  # a bulk import
    refresh_rollups()
    after = rows_by(selectors.registrations_series(Filters(period=march, granularity="month")), "station")
    assert (after[(B,)]["registered"], after[(B,)]["plates_cumulative"]) == (2, 2)


def test_hotspots_of_an_empty_period(county):
    period = Period(start=b.at("2025-01-01 00:00").date(), end=b.at("2025-01-31 00:00").date())
    geo = selectors.theft_hotspots(Filters(period=period, cell_m=1000))
    assert (geo["features"], geo["reports"], geo["reports_without_point"]) == ([], 0, 0)


def test_theft_rollup_is_read_for_untouched_months_and_bypassed_for_changed_ones(county):
    from cases.workflow.services import report_transition
    from stats.models import TheftMonth

    thefts_refresh()
    # The rollup is what answers for whole, untouched months (a marked row shows through) …
    TheftMonth.objects.filter(month="2026-04-01", station__code=B).update(reported=99)
    rows = rows_by(selectors.thefts_monthly(Filters(period=MARCH_APRIL)), "month", "station")
    assert rows[("2026-04", B)]["reported"] == 99
    # … but not for a partial month: 2 April onwards is counted live.
    part = Period(start=b.at("2026-04-02 00:00").date(), end=MARCH_APRIL.end)
    assert rows_by(selectors.thefts_monthly(Filters(period=part)), "month", "station")[("2026-04", B)]["reported"] == 1
    thefts_refresh()
    # A report recovered now changes its month at once, before any refresh.
    r3 = county["reports"]["r3"]
    report_transition(user=county["officer"], report_id=r3.pk, to_status="recovered")
    rows = rows_by(selectors.thefts_monthly(Filters(period=MARCH_APRIL)), "month", "station")
    march_a = rows[("2026-03", A)]
    assert (march_a["reported"], march_a["recovered"], march_a["recovery_rate"]) == (4, 4, 1.0)
    assert march_a["median_days_to_recovery"] == 7.0  # 2, 4, 10 and r3's months: (4 + 10) / 2
    assert rows[(None, None)]["recovered"] == 5
    thefts_refresh()
    assert rows_by(selectors.thefts_monthly(Filters(period=MARCH_APRIL)), "month", "station") == rows
