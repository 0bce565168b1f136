from datetime import UTC, datetime
from functools import reduce
from operator import xor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracking.protocols import (
    BadChecksum,
    BadEscape,
    BadFraming,
    BadLength,
    BadValue,
    Fix,
    Truncated,
    Unsupported,
    jt808,
)

LOCATION_27 = bytes.fromhex(
    "7e02000048051160004464000d00000000000c00020159885e06cbf34400000000000020080718072201040000000130011c310109e4"
    "020063e50100e60100e7080000000000000000ee0a01cc01262c009a6743001e7e"
)
REGISTER_2019 = bytes.fromhex(
    "7e0100405c010000086649607758216452180000000000000000000000000000004d443330300000000000000000000000000000000000"
    "000000000000000038363634393630373735383231363400000000000000000000000000000004000000000000000000000000000000007a7e"
)
PHONE = jt808.phone_bytes("13800138000")


def reframe(payload: bytes) -> bytes:
    """Wrap a (possibly edited) header + body with a correct check code."""
    return b"\x7e" + jt808.escape(payload + bytes((jt808.checksum(payload),))) + b"\x7e"


@given(st.binary(max_size=1100))
def test_xor_fold_equals_a_byte_loop(data):
    assert jt808.checksum(data) == reduce(xor, data, 0)


@given(st.binary(max_size=300))
def test_escape_round_trip(data):
    escaped = jt808.escape(data)
    assert 0x7E not in escaped
    assert jt808.unescape(escaped) == data


def test_escape_examples():
    assert jt808.escape(b"\x30\x7e\x08\x7d\x55") == bytes.fromhex("307d02087d0155")
    assert jt808.unescape(bytes.fromhex("7d027d01")) == b"\x7e\x7d"


@pytest.mark.parametrize("data", ["7d03", "7d00", "017d", "7d7d"])
def test_bad_escape(data):
    with pytest.raises(BadEscape):
        jt808.unescape(bytes.fromhex(data))


def test_location_worked_example():
    message = jt808.decode(LOCATION_27)
    header = message.info["header"]
    assert (header.msg_id, header.serial, header.standard, message.terminal) == (0x0200, 13, "2013", "051160004464")
    fix = message.fixes[0]
    assert fix.time == datetime(2020, 8, 7, 10, 7, 22, tzinfo=UTC)
    assert (fix.latitude, fix.longitude, fix.altitude, fix.satellites) == (22.64483, 114.02938, 0.0, 9)
    assert fix.extras["mileage_km"] == 0.1
    assert fix.extras["signal"] == 28
    assert fix.extras["gps"] and fix.extras["beidou"]
    assert message.reply == bytes.fromhex("7e800100050511600044640000000d020000df7e")


def test_platform_serial_is_written_into_replies():
    reply = jt808.decode(LOCATION_27, platform_serial=0x1234).reply
    header, body = jt808.parse_header(jt808.unwrap(reply))
    assert (header.serial, body) == (0x1234, bytes.fromhex("000d020000"))


def test_register_2019_reply_echoes_the_2019_header_and_carries_the_auth_code():
    message = jt808.decode(REGISTER_2019, auth_code="s3cret")
    header, body = jt808.parse_header(jt808.unwrap(message.reply))
    assert (header.msg_id, header.version, header.phone.hex()) == (0x8100, 1, "00000866496077582164")
    assert body == bytes.fromhex("521800") + b"s3cret"


def test_register_refused_has_no_auth_code():
    request = jt808.decode(REGISTER_2019).info["header"]
    _, body = jt808.parse_header(jt808.unwrap(jt808.register_response(request, result=3)))
    assert body == bytes.fromhex("521803")


def test_2019_frame_with_the_version_bit_cleared_is_rejected():
    payload = bytearray(jt808.unwrap(REGISTER_2019))
    payload[2] &= ~0x40
    with pytest.raises(BadLength):
        jt808.decode(reframe(bytes(payload)))


def test_register_2013_layout():
    frame = jt808.encode_register(phone=PHONE, serial=1, model="MODEL-20", plate="粤B12345", plate_color=2)
    info = jt808.decode(frame).info
    assert (info["register_layout"], info["manufacturer"], info["model"]) == ("2013", "EBIKE", "MODEL-20")
    assert (info["device_id"], info["plate_color"], info["plate"]) == ("0000001", 2, "粤B12345")


def test_register_2011_layout():
    body = bytes(4) + b"ABCDE" + b"M8".ljust(8, b"\0") + b"1234567" + b"\x01" + b"X"
    header = bytes.fromhex("0100") + len(body).to_bytes(2, "big") + PHONE + b"\x00\x01"
    info = jt808.decode(reframe(header + body)).info
    assert (info["register_layout"], info["model"], info["device_id"], info["plate"]) == ("2011", "M8", "1234567", "X")


def test_auth_2013_and_2019():
    message = jt808.decode(jt808.encode_auth("abc123", phone=PHONE, serial=5))
    assert (message.kind, message.info["auth_code"]) == ("auth", "abc123")
    body = bytes((6,)) + b"abc123" + b"866496077582164" + b"V1.0".ljust(20, b"\0")
    message = jt808.decode(jt808.encode(0x0102, body, phone=bytes(10), serial=5, version=1))
    got = {key: message.info[key] for key in ("auth_code", "imei", "software_version")}
    assert got == {"auth_code": "abc123", "imei": "866496077582164", "software_version": "V1.0"}


def test_jimi_binary_imei_in_the_phone_field():
    message = jt808.decode(jt808.encode_heartbeat(phone=bytes.fromhex("4f07788ef676"), serial=1))
    assert message.info["terminal_id"] is None
    assert message.terminal == message.info["imei_binary"] == "868935060005020"


def test_reply_whose_check_code_is_0x7e_is_escaped():
    for serial in range(0x10000):
        header = jt808.Header(0x0002, 0, None, PHONE, serial)
        payload = jt808.unwrap(jt808.general_response(header))
        if jt808.checksum(payload) == 0x7E:
            break
    reply = jt808.general_response(header)
    assert reply.endswith(b"\x7d\x02\x7e")
    assert jt808.parse_header(jt808.unwrap(reply))[0].msg_id == 0x8001


def test_alarm_bits_and_area_direction():
    fix = Fix(datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), 30.0, 120.0, True, 12.3, 90.0, 15.0, 7)
    flags = (1 << 0) | (1 << 7) | (1 << 8) | (1 << 20) | (1 << 26) | (1 << 28)
    body = jt808.encode_location_body(fix, alarm_flags=flags, items=bytes.fromhex("1206010000000701"))
    got = jt808.decode_location_body(body)
    assert got.alarms == ("sos", "low_power", "power_cut", "geofence_exit", "stolen", "movement")
    assert got.extras["area_alarm"] == {"type": 1, "id": 7, "direction": 1}


def test_status_bits_hemispheres_and_validity():
    fix = Fix(None, -33.5, -70.25, False)
    got = jt808.decode_location_body(jt808.encode_location_body(fix, status=0x0C01 | 0x04 | 0x08))
    assert (got.latitude, got.longitude, got.valid, got.time) == (-33.5, -70.25, False, None)
    assert got.extras["acc"] and got.extras["oil_cut"] and got.extras["circuit_cut"]


def test_garbage_additional_items_do_not_reject_the_basic_block():
    body = jt808.encode_location_body(Fix(None, 1.0, 2.0, True)) + bytes.fromhex("3101" + "09" + "e405aabb")
    fix = jt808.decode_location_body(body)
    assert fix.satellites == 9
    assert fix.extras["items_truncated_at"] == 31


def test_signed_altitude():
    fix = Fix(None, 1.0, 2.0, True, altitude=-12.0)
    assert jt808.decode_location_body(jt808.encode_location_body(fix)).altitude == -12.0


def test_subpackage_is_acknowledged_without_decoding():
    frame = jt808.encode(0x0704, b"\x00\x02\x01", phone=PHONE, serial=9, packet=(2, 1))
    message = jt808.decode(frame)
    assert (message.kind, message.info["packet_total"], message.info["packet_index"]) == ("other", 2, 1)
    assert message.reply == jt808.general_response(message.info["header"])


def test_terminal_general_response_and_unknown_messages():
    response = jt808.decode(jt808.encode(0x0001, bytes.fromhex("0005810500"), phone=PHONE, serial=1))
    assert (response.kind, response.reply, response.info["reply_msg_id"]) == ("other", None, 0x8105)
    unknown = jt808.decode(jt808.encode(0x0900, b"\x01", phone=PHONE, serial=2))
    _, body = jt808.parse_header(jt808.unwrap(unknown.reply))
    assert body == bytes.fromhex("0002090003")  # result 3: not supported
    logout = jt808.decode(jt808.encode(0x0003, b"", phone=PHONE, serial=3))
    assert logout.reply == jt808.general_response(logout.info["header"])


def test_encrypted_body_is_unsupported():
    payload = bytearray(jt808.unwrap(jt808.encode_heartbeat(phone=PHONE, serial=1)))
    payload[2] |= 0x04
    with pytest.raises(Unsupported):
        jt808.decode(reframe(bytes(payload)))


# --- encode -> decode ---------------------------------------------------------------------------------

fixes = st.builds(
    Fix,
    time=st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2098, 12, 31), timezones=st.just(UTC)).map(
        lambda value: value.replace(microsecond=0)
    ),
    latitude=st.floats(-90, 90),
    longitude=st.floats(-180, 180),
    valid=st.booleans(),
    speed_kmh=st.integers(0, 6553).map(lambda tenths: tenths / 10),
    course=st.integers(0, 359).map(float),
    altitude=st.integers(-32768, 32767).map(float),
    satellites=st.integers(0, 255),
)
phones = st.from_regex(r"[0-9]{12}", fullmatch=True)


@given(fixes, phones, st.integers(0, 0xFFFF), st.sampled_from([None, 1]), st.integers(0, 2**32 - 1))
def test_location_round_trip(fix, terminal_id, serial, version, flags):
    phone = jt808.phone_bytes(terminal_id, version=version)
    message = jt808.decode(jt808.encode_location(fix, phone=phone, serial=serial, version=version, alarm_flags=flags))
    assert (message.kind, message.serial) == ("location", serial)
    assert message.info["terminal_id"] == (terminal_id.rjust(20, "0") if version else terminal_id)
    got = message.fixes[0]
    assert got.time == fix.time
    assert got.latitude == pytest.approx(fix.latitude, abs=1e-6)
    assert got.longitude == pytest.approx(fix.longitude, abs=1e-6)
    assert (got.speed_kmh, got.course, got.altitude, got.satellites) == (
        fix.speed_kmh,
        fix.course,
        fix.altitude,
        fix.satellites,
    )
    assert got.extras["alarm_flags"] == flags
    assert len(got.alarms) == bin(flags).count("1")
    assert jt808.parse_header(jt808.unwrap(message.reply))[0].version == version


@given(st.lists(fixes, min_size=1, max_size=8), st.booleans())
def test_batch_round_trip(batch, buffered):
    message = jt808.decode(jt808.encode_batch(batch, phone=PHONE, serial=4, buffered=buffered))
    assert message.kind == "batch"
    assert (message.info["batch_count"], message.info["batch_type"]) == (len(batch), int(buffered))
    assert [fix.time for fix in message.fixes] == [fix.time for fix in batch]
    assert all(fix.extras.get("buffered", False) == buffered for fix in message.fixes)


# --- bad input ------------------------------------------------------------------------------------------


def test_bad_check_code():
    with pytest.raises(BadChecksum):
        jt808.decode(LOCATION_27[:-2] + b"\x1f\x7e")


def test_bad_escape_in_a_frame():
    with pytest.raises(BadEscape, match="0x7d followed by 0x03"):
        jt808.decode(LOCATION_27[:20] + b"\x7d\x03" + LOCATION_27[20:])


def test_unescaped_flag_inside_a_frame():
    with pytest.raises(BadEscape, match="not escaped"):
        jt808.decode(LOCATION_27[:20] + b"\x7e" + LOCATION_27[20:])


@pytest.mark.parametrize("cut", [1, 5, 14, len(LOCATION_27) - 1])
def test_truncated(cut):
    with pytest.raises(Truncated):
        jt808.decode(LOCATION_27[:cut])


def test_missing_opening_flag():
    with pytest.raises(BadFraming):
        jt808.decode(LOCATION_27[1:])


def test_body_length_mismatch():
    payload = bytearray(jt808.unwrap(LOCATION_27))
    payload[3] -= 1
    with pytest.raises(BadLength, match="body"):
        jt808.decode(reframe(bytes(payload)))


def test_short_location_body():
    with pytest.raises(Truncated):
        jt808.decode(jt808.encode(0x0200, bytes(20), phone=PHONE, serial=1))


def test_batch_item_running_past_the_end():
    body = bytes.fromhex("000100" + "0040") + bytes(28)
    with pytest.raises(Truncated):
        jt808.decode(jt808.encode(0x0704, body, phone=PHONE, serial=1))


def test_coordinates_out_of_range():
    body = bytearray(jt808.encode_location_body(Fix(None, 1.0, 2.0, True)))
    body[8:12] = (95_000_000).to_bytes(4, "big")
    with pytest.raises(BadValue):
        jt808.decode_location_body(bytes(body))
