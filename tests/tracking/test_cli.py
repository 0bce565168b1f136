"""decode_frames end to end: JSON lines in, JSON lines out, exit status."""

import io
import json

import pytest
from django.core.management.base import CommandError

from tracking.management.commands.decode_frames import Command
from tracking.protocols import cli

LINES = [
    {"protocol": "gt06", "hex": "78780d01086471700328358100093f040d0a", "note": "other keys are ignored"},
    {"protocol": "jt808", "hex": "7e0002000004304832546500b7ca7e"},
    {"protocol": "osmand", "query": "id=902064&lat=42.06288&lon=-88.23412&timestamp=1453920947&speed=10"},
    {
        "protocol": "osmand",
        "query": None,
        "body": '{"device_id": "7", "location": {"coords": {"latitude": 1, "longitude": 2}}}',
    },
    {"protocol": "gt06", "hex": "78781f120f0a140e150bc505e51e780293a9e800540000f601006e0055da00035f250d0a"},
    {"protocol": "carrier-pigeon", "hex": "00"},
    {"protocol": "gt06", "hex": "zz"},
]


def run_lines(text):
    out = io.StringIO()
    status = cli.run(io.StringIO(text), out)
    return status, [json.loads(line) for line in out.getvalue().splitlines()]


def test_one_output_line_per_input_line_in_order():
    status, results = run_lines("".join(json.dumps(line) + "\n" for line in LINES))
    assert status == 0
    assert len(results) == len(LINES)
    login, heartbeat, query, body, bad_crc, unknown, not_hex = results
    assert login == {
        "kind": "login",
        "terminal": "864717003283581",
        "positions": [],
        "reply_hex": "78780501000955940d0a",
    }
    assert heartbeat == {
        "kind": "heartbeat",
        "terminal": "043048325465",
        "positions": [],
        "reply_hex": "7e80010005043048325465000000b70002004e7e",
    }
    assert query["positions"] == [
        {
            "time": "2016-01-27T18:55:47Z",
            "latitude": 42.06288,
            "longitude": -88.23412,
            "speed_kmh": 18.52,
            "course": 0.0,
            "valid": True,
            "alarms": [],
        }
    ]
    assert (body["terminal"], body["positions"][0]["time"]) == ("7", None)
    assert bad_crc["error"].startswith("bad_checksum")
    assert "unknown protocol" in unknown["error"]
    assert "hexadecimal" in not_hex["error"]


def test_blank_lines_are_skipped():
    status, results = run_lines("\n" + json.dumps(LINES[1]) + "\n   \n")
    assert (status, len(results)) == (0, 1)


def test_a_line_that_is_not_json_gives_an_error_line_and_a_non_zero_exit():
    status, results = run_lines(json.dumps(LINES[0]) + "\nthis is not json\n" + json.dumps(LINES[1]) + "\n")
    assert status != 0
    assert [sorted(result) for result in results] == [
        ["kind", "positions", "reply_hex", "terminal"],
        ["error"],
        ["kind", "positions", "reply_hex", "terminal"],
    ]


def test_json_that_is_not_an_object_is_an_error_line():
    status, results = run_lines("[1, 2]\n")
    assert (status, results) == (0, [{"error": "line is not a JSON object"}])


def test_management_command_reads_a_file(tmp_path):
    capture = tmp_path / "capture.jsonl"
    capture.write_text(json.dumps(LINES[0]) + "\n", encoding="utf-8")
    out = io.StringIO()
    Command(stdout=out).handle(input=str(capture))
    assert json.loads(out.getvalue())["kind"] == "login"


def test_management_command_reads_stdin_and_fails_on_non_json(monkeypatch):
    raw = (json.dumps(LINES[1]) + "\n").encode() + b"\xff\xfe not json\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"))
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        Command(stdout=out).handle(input="-")
    assert caught.value.returncode == 1
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["kind"] == "heartbeat"
    assert "not JSON" in second["error"]
