"""Theft-report addresses geocoded through geopy: the offline gazetteer by default, a bureau's own
Nominatim as the option; a report is taken whatever the geocoder says."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from cases.workflow import geocoding
from cases.workflow.geocoding import GazetteerGeocoder
from cases.workflow.services import VehicleQuery
from tests.cases.test_reports import take

pytestmark = pytest.mark.django_db

UNREGISTERED = {
    "vehicle_query": VehicleQuery(frame_number="175722599999999"),
    "unregistered_description": "黑色小牛 N1s",
}


@pytest.fixture(autouse=True)
def fresh_geocoder():
    geocoding.geocoder.cache_clear()
    yield
    geocoding.geocoder.cache_clear()


def write(tmp_path, text):
    path = tmp_path / "places.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_most_specific_place_in_the_address_wins(tmp_path):
    gazetteer = GazetteerGeocoder.from_csv(
        write(tmp_path, "# name,lat,lon\n玉田县,39.90,117.74\n无终街道,39.88,117.73\n兴隆路,39.885,117.741\n")
    )
    found = gazetteer.geocode("玉田县无终街道兴隆路超市门口")
    assert (found.address, found.latitude, found.longitude) == ("兴隆路", 39.885, 117.741)
    assert [place.address for place in gazetteer.geocode("无终街道某小区", exactly_one=False)] == ["无终街道"]
    assert gazetteer.geocode("北京市海淀区") is None


@pytest.mark.parametrize(("text", "said"), [("兴隆路,39.885\n", "row 1"), ("兴隆路,95,117\n", "out of range")])
def test_a_broken_gazetteer_names_the_row(tmp_path, text, said):
    with pytest.raises(ImproperlyConfigured, match=said):
        GazetteerGeocoder.from_csv(write(tmp_path, text))


def test_a_report_without_a_map_point_is_placed_from_its_address(officer):
    report = take(officer, place_point=None, place_address="玉田县无终街道兴隆路超市门口", **UNREGISTERED)
    assert report.place_geocoded
    assert (round(report.place_point.y, 4), round(report.place_point.x, 4)) == (39.8826, 117.739)


def test_a_point_picked_on_the_map_is_kept(officer):
    report = take(officer, place_point=(39.8830, 117.7380), **UNREGISTERED)
    assert not report.place_geocoded and (report.place_point.y, report.place_point.x) == (39.8830, 117.7380)


def test_an_unknown_place_or_an_absent_server_still_takes_the_report(officer, settings):
    unknown = take(officer, place_point=None, place_address="邻县某村", **UNREGISTERED)
    assert unknown.pk and unknown.place_point is None and not unknown.place_geocoded
    settings.GEOCODER, settings.GEOCODER_DOMAIN, settings.GEOCODER_SCHEME = "nominatim", "127.0.0.1:9", "http"
    geocoding.geocoder.cache_clear()
    away = take(officer, place_point=None, place_address="玉田县无终街道", **UNREGISTERED)
    assert away.pk and away.place_point is None
