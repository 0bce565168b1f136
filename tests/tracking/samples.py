"""The shared capture set (../shared/protocol-samples.jsonl) and a reader that maps our decoded
messages onto its `expected` keys, so each sample can be compared field by field."""

import json
from pathlib import Path
from typing import Any

from tracking.protocols import gt06, jt808, osmand
from tracking.protocols.common import Fix, Message, iso_utc

SAMPLES_PATH = Path(__file__).resolve().parents[2].parent / "shared" / "protocol-samples.jsonl"


def load_samples() -> list[dict[str, Any]]:
    with SAMPLES_PATH.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def sample_id(sample: dict[str, Any]) -> str:
    source = sample["expected"]["source"].rsplit("/", 1)[-1]
    return f"{sample['protocol']}-{sample['kind']}-{source}"


def fix_values(fix: Fix) -> dict[str, Any]:
    values = {
        "time": iso_utc(fix.time),
        "latitude": fix.latitude,
        "longitude": fix.longitude,
        "speed_kmh": fix.speed_kmh,
        "course": fix.course,
        "valid": fix.valid,
        "altitude": fix.altitude,
        "alarm": ",".join(fix.alarms) or None,
        "battery": fix.battery,
    }
    if fix.satellites is not None:
        values["satellites"] = fix.satellites
    for key in ("alarm_flags", "alarm_code", "terminal_info", "voltage_level", "gsm_signal", "speed_knots", "hdop"):
        if key in fix.extras:
            values[key] = fix.extras[key]
    return values


def jt808_ack_values(reply: bytes) -> dict[str, str]:
    header, body = jt808.parse_header(jt808.unwrap(reply))
    return {
        "msg_id": f"{header.msg_id:04x}",
        "body_hex": body.hex(),
        "body_prefix_hex": body.hex(),  # compared with startswith
        "frame_hex_platform_serial_0": reply.hex(),
    }


def observed(message: Message) -> dict[str, Any]:
    """Everything we decoded, under the sample set's key names."""
    values: dict[str, Any] = {"serial": message.serial}
    if len(message.fixes) == 1 and message.kind != "batch":
        values.update(fix_values(message.fixes[0]))
    if message.kind == "batch":
        values["positions"] = [fix_values(fix) for fix in message.fixes]
    info = {key: value for key, value in message.info.items() if key != "header"}
    values.update(info)
    if message.protocol == "gt06":
        if message.kind == "login":
            values["imei"] = message.terminal
        if message.reply is not None:
            values["ack_hex"] = message.reply.hex()
    elif message.protocol == "jt808":
        if message.reply is not None:
            values["ack"] = jt808_ack_values(message.reply)
    else:
        values["id"] = message.terminal
        values["time"] = iso_utc(message.fixes[0].time if message.fixes else info.get("time"))
    return values


def decode(sample: dict[str, Any], *, lenient: bool = False) -> Message:
    if sample["protocol"] == "gt06":
        return gt06.decode(bytes.fromhex(sample["hex"]), check_crc=not lenient)
    if sample["protocol"] == "jt808":
        return jt808.decode(bytes.fromhex(sample["hex"]))
    return osmand.decode_request(
        query=sample.get("query"), body=sample.get("body"), content_type=sample.get("content_type")
    )
