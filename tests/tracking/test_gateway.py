"""The gateway end to end: `manage.py run_gateway` as a subprocess on the test database, real TCP and
HTTP on loopback, real device frames (../shared/protocol-samples.jsonl), positions read back from
PostGIS. Also: SIGKILL mid-run loses no acknowledged ping, and a cut database connection means no
acks until it is back, then recovery.

Terminals are committed (transaction=True) so the gateway process sees them; every test uses its
own IMEIs and phones because the gateway caches lookups for a minute.
"""

import asyncio
import contextlib
import datetime
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from tests.tracking import factories as tf
from tests.tracking.gateway_harness import (
    ROOT,
    GatewayProcess,
    closed_by_peer,
    connect,
    database_url,
    free_port,
    recv_exact,
)
from tracking.gateway import db as gateway_db
from tracking.gateway import writer as writer_module
from tracking.gateway.metrics import Metrics
from tracking.gateway.terminals import secret_digest
from tracking.gateway.writer import BatchWriter
from tracking.ingest import LAST_FIX_TTL_S, Incoming
from tracking.models import Alarm, LastPosition, Ping, Terminal
from tracking.protocols import gt06, jt808
from tracking.protocols.common import Fix
from tracking.protocols.stream import Gt06Framer, Jt808Framer
from tracking.services import terminal_register

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

UTC = datetime.UTC

# Real frames (protocol-samples.jsonl; sources: Traccar's decoder tests).
GT06_LOGIN = bytes.fromhex("78780d01086471700328358100093f040d0a")  # IMEI 864717003283581, serial 9
GT06_LOGIN_ACK = bytes.fromhex("78780501000955940d0a")
GT06_LOCATION = bytes.fromhex("78781f120f0a140e150bc505e51e780293a9e800540000f601006e0055da00035f240d0a")
GT06_HEARTBEAT = bytes.fromhex("78780a13c40604000201298f5b0d0a")
GT06_HEARTBEAT_ACK = bytes.fromhex("7878051301295d630d0a")
GT06_ALARM = bytes.fromhex("78782526160913063918c002780fab0c44750f00040008027f14084c0038420600030c020007398e0d0a")
GT06_ALARM_ACK = bytes.fromhex("78780526000733d40d0a")
JT_AUTH = bytes.fromhex("7e0102000e013511221122000661757468656e7469636174696f6e3f7e")  # code "authentication"
JT_AUTH_ACK = bytes.fromhex("7e8001000501351122112200000006010200b57e")
JT_LOCATION = bytes.fromhex(
    "7e02000048051160004464000d00000000000c00020159885e06cbf34400000000000020080718072201040000000130011c31"
    "0109e4020063e50100e60100e7080000000000000000ee0a01cc01262c009a6743001e7e"
)
JT_REGISTER_2019 = bytes.fromhex(
    "7e0100405c010000086649607758216452180000000000000000000000000000004d44333030000000000000000000000000"
    "0000000000000000000000000038363634393630373735383231363400000000000000000000000000000004000000000000"
    "000000000000000000007a7e"
)


class Jt808Replies:
    """Reads the gateway's JT/T 808 frames off a socket, one at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.framer = Jt808Framer()
        self.frames: list[bytes] = []

    def next(self) -> tuple[jt808.Header, bytes, bytes]:
        """(header, body, wire bytes) of the next frame."""
        while not self.frames:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError("connection closed")
            self.frames += [item for item in self.framer.feed(chunk) if isinstance(item, bytes)]
        frame = self.frames.pop(0)
        header, body = jt808.parse_header(jt808.unwrap(frame))
        return header, body, frame


BASE = datetime.datetime.now(UTC).replace(microsecond=0) - datetime.timedelta(hours=1)


def yutian_fix(seconds: int, *, lat: float = 39.8826, lon: float = 117.7390, alarms=()) -> Fix:
    """A fix in Yutian town `seconds` after BASE (an hour before the tests started)."""
    return Fix(
        time=BASE + datetime.timedelta(seconds=seconds),
        latitude=lat,
        longitude=lon,
        valid=True,
        speed_kmh=15.0,
        course=90.0,
        satellites=9,
        alarms=alarms,
    )


def register(imei: str, protocol: str, phone: str = "", auth_code: str | None = None) -> Terminal:
    """A terminal; with `auth_code`: one that registered before and was given that code."""
    terminal = terminal_register(imei=imei, protocol=protocol, phone=phone)
    if auth_code is not None:
        Terminal.objects.filter(pk=terminal.pk).update(auth_code_digest=secret_digest(auth_code))
        terminal.refresh_from_db()
    return terminal


# --- GT06 --------------------------------------------------------------------------------------------


def test_gt06_real_frames_login_location_heartbeat_alarm(gateway):
    terminal = register("864717003283581", "gt06")
    with connect(gateway.ports["gt06"]) as sock:
        sock.sendall(GT06_LOGIN)
        assert recv_exact(sock, 10) == GT06_LOGIN_ACK

        sock.sendall(GT06_LOCATION)
        assert recv_exact(sock, 10) == gt06.ack(0x12, 3)
        # The ack came after the commit: the row is there without waiting.
        ping = Ping.objects.get(terminal_id=terminal.pk)
        assert ping.device_time == datetime.datetime(2015, 10, 20, 14, 21, 11, tzinfo=UTC)
        assert ping.point.y == pytest.approx(54.945347, abs=1e-6)
        assert ping.point.x == pytest.approx(24.017622, abs=1e-6)
        assert (ping.valid, ping.satellites, ping.speed_kmh) == (True, 5, 0.0)

        sock.sendall(GT06_HEARTBEAT)
        assert recv_exact(sock, 10) == GT06_HEARTBEAT_ACK

        sock.sendall(GT06_ALARM)
        assert recv_exact(sock, 10) == GT06_ALARM_ACK
        expected = gt06.decode(GT06_ALARM).fixes[0]
        assert expected.alarms
        alarms = Alarm.objects.filter(terminal=terminal)
        assert sorted(a.kind for a in alarms) == sorted(expected.alarms)
        assert {a.at for a in alarms} == {expected.time}


def test_gt06_location_in_yutian_is_acked_after_commit_with_last_position(gateway):
    terminal = tf.terminal(protocol="gt06")
    with connect(gateway.ports["gt06"]) as sock:
        sock.sendall(gt06.encode_login(terminal.imei, 1))
        assert recv_exact(sock, 10) == gt06.login_ack(1)
        fixes = [yutian_fix(i * 10, lat=39.8826 + i * 0.0003) for i in range(3)]
        sock.sendall(b"".join(gt06.encode_location(fix, 10 + i) for i, fix in enumerate(fixes)))
        acks = recv_exact(sock, 30)
        assert acks == b"".join(gt06.ack(0x12, 10 + i) for i in range(3))
    stored = list(Ping.objects.filter(terminal_id=terminal.pk).order_by("device_time"))
    assert [p.device_time for p in stored] == [f.time for f in fixes]
    assert [round(p.point.y, 6) for p in stored] == [round(f.latitude, 6) for f in fixes]
    last = LastPosition.objects.get(terminal=terminal)
    assert last.device_time == fixes[-1].time
    terminal.refresh_from_db()
    assert terminal.last_seen_at is not None  # liveness, refreshed by logins and heartbeats too


def test_gt06_positions_resent_after_a_reconnect_are_acked_again_and_stored_once(gateway):
    """A terminal that lost the connection before its acks came resends its buffered positions:
    the batch holding them breaks the unique key, is stored again with the duplicates skipped,
    and everything is acknowledged."""
    terminal = tf.terminal(protocol="gt06")
    fixes = [yutian_fix(600 + i * 10, lat=39.8826 + i * 0.0003) for i in range(4)]
    with connect(gateway.ports["gt06"]) as sock:
        sock.sendall(gt06.encode_login(terminal.imei, 1))
        assert recv_exact(sock, 10) == gt06.login_ack(1)
        sock.sendall(b"".join(gt06.encode_location(fix, 10 + i) for i, fix in enumerate(fixes[:2])))
        assert recv_exact(sock, 20) == b"".join(gt06.ack(0x12, 10 + i) for i in range(2))
    with connect(gateway.ports["gt06"]) as sock:
        sock.sendall(gt06.encode_login(terminal.imei, 2))
        assert recv_exact(sock, 10) == gt06.login_ack(2)
        sock.sendall(b"".join(gt06.encode_location(fix, 20 + i) for i, fix in enumerate(fixes)))
        assert recv_exact(sock, 40) == b"".join(gt06.ack(0x12, 20 + i) for i in range(4))
    stored = list(Ping.objects.filter(terminal_id=terminal.pk).order_by("device_time"))
    assert [p.device_time for p in stored] == [f.time for f in fixes]
    assert LastPosition.objects.get(terminal=terminal).device_time == fixes[-1].time


def test_gt06_heartbeats_refresh_liveness_without_positions(gateway):
    terminal = tf.terminal(protocol="gt06")
    with connect(gateway.ports["gt06"]) as sock:
        sock.sendall(gt06.encode_login(terminal.imei, 1))
        assert recv_exact(sock, 10) == gt06.login_ack(1)
        sock.sendall(gt06.encode_heartbeat(2))
        assert recv_exact(sock, 10) == gt06.heartbeat_ack(2)  # at once, not after a commit
        deadline = time.monotonic() + 5
        while Terminal.objects.get(pk=terminal.pk).last_seen_at is None:
            assert time.monotonic() < deadline, "last_seen_at was not refreshed"
            time.sleep(0.05)
    assert not Ping.objects.filter(terminal_id=terminal.pk).exists()


def test_gt06_defence_bit_of_heartbeats_is_stored_apart_from_the_owners_arming(gateway):
    """Terminal information bit 0 is the terminal's own defence mode (armed with its remote)."""
    terminal = tf.terminal(protocol="gt06")
    Terminal.objects.filter(pk=terminal.pk).update(armed=True, armed_changed_at=timezone.now())  # the owner's

    def wait_for(device_armed: bool) -> Terminal:
        deadline = time.monotonic() + 5
        while (row := Terminal.objects.get(pk=terminal.pk)).device_armed is not device_armed:
            assert time.monotonic() < deadline, f"device_armed did not become {device_armed}"
            time.sleep(0.05)
        return row

    with connect(gateway.ports["gt06"]) as sock:
        sock.sendall(gt06.encode_login(terminal.imei, 1))
        assert recv_exact(sock, 10) == gt06.login_ack(1)
        sock.sendall(gt06.encode_heartbeat(2, terminal_info=0x47))  # GPS on, ACC on, defence on
        assert recv_exact(sock, 10) == gt06.heartbeat_ack(2)
        armed = wait_for(True)
        assert armed.device_armed_changed_at is not None
        sock.sendall(gt06.encode_heartbeat(3, terminal_info=0x47))  # repeated every few minutes
        assert recv_exact(sock, 10) == gt06.heartbeat_ack(3)
        sock.sendall(gt06.encode_heartbeat(4, terminal_info=0x46))  # defence off with the remote
        assert recv_exact(sock, 10) == gt06.heartbeat_ack(4)
        disarmed = wait_for(False)
    assert disarmed.device_armed_changed_at > armed.device_armed_changed_at
    assert disarmed.armed is True  # what the owner armed here is not undone by the terminal


def test_gt06_unknown_imei_gets_the_login_ack_and_nothing_else_and_nothing_is_stored(gateway):
    pings_before = Ping.objects.count()
    with connect(gateway.ports["gt06"]) as sock:
        sock.sendall(gt06.encode_login(tf.imei(990001), 1))
        assert recv_exact(sock, 10) == gt06.login_ack(1)  # what a known IMEI gets (test_terminal_identity)
        sock.sendall(gt06.encode_location(yutian_fix(0), 2) + gt06.encode_heartbeat(3))
        sock.settimeout(1.5)
        with pytest.raises(TimeoutError):
            sock.recv(64)  # no ack: a terminal keeps what it was not acknowledged
    assert Ping.objects.count() == pings_before
    assert 'gateway_unknown_terminals_total{protocol="gt06"}' in gateway.metrics()


def test_gt06_location_before_login_closes_the_connection(gateway):
    pings_before = Ping.objects.count()
    with connect(gateway.ports["gt06"]) as sock:
        sock.sendall(gt06.encode_location(yutian_fix(0), 1))
        assert closed_by_peer(sock) == b""
    assert Ping.objects.count() == pings_before


def test_gt06_garbage_and_broken_frames_are_skipped_and_the_valid_one_processed(gateway):
    terminal = tf.terminal(protocol="gt06")
    good_fix = yutian_fix(5)
    good = gt06.encode_location(good_fix, 7)
    bad_crc = bytearray(gt06.encode_location(yutian_fix(6), 8))
    bad_crc[-4] ^= 0xFF
    truncated = gt06.encode_location(yutian_fix(7), 9)[:-3]
    with connect(gateway.ports["gt06"]) as sock:
        sock.sendall(gt06.encode_login(terminal.imei, 1))
        assert recv_exact(sock, 10) == gt06.login_ack(1)
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n" + bytes(bad_crc) + b"\x00\xff" + truncated + good)
        assert recv_exact(sock, 10) == gt06.ack(0x12, 7)
    assert [p.device_time for p in Ping.objects.filter(terminal_id=terminal.pk)] == [good_fix.time]
    text = gateway.metrics()
    assert 'gateway_frame_errors_total{protocol="gt06",code="bad_checksum"}' in text
    assert 'gateway_garbage_bytes_total{protocol="gt06"}' in text


def test_gt06_a_connection_sending_garbage_is_closed_and_others_are_unaffected(gateway):
    terminal = tf.terminal(protocol="gt06")
    with connect(gateway.ports["gt06"]) as good, connect(gateway.ports["gt06"]) as noisy:
        good.sendall(gt06.encode_login(terminal.imei, 1))
        assert recv_exact(good, 10) == gt06.login_ack(1)
        bad = bytearray(gt06.encode_heartbeat(1))
        bad[-3] ^= 0x01
        with contextlib.suppress(OSError):
            for _ in range(50):
                noisy.sendall(bytes(bad) + b"\x78\x78 noise \x0d\x0a" * 3)
        assert closed_by_peer(noisy) == b""
        good.sendall(gt06.encode_location(yutian_fix(1), 2))
        assert recv_exact(good, 10) == gt06.ack(0x12, 2)
    with connect(gateway.ports["gt06"]) as huge:
        huge.sendall(b"\x79\x79\xff\xff\x22" + bytes(200))  # announces a 65 kB frame
        assert closed_by_peer(huge) == b""
    assert Ping.objects.filter(terminal_id=terminal.pk).count() == 1


# --- JT/T 808 ----------------------------------------------------------------------------------------


def test_jt808_register_authenticate_and_locations_acked_after_commit(gateway):
    terminal = tf.terminal(protocol="jt808")
    phone = jt808.phone_bytes(terminal.phone)
    with connect(gateway.ports["jt808"]) as sock:
        replies = Jt808Replies(sock)
        sock.sendall(jt808.encode_register(phone=phone, serial=1, device_id=terminal.imei[-7:]))
        header, body, _ = replies.next()
        assert header.msg_id == jt808.REGISTER_RESPONSE
        assert struct.unpack_from(">HB", body) == (1, 0)
        code = body[3:].decode()
        terminal.refresh_from_db()
        assert len(code) == 16 and terminal.auth_code_digest == secret_digest(code)

        auth = jt808.encode_auth(code, phone=phone, serial=2)
        sock.sendall(auth)
        auth_header = jt808.parse_header(jt808.unwrap(auth))[0]
        assert replies.next()[2] == jt808.general_response(auth_header, platform_serial=1)

        fix = yutian_fix(0, alarms=())
        location = jt808.encode_location(fix, phone=phone, serial=3, alarm_flags=1 << 8)  # power cut
        sock.sendall(location)
        location_header = jt808.parse_header(jt808.unwrap(location))[0]
        assert replies.next()[2] == jt808.general_response(location_header, platform_serial=2)
        ping = Ping.objects.get(terminal_id=terminal.pk)
        assert ping.device_time == fix.time
        assert (round(ping.point.y, 6), round(ping.point.x, 6)) == (39.8826, 117.739)
        assert list(Alarm.objects.filter(terminal=terminal).values_list("kind", "at")) == [("power_cut", fix.time)]

        batch_fixes = [yutian_fix(-60 * i, lat=39.88 - i * 0.0005) for i in (1, 2, 3)]
        sock.sendall(jt808.encode_batch(batch_fixes, phone=phone, serial=4))
        header, body, _ = replies.next()
        assert struct.unpack_from(">HHB", body) == (4, jt808.BATCH, jt808.RESULT_OK)
        assert Ping.objects.filter(terminal_id=terminal.pk).count() == 4

        sock.sendall(jt808.encode_heartbeat(phone=phone, serial=5))
        header, body, _ = replies.next()
        assert struct.unpack_from(">HHB", body) == (5, jt808.HEARTBEAT, jt808.RESULT_OK)


def test_jt808_real_frames_auth_location_and_2019_register(gateway):
    authenticating = register("864717003283599", "jt808", phone="013511221122", auth_code="authentication")
    reporting = register("864717003283607", "jt808", phone="051160004464", auth_code="reporting-code")
    register("866496077582164", "jt808", phone="00000866496077582164")  # not registered yet
    assert authenticating.pk
    with connect(gateway.ports["jt808"]) as sock:
        sock.sendall(JT_AUTH)
        assert recv_exact(sock, len(JT_AUTH_ACK)) == JT_AUTH_ACK  # as Traccar answers, platform serial 0

    with connect(gateway.ports["jt808"]) as sock:
        replies = Jt808Replies(sock)
        sock.sendall(jt808.encode_auth("reporting-code", phone=jt808.phone_bytes("051160004464"), serial=1))
        assert struct.unpack_from(">HHB", replies.next()[1])[2] == jt808.RESULT_OK
        sock.sendall(JT_LOCATION)
        header = jt808.parse_header(jt808.unwrap(JT_LOCATION))[0]
        assert replies.next()[2] == jt808.general_response(header, platform_serial=1)
        ping = Ping.objects.get(terminal_id=reporting.pk)
        assert ping.device_time == datetime.datetime(2020, 8, 7, 10, 7, 22, tzinfo=UTC)
        assert (round(ping.point.y, 6), round(ping.point.x, 6)) == (22.64483, 114.02938)
        assert ping.satellites == 9

    with connect(gateway.ports["jt808"]) as sock:
        sock.sendall(JT_REGISTER_2019)
        header, body, _ = Jt808Replies(sock).next()
        assert (header.msg_id, header.version, header.terminal_id) == (0x8100, 1, "00000866496077582164")
        assert body[:3] == bytes.fromhex("521800")  # reply serial 21016, result 0
        # Its terminal ID is its IMEI, as the record says: the code is issued, and kept as a digest.
        stored = Terminal.objects.get(phone="00000866496077582164").auth_code_digest
        assert stored == secret_digest(body[3:].decode())


def test_jt808_wrong_auth_code_fails_and_closes_and_unauthenticated_positions_are_refused(gateway):
    terminal = tf.terminal(protocol="jt808")
    phone = jt808.phone_bytes(terminal.phone)
    with connect(gateway.ports["jt808"]) as sock:
        replies = Jt808Replies(sock)
        sock.sendall(jt808.encode_location(yutian_fix(0), phone=phone, serial=1))
        _header, body, _ = replies.next()
        assert struct.unpack_from(">HHB", body) == (1, jt808.LOCATION, jt808.RESULT_FAILURE)
        sock.sendall(jt808.encode_auth("not-the-code", phone=phone, serial=2))
        _header, body, _ = replies.next()
        assert struct.unpack_from(">HHB", body) == (2, jt808.AUTH, jt808.RESULT_FAILURE)
        assert closed_by_peer(sock) == b""
    assert not Ping.objects.filter(terminal_id=terminal.pk).exists()


def test_jt808_register_of_an_unknown_terminal_gets_no_such_terminal_and_is_closed(gateway):
    with connect(gateway.ports["jt808"]) as sock:
        sock.sendall(jt808.encode_register(phone=jt808.phone_bytes("019900000001"), serial=3))
        header, body, _ = Jt808Replies(sock).next()
        assert header.msg_id == jt808.REGISTER_RESPONSE and body == bytes.fromhex("000304")
        assert closed_by_peer(sock) == b""


# --- OsmAnd -------------------------------------------------------------------------------------------


def http(gateway, path: str, *, body: bytes | None = None, content_type: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{gateway.ports['osmand']}{path}", data=body)
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:  # noqa: S310
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_osmand_get_and_json_post_are_stored_then_200(gateway):
    terminal = register(tf.imei(990101), "osmand")
    stamp = int(yutian_fix(0).time.timestamp())
    status, _ = http(gateway, f"/?id={terminal.imei}&timestamp={stamp}&lat=39.8826&lon=117.739&speed=5&batt=80")
    assert status == 200
    ping = Ping.objects.get(terminal_id=terminal.pk)
    assert (ping.device_time.timestamp(), round(ping.point.y, 4), ping.battery) == (stamp, 39.8826, 80)
    assert ping.speed_kmh == pytest.approx(5 * 1.852, abs=0.01)

    later = yutian_fix(60).time.isoformat().replace("+00:00", "Z")
    body = {
        "device_id": terminal.imei,
        "location": {
            "timestamp": later,
            "coords": {"latitude": 39.8830, "longitude": 117.7395, "speed": 4.2, "heading": 90},
            "battery": {"level": 0.5},
        },
    }
    status, _ = http(gateway, "/", body=json.dumps(body).encode(), content_type="application/json")
    assert status == 200
    assert Ping.objects.filter(terminal_id=terminal.pk).count() == 2


def test_osmand_bad_input_gets_400_with_a_reason_and_unknown_ids_404(gateway):
    terminal = register(tf.imei(990102), "osmand")
    status, text = http(gateway, f"/?id={terminal.imei}&lat=95&lon=117.7")
    assert status == 400 and "latitude" in text
    status, text = http(gateway, "/?lat=39.9&lon=117.7")
    assert status == 400 and "missing id" in text
    future = int(time.time()) + 86400
    status, text = http(gateway, f"/?id={terminal.imei}&lat=39.9&lon=117.7&timestamp={future}")
    assert status == 400 and "ahead of the server clock" in text
    status, _ = http(gateway, f"/?id={tf.imei(990103)}&lat=39.9&lon=117.7")
    assert status == 404
    assert not Ping.objects.filter(terminal_id=terminal.pk).exists()


def test_an_id_no_terminal_can_have_is_unknown_without_a_query_and_stops_no_other_terminal(gateway):
    """A NUL (PostgreSQL text cannot hold it) or a lone surrogate (not UTF-8) in an id made the batch
    lookup it joined fail, and the directory refused every login for its retry time."""
    terminal = register(tf.imei(990105), "osmand")
    stamp = int(yutian_fix(0).time.timestamp())
    for bad_id in ("8681%00", "9" * 200):
        status, _ = http(gateway, f"/?id={bad_id}&lat=39.9&lon=117.7")
        assert status == 404
    location = f'"location": {{"timestamp": {stamp}, "coords": {{"latitude": 39.9, "longitude": 117.7}}}}'
    for bad_id in (r"8681\u0000", r"\ud800"):  # JSON escapes: a NUL, a lone surrogate
        body = f'{{"device_id": "{bad_id}", {location}}}'
        status, _ = http(gateway, "/", body=body.encode(), content_type="application/json")
        assert status == 404
    status, _ = http(gateway, f"/?id={terminal.imei}&timestamp={stamp}&lat=39.8826&lon=117.739")
    assert status == 200
    assert Ping.objects.filter(terminal_id=terminal.pk).count() == 1
    assert "terminal lookup failed" not in gateway.log()


def test_the_gateways_longest_id_is_the_longest_column_a_terminal_is_found_by():
    from tracking.gateway.terminals import MAX_ID_LENGTH

    columns = [Terminal._meta.get_field(name).max_length for name in ("imei", "phone", "jt808_device_id")]
    assert max(columns) == MAX_ID_LENGTH


def test_osmand_pipelined_and_chunked_requests_are_answered_in_order(gateway):
    terminal = register(tf.imei(990104), "osmand")
    stamps = [int(yutian_fix(i * 30).time.timestamp()) for i in range(3)]
    body = f"id={terminal.imei}&timestamp={stamps[2]}&lat=39.8830&lon=117.7400".encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    requests = (
        f"GET /?id={terminal.imei}&timestamp={stamps[0]}&lat=39.8826&lon=117.739 HTTP/1.1\r\nHost: x\r\n\r\n"
        f"POST /?id={terminal.imei}&timestamp={stamps[1]}&lat=39.8827&lon=117.739 HTTP/1.1\r\nHost: x\r\n"
        "Content-Length: 0\r\n\r\n"
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode() + chunked
    with connect(gateway.ports["osmand"]) as sock:
        sock.sendall(requests)
        replies = closed_by_peer(sock)
    assert replies.count(b"HTTP/1.1 200 OK") == 3
    stored = Ping.objects.filter(terminal_id=terminal.pk).order_by("device_time")
    assert [int(p.device_time.timestamp()) for p in stored] == stamps


# --- durability --------------------------------------------------------------------------------------


class Gt06Client:
    """An asyncio GT06 terminal for the failure tests: positions at a steady pace, acks collected."""

    def __init__(self, imei: str, port: int, first_time: datetime.datetime) -> None:
        self.imei = imei
        self.port = port
        self.first_time = first_time
        self.sent: dict[int, datetime.datetime] = {}
        self.acked: list[datetime.datetime] = []
        self.serial = 1
        self.closed = False

    async def start(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(gt06.encode_login(self.imei, 1))
        assert await asyncio.wait_for(self.reader.readexactly(10), 5) == gt06.login_ack(1)
        self.receiving = asyncio.create_task(self._receive())

    async def _receive(self) -> None:
        framer = Gt06Framer()
        try:
            while data := await self.reader.read(4096):
                for frame in framer.feed(data):
                    if isinstance(frame, bytes):
                        protocol, _content, serial = gt06.parse_frame(frame)
                        if protocol == gt06.GPS_LBS and serial in self.sent:
                            self.acked.append(self.sent[serial])
        except ConnectionError:
            pass
        finally:
            self.closed = True

    def send(self, count: int = 1) -> None:
        frames = []
        for _ in range(count):
            self.serial += 1
            when = self.first_time + datetime.timedelta(seconds=self.serial)
            self.sent[self.serial] = when
            fix = Fix(time=when, latitude=39.88, longitude=117.74, valid=True, speed_kmh=10.0)
            frames.append(gt06.encode_location(fix, self.serial))
        with contextlib.suppress(ConnectionError, RuntimeError):
            self.writer.write(b"".join(frames))

    async def stop(self) -> None:
        self.receiving.cancel()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


def alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(("event_loop", "writers"), [("uvloop", 1), ("asyncio", 2)])
def test_two_worker_processes_share_the_ports_and_stop_cleanly(django_db_setup, event_loop, writers):
    """Both event loops; with two writers a worker splits its terminals into two lanes."""
    process = GatewayProcess(
        database_url(), GATEWAY_PROCESSES="2", GATEWAY_EVENT_LOOP=event_loop, GATEWAY_DB_WRITERS=str(writers)
    )
    try:
        assert len(process.workers()) == 2
        terminals = [tf.terminal(protocol="gt06") for _ in range(12)]
        for n, terminal in enumerate(terminals):  # the kernel spreads the connections over both
            with connect(process.ports["gt06"]) as sock:
                sock.sendall(gt06.encode_login(terminal.imei, 1))
                assert recv_exact(sock, 10) == gt06.login_ack(1)
                sock.sendall(gt06.encode_location(yutian_fix(n), 2))
                assert recv_exact(sock, 10) == gt06.ack(0x12, 2)  # after the commit
        assert Ping.objects.filter(terminal_id__in=[t.pk for t in terminals]).count() == 12
        process.process.send_signal(signal.SIGTERM)
        assert process.process.wait(20) == 0
        assert process.log().count("gateway stopped:") == 2  # each worker drained and said so
        assert process.log().count(f"({event_loop} loop,") == 2
        assert process.log().count(f" ms, {writers} writers,") == 2
    finally:
        process.stop()


@pytest.mark.parametrize("processes", [1, 2])
def test_sigkill_mid_run_loses_no_acknowledged_ping(django_db_setup, processes):
    """With GATEWAY_PROCESSES=2 the SIGKILL hits the supervisor: its workers die with it."""
    terminals = [tf.terminal(protocol="gt06", bound=False) for _ in range(4)]
    process = GatewayProcess(database_url(), GATEWAY_PROCESSES=str(processes))
    workers = process.workers()
    assert len(workers) == (processes if processes > 1 else 0)
    first_time = datetime.datetime.now(UTC).replace(microsecond=0) - datetime.timedelta(hours=3)

    async def run() -> list[Gt06Client]:
        clients = [Gt06Client(t.imei, process.ports["gt06"], first_time) for t in terminals]
        for client in clients:
            await client.start()
        deadline = time.monotonic() + 20
        killed = False
        while time.monotonic() < deadline and not all(c.closed for c in clients):
            for client in clients:
                client.send(5)
            await asyncio.sleep(0.002)
            if not killed and sum(len(c.acked) for c in clients) >= 2000:
                os.kill(process.process.pid, signal.SIGKILL)  # mid-run: batches are being written
                killed = True
        assert killed, "not enough acks before the deadline"
        await asyncio.sleep(0.3)
        for client in clients:
            await client.stop()
        return clients

    try:
        clients = asyncio.run(run())
    finally:
        process.stop()
    assert process.process.returncode == -signal.SIGKILL
    for worker in workers:  # gone with the supervisor, not left holding the ports
        deadline = time.monotonic() + 5
        while alive(worker):
            assert time.monotonic() < deadline, f"worker {worker} outlived the killed supervisor"
            time.sleep(0.05)
    for terminal, client in zip(terminals, clients, strict=True):
        stored = set(Ping.objects.filter(terminal_id=terminal.pk).values_list("device_time", flat=True))
        assert client.acked, "every terminal got acks"
        assert set(client.acked) <= stored, f"{len(set(client.acked) - stored)} acknowledged pings lost"
        assert len(client.sent) > len(client.acked)  # some were in flight when the gateway died


class Proxy:
    """A TCP proxy to PostgreSQL under the test's control: `cut()` drops every connection and refuses
    new ones, `restore()` lets them through again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            listener.close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def test_database_cut_means_no_ack_until_it_is_back_then_recovery(django_db_setup):
    terminal = tf.terminal(protocol="gt06", bound=False)
    settings = connection.settings_dict
    proxy = Proxy((settings["HOST"] or "127.0.0.1", int(settings["PORT"] or 5432)))
    process = GatewayProcess(database_url(host="127.0.0.1", port=proxy.port))
    first_time = datetime.datetime.now(UTC).replace(microsecond=0) - datetime.timedelta(hours=4)

    async def run() -> Gt06Client:
        client = Gt06Client(terminal.imei, process.ports["gt06"], first_time)
        await client.start()
        client.send()
        await until(lambda: len(client.acked) == 1, 5)

        proxy.cut()
        client.send(5)  # sent while the database is unreachable
        await asyncio.sleep(3)
        assert len(client.acked) == 1, "no ack may be sent for pings that are not committed"
        stored = await asyncio.to_thread(count_pings, terminal.pk)
        assert stored == 1
        with socket.create_connection(("127.0.0.1", process.ports["gt06"]), timeout=2):
            pass  # still accepting connections

        proxy.restore()
        await until(lambda: len(client.acked) == 6, 15)  # the same batch retried, then acked
        client.send(2)
        await until(lambda: len(client.acked) == 8, 5)
        await client.stop()
        return client

    try:
        client = asyncio.run(run())
        assert "batch of" in process.log() and "not committed" in process.log()
    finally:
        process.stop()
        proxy.cut()
    stored = set(Ping.objects.filter(terminal_id=terminal.pk).values_list("device_time", flat=True))
    assert stored == set(client.sent.values()) == set(client.acked)


def count_pings(terminal_id: int) -> int:
    """From a worker thread (the ORM refuses to run inside an event loop); closes its connection."""
    try:
        return Ping.objects.filter(terminal_id=terminal_id).count()
    finally:
        connection.close()


async def until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


# --- the writer alone ---------------------------------------------------------------------------------


class Collector:
    def __init__(self) -> None:
        self.acks: list[bytes | None] = []

    def deliver(self, acks):
        self.acks += acks


def test_a_port_in_use_is_a_clear_error_and_a_non_zero_exit(django_db_setup):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "DATABASE_URL": database_url()}
        ports = [f"--jt808-port={free_port()}", f"--osmand-port={free_port()}", f"--metrics-port={free_port()}"]
        done = subprocess.run(  # noqa: S603 - our own manage.py
            [sys.executable, "manage.py", "run_gateway", "--host=127.0.0.1", f"--gt06-port={port}", *ports],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert "gateway could not start" in done.stderr and "in use" in done.stderr


def test_writer_drops_only_the_message_the_database_refuses():
    terminal = tf.terminal(protocol="gt06", bound=False)
    good = [Collector() for _ in range(5)]
    poisoned = Collector()

    async def run() -> Metrics:
        metrics = Metrics()
        writer = BatchWriter(gateway_db.conninfo(connection.settings_dict), metrics, batch_ms=20)
        task = asyncio.create_task(writer.run())
        for i, target in enumerate([*good[:2], poisoned, *good[2:]]):
            fix = yutian_fix(i)
            if target is poisoned:  # satellites is a smallint column: 40000 does not fit
                fix = Fix(fix.time, fix.latitude, fix.longitude, True, satellites=40000)
            writer.add(target, f"ack{i}".encode(), [Incoming(terminal.pk, fix)])
        writer.stop()
        await asyncio.wait_for(task, 10)
        return metrics

    metrics = asyncio.run(run())
    assert [c.acks for c in good] == [[b"ack0"], [b"ack1"], [b"ack3"], [b"ack4"], [b"ack5"]]
    assert poisoned.acks == []
    assert metrics.errors["db_rejected"] == 1
    assert Ping.objects.filter(terminal_id=terminal.pk).count() == 5


def test_writer_forgets_terminals_past_their_ttl_and_then_judges_jumps_by_the_stored_position():
    riding = tf.terminal(protocol="gt06", bound=False)
    quiet = tf.terminal(protocol="gt06", bound=False)
    first, second = Collector(), Collector()

    async def until_acked(collector: Collector) -> None:
        while not collector.acks:
            await asyncio.sleep(0.01)

    async def run() -> tuple[int, int]:
        writer = BatchWriter(gateway_db.conninfo(connection.settings_dict), Metrics(), batch_ms=10)
        task = asyncio.create_task(writer.run())
        writer.add(first, b"a", [Incoming(riding.pk, yutian_fix(0)), Incoming(quiet.pk, yutian_fix(0))])
        await asyncio.wait_for(until_acked(first), 10)
        before = writer.remembered()
        writer.forget_stale(time.monotonic() + LAST_FIX_TTL_S + 1)
        after = writer.remembered()
        # Sixty seconds later, 110 km north: an e-bike cannot do that.
        writer.add(second, b"b", [Incoming(riding.pk, yutian_fix(60, lat=40.8826))])
        await asyncio.wait_for(until_acked(second), 10)
        writer.stop()
        await asyncio.wait_for(task, 10)
        return before, after

    before, after = asyncio.run(run())
    assert (before, after) == (2, 0)
    jump = Ping.objects.get(terminal_id=riding.pk, device_time=BASE + datetime.timedelta(seconds=60))
    assert jump.outlier
    assert LastPosition.objects.get(terminal_id=riding.pk).device_time == BASE


def test_writer_keeps_its_staging_table_empty_and_its_file_from_growing(monkeypatch):
    """A day of batches must not grow the table every batch stages in: each batch deletes its rows,
    and the writer vacuums them away every STAGE_VACUUM_ROWS rows, keeping the file's pages."""
    monkeypatch.setattr(writer_module, "STAGE_VACUUM_ROWS", 200)
    terminals = [tf.terminal(protocol="gt06", bound=False) for _ in range(50)]

    async def stage_after(writer: BatchWriter, rounds: range) -> tuple[int, int]:
        for round_ in rounds:
            done = Collector()
            writer.add(done, b"ok", [Incoming(t.pk, yutian_fix(round_)) for t in terminals])
            while not done.acks:
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)  # the vacuum follows the batch's acks
        cursor = await writer._connections[0].execute("SELECT count(*), pg_relation_size('ping_stage') FROM ping_stage")
        rows, size = await cursor.fetchone()
        await writer._connections[0].commit()
        return rows, size

    async def run() -> list[tuple[int, int]]:
        writer = BatchWriter(gateway_db.conninfo(connection.settings_dict), Metrics(), batch_ms=5, writers=1)
        task = asyncio.create_task(writer.run())
        seen = [await stage_after(writer, range(0, 8)), await stage_after(writer, range(8, 40))]
        writer.stop()
        await asyncio.wait_for(task, 10)
        return seen

    (rows_early, size_early), (rows_late, size_late) = asyncio.run(run())
    assert rows_early == rows_late == 0
    # 32 more batches of 50 rows (about a page each) left the file as it was after 8.
    assert size_late <= size_early
    assert Ping.objects.filter(terminal_id__in=[t.pk for t in terminals]).count() == 50 * 40


def test_a_failing_staging_vacuum_costs_a_reconnect_and_no_position(monkeypatch):
    """The vacuum runs between batches, after the acks: when it fails, the writer drops that
    connection and the next batch goes out on a new one, with its own new staging table."""
    monkeypatch.setattr(writer_module, "STAGE_VACUUM_ROWS", 20)
    monkeypatch.setattr(writer_module, "STAGE_VACUUM_SQL", "VACUUM no_such_table")
    terminals = [tf.terminal(protocol="gt06", bound=False) for _ in range(25)]
    collectors = [Collector() for _ in range(4)]

    async def acked(done: Collector) -> None:
        while not done.acks:
            await asyncio.sleep(0.005)

    async def run() -> Metrics:
        metrics = Metrics()
        writer = BatchWriter(gateway_db.conninfo(connection.settings_dict), metrics, batch_ms=5, writers=1)
        task = asyncio.create_task(writer.run())
        for round_, done in enumerate(collectors):
            writer.add(done, b"ok", [Incoming(t.pk, yutian_fix(round_)) for t in terminals])
            await asyncio.wait_for(acked(done), 10)
        writer.stop()
        await asyncio.wait_for(task, 10)
        return metrics

    metrics = asyncio.run(run())
    assert [done.acks for done in collectors] == [[b"ok"]] * 4
    assert metrics.errors["db_connection"] == 4  # a failed vacuum after every batch
    assert Ping.objects.filter(terminal_id__in=[t.pk for t in terminals]).count() == 25 * 4
