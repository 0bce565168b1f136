import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tracking.protocols import BadValue, osmand


def test_classic_app_query():
    message = osmand.decode_query(
        "/?id=48241179&timestamp=1718459112&lat=39.9042&lon=116.4074&speed=10&bearing=271.5&altitude=44.2"
        "&accuracy=5&batt=87.5&charge=true&mock=false"
    )
    assert (message.kind, message.terminal) == ("location", "48241179")
    fix = message.fixes[0]
    assert fix.time == datetime(2024, 6, 15, 13, 45, 12, tzinfo=UTC)
    assert (fix.latitude, fix.longitude, fix.valid) == (39.9042, 116.4074, True)
    assert fix.speed_kmh == 18.52  # knots -> km/h
    assert (fix.course, fix.altitude, fix.battery) == (271.5, 44.2, 87.5)
    assert {key: fix.extras[key] for key in ("speed_knots", "accuracy", "charging", "mock")} == {
        "speed_knots": 10.0,
        "accuracy": 5.0,
        "charging": True,
        "mock": False,
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1377177267", datetime(2013, 8, 22, 13, 14, 27, tzinfo=UTC)),
        ("1377177267123", datetime(2013, 8, 22, 13, 14, 27, 123000, tzinfo=UTC)),  # milliseconds
        ("2016-01-27T18:55:47Z", datetime(2016, 1, 27, 18, 55, 47, tzinfo=UTC)),
        ("2016-01-27T20:55:47+02:00", datetime(2016, 1, 27, 18, 55, 47, tzinfo=UTC)),
        ("2016-01-27 18:55:47", datetime(2016, 1, 27, 18, 55, 47, tzinfo=UTC)),
    ],
)
def test_timestamp_forms(value, expected):
    assert osmand.parse_timestamp(value) == expected


def test_naive_timestamp_uses_the_given_server_zone():
    beijing = timezone(timedelta(hours=8))
    assert osmand.parse_timestamp("2016-01-27 18:55:47", naive_tz=beijing) == datetime(
        2016, 1, 27, 10, 55, 47, tzinfo=UTC
    )


def test_location_parameter_valid_flag_and_alarm():
    message = osmand.decode_query("deviceid=7&location=-33.9,18.4&valid=false&alarm=powerCut")
    fix = message.fixes[0]
    assert (fix.latitude, fix.longitude, fix.valid, fix.alarms) == (-33.9, 18.4, False, ("power_cut",))
    assert (fix.speed_kmh, fix.course, fix.time) == (None, None, None)


def test_sos_alarm_and_unknown_parameters_are_kept():
    fix = osmand.decode_query("id=1&lat=1&lon=2&alarm=sos&driverUniqueId=D42&foo=bar").fixes[0]
    assert fix.alarms == ("sos",)
    assert (fix.extras["driver_unique_id"], fix.extras["foo"]) == ("D42", "bar")


def test_json_body_of_the_current_app():
    body = {
        "location": {
            "timestamp": "2025-06-15T13:45:12.862Z",
            "coords": {"latitude": 31.2, "longitude": 121.5, "accuracy": 4, "speed": 5, "heading": 90, "altitude": 7},
            "is_moving": True,
            "odometer": 1234.5,
            "event": "motionchange",
            "battery": {"level": 0.56, "is_charging": False},
            "activity": {"type": "on_bicycle"},
            "extras": {},
        },
        "device_id": "48241179",
    }
    message = osmand.decode_request(body=json.dumps(body), content_type="application/json")
    fix = message.fixes[0]
    assert (message.kind, message.terminal) == ("location", "48241179")
    assert fix.time == datetime(2025, 6, 15, 13, 45, 12, 862000, tzinfo=UTC)
    assert (fix.speed_kmh, fix.course, fix.altitude, fix.battery) == (18.0, 90.0, 7.0, 56.0)  # m/s -> km/h
    assert fix.extras["activity"] == "on_bicycle" and fix.extras["charging"] is False


def test_json_unknown_speed_heading_battery():
    body = '{"device_id": 5, "location": {"coords": {"latitude": 1, "longitude": 2, "speed": -1, "heading": -1},'
    body += ' "battery": {"level": -1}}}'
    fix = osmand.decode_json(body).fixes[0]
    assert (fix.speed_kmh, fix.course, fix.battery, fix.time) == (None, None, None, None)


def test_json_batch():
    body = {"device_id": "9", "location": [{"coords": {"latitude": 1, "longitude": 2}}] * 3}
    message = osmand.decode_json(json.dumps(body))
    assert (message.kind, len(message.fixes)) == ("batch", 3)


def test_form_body_when_the_query_is_empty():
    message = osmand.decode_request(
        query="", body="id=3&lat=1.5&lon=2.5", content_type="application/x-www-form-urlencoded"
    )
    assert (message.terminal, message.fixes[0].latitude) == ("3", 1.5)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("lat=1&lon=2", "missing id"),
        ("id=&lat=1&lon=2", "missing id"),
        ("id=1&timestamp=1377177267", "missing lat"),
        ("id=1&lat=1", "missing lon"),
        ("id=1&lat=abc&lon=2", "not a number"),
        ("id=1&lat=nan&lon=2", "finite"),
        ("id=1&lat=91&lon=2", "latitude"),
        ("id=1&lat=1&lon=-181", "longitude"),
        ("id=1&lat=1&lon=2&timestamp=yesterday", "timestamp"),
        ("id=1&location=1;2", "lat,lon"),
    ],
)
def test_bad_queries(query, reason):
    with pytest.raises(BadValue, match=reason):
        osmand.decode_query(query)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not an object"),
        ('{"location": {"coords": {"latitude": 1, "longitude": 2}}}', "device_id"),
        ('{"device_id": "1"}', "location"),
        ('{"device_id": "1", "location": {"coords": {"latitude": 1}}}', "longitude"),
        ('{"device_id": "1", "location": {"coords": {"latitude": "1", "longitude": 2}}}', "not a number"),
        ('{"device_id": "1", "location": {"coords": {"latitude": true, "longitude": 2}}}', "not a number"),
    ],
)
def test_bad_json_bodies(body, reason):
    with pytest.raises(BadValue, match=reason):
        osmand.decode_json(body)


def test_empty_request():
    with pytest.raises(BadValue):
        osmand.decode_request(query=None, body=None)
