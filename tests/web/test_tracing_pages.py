"""Tracing pages on the real database: stops with an adjustable stay and radius and the other
stolen bikes seen at them (rings), the crime-scene search (伴随分析), traces opened from a search,
the last position on the filing record, and coordinates on the map card."""

import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry
from cases.tracing import origins as trace_origins
from tests import factories
from tests.tracking import factories as tf
from tests.web.scene import RIDE_IN, SQUARE, STAY, STEP, stolen_bike

pytestmark = pytest.mark.django_db


@pytest.fixture
def start():
    return timezone.now().replace(microsecond=0) - datetime.timedelta(hours=2)


@pytest.fixture
def bike(officer, start):
    return stolen_bike(officer, start=start)


@pytest.fixture
def ring(officer, start):
    """A second stolen bike that stayed at the same square half an hour after the first."""
    return stolen_bike(officer, start=start + datetime.timedelta(minutes=30))


def backdate(table: str, pk: int, at: datetime.datetime) -> None:
    """Move an append-only row back in time, as the table's owner with its trigger off (the time a
    test cannot wait for)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
        cursor.execute(f"UPDATE {table} SET at = %s WHERE id = %s", [at, pk])  # noqa: S608 (constants)
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")


def trace(client, bike, **params):
    return client.get(reverse("web:trace", args=[bike.vehicle.pk]), params)


def scene_params(start, **extra):
    fmt = "%Y-%m-%dT%H:%M"
    at_square = timezone.localtime(start + RIDE_IN * STEP)
    return {
        "lat": f"{SQUARE[0]:.6f}",
        "lon": f"{SQUARE[1]:.6f}",
        "radius": "100",
        "since": (at_square - datetime.timedelta(minutes=30)).strftime(fmt),
        "until": (at_square + datetime.timedelta(minutes=30)).strftime(fmt),
        "reason": "协查盗窃案件 2026-118",
    } | extra


# --- stops -------------------------------------------------------------------------------------------------


def test_stops_follow_the_minimum_stay_and_radius_asked_for(client, officer, bike):
    client.force_login(officer)
    html = trace(client, bike).content.decode()
    assert 'data-rank="1"' in html and 'name="min_minutes"' in html and 'value="10"' in html
    stay_minutes = STAY * STEP.total_seconds() / 60  # 15 minutes at the square
    longer = trace(client, bike, min_minutes=int(stay_minutes) + 5, radius=50)
    assert longer.status_code == 200
    html = longer.content.decode()
    assert 'data-rank="1"' not in html and 'id="stops-none"' in html
    assert "No stops of 20 minutes or more within 50 m." in html
    looks = AuditEntry.objects.filter(user=officer, action="trajectory.stops").order_by("at", "id")
    assert [e.query["min_minutes"] for e in looks] == [10, 20]
    assert looks.last().query["basis"] == f"open_report:{bike.report.number}"


def test_stop_bounds_are_refused_at_their_fields_all_at_once_and_read_nothing(client, officer, bike):
    client.force_login(officer)
    response = trace(client, bike, min_minutes=0, radius=9000)
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {"min_minutes", "radius"}
    html = response.content.decode()
    assert html.count('class="field invalid"') == 2 and 'value="9000"' in html  # typed values kept
    assert not AuditEntry.objects.filter(action="trajectory.stops").exists()


def test_each_stop_lists_the_other_stolen_bikes_seen_there_linked_to_their_reports(client, officer, bike, ring):
    client.force_login(officer)
    response = trace(client, bike)
    rows = response.context["stops"]
    assert len(rows) == 1
    (seen,) = rows[0]["rings"]
    assert seen.visit.vehicle_id == ring.vehicle.pk and seen.plate == ring.plate
    assert seen.report_url == reverse("cases:report", args=[ring.report.pk])
    html = response.content.decode()
    assert f'href="{seen.report_url}">{ring.report.number}</a>' in html
    look = AuditEntry.objects.get(user=officer, action="trajectory.stops")
    assert look.query["nearby_vehicles"] == [ring.vehicle.pk]
    assert seen.trace_url == f"{reverse('web:trace', args=[ring.vehicle.pk])}?search={look.pk}"


def test_a_ring_is_linked_to_its_report_only_where_the_viewer_may_open_it(client, officer, bike, ring):
    elsewhere = factories.user("officer", station_code="13022902")  # another station, no duty
    client.force_login(elsewhere)
    response = trace(client, bike, reason="协查盗窃案件线索")
    assert response.status_code == 200
    (seen,) = response.context["stops"][0]["rings"]
    assert seen.report_url == ""  # cases.view_report: neither its station's nor a duty of theirs
    html = response.content.decode()
    assert f'<span class="ring-report">{ring.report.number}</span>' in html
    assert reverse("cases:report", args=[ring.report.pk]) not in html


def test_a_reason_too_short_or_too_long_comes_back_in_its_field_saying_why(client, officer, bike):
    elsewhere = factories.user("officer", station_code="13022902")  # no duty: the look needs a reason
    client.force_login(elsewhere)
    asked = trace(client, bike)
    assert asked.status_code == 403 and asked.context["reason_problem"] == ""  # nothing typed, nothing wrong
    assert 'class="field invalid"' not in asked.content.decode()

    for reason, problem in (("协查", "at least 6 characters"), ("协" * 201, "at most 200 characters")):
        response = trace(client, bike, reason=reason)
        assert response.status_code == 403
        html = response.content.decode()
        assert response.context["reason"] == reason  # given back whole, to be shortened, never cut
        assert problem in response.context["reason_problem"] and 'class="field invalid"' in html
        refused = AuditEntry.objects.filter(action="trajectory.view", user=elsewhere).latest("id")
        assert problem in refused.query["refused"]

    looked = trace(client, bike, reason="协" * 200)
    assert looked.status_code == 200
    assert AuditEntry.objects.filter(action="trajectory.stops", user=elsewhere).latest("id").reason == "协" * 200


def test_an_owner_sees_the_stops_of_their_bike_without_other_stolen_bikes(client, officer, start):
    owner = factories.user("owner", station_code=None)
    own = stolen_bike(officer, start=start, owner_user=owner)
    for event in own.vehicle.events.all():  # the owner had the bike before it was stolen
        backdate("vehicles_registrationevent", event.pk, start - datetime.timedelta(days=30))
    stolen_bike(officer, start=start + datetime.timedelta(minutes=30))
    client.force_login(owner)
    response = trace(client, own)
    assert response.status_code == 200
    assert len(response.context["stops"]) == 1 and response.context["stops"][0]["rings"] == []
    assert 'class="rings"' not in response.content.decode()


# --- crime-scene search ---------------------------------------------------------------------------------------


def test_the_crime_scene_search_finds_the_bikes_that_were_there(client, officer, bike, start):
    elsewhere = tf.terminal()  # registered, never near the square
    client.force_login(officer)
    form = client.get(reverse("web:crime-scene"))
    assert form.status_code == 200 and 'name="lat"' in form.content.decode()
    assert not AuditEntry.objects.filter(action="trajectory.near").exists()  # nothing searched yet

    response = client.get(reverse("web:crime-scene"), scene_params(start))
    assert response.status_code == 200
    results = response.context["results"]
    assert [r.found.vehicle_id for r in results] == [bike.vehicle.pk]
    assert elsewhere.vehicle.pk not in [r.found.vehicle_id for r in results]
    row = results[0]
    search = AuditEntry.objects.get(user=officer, action="trajectory.near")
    assert search.reason == "协查盗窃案件 2026-118" and search.query["basis"] == "stated_reason"
    assert search.query["vehicles"] == [bike.vehicle.pk]
    assert row.trace_url == f"{reverse('web:trace', args=[bike.vehicle.pk])}?search={search.pk}"
    assert row.record_url == reverse("vehicles:detail", args=[bike.vehicle.pk])
    assert row.report_url == reverse("cases:report", args=[bike.report.pk])
    html = response.content.decode()
    assert bike.plate in html and f'href="{row.trace_url}"'.replace("&", "&amp;") in html


def test_a_crime_scene_search_names_every_problem_at_its_field(client, officer, start):
    client.force_login(officer)
    bad = scene_params(
        start,
        lat="95",
        radius="9000",
        until=(timezone.localtime(start) + datetime.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
        reason="",
    )
    response = client.get(reverse("web:crime-scene"), bad)
    assert response.status_code == 200 and response.context["results"] is None
    assert {"lat", "radius", "since", "reason"} <= set(response.context["form"].errors)
    assert 'value="9000"' in response.content.decode()
    short = client.get(reverse("web:crime-scene"), scene_params(start, reason="ab"))
    assert "reason" in short.context["form"].errors and short.context["results"] is None
    assert not AuditEntry.objects.filter(action="trajectory.near", query__has_key="vehicles").exists()


@pytest.mark.parametrize("role", ["clerk", "owner"])
def test_only_officers_and_leaders_search_a_crime_scene(client, role, start):
    client.force_login(factories.user(role))
    assert client.get(reverse("web:crime-scene")).status_code == 403
    assert client.get(reverse("web:crime-scene"), scene_params(start)).status_code == 403
    client.force_login(factories.user("admin"))
    assert client.get(reverse("web:crime-scene")).status_code == 200


# --- traces opened from a search ---------------------------------------------------------------------------


def search_for(client, start) -> tuple[AuditEntry, str]:
    response = client.get(reverse("web:crime-scene"), scene_params(start))
    entry = AuditEntry.objects.filter(action="trajectory.near").latest("id")
    return entry, response.context["results"][0].trace_url


def test_a_trace_from_a_search_carries_its_reason_and_shows_only_its_window(client, bike, start):
    searcher = factories.user("officer", station_code="13022902")  # no duty on the bike
    client.force_login(searcher)
    entry, url = search_for(client, start)
    response = client.get(url)
    assert response.status_code == 200
    origin = response.context["origin"]
    assert origin.entry_id == entry.pk and origin.reason == entry.reason
    pad = trace_origins.SEARCH_WINDOW_PAD
    assert origin.since == datetime.datetime.fromisoformat(entry.query["since"]) - pad
    assert response.context["page"]["urls"] == {
        "trajectory": reverse("vehicle-trajectory", args=[bike.vehicle.pk]),
        "reason": "",
        "search": entry.pk,
    }
    assert 'id="trace-origin"' in response.content.decode()
    stops = AuditEntry.objects.get(user=searcher, action="trajectory.stops")
    assert stops.query["search"] == entry.pk and stops.reason == entry.reason
    assert stops.query["basis"] == "stated_reason"
    assert stops.query["since"] == timezone.localtime(origin.since).isoformat()

    # The replay reads the trajectory through the API on the same footing.
    api = client.get(reverse("vehicle-trajectory", args=[bike.vehicle.pk]), {"search": entry.pk})
    assert api.status_code == 200
    meta = api.json()["metadata"]
    assert datetime.datetime.fromisoformat(meta["since"]) == origin.since
    assert meta["count"] == bike.fixes  # the whole ride lies within the window
    look = AuditEntry.objects.filter(user=searcher, action="trajectory.view").latest("id")
    assert look.query["search"] == entry.pk and look.reason == entry.reason and look.query["basis"] == "stated_reason"
    # Not a day before the search's window.
    early = client.get(
        reverse("vehicle-trajectory", args=[bike.vehicle.pk]),
        {"search": entry.pk, "since": (origin.since - datetime.timedelta(days=1)).isoformat()},
    )
    assert early.status_code == 400 and "since" in early.json()


def test_a_search_opens_only_the_bikes_it_found_and_only_for_whoever_made_it(client, officer, bike, start):
    searcher = factories.user("officer", station_code="13022902")
    client.force_login(searcher)
    entry, url = search_for(client, start)
    other_bike = tf.terminal().vehicle
    refused = client.get(reverse("web:trace", args=[other_bike.pk]), {"search": entry.pk})
    assert refused.status_code == 403
    assert AuditEntry.objects.filter(
        action="trajectory.view", object_id=str(other_bike.pk), query__search=entry.pk, query__has_key="refused"
    ).exists()
    colleague = factories.user("officer", station_code="13022902")
    client.force_login(colleague)
    assert client.get(url).status_code == 403
    assert client.get(reverse("vehicle-trajectory", args=[bike.vehicle.pk]), {"search": entry.pk}).status_code == 403
    client.force_login(searcher)
    backdate("accounts_auditentry", entry.pk, timezone.now() - trace_origins.SEARCH_VALID_FOR * 2)
    assert client.get(url).status_code == 403  # a search opens traces for the work it was made for


def test_a_trace_opened_from_a_ring_reads_in_the_window_the_ring_bike_was_there(client, officer, bike, ring):
    client.force_login(officer)
    (seen,) = trace(client, bike).context["stops"][0]["rings"]
    stops_look = AuditEntry.objects.get(action="trajectory.stops", object_id=str(bike.vehicle.pk))
    response = client.get(seen.trace_url)
    assert response.status_code == 200
    origin = response.context["origin"]
    assert origin.entry_id == stops_look.pk
    assert origin.since == seen.visit.first_seen - trace_origins.SEARCH_WINDOW_PAD
    # The officer's duty is on the first bike: the ring's trace is read on it, as a stated basis.
    assert origin.reason == f"open_report:{bike.report.number}"
    ring_look = AuditEntry.objects.get(action="trajectory.stops", object_id=str(ring.vehicle.pk))
    assert ring_look.query["search"] == stops_look.pk
    assert parse_qs(urlsplit(seen.trace_url).query)["search"] == [str(stops_look.pk)]


# --- the filing record and the map card ----------------------------------------------------------------------


def test_the_record_shows_the_last_position_to_an_officer_with_a_duty(client, officer, bike):
    client.force_login(officer)
    response = client.get(reverse("vehicles:detail", args=[bike.vehicle.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="last-position"' in html
    assert f"{bike.last[0]:.6f}, {bike.last[1]:.6f}" in html
    assert "Last heard from" in html and 'id="record-position"' in html
    look = AuditEntry.objects.get(user=officer, action="trajectory.position", object_id=str(bike.vehicle.pk))
    assert look.query["basis"] == f"open_report:{bike.report.number}" and look.result_count == 1


@pytest.mark.parametrize("role", ["clerk", "officer_elsewhere", "admin"])
def test_the_record_hides_the_last_position_from_staff_without_a_duty(client, role, officer, bike):
    user = factories.user("officer", station_code="13022902") if role == "officer_elsewhere" else factories.user(role)
    client.force_login(user)
    response = client.get(reverse("vehicles:detail", args=[bike.vehicle.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="last-position"' not in html and f"{bike.last[0]:.6f}" not in html
    assert not AuditEntry.objects.filter(action="trajectory.position").exists()  # nothing read, no refusal noise


def test_the_map_card_writes_out_the_coordinates(client, officer, bike):
    client.force_login(officer)
    card = client.get(reverse("web:map-card", args=[bike.vehicle.pk])).json()
    assert card["position"]["text"] == f"{bike.last[0]:.6f}, {bike.last[1]:.6f}"
    assert card["position"]["latitude"] == pytest.approx(bike.last[0], abs=1e-7)


def test_the_tracing_pages_speak_chinese_with_their_results(client, officer, bike, ring, start, settings):
    from tests.web.test_zh_hans_walk import stray_words, user_data

    settings.LANGUAGE_CODE = "zh-hans"
    client.force_login(officer)
    later = timezone.localtime(start + RIDE_IN * STEP + datetime.timedelta(hours=1))
    scene = client.get(reverse("web:crime-scene"), scene_params(start, until=later.strftime("%Y-%m-%dT%H:%M")))
    assert len(scene.context["results"]) == 2
    traced = client.get(scene.context["results"][0].trace_url)
    assert traced.context["stops"][0]["rings"]
    record = client.get(reverse("vehicles:detail", args=[bike.vehicle.pk]))
    data = user_data()
    for response in (scene, traced, record):
        assert response.status_code == 200
        assert stray_words(response.content.decode(), data) == []
    assert "伴随分析" in scene.content.decode() and "停留点" in traced.content.decode()
