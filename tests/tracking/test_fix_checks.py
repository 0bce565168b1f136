"""Each fix is checked once on its way in, and a refused one says why with a stable code.

The codes are the labels of gateway_pings_rejected_total{reason} (dashboards count by them), the
messages what the APIs answer. The gateway (in this process, on the test database: real TCP, real
frames) and POST /api/v1/pings check the fixes and hand them to the batch plan checked; a plain
list given to `ingest_fixes` is checked by the plan. Each way, `fix_problem` runs once a fix.
"""

import asyncio
import datetime
import math
import urllib.parse

import pytest
from django.db import connection

from tests.tracking import factories as tf
from tests.tracking.gateway_harness import free_port
from tests.tracking.samples import load_samples
from tracking import ingest
from tracking.gateway import db as gateway_db
from tracking.gateway.config import GatewayConfig
from tracking.gateway.metrics import Metrics
from tracking.gateway.server import Gateway
from tracking.gateway.writer import BatchWriter
from tracking.ingest import Incoming, fix_problem, ingest_fixes
from tracking.models import Alarm, Ping
from tracking.protocols import gt06
from tracking.protocols.common import Fix
from tracking.services import ingest_token_create, terminal_register

UTC = datetime.UTC
NOW = datetime.datetime.now(UTC).replace(microsecond=0)
HOUR_AGO = NOW - datetime.timedelta(hours=1)


def sample_hex(kind: str, note_starts: str) -> bytes:
    """A real GT06 frame of ../shared/protocol-samples.jsonl, by its kind and the start of its note."""
    for sample in load_samples():
        if sample["protocol"] == "gt06" and sample["kind"] == kind and sample.get("note", "").startswith(note_starts):
            return bytes.fromhex(sample["hex"])
    raise LookupError(note_starts)


# Sent before any GPS fix: all-zero date (no time) at (0, 0), with a vibration alarm.
GT06_ALARM_WITHOUT_FIX = sample_hex("alarm", "Alarm packet sent before any GPS fix")


def at(moment: datetime.datetime, lat: float = 39.8826, lon: float = 117.739) -> Fix:
    return Fix(time=moment, latitude=lat, longitude=lon, valid=True, speed_kmh=12.0)


# Each code, the message the APIs answer, and a fix that has that problem. The first is a real frame.
CASES = {
    "no_time": ("no device time", gt06.decode(GT06_ALARM_WITHOUT_FIX).fixes[0]),
    "future_time": (
        f"device time {(NOW + datetime.timedelta(days=1)).isoformat()[:19]}Z is more than 0:10:00 ahead of the "
        "server clock",
        at(NOW + datetime.timedelta(days=1)),
    ),
    "clock_not_set": (
        "device time 1999-12-31T23:59:00+00:00 is before 2000 (clock not set)",
        at(datetime.datetime(1999, 12, 31, 23, 59, tzinfo=UTC)),
    ),
    "out_of_range": ("coordinates 95.0, 117.739 are out of range", at(HOUR_AGO, lat=95.0)),
    "no_position": ("no position (0, 0)", at(HOUR_AGO, lat=0.0, lon=0.0)),
}


@pytest.mark.parametrize("code", list(CASES))
def test_each_problem_has_a_stable_code_and_the_message_the_api_answers(code):
    message, fix = CASES[code]
    problem = fix_problem(fix, now=NOW)
    assert (problem.code, str(problem)) == (code, message)
    assert problem.about == ("time" if code in ("no_time", "future_time", "clock_not_set") else "position")


def test_a_fix_without_a_problem_has_none_and_nan_is_out_of_range():
    assert fix_problem(at(HOUR_AGO), now=NOW) is None
    assert fix_problem(at(HOUR_AGO, lon=math.nan), now=NOW).code == "out_of_range"


@pytest.fixture
def count_checks(monkeypatch):
    """The fixes `fix_problem` was called for through tracking.ingest (check_fixes, the batch plan)."""
    calls = []
    check = ingest.fix_problem

    def counted(fix, *, now):
        calls.append(fix)
        return check(fix, now=now)

    monkeypatch.setattr(ingest, "fix_problem", counted)
    return calls


@pytest.mark.django_db
def test_a_plain_list_is_checked_once_by_the_plan(count_checks):
    term = tf.terminal()
    items = [Incoming(term.pk, fix) for _message, fix in CASES.values()] + [Incoming(term.pk, at(HOUR_AGO))]
    result = ingest_fixes(items)
    assert len(count_checks) == len(items)
    assert [problem.code for _index, problem in result.rejected] == list(CASES)
    assert result.stored == 1


@pytest.mark.django_db
def test_the_pings_api_checks_each_ping_once_and_answers_the_same_messages(api, count_checks):
    term = tf.terminal(bound=False)
    _token, raw = ingest_token_create(name="integration")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    pings = [
        {"terminal": term.imei, "time": (HOUR_AGO + datetime.timedelta(minutes=m)).isoformat(), "latitude": 39.88}
        | {"longitude": 117.74}
        for m in range(3)
    ]
    response = api.post("/api/v1/pings", {"pings": pings}, format="json", **auth)
    assert response.status_code == 201 and response.json()["stored"] == 3
    assert len(count_checks) == 3  # parse_batch checked them; the plan did not again

    count_checks.clear()
    null_island = {**pings[0], "latitude": 0, "longitude": 0}
    clock_not_set = {**pings[1], "time": "1999-12-31T23:59:00Z"}
    response = api.post("/api/v1/pings", {"pings": [null_island, clock_not_set]}, format="json", **auth)
    assert response.status_code == 400
    assert response.json()["pings"] == {
        "0": {"latitude": ["no position (0, 0)"]},
        "1": {"time": ["device time 1999-12-31T23:59:00+00:00 is before 2000 (clock not set)"]},
    }
    assert len(count_checks) == 2


class Collector:
    def __init__(self) -> None:
        self.acks: list[bytes | None] = []

    def deliver(self, acks: list[bytes | None]) -> None:
        self.acks.extend(acks)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_writer_counts_refused_fixes_under_the_labels_dashboards_use_and_acks_them(count_checks):
    term = tf.terminal(protocol="gt06", bound=False)
    targets = {code: Collector() for code in [*CASES, "good"]}
    fixes = {code: fix for code, (_message, fix) in CASES.items()} | {"good": at(HOUR_AGO)}

    async def run() -> Metrics:
        metrics = Metrics()
        writer = BatchWriter(gateway_db.conninfo(connection.settings_dict), metrics, batch_ms=5)
        task = asyncio.create_task(writer.run())
        for code, target in targets.items():  # plain lists: the writer checks them as they come
            writer.add(target, code.encode(), [Incoming(term.pk, fixes[code])])
        writer.stop()
        await asyncio.wait_for(task, 10)
        return metrics

    metrics = asyncio.run(run())
    assert {code: target.acks for code, target in targets.items()} == {code: [code.encode()] for code in targets}
    assert dict(metrics.pings_rejected) == dict.fromkeys(CASES, 1)
    exposition = metrics.prometheus()
    for code in CASES:
        assert f'gateway_pings_rejected_total{{reason="{code}"}} 1' in exposition
    assert len(count_checks) == len(fixes)
    assert Ping.objects.filter(terminal_id=term.pk).count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_gateway_checks_each_fix_once_and_counts_refusals_by_code(count_checks):
    """GT06 and OsmAnd on an in-process gateway: a real frame sent before any GPS fix (no time; its
    alarm is stored without a position), a real location, and crafted ones."""
    gt06_terminal = tf.terminal(protocol="gt06", bound=False)
    osmand_terminal = terminal_register(imei=tf.imei(), protocol="osmand")
    real_location = bytes.fromhex("78781f120f0a140e150bc505e51e780293a9e800540000f601006e0055da00035f240d0a")
    frames = [
        (real_location, gt06.ack(0x12, 3)),
        (GT06_ALARM_WITHOUT_FIX, gt06.ack(0x16, 4)),
        (gt06.encode_location(at(NOW + datetime.timedelta(days=1)), 5), gt06.ack(0x12, 5)),
        (gt06.encode_location(at(HOUR_AGO, lat=0.0, lon=0.0), 6), gt06.ack(0x12, 6)),
        (gt06.encode_location(at(HOUR_AGO), 7), gt06.ack(0x12, 7)),
    ]
    requests = [  # (query, status)
        ({"lat": 39.8826, "lon": 117.739, "timestamp": int(HOUR_AGO.timestamp())}, 200),
        ({"lat": 39.8826, "lon": 117.739, "timestamp": int((NOW + datetime.timedelta(days=1)).timestamp())}, 400),
        ({"lat": 39.8826, "lon": 117.739, "timestamp": 946684000}, 400),  # 1999-12-31: clock not set
    ]
    config = GatewayConfig(gt06_port=free_port(), jt808_port=0, osmand_port=free_port(), metrics_port=0, batch_ms=5)

    async def run() -> tuple[Metrics, list[bytes], list[int]]:
        gateway = Gateway(config, gateway_db.conninfo(connection.settings_dict))
        await gateway.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", config.gt06_port)
            writer.write(gt06.encode_login(gt06_terminal.imei, 1))
            assert await asyncio.wait_for(reader.readexactly(10), 5) == gt06.login_ack(1)
            acks = []
            for frame, _ack in frames:
                writer.write(frame)
                acks.append(await asyncio.wait_for(reader.readexactly(10), 5))
            writer.close()
            statuses = []
            for query, _status in requests:
                reader, writer = await asyncio.open_connection("127.0.0.1", config.osmand_port)
                path = "/?" + urllib.parse.urlencode({"id": osmand_terminal.imei, **query})
                writer.write(f"GET {path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n".encode())
                head = await asyncio.wait_for(reader.readline(), 5)
                statuses.append(int(head.split()[1]))
                writer.close()
            return gateway.metrics, acks, statuses
        finally:
            await gateway.stop()

    metrics, acks, statuses = asyncio.run(run())
    assert acks == [ack for _frame, ack in frames]  # refused positions are acknowledged all the same
    assert statuses == [status for _query, status in requests]
    assert len(count_checks) == len(frames) + len(requests)  # once each, none again in the batch plan
    assert dict(metrics.pings_rejected) == {
        "no_time": 1,
        "future_time": 1,
        "no_position": 1,
        "http_future_time": 1,
        "http_invalid": 1,
    }
    assert Ping.objects.filter(terminal_id=gt06_terminal.pk).count() == 2
    assert Ping.objects.filter(terminal_id=osmand_terminal.pk).count() == 1
    assert Alarm.objects.filter(terminal_id=gt06_terminal.pk, kind="vibration", point__isnull=True).exists()
