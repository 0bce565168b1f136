from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracking.protocols import BadChecksum, BadFraming, BadLength, BadValue, Fix, Truncated, gt06

LOCATION_490 = bytes.fromhex("78781f120f0a140e150bc505e51e780293a9e800540000f601006e0055da00035f240d0a")
HEARTBEAT_427 = bytes.fromhex("78780a13c40604000201298f5b0d0a")


def crc_x25_reference(data: bytes) -> int:
    """docs/protocols.md#gt06-frame, bit by bit."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def test_crc_check_value():
    assert gt06.crc_itu(b"123456789") == 0x906E == crc_x25_reference(b"123456789")


@given(st.binary(max_size=600))
def test_fast_crc_equals_the_bitwise_reference(data):
    assert gt06.crc_itu(data) == crc_x25_reference(data)


@pytest.mark.parametrize(
    ("protocol", "serial", "reply"),
    [
        (0x01, 0x0005, "787805010005 9ff8 0d0a"),  # Concox document example
        (0x13, 0x0100, "787805130100 e1a0 0d0a"),
        (0x26, 0x001C, "78780526001c 9d86 0d0a"),
    ],
)
def test_acks_match_the_documented_replies(protocol, serial, reply):
    assert gt06.ack(protocol, serial) == bytes.fromhex(reply.replace(" ", ""))


def test_named_acks():
    assert gt06.login_ack(5) == gt06.ack(0x01, 5)
    assert gt06.heartbeat_ack(0x100) == gt06.ack(0x13, 0x100)
    assert gt06.alarm_ack(0x16, 7) == gt06.ack(0x16, 7)


def test_location_gets_the_optional_ack_echoing_protocol_and_serial():
    message = gt06.decode(LOCATION_490)
    assert message.reply == gt06.ack(0x12, 3)
    fix = message.fixes[0]
    assert fix.extras["mcc"] == 246
    assert (fix.extras["mnc"], fix.extras["lac"], fix.extras["cell_id"]) == (1, 0x6E, 0x55DA)


def test_relay_command_matches_traccar_engine_stop():
    expected = "78 78 12 80 0c 00000000 52656c61792c3123 0000 9dee 0d0a"  # docs/protocols.md#gt06-messages
    assert gt06.command("Relay,1#", 0) == bytes.fromhex(expected.replace(" ", ""))


@pytest.mark.parametrize(
    ("word", "minutes", "language"),
    [("3200", 480, 0), ("190a", -240, 2), ("0000", 0, 0), ("33e2", 8 * 60 + 30, 2)],
)
def test_login_time_zone_word(word, minutes, language):
    frame = gt06.build_frame(0x01, bytes.fromhex("0864717003283581" + "3610" + word), 1)
    message = gt06.decode(frame)
    assert message.terminal == "864717003283581"
    assert message.info["timezone_offset_minutes"] == minutes
    assert message.info["language"] == language
    assert message.info["type_code"] == "3610"


def test_session_time_zone_shifts_device_time_to_utc():
    local = gt06.decode(LOCATION_490, tz_offset_minutes=480).fixes[0].time
    assert local == datetime(2015, 10, 20, 6, 21, 11, tzinfo=UTC)


def test_heartbeat_fields_and_alarm_bits():
    message = gt06.decode(HEARTBEAT_427)
    assert message.kind == "heartbeat"
    assert message.info["charging"] is True and message.info["gps_tracking"] is True
    assert message.alarms == ()
    sos = gt06.decode(gt06.build_frame(0x13, bytes((0b00100000, 6, 4, 0, 2)), 9))
    assert sos.alarms == ("sos",)


def test_lbs_alarm_without_gps_is_an_alarm_with_a_reply():
    frame = gt06.build_frame(0x19, gt06.encode_lbs(460, 0, 0x1234, 0x5678) + gt06.encode_status(alarm_code=0x01), 3)
    message = gt06.decode(frame)
    assert (message.kind, message.fixes, message.alarms) == ("alarm", (), ("sos",))
    assert message.reply == gt06.ack(0x19, 3)


def test_time_request_is_answered_with_utc_time():
    now = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    message = gt06.decode(gt06.build_frame(0x8A, b"", 0x22), now=now)
    assert message.reply == gt06.build_frame(0x8A, bytes((26, 3, 4, 5, 6, 7)), 0x22)


def test_unknown_and_lbs_only_packets_are_other_without_reply():
    for protocol in (0x18, 0x94, 0x5A):
        message = gt06.decode(gt06.build_frame(protocol, b"\x01\x02\x03", 1))
        assert (message.kind, message.reply) == ("other", None)


def test_long_packets_use_7979_framing():
    frame = gt06.build_frame(0x94, bytes(300), 1)
    assert frame[:2] == b"\x79\x79"
    assert gt06.decode(frame).kind == "other"


# --- encode -> decode ---------------------------------------------------------------------------------


fixes = st.builds(
    Fix,
    time=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)).map(
        lambda value: value.replace(microsecond=0)
    ),
    latitude=st.floats(-90, 90),
    longitude=st.floats(-180, 180),
    valid=st.booleans(),
    speed_kmh=st.integers(0, 255).map(float),
    course=st.integers(0, 359).map(float),
    satellites=st.integers(0, 15),
)


@given(fixes, st.integers(0, 0xFFFF), st.sampled_from([0x12, 0x22]))
def test_location_round_trip(fix, serial, protocol):
    message = gt06.decode(gt06.encode_location(fix, serial, protocol=protocol))
    assert (message.kind, message.serial) == ("location", serial)
    got = message.fixes[0]
    assert got.time == fix.time
    assert got.latitude == pytest.approx(fix.latitude, abs=1e-6)
    assert got.longitude == pytest.approx(fix.longitude, abs=1e-6)
    assert (got.valid, got.speed_kmh, got.course, got.satellites) == (
        fix.valid,
        fix.speed_kmh,
        fix.course,
        fix.satellites,
    )


@given(fixes, st.integers(0, 0xFFFF), st.sampled_from(sorted(gt06.ALARM_NAMES)))
def test_alarm_round_trip(fix, serial, code):
    frame = gt06.encode_alarm(fix, serial, protocol=0x26, status=gt06.encode_status(terminal_info=0, alarm_code=code))
    message = gt06.decode(frame)
    assert message.kind == "alarm"
    assert message.fixes[0].alarms == (gt06.ALARM_NAMES[code],)
    assert message.reply == gt06.ack(0x26, serial)


@given(st.from_regex(r"[0-9]{15}", fullmatch=True), st.integers(0, 0xFFFF))
def test_login_round_trip(imei, serial):
    message = gt06.decode(gt06.encode_login(imei, serial))
    assert (message.kind, message.terminal, message.reply) == ("login", imei, gt06.login_ack(serial))


def test_heartbeat_round_trip():
    message = gt06.decode(gt06.encode_heartbeat(77, terminal_info=0b00010000))
    assert (message.kind, message.serial, message.alarms) == ("heartbeat", 77, ("power_cut",))


# --- bad input ------------------------------------------------------------------------------------------


def test_bad_checksum():
    broken = LOCATION_490[:-3] + bytes((LOCATION_490[-3] ^ 1,)) + LOCATION_490[-2:]
    with pytest.raises(BadChecksum, match="CRC"):
        gt06.decode(broken)


def test_content_byte_changed_breaks_the_crc():
    broken = bytearray(LOCATION_490)
    broken[10] ^= 0x40
    with pytest.raises(BadChecksum):
        gt06.decode(bytes(broken))


@pytest.mark.parametrize("cut", [1, 3, 10, len(LOCATION_490) - 1])
def test_truncated(cut):
    with pytest.raises(Truncated):
        gt06.decode(LOCATION_490[:cut])


def test_wrong_length_byte():
    broken = bytearray(LOCATION_490)
    broken[2] = 0x1E
    with pytest.raises(BadLength, match="length"):
        gt06.decode(bytes(broken))


def test_trailing_bytes_after_the_frame():
    with pytest.raises(BadLength, match="follow"):
        gt06.decode(HEARTBEAT_427 + b"\x00")


def test_bad_start_and_stop_bytes():
    with pytest.raises(BadFraming, match="start"):
        gt06.decode(b"\x78\x79" + HEARTBEAT_427[2:])
    with pytest.raises(BadFraming, match="stop"):
        gt06.decode(HEARTBEAT_427[:-2] + b"\x0d\x0b")


def test_length_below_minimum():
    with pytest.raises(BadLength):
        gt06.decode(bytes.fromhex("7878040100000d0a"))


def test_login_with_non_bcd_imei():
    with pytest.raises(BadValue, match="BCD"):
        gt06.decode(gt06.build_frame(0x01, bytes.fromhex("0a64717003283581"), 1))


def test_short_content_for_its_type():
    with pytest.raises(Truncated):
        gt06.decode(gt06.build_frame(0x12, bytes(10), 1))
    with pytest.raises(Truncated):
        gt06.decode(gt06.build_frame(0x16, bytes(25), 1))


def test_coordinates_out_of_range():
    content = bytearray(gt06.encode_gps_block(Fix(None, 10.0, 10.0, True)) + gt06.encode_lbs())
    content[7:11] = (100 * 1_800_000).to_bytes(4, "big")  # 100 degrees latitude
    with pytest.raises(BadValue, match="latitude"):
        gt06.decode(gt06.build_frame(0x12, bytes(content), 1))


def test_impossible_date_gives_no_time_but_keeps_the_raw_bytes():
    content = bytearray(LOCATION_490[4:-6])
    content[1] = 13  # month 13
    fix = gt06.decode(gt06.build_frame(0x12, bytes(content), 3)).fixes[0]
    assert fix.time is None
    assert fix.extras["raw_time"] == "0f0d140e150b"
