"""Every record of the shared capture set, decoded and compared field by field with what it asserts."""

import json

import pytest

from tracking.protocols import BadChecksum, ProtocolError, cli, gt06

from .samples import SAMPLES_PATH, decode, load_samples, observed, sample_id

SAMPLES = load_samples()
VALID = [sample for sample in SAMPLES if sample["kind"] != "invalid" and sample.get("checksum_ok", True)]
BAD_CHECKSUM = [sample for sample in SAMPLES if sample["kind"] != "invalid" and sample.get("checksum_ok") is False]
INVALID = [sample for sample in SAMPLES if sample["kind"] == "invalid"]
NUMERIC = {"speed_kmh", "course", "altitude", "hdop", "speed_knots"}


def assert_matches(expected, got, where=""):
    for key, want in expected.items():
        if key == "source":
            continue
        assert key in got, f"{where}{key}: not decoded"
        have = got[key]
        if key in ("latitude", "longitude"):
            assert have == pytest.approx(want, abs=1e-6), f"{where}{key}"
        elif key in NUMERIC and want is not None:
            assert have == pytest.approx(want, abs=1e-3), f"{where}{key}"
        elif key == "positions":
            assert len(have) == len(want), f"{where}positions: count"
            for number, (one_want, one_have) in enumerate(zip(want, have, strict=True)):
                assert_matches(one_want, one_have, f"{where}positions[{number}].")
        elif key == "ack":
            for ack_key, ack_want in want.items():
                if ack_key == "body_prefix_hex":
                    assert have["body_hex"].startswith(ack_want), f"{where}ack.body_hex"
                else:
                    assert have[ack_key] == ack_want, f"{where}ack.{ack_key}"
        else:
            assert have == want, f"{where}{key}"


def test_the_capture_set_is_there_and_covers_every_protocol():
    assert SAMPLES_PATH.exists()
    assert {sample["protocol"] for sample in SAMPLES} == {"gt06", "jt808", "osmand"}
    assert len(VALID) + len(BAD_CHECKSUM) + len(INVALID) == len(SAMPLES) >= 33


@pytest.mark.parametrize("sample", VALID, ids=sample_id)
def test_valid_sample_decodes_to_the_expected_values(sample):
    message = decode(sample)
    assert message.kind == sample["kind"]
    assert_matches(sample["expected"], observed(message))


@pytest.mark.parametrize("sample", BAD_CHECKSUM, ids=sample_id)
def test_bad_checksum_sample_is_rejected_but_lenient_reading_matches(sample):
    with pytest.raises(BadChecksum):
        decode(sample)
    message = decode(sample, lenient=True)  # what Traccar (which never checks the CRC) reads
    assert message.kind == sample["kind"]
    assert_matches(sample["expected"], observed(message))


@pytest.mark.parametrize("sample", INVALID, ids=sample_id)
def test_invalid_sample_is_rejected_with_a_reason(sample):
    with pytest.raises(ProtocolError) as caught:
        decode(sample)
    assert str(caught.value)
    result = cli.decode_record(sample)
    assert set(result) == {"error"}
    assert result["error"]


@pytest.mark.parametrize("sample", VALID, ids=sample_id)
def test_decode_frames_contract_for_each_sample(sample):
    result = json.loads(json.dumps(cli.decode_record(sample)))
    assert set(result) == {"kind", "terminal", "positions", "reply_hex"}
    assert result["kind"] == sample["kind"]
    expected = sample["expected"]
    if sample["protocol"] == "gt06":
        if "ack_hex" in expected:
            assert result["reply_hex"] == expected["ack_hex"]
        if sample["kind"] == "login":
            assert result["terminal"] == expected["imei"]
    elif sample["protocol"] == "jt808":
        assert result["terminal"] == expected["terminal_id"]
        ack = expected["ack"]
        if "frame_hex_platform_serial_0" in ack:
            assert result["reply_hex"] == ack["frame_hex_platform_serial_0"]
    else:
        assert result["terminal"] == expected["id"]
        assert result["reply_hex"] == ""
    positions = expected.get("positions") or ([expected] if "latitude" in expected else [])
    assert len(result["positions"]) == len(positions)
    for got, want in zip(result["positions"], positions, strict=True):
        assert set(got) == {"time", "latitude", "longitude", "speed_kmh", "course", "valid", "alarms"}
        assert isinstance(got["speed_kmh"], float)
        assert isinstance(got["course"], float)
        for key in ("time", "valid"):
            if key in want:
                assert got[key] == want[key]
        for key in ("latitude", "longitude"):
            assert got[key] == pytest.approx(want[key], abs=1e-6)
        for key in ("speed_kmh", "course"):
            if key in want:
                assert got[key] == pytest.approx(want[key], abs=1e-3)
        if "alarm" in want:
            assert ",".join(got["alarms"]) == (want["alarm"] or "")


GT06_FIXES = [s for s in VALID if s["protocol"] == "gt06" and s["kind"] in ("location", "alarm")]


@pytest.mark.parametrize("sample", GT06_FIXES, ids=sample_id)
def test_the_gateways_lean_gt06_decoding_reads_the_same_fix_and_reply(sample):
    """The gateway skips what follows a location packet's GPS block; what it stores is unchanged."""
    frame = bytes.fromhex(sample["hex"])
    full, lean = gt06.decode(frame), gt06.decode(frame, extras=False)
    assert (lean.kind, lean.reply, lean.alarms, lean.info) == (full.kind, full.reply, full.alarms, full.info)
    stored = ("time", "latitude", "longitude", "valid", "speed_kmh", "course", "altitude", "satellites", "alarms")
    assert [[getattr(fix, name) for name in stored] for fix in lean.fixes] == [
        [getattr(fix, name) for name in stored] for fix in full.fixes
    ]
    assert_matches({k: v for k, v in sample["expected"].items() if k in stored}, observed(lean))


@pytest.mark.parametrize("sample", BAD_CHECKSUM, ids=sample_id)
def test_decode_frames_reports_a_bad_checksum(sample):
    assert cli.decode_record(sample)["error"].startswith("bad_checksum")


# Rough country boxes (south, west, north, east) for the cell MCCs in the set.
MCC_BOXES = {246: (53.8, 20.9, 56.5, 26.9), 460: (18.0, 73.0, 54.0, 135.1), 724: (-34.0, -74.0, 5.3, -34.7)}


WITH_CELL = [
    s for s in VALID if s["protocol"] == "gt06" and s["expected"].get("valid") and "mcc" in decode(s).fixes[0].extras
]


@pytest.mark.parametrize("sample", WITH_CELL, ids=sample_id)
def test_gt06_cell_country_matches_the_decoded_position(sample):
    """docs/protocols.md#capture-set: the MCC agrees with the hemisphere signs we read (a check on the sign bits)."""
    fix = decode(sample).fixes[0]
    south, west, north, east = MCC_BOXES[fix.extras["mcc"]]
    assert south <= fix.latitude <= north and west <= fix.longitude <= east
