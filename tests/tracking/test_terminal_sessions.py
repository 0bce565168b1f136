"""Terminal sessions (tracking.gateway.leases): where each position came from, leases, and cloned
identities raising a call in the duty room. The gateway runs as a subprocess on the test database
with leases renewed every half second; clients connect from other loopback addresses (127.0.0.x)
so that each connection has an address of its own.
"""

import datetime
import signal
import socket
import time

import pytest
from django.utils import timezone

from cases.models import DutyCall
from tests.tracking import factories as tf
from tests.tracking.gateway_harness import GatewayProcess, database_url, recv_exact
from tracking.derived import outbox_process
from tracking.gateway import proxy
from tracking.models import Alarm, GatewayNode, Ping, TerminalSession
from tracking.protocols import gt06
from tracking.protocols.common import Fix

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

FAST_LEASES = {"GATEWAY_LEASE_RENEW_S": "0.3", "GATEWAY_LEASE_S": "2", "GATEWAY_CONFLICT_MARGIN_S": "0.2"}


@pytest.fixture(scope="module")
def gateway(django_db_setup, django_db_blocker):
    # 127.0.0.9 plays HAProxy: its connections begin with a PROXY v2 header.
    process = GatewayProcess(database_url(), GATEWAY_PROXY_FROM="127.0.0.9", **FAST_LEASES)
    try:
        yield process
    finally:
        process.stop()


def connect_from(address: str, port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(address, 0))
    sock.settimeout(5)
    return sock


def login(sock: socket.socket, imei: str, serial: int = 1) -> None:
    sock.sendall(gt06.encode_login(imei, serial))
    assert recv_exact(sock, 10) == gt06.login_ack(serial)


def heartbeat(sock: socket.socket, serial: int) -> None:
    sock.sendall(gt06.encode_heartbeat(serial))
    assert recv_exact(sock, 10) == gt06.heartbeat_ack(serial)


def send_fix(sock: socket.socket, serial: int, minutes_ago: int = 5, *, north_km: float = 0.0) -> Fix:
    fix = Fix(
        time=timezone.now().replace(microsecond=0) - datetime.timedelta(minutes=minutes_ago),
        latitude=39.8826 + north_km / 111.2,
        longitude=117.739,
        valid=True,
        speed_kmh=12.0,
        satellites=8,
    )
    sock.sendall(gt06.encode_location(fix, serial))
    assert recv_exact(sock, 10) == gt06.ack(0x12, serial)
    return fix


def eventually(check, timeout: float = 8.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_each_position_names_its_session_and_the_session_its_address(gateway):
    terminal = tf.terminal(protocol="gt06")
    with connect_from("127.0.0.2", gateway.ports["gt06"]) as sock:
        login(sock, terminal.imei)
        fix = send_fix(sock, 2)
        ping = Ping.objects.get(terminal_id=terminal.pk, device_time=fix.time)
        assert ping.session_id is not None
        session = eventually(lambda: TerminalSession.objects.filter(pk=ping.session_id).first())
        assert session is not None, "the session row is written within a second of the login"
        assert (session.terminal_id, session.protocol, session.remote_address) == (terminal.pk, "gt06", "127.0.0.2")
        assert session.via_address is None and session.ended_at is None
        assert TerminalSession.objects.alive().filter(pk=session.pk).exists()
    ended = eventually(lambda: TerminalSession.objects.filter(pk=session.pk, ended_at__isnull=False).first())
    assert ended is not None, "closing the connection ends the session"
    assert ended.end_reason == "peer_closed"


def test_two_live_sessions_of_one_imei_raise_a_conflict_call_naming_both_addresses(gateway):
    terminal = tf.terminal(protocol="gt06")
    port = gateway.ports["gt06"]
    with connect_from("127.0.0.2", port) as real, connect_from("127.0.0.3", port) as clone:
        login(real, terminal.imei, 1)
        login(clone, terminal.imei, 1)
        # Both keep talking: neither connection is a dead one left behind by a reconnect.
        for serial in range(2, 10):
            heartbeat(real, serial)
            heartbeat(clone, serial)
            time.sleep(0.2)
        alarm = eventually(lambda: Alarm.objects.filter(terminal=terminal, kind="terminal_conflict").first())
    assert alarm is not None, "the clone is noticed within a few lease renewals"
    assert "127.0.0.2" in alarm.note and "127.0.0.3" in alarm.note
    assert Alarm.objects.filter(terminal=terminal, kind="terminal_conflict").count() == 1

    outbox_process()  # what beat runs every two seconds: the duty room's calls
    call = DutyCall.objects.get(vehicle_id=terminal.vehicle_id, kind=DutyCall.Kind.CONFLICT)
    assert call.station_id == terminal.vehicle.station_id
    assert "127.0.0.2" in call.note and "127.0.0.3" in call.note
    assert gateway.metrics().count("gateway_terminal_conflicts_total 1") == 1


def test_a_terminal_reconnecting_while_its_dead_connection_is_still_open_is_no_conflict(gateway):
    terminal = tf.terminal(protocol="gt06")
    with connect_from("127.0.0.2", gateway.ports["gt06"]) as old:
        login(old, terminal.imei, 1)
        heartbeat(old, 2)
        # The carrier moved the terminal to another address; the old connection says nothing more
        # but the gateway has not noticed yet (its idle timeout is minutes away).
        with connect_from("127.0.0.4", gateway.ports["gt06"]) as new:
            login(new, terminal.imei, 1)
            for serial in range(2, 10):
                heartbeat(new, serial)
                time.sleep(0.2)
            sessions = TerminalSession.objects.filter(terminal=terminal, ended_at__isnull=True)
            assert eventually(lambda: sessions.count() == 2)
    time.sleep(1.0)  # a few more renewals and checks
    assert not Alarm.objects.filter(terminal=terminal, kind="terminal_conflict").exists()


def test_a_new_connection_sending_positions_80_km_from_the_last_ones_raises_a_conflict(gateway):
    terminal = tf.terminal(protocol="gt06")
    with connect_from("127.0.0.2", gateway.ports["gt06"]) as real:
        login(real, terminal.imei)
        send_fix(real, 2, minutes_ago=10)
    # Another address, a minute later, 80 km north: not a bike anyone rides.
    with connect_from("127.0.0.7", gateway.ports["gt06"]) as forger:
        login(forger, terminal.imei)
        for serial, minutes_ago in ((2, 9), (3, 8), (4, 7)):
            send_fix(forger, serial, minutes_ago=minutes_ago, north_km=80)
        alarm = eventually(lambda: Alarm.objects.filter(terminal=terminal, kind="terminal_conflict").first())
    assert alarm is not None, gateway.log()[-3000:]
    assert "cannot both be true" in alarm.note
    assert "127.0.0.2" in alarm.note and "127.0.0.7" in alarm.note


def test_behind_haproxy_the_address_the_proxy_reports_is_kept_with_the_proxys_own(gateway):
    terminal = tf.terminal(protocol="gt06")
    with connect_from("127.0.0.9", gateway.ports["gt06"]) as sock:
        local = sock.getsockname()
        sock.sendall(proxy.header(("203.0.113.7", 40123), ("127.0.0.1", gateway.ports["gt06"])))
        login(sock, terminal.imei)
        fix = send_fix(sock, 2)
        assert local[0] == "127.0.0.9"
    ping = Ping.objects.get(terminal_id=terminal.pk, device_time=fix.time)
    session = eventually(lambda: TerminalSession.objects.filter(pk=ping.session_id).first())
    assert (session.remote_address, session.remote_port, session.via_address) == ("203.0.113.7", 40123, "127.0.0.9")


def test_a_proxy_header_from_an_address_that_is_no_proxy_is_not_believed(gateway):
    terminal = tf.terminal(protocol="gt06")
    with connect_from("127.0.0.5", gateway.ports["gt06"]) as sock:
        # Bytes a terminal has no business sending: skipped as garbage, the login after them counts.
        sock.sendall(proxy.header(("198.51.100.1", 1), ("127.0.0.1", gateway.ports["gt06"])))
        login(sock, terminal.imei)
        fix = send_fix(sock, 2)
    ping = Ping.objects.get(terminal_id=terminal.pk, device_time=fix.time)
    session = eventually(lambda: TerminalSession.objects.filter(pk=ping.session_id).first())
    assert (session.remote_address, session.via_address) == ("127.0.0.5", None)


def test_a_broken_proxy_header_from_the_proxy_closes_that_connection_only(gateway):
    terminal = tf.terminal(protocol="gt06")
    with connect_from("127.0.0.9", gateway.ports["gt06"]) as sock:
        sock.sendall(proxy.SIGNATURE + b"\x99\x11\x00\x0c" + bytes(12))  # version 9
        sock.settimeout(5)
        assert sock.recv(100) == b""
    with connect_from("127.0.0.6", gateway.ports["gt06"]) as other:
        login(other, terminal.imei)
    assert 'reason="proxy_header"' in gateway.metrics()


def test_the_sessions_of_a_node_that_died_are_no_longer_alive(django_db_setup):
    terminal = tf.terminal(protocol="gt06")
    process = GatewayProcess(database_url(), **FAST_LEASES)
    try:
        with connect_from("127.0.0.2", process.ports["gt06"]) as sock:
            login(sock, terminal.imei)
            heartbeat(sock, 2)
            alive = TerminalSession.objects.alive().filter(terminal=terminal)
            assert eventually(alive.exists)
            node = GatewayNode.objects.get(node=alive.get().node)
            process.process.send_signal(signal.SIGKILL)
            process.process.wait(10)
    finally:
        process.stop()
    session = TerminalSession.objects.get(terminal=terminal)
    assert session.ended_at is None  # nobody was left to say it ended
    time.sleep(max(0.0, (node.lease_until - timezone.now()).total_seconds()) + 0.2)
    assert not TerminalSession.objects.alive().filter(terminal=terminal).exists()
