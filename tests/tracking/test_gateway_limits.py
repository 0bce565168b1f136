"""A gateway no client can exhaust: connection caps per port and per source address, the login and
request deadlines, failed logins per address, oversized alarm lists. The gateway under test runs
with small caps and a low descriptor limit; floods come from other loopback addresses (127.0.0.x:
on Linux the whole 127/8 is local), the real terminals from 127.0.0.1.

Every test uses its own source addresses: the per-address counts and blocks live as long as the
gateway, which serves the whole module.
"""

import contextlib
import datetime
import re
import select
import socket
import threading
import time
from urllib.parse import urlencode

import pytest

from tests.tracking import factories as tf
from tests.tracking.gateway_harness import GatewayProcess, closed_by_peer, connect, database_url, recv_exact
from tracking.gateway import leases, proxy
from tracking.gateway.limits import address_key, fit_port_cap
from tracking.ingest import OTHER_ALARM, TERMINAL_ALARMS, alarm_kinds
from tracking.models import Alarm, Ping
from tracking.protocols import gt06, osmand
from tracking.protocols.common import Fix
from tracking.protocols.stream import Gt06Framer, Jt808Framer

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

FD_LIMIT = 256  # three ports of GATEWAY_MAX_CONNECTIONS=1000 do not fit: lowered to 64 each
PORT_CAP = (FD_LIMIT - 64) // 3
ADDRESS_CAP = 20
LOGIN_TIMEOUT_S = 3.0
REQUEST_TIMEOUT_S = 2.0
FAILURES_ALLOWED = 5
PROXY = "127.0.0.13"  # sends a PROXY v2 header first, as HAProxy does


@pytest.fixture(scope="module")
def gateway(django_db_setup, django_db_blocker):
    process = GatewayProcess(
        database_url(),
        GATEWAY_FD_LIMIT=str(FD_LIMIT),
        GATEWAY_MAX_CONNECTIONS="1000",
        GATEWAY_MAX_CONNECTIONS_PER_ADDRESS=str(ADDRESS_CAP),
        GATEWAY_LOGIN_TIMEOUT_S=str(LOGIN_TIMEOUT_S),
        GATEWAY_HTTP_REQUEST_TIMEOUT_S=str(REQUEST_TIMEOUT_S),
        GATEWAY_LOGIN_FAILURES_PER_ADDRESS=str(FAILURES_ALLOWED),
        GATEWAY_LOGIN_BLOCK_S="120",
        GATEWAY_MAX_ALARMS_PER_FIX="8",
        GATEWAY_PROXY_FROM=PROXY,
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(autouse=True)
def _sessions_written(request):
    """The gateway writes terminal sessions a moment after logins and closings (tracking.gateway.leases):
    wait for those writes before the test's tables are emptied, which they would deadlock with."""
    yield
    if "gateway" in request.fixturenames:
        gateway = request.getfixturevalue("gateway")
        wait_for(lambda: metric(gateway, "gateway_sessions_open") == 0)
        time.sleep(2 * leases.FLUSH_S)


def connect_from(source: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.settimeout(5)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def still_open(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    return not readable  # a closed connection is readable (EOF)


def metric(gateway: GatewayProcess, name: str, **labels: str) -> float:
    """One sample of the metrics endpoint (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = "^" + re.escape(f"{name}{{{wanted}}}" if wanted else name) + r" (\S+)$"
    found = re.search(pattern, gateway.metrics(), re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def location(seconds_ago: int) -> Fix:
    when = datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(seconds=seconds_ago)
    return Fix(time=when, latitude=39.8826, longitude=117.7390, valid=True, speed_kmh=12.0)


def gt06_logs_in_and_is_acked(port: int, imei: str) -> None:
    with connect(port) as sock:
        sock.sendall(gt06.encode_login(imei, 1))
        assert recv_exact(sock, 10) == gt06.login_ack(1)
        sock.sendall(gt06.encode_location(location(60), 2))
        assert recv_exact(sock, 10) == gt06.ack(0x12, 2)


def test_the_caps_are_lowered_to_fit_the_descriptor_limit_and_say_so(gateway):
    assert metric(gateway, "gateway_limit", limit="fd") == FD_LIMIT
    assert metric(gateway, "gateway_limit", limit="connections_per_port") == PORT_CAP
    assert metric(gateway, "gateway_limit", limit="connections_per_address") == ADDRESS_CAP
    assert "descriptor limit 256 is too low" in gateway.log()


def test_silent_connections_over_the_address_cap_are_closed_while_a_terminal_elsewhere_logs_in(gateway):
    terminal = tf.terminal(protocol="gt06")
    port = gateway.ports["gt06"]
    silent = [connect_from("127.0.0.2", port) for _ in range(ADDRESS_CAP)]
    over = [connect_from("127.0.0.2", port) for _ in range(10)]
    try:
        for sock in over:
            assert closed_by_peer(sock, 3.0) == b""
        assert all(still_open(sock) for sock in silent)  # under the cap until the login deadline
        gt06_logs_in_and_is_acked(port, terminal.imei)  # from 127.0.0.1, at the same time
        assert Ping.objects.filter(terminal=terminal).count() == 1
    finally:
        for sock in silent + over:
            sock.close()
    assert metric(gateway, "gateway_connections_refused_total", protocol="gt06", reason="address_cap") >= 10
    # A line and a count, not a line per refused connection.
    lines = [line for line in gateway.log().splitlines() if "127.0.0.2 holds" in line]
    assert 1 <= len(lines) <= 2


def test_behind_the_proxy_connections_count_against_the_client_address_its_header_names(gateway):
    port = gateway.ports["gt06"]

    def via_proxy(client: str) -> socket.socket:
        sock = connect_from(PROXY, port)
        sock.sendall(proxy.header((client, 40000), ("127.0.0.1", port)))
        return sock

    crowd = [via_proxy("198.51.100.7") for _ in range(ADDRESS_CAP + 5)]  # all from the proxy's address
    try:
        wait_for(lambda: sum(not still_open(sock) for sock in crowd) == 5, timeout=LOGIN_TIMEOUT_S / 2)
        terminal = tf.terminal(protocol="gt06")
        with via_proxy("198.51.100.8") as sock:  # the proxy's other clients are served
            sock.sendall(gt06.encode_login(terminal.imei, 1))
            assert recv_exact(sock, 10) == gt06.login_ack(1)
        assert sum(not still_open(sock) for sock in crowd) == 5
    finally:
        for sock in crowd:
            sock.close()
    assert "198.51.100.7 holds" in gateway.log()


def test_a_full_port_closes_new_connections_and_takes_them_again_when_one_leaves(gateway):
    terminal = tf.terminal(protocol="osmand", bound=False)
    port = gateway.ports["osmand"]
    wait_for(lambda: metric(gateway, "gateway_connections_open", protocol="osmand") == 0)
    held = [connect_from(f"127.0.0.{3 + n % 4}", port) for n in range(PORT_CAP)]  # 16 an address
    try:
        wait_for(lambda: metric(gateway, "gateway_connections_open", protocol="osmand") == PORT_CAP)
        extra = connect_from("127.0.0.7", port)
        assert closed_by_peer(extra, 3.0) == b""
        assert metric(gateway, "gateway_connections_refused_total", protocol="osmand", reason="port_cap") >= 1
        held.pop().close()
        wait_for(lambda: metric(gateway, "gateway_connections_open", protocol="osmand") == PORT_CAP - 1)
        with connect_from("127.0.0.7", port) as sock:
            stamp = int(location(30).time.timestamp())
            sock.sendall(
                f"GET /?id={terminal.imei}&lat=39.8826&lon=117.739&timestamp={stamp} HTTP/1.1\r\n"
                "Host: x\r\nConnection: close\r\n\r\n".encode()
            )
            assert closed_by_peer(sock, 3.0).startswith(b"HTTP/1.1 200 OK")
    finally:
        for sock in held:
            sock.close()
    assert "osmand port full" in gateway.log()


def test_a_connection_that_never_logs_in_is_closed_at_the_login_deadline(gateway):
    before = metric(gateway, "gateway_connections_closed_total", protocol="jt808", reason="login_timeout")
    with connect_from("127.0.0.8", gateway.ports["jt808"]) as sock:
        opened = time.monotonic()
        assert closed_by_peer(sock, LOGIN_TIMEOUT_S + 10) == b""
        waited = time.monotonic() - opened
    assert waited >= LOGIN_TIMEOUT_S / 2  # the deadline, not at once; and not the 10-minute idle timeout
    wait_for(
        lambda: (
            metric(gateway, "gateway_connections_closed_total", protocol="jt808", reason="login_timeout") == before + 1
        )
    )


def test_a_slow_osmand_sender_is_closed_at_the_request_deadline_whatever_it_trickles(gateway):
    terminal = tf.terminal(protocol="osmand", bound=False)
    request = f"GET /?id={terminal.imei}&lat=39.8826&lon=117.739 HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    with connect_from("127.0.0.9", gateway.ports["osmand"]) as sock:
        opened = time.monotonic()
        reply = b""
        sent = 0
        while sent < len(request) and time.monotonic() - opened < REQUEST_TIMEOUT_S + 10:
            try:
                sock.sendall(request[sent : sent + 1])  # a byte every half second
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
            readable, _, _ = select.select([sock], [], [], 0.5)
            if readable:
                reply = closed_by_peer(sock, 3.0)
                break
    assert reply.startswith(b"HTTP/1.1 408 Request Timeout")
    assert b"Connection: close" in reply
    assert sent < len(request)
    assert not Ping.objects.filter(terminal=terminal).exists()
    assert metric(gateway, "gateway_connections_closed_total", protocol="osmand", reason="request_timeout") >= 1


def test_ten_thousand_alarm_names_are_stored_normalised_and_bounded_without_holding_up_another_ack(gateway):
    phone = tf.terminal(protocol="osmand", bound=False)
    tracker = tf.terminal(protocol="gt06")
    dropped_before = metric(gateway, "gateway_alarms_dropped_total")
    known = ["powerCut", "fallDown", "vibration", "overspeed", "lowBattery", "lowPower", "tampering", "collision"]
    names = ["sos", "x\x00y", "A" * 500, *known]
    names += [f"name{i}" for i in range(10_000 - len(names))]
    stamp = int(location(120).time.timestamp())
    body = urlencode(
        {"id": phone.imei, "lat": "39.8826", "lon": "117.739", "timestamp": stamp, "alarm": ",".join(names)}
    )
    replies: dict[str, bytes] = {}

    def phone_sends() -> None:
        with connect_from("127.0.0.10", gateway.ports["osmand"]) as sock:
            sock.sendall(
                f"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}".encode()
            )
            replies["osmand"] = closed_by_peer(sock, 10)

    with connect(gateway.ports["gt06"]) as sock:
        sock.sendall(gt06.encode_login(tracker.imei, 1))
        assert recv_exact(sock, 10) == gt06.login_ack(1)
        sender = threading.Thread(target=phone_sends)
        sender.start()
        sock.sendall(gt06.encode_location(location(90), 2))
        assert recv_exact(sock, 10) == gt06.ack(0x12, 2)  # within the socket's 5 s
        sender.join(10)
    assert replies["osmand"].startswith(b"HTTP/1.1 200 OK")

    # The first eight kinds in the order sent; the unknown names are one `other` keeping their text.
    expected = ["sos", OTHER_ALARM, "power_cut", "fall", "vibration", "overspeed", "low_battery", "low_power"]
    ping = Ping.objects.get(terminal=phone)
    assert ping.alarms == expected
    alarms = {alarm.kind: alarm for alarm in Alarm.objects.filter(terminal=phone)}
    assert sorted(alarms) == sorted(expected)
    note = alarms[OTHER_ALARM].note
    assert note.startswith("x?y, aaaa") and len(note) <= 200
    assert Ping.objects.filter(terminal=tracker).count() == 1
    # Dropped: the names the decoder did not read and the two known ones past the eighth kind.
    dropped = 10_000 - osmand.MAX_ALARM_NAMES + 2
    wait_for(lambda: metric(gateway, "gateway_alarms_dropped_total") == dropped_before + dropped)


def test_failed_logins_over_the_limit_block_the_address_and_not_another(gateway):
    known = tf.terminal(protocol="gt06")
    port = gateway.ports["gt06"]
    before = metric(gateway, "gateway_login_failures_total", protocol="gt06")
    for serial in range(FAILURES_ALLOWED + 1):
        with connect_from("127.0.0.11", port) as sock:
            sock.sendall(gt06.encode_login(tf.imei(), serial + 1))
            with contextlib.suppress(OSError, AssertionError):
                recv_exact(sock, 10)
    wait_for(lambda: metric(gateway, "gateway_login_failures_total", protocol="gt06") == before + FAILURES_ALLOWED + 1)
    with connect_from("127.0.0.11", port) as sock:  # blocked: even a known terminal is not answered
        with contextlib.suppress(OSError):
            sock.sendall(gt06.encode_login(known.imei, 1))
        assert closed_by_peer(sock, 3.0) == b""
    assert metric(gateway, "gateway_connections_refused_total", protocol="gt06", reason="login_failures") >= 1
    assert "127.0.0.11: 6 failed logins within a minute" in gateway.log()

    with connect_from("127.0.0.12", port) as sock:  # another address logs in
        sock.sendall(gt06.encode_login(known.imei, 1))
        assert recv_exact(sock, 10) == gt06.login_ack(1)


def test_alarm_names_read_into_our_vocabulary():
    read = alarm_kinds(("powerCut", "fall_down", "sos", "sos", "sighting", "offline", "alarm_0x3f"))
    # Traccar's names and aliases become ours; the kinds the system derives are no terminal's to raise.
    assert read.kinds == ("power_cut", "fall", "sos", OTHER_ALARM)
    assert read.note == "sighting, offline, alarm_0x3f"
    assert {"sighting", "offline", "displacement"}.isdisjoint(TERMINAL_ALARMS)
    capped = alarm_kinds(("sos", "vibration", "movement"), limit=2)
    assert (capped.kinds, capped.dropped) == (("sos", "vibration"), 1)
    assert all(len(kind) <= 40 for kind in TERMINAL_ALARMS)
    # OsmAnd: every `alarm` parameter, comma-joined names as Traccar writes them, at most 32 read.
    fix = osmand.decode_query("id=1&lat=1&lon=2&alarm=sos,powerCut&alarm=fallDown").fixes[0]
    assert (fix.alarms, fix.extras) == (("sos", "power_cut", "fall_down"), {})
    many = osmand.decode_query("id=1&lat=1&lon=2&alarm=" + ",".join(["sos"] * 100)).fixes[0]
    assert (len(many.alarms), many.extras["alarms_unread"]) == (osmand.MAX_ALARM_NAMES, 100 - osmand.MAX_ALARM_NAMES)


def test_the_framers_hold_at_most_one_frame_whatever_they_are_fed():
    """A megabyte of frame starts that never complete: what a connection holds stays under a frame."""
    gt06_start = b"\x79\x79\x0f\xf0" + bytes(996)  # announces a 4,086-byte frame, again and again
    for framer, first, rest in (
        (Gt06Framer(4096), gt06_start, gt06_start),
        (Jt808Framer(2100), b"\x7e" + b"\x01" * 999, b"\x01" * 1000),  # an opening flag, never a closing one
    ):
        framer.feed(first)
        for _ in range(1000):
            framer.feed(rest)
            assert framer.pending <= framer.max_frame
        assert framer.errors >= 1


def test_addresses_count_as_one_subscriber_and_caps_fit_the_descriptors():
    # An IPv6 subscriber is given a /64 and may use any address in it; IPv4 behind IPv6 is IPv4.
    assert address_key("2001:db8:1:2::17") == address_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::17") != address_key("2001:db8:1:2::17")
    assert address_key("::ffff:198.51.100.7") == "198.51.100.7"
    assert fit_port_cap(100_000, 3, 1_048_576) == 100_000
    assert fit_port_cap(100_000, 3, 4096) == (4096 - 512) // 3
