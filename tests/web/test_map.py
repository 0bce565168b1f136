"""The officer map's pages and JSON endpoints on the real database."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry
from cases.models import TheftReport
from tests.tracking import factories as tf
from tests.web.scene import stolen_bike
from tracking.coords import wgs84_to_gcj02
from tracking.ingest import Incoming, ingest_fixes
from tracking.models import LastPosition
from tracking.protocols.common import Fix
from web.map_selectors import MARKER_FIELDS

pytestmark = pytest.mark.django_db


@pytest.fixture
def bike(officer):
    return stolen_bike(officer)


def markers(client, **params):
    response = client.get(reverse("web:map-markers"), params)
    assert response.status_code == 200, response.content
    data = response.json()
    rows = []
    for values in data["rows"]:
        row = dict(zip(data["fields"], values, strict=True))
        row["lat"], row["lon"] = row["lat_e6"] / 1e6, row["lon_e6"] / 1e6
        rows.append(row)
    return rows, data


def test_it_lists_stolen_bikes_at_their_last_position(client, officer, bike):
    client.force_login(officer)
    rows, data = markers(client)
    assert data["fields"] == MARKER_FIELDS and data["datum"] == "wgs84"
    assert len(rows) == 1
    row = rows[0]
    assert row["vehicle"] == bike.vehicle.pk and row["plate"] == bike.plate and row["report"] == bike.report.pk
    assert row["lat"] == pytest.approx(bike.last[0], abs=1e-6) and row["lon"] == pytest.approx(bike.last[1], abs=1e-6)
    assert AuditEntry.objects.filter(user=officer, action="stolen.map", result_count=1).exists()


def test_bikes_not_reported_stolen_are_not_on_the_map(client, officer, bike):
    other = tf.terminal()
    ingest_fixes([Incoming(other.pk, tf.fix(1))])
    client.force_login(officer)
    rows, _ = markers(client)
    assert [r["vehicle"] for r in rows] == [bike.vehicle.pk]


def test_filters_by_station_and_report_date(client, officer, bike):
    client.force_login(officer)
    today = timezone.localdate()
    assert len(markers(client, station=bike.report.station_id)[0]) == 1
    other_station = type(bike.report.station).objects.exclude(pk=bike.report.station_id).first()
    assert markers(client, station=other_station.pk)[0] == []
    assert len(markers(client, reported_from=today, reported_to=today)[0]) == 1
    assert markers(client, reported_to=today - datetime.timedelta(days=1))[0] == []


def test_bad_filters_answer_400_with_the_fields(client, officer):
    client.force_login(officer)
    response = client.get(reverse("web:map-markers"), {"reported_from": "2026-05-02", "reported_to": "2026-05-01"})
    assert response.status_code == 400
    assert "reported_to" in response.json()["errors"]
    response = client.get(reverse("web:map-markers"), {"station": "999999"})
    assert response.status_code == 400 and "station" in response.json()["errors"]


def test_a_poll_returns_only_new_positions(client, officer, bike):
    an_hour_ago = timezone.now() - datetime.timedelta(hours=1)  # outside the poll's look-back overlap
    LastPosition.objects.filter(terminal=bike.terminal).update(received_at=an_hour_ago)
    TheftReport.objects.filter(pk=bike.report.pk).update(received_at=an_hour_ago)
    client.force_login(officer)
    _, first = markers(client)
    cursor = first["cursor"]
    assert markers(client, since=cursor)[0] == []
    audited = AuditEntry.objects.filter(action="stolen.map").count()
    later = Fix(
        time=timezone.now().replace(microsecond=0),
        latitude=bike.last[0] + 0.01,
        longitude=bike.last[1],
        valid=True,
        speed_kmh=10.0,
    )
    ingest_fixes([Incoming(bike.terminal.pk, later)])
    rows, _ = markers(client, since=cursor)
    assert [r["vehicle"] for r in rows] == [bike.vehicle.pk]
    assert rows[0]["lat"] == pytest.approx(later.latitude, abs=1e-6)
    assert AuditEntry.objects.filter(action="stolen.map").count() == audited + 1  # empty polls are not audited


def test_gcj02_tiles_get_converted_positions(client, officer, bike, settings):
    settings.MAP_TILES = "amap"
    client.force_login(officer)
    rows, data = markers(client)
    assert data["datum"] == "gcj02"
    lat, lon = wgs84_to_gcj02(*bike.last)
    assert rows[0]["lat"] == pytest.approx(lat, abs=1e-6) and rows[0]["lon"] == pytest.approx(lon, abs=1e-6)


def test_the_card_names_plate_vehicle_report_and_cases(client, officer, bike):
    client.force_login(officer)
    response = client.get(reverse("web:map-card", args=[bike.vehicle.pk]))
    assert response.status_code == 200
    card = response.json()
    assert card["plate"] == bike.plate
    assert card["report"]["number"] == bike.report.number
    assert card["report"]["url"] == reverse("cases:report", args=[bike.report.pk])
    assert card["trace_url"] == reverse("web:trace", args=[bike.vehicle.pk])
    assert card["cases"] == []
    assert client.get(reverse("web:map-card", args=[999999])).status_code == 404
    assert AuditEntry.objects.filter(action="stolen.card", object_id=str(bike.vehicle.pk), user=officer).exists()


def test_the_card_of_a_bike_not_under_an_open_report_is_refused_and_audited(client, officer, bike):
    from tests.tracking import factories as tf

    elsewhere = tf.terminal().vehicle  # registered, not reported: not on the map
    client.force_login(officer)
    response = client.get(reverse("web:map-card", args=[elsewhere.pk]))
    assert response.status_code == 403 and "open theft report" in response.json()["detail"]
    refused = AuditEntry.objects.get(action="stolen.card", object_id=str(elsewhere.pk))
    assert refused.query["refused"]


@pytest.mark.parametrize("role", ["clerk", "admin", "owner"])
def test_other_roles_get_a_403_page(client, role, bike):
    from tests import factories

    client.force_login(factories.user(role))
    response = client.get(reverse("web:map"))
    assert response.status_code == 403
    assert b"<h1>" in response.content and b"Not allowed" in response.content
    assert client.get(reverse("web:map-markers")).status_code == 403
    assert client.get(reverse("web:map-card", args=[bike.vehicle.pk])).status_code == 403


def test_anonymous_users_are_sent_to_log_in(client):
    response = client.get(reverse("web:map"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_the_map_page_renders_with_local_assets(client, officer):
    client.force_login(officer)
    response = client.get(reverse("web:map"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "vendor/leaflet/leaflet.js" in html and "leaflet.markercluster.js" in html
    assert "unpkg" not in html and "cdn" not in html.lower()
    assert 'id="map-config"' in html


def test_the_trace_page_needs_a_duty(client, officer, bike):
    client.force_login(officer)
    assert client.get(reverse("web:trace", args=[bike.vehicle.pk])).status_code == 200
    plain = tf.terminal()
    response = client.get(reverse("web:trace", args=[plain.vehicle.pk]))
    assert response.status_code == 403
    assert b"state the reason" in response.content and b'name="reason"' in response.content  # a form to state it
    assert AuditEntry.objects.filter(action="trajectory.view", object_id=str(plain.vehicle.pk)).exists()
    response = client.get(reverse("web:trace", args=[plain.vehicle.pk]), {"reason": "协查盗窃案件线索"})
    assert response.status_code == 200
    assert client.get(reverse("web:trace", args=[plain.vehicle.pk]), {"reason": "ab"}).status_code == 403
    assert client.get(reverse("web:trace", args=[999999])).status_code == 404


def test_a_clerk_cannot_open_a_trace(client, clerk, bike):
    client.force_login(clerk)
    response = client.get(reverse("web:trace", args=[bike.vehicle.pk]))
    assert response.status_code == 403 and b"<h1>" in response.content


def test_the_map_speaks_chinese_by_default_and_english_on_request(client, officer, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    client.force_login(officer)
    assert "被盗车辆地图" in client.get(reverse("web:map")).content.decode()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert "Stolen-bike map" in client.get(reverse("web:map")).content.decode()


def test_the_trace_page_marks_the_place_of_the_theft(client, officer, bike):
    from django.contrib.gis.geos import Point

    TheftReport.objects.filter(pk=bike.report.pk).update(place_point=Point(117.73, 39.88, srid=4326))
    client.force_login(officer)
    response = client.get(reverse("web:trace", args=[bike.vehicle.pk]))
    assert response.context["page"]["theft_place"] == pytest.approx([39.88, 117.73])
