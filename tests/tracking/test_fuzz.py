"""Whatever arrives, decoders raise ProtocolError or return a Message: nothing else escapes."""

import contextlib
import json
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracking.protocols import Message, ProtocolError, cli, gt06, jt808, osmand
from tracking.protocols.common import KINDS

INTERESTING_GT06 = [0x01, 0x10, 0x12, 0x13, 0x16, 0x19, 0x22, 0x23, 0x26, 0x27, 0x8A, 0x94, 0xA0, 0xA4]
INTERESTING_JT808 = [0x0001, 0x0002, 0x0003, 0x0100, 0x0102, 0x0200, 0x0201, 0x0704, 0x0900, 0x8001]


def decodes_or_refuses(decoder, *args, **kwargs):
    try:
        message = decoder(*args, **kwargs)
    except ProtocolError as error:
        assert str(error)
        return None
    assert isinstance(message, Message)
    assert message.kind in KINDS
    return message


@given(st.binary(max_size=400))
def test_gt06_arbitrary_bytes(data):
    decodes_or_refuses(gt06.decode, data)


@given(st.sampled_from(INTERESTING_GT06) | st.integers(0, 255), st.binary(max_size=120), st.integers(0, 0xFFFF))
def test_gt06_well_framed_random_content(protocol, content, serial):
    message = decodes_or_refuses(gt06.decode, gt06.build_frame(protocol, content, serial))
    if message is not None:
        assert message.serial == serial
        if message.kind in ("login", "heartbeat", "alarm"):
            assert message.reply == gt06.ack(protocol, serial)


@given(st.binary(max_size=400))
def test_jt808_arbitrary_bytes(data):
    decodes_or_refuses(jt808.decode, data)
    decodes_or_refuses(jt808.decode, b"\x7e" + data + b"\x7e")


@given(
    st.sampled_from(INTERESTING_JT808) | st.integers(0, 0xFFFF),
    st.binary(max_size=300),
    st.sampled_from([None, 1]),
    st.none() | st.tuples(st.integers(0, 3), st.integers(0, 3)),
    st.integers(0, 7),
)
def test_jt808_well_framed_random_body(msg_id, body, version, packet, encryption):
    phone = bytes(10) if version else bytes(6)
    frame = jt808.encode(msg_id, body, phone=phone, serial=3, version=version, packet=packet)
    if encryption:
        payload = bytearray(jt808.unwrap(frame))
        payload[2] |= encryption << 2
        frame = b"\x7e" + jt808.escape(bytes(payload) + bytes((jt808.checksum(bytes(payload)),))) + b"\x7e"
    decodes_or_refuses(jt808.decode, frame)


@given(st.binary(max_size=200))
def test_jt808_location_body(body):
    with contextlib.suppress(ProtocolError):
        jt808.decode_location_body(body)


@given(st.text(max_size=200))
def test_osmand_arbitrary_text(text):
    decodes_or_refuses(osmand.decode_query, text)
    decodes_or_refuses(osmand.decode_json, text)
    decodes_or_refuses(osmand.decode_request, query=None, body=text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@given(json_values, json_values, json_values, json_values, json_values)
def test_osmand_json_shaped_but_wrong(device, latitude, longitude, timestamp, battery):
    body = {
        "device_id": device,
        "location": {
            "timestamp": timestamp,
            "coords": {"latitude": latitude, "longitude": longitude, "speed": battery},
            "battery": {"level": battery},
        },
    }
    decodes_or_refuses(osmand.decode_json, json.dumps(body))


@given(
    st.dictionaries(
        st.sampled_from(["id", "lat", "lon", "timestamp", "speed", "bearing", "location", "batt", "valid", "cell"]),
        st.text(max_size=12),
    )
)
def test_osmand_query_parameters_with_odd_values(params):
    decodes_or_refuses(osmand.decode_query, urlencode(params))


@given(st.text(max_size=200) | st.builds(json.dumps, json_values))
def test_decode_line_never_raises(line):
    result = cli.decode_line(line)
    assert set(result) in ({"error"}, {"kind", "terminal", "positions", "reply_hex"})
    json.dumps(result)


@given(st.sampled_from(["gt06", "jt808"]), st.binary(max_size=200))
def test_decode_line_binary_protocols(protocol, data):
    result = cli.decode_line(json.dumps({"protocol": protocol, "hex": data.hex()}))
    assert set(result) in ({"error"}, {"kind", "terminal", "positions", "reply_hex"})


def test_absurdly_deep_json_is_an_error_not_a_crash():
    with pytest.raises(ProtocolError, match="not JSON"):
        osmand.decode_json("[" * 100_000)
    assert "not JSON" in cli.decode_line("[" * 100_000)["error"]
