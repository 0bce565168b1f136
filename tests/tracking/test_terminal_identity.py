"""Terminals that cannot be impersonated, end to end against `run_gateway`: the JT/T 808 auth code
is issued once (at the first register matching the fitting) and kept as a digest; a forged or second
register is refused without a code and raises a `terminal_conflict` alarm; a clerk's reset lets the
next register get a new code; strangers learn no more than the protocol forces (a GT06 login ack
alike for known and unknown IMEIs, nothing acknowledged after it); an OsmAnd key, when set, is
required and its absence answered as an unknown id is.
"""

import json
import struct

import pytest

from tests import factories
from tests.tracking import factories as tf
from tests.tracking.gateway_harness import GatewayProcess, closed_by_peer, connect, database_url, recv_exact
from tests.tracking.test_gateway import Jt808Replies, http, yutian_fix
from tracking.gateway.terminals import secret_digest
from tracking.models import Alarm, IngestOutbox, Ping, Terminal
from tracking.protocols import gt06, jt808
from tracking.services import terminal_auth_code_reset, terminal_osmand_key_issue

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

LOGIN_TIMEOUT_S = 2


@pytest.fixture(scope="module")
def gateway(django_db_setup, django_db_blocker):
    process = GatewayProcess(database_url(), GATEWAY_LOGIN_TIMEOUT_S=str(LOGIN_TIMEOUT_S))
    try:
        yield process
    finally:
        process.stop()


def register(sock, replies, terminal, *, serial=1, **fields):
    """Send a 0x0100 register for `terminal` (its fitting's terminal ID unless told); (result, code)."""
    fields.setdefault("device_id", terminal.imei[-7:])
    sock.sendall(jt808.encode_register(phone=jt808.phone_bytes(terminal.phone), serial=serial, **fields))
    header, body, _ = replies.next()
    assert header.msg_id == jt808.REGISTER_RESPONSE
    return body[2], body[3:].decode()


def authenticate(sock, replies, terminal, code, *, serial=2) -> int:
    sock.sendall(jt808.encode_auth(code, phone=jt808.phone_bytes(terminal.phone), serial=serial))
    _header, body, _ = replies.next()
    reply_serial, msg_id, result = struct.unpack_from(">HHB", body)
    assert (reply_serial, msg_id) == (serial, jt808.AUTH)
    return result


def report(sock, replies, terminal, seconds: int, *, serial: int) -> int:
    sock.sendall(jt808.encode_location(yutian_fix(seconds), phone=jt808.phone_bytes(terminal.phone), serial=serial))
    _header, body, _ = replies.next()
    return struct.unpack_from(">HHB", body)[2]


def conflicts(terminal) -> list[str]:
    return list(
        Alarm.objects.filter(terminal=terminal, kind="terminal_conflict").order_by("at").values_list("note", flat=True)
    )


# --- JT/T 808: one code, once -------------------------------------------------------------------------


def test_the_first_register_after_fitting_gets_a_code_that_authenticates_now_and_after_a_reconnect(gateway):
    terminal = tf.terminal(protocol="jt808")
    with connect(gateway.ports["jt808"]) as sock:
        replies = Jt808Replies(sock)
        result, code = register(sock, replies, terminal)
        assert result == jt808.REGISTER_OK and len(code) == 16
        assert authenticate(sock, replies, terminal, code) == jt808.RESULT_OK
        assert report(sock, replies, terminal, 0, serial=3) == jt808.RESULT_OK
    terminal.refresh_from_db()
    # Only the digest is kept: a reader of the table cannot replay the code.
    assert terminal.auth_code_digest == secret_digest(code) and code not in terminal.auth_code_digest
    assert terminal.auth_code_issued_at is not None

    with connect(gateway.ports["jt808"]) as sock:  # as a real terminal: no register, the kept code
        replies = Jt808Replies(sock)
        assert authenticate(sock, replies, terminal, code, serial=1) == jt808.RESULT_OK
        assert report(sock, replies, terminal, 30, serial=2) == jt808.RESULT_OK
    assert Ping.objects.filter(terminal_id=terminal.pk).count() == 2
    assert conflicts(terminal) == []


def test_a_register_resent_on_its_connection_gets_the_same_code(gateway):
    terminal = tf.terminal(protocol="jt808")
    with connect(gateway.ports["jt808"]) as sock:
        replies = Jt808Replies(sock)
        first = register(sock, replies, terminal, serial=1)
        again = register(sock, replies, terminal, serial=2)  # the reply was late: the terminal resent
        assert first == again and first[0] == jt808.REGISTER_OK
        assert authenticate(sock, replies, terminal, first[1], serial=3) == jt808.RESULT_OK
    assert conflicts(terminal) == []


def test_the_forged_registers_get_no_code_and_raise_an_alarm_for_the_duty_room(gateway):
    terminal = tf.terminal(protocol="jt808", maker="ZHXIN", model_code="ZX-808")
    # The issue's scenario: a register with a made-up maker for a known phone.
    with connect(gateway.ports["jt808"]) as sock:
        replies = Jt808Replies(sock)
        result, code = register(sock, replies, terminal, manufacturer="HACK1", model="ZX-808")
        assert (result, code) == (jt808.REGISTER_NO_SUCH_TERMINAL, "")  # as for an unknown phone
        assert closed_by_peer(sock) == b""
    # A terminal ID that is not the fitting's is refused alike.
    with connect(gateway.ports["jt808"]) as sock:
        replies = Jt808Replies(sock)
        assert register(sock, replies, terminal, device_id="9999999", manufacturer="ZHXIN", model="ZX-808") == (
            jt808.REGISTER_NO_SUCH_TERMINAL,
            "",
        )
    terminal.refresh_from_db()
    assert terminal.auth_code_digest == ""  # nothing was issued to the forgers

    # The genuine terminal registers, then a second register for its phone (a clone with the label).
    with connect(gateway.ports["jt808"]) as sock:
        replies = Jt808Replies(sock)
        result, code = register(sock, replies, terminal, manufacturer="ZHXIN", model="ZX-808")
        assert result == jt808.REGISTER_OK
    with connect(gateway.ports["jt808"]) as sock:
        replies = Jt808Replies(sock)
        result, second = register(sock, replies, terminal, manufacturer="ZHXIN", model="ZX-808")
        assert (result, second) == (jt808.REGISTER_TERMINAL_TAKEN, "")
        assert closed_by_peer(sock) == b""

    notes = conflicts(terminal)
    assert notes == [
        "register, maker not on record, from 127.0.0.1",
        "register, terminal ID not on record, from 127.0.0.1",
        "second register from 127.0.0.1",
    ]
    alarm = Alarm.objects.filter(terminal=terminal, kind="terminal_conflict").first()
    assert (alarm.vehicle_id, alarm.source, alarm.status) == (terminal.vehicle_id, "derived", "new")
    # Each alarm has its outbox row: the duty room's handlers see it as they see a terminal's alarms.
    assert IngestOutbox.objects.filter(terminal_ids=[terminal.pk]).count() == 3

    # The genuine terminal's code still works; the refused ones changed nothing.
    with connect(gateway.ports["jt808"]) as sock:
        replies = Jt808Replies(sock)
        assert authenticate(sock, replies, terminal, code, serial=1) == jt808.RESULT_OK


def test_after_a_clerk_reset_the_next_register_gets_a_new_code_and_the_old_one_is_refused(gateway):
    clerk = factories.user("clerk")
    terminal = tf.terminal(protocol="jt808", clerk=clerk)
    with connect(gateway.ports["jt808"]) as sock:
        old = register(sock, Jt808Replies(sock), terminal)[1]
    terminal_auth_code_reset(clerk=clerk, terminal_id=terminal.pk, reason="终端恢复出厂设置")

    with connect(gateway.ports["jt808"]) as sock:
        replies = Jt808Replies(sock)
        result, new = register(sock, replies, terminal)
        assert result == jt808.REGISTER_OK and new != old
        assert authenticate(sock, replies, terminal, new) == jt808.RESULT_OK
    with connect(gateway.ports["jt808"]) as sock:
        replies = Jt808Replies(sock)
        assert authenticate(sock, replies, terminal, old, serial=1) == jt808.RESULT_FAILURE
        assert closed_by_peer(sock) == b""
    assert conflicts(terminal) == []


def test_a_terminal_without_a_code_cannot_authenticate_with_its_phone_or_nothing(gateway):
    terminal = tf.terminal(protocol="jt808")
    for code in (terminal.phone, terminal.phone.lstrip("0"), ""):
        with connect(gateway.ports["jt808"]) as sock:
            replies = Jt808Replies(sock)
            assert authenticate(sock, replies, terminal, code, serial=1) == jt808.RESULT_FAILURE
            assert closed_by_peer(sock) == b""
    assert 'gateway_refused_total{protocol="jt808",reason="no_auth_code"}' in gateway.metrics()


# --- GT06: a stranger's login looks like anyone's -------------------------------------------------------


def test_gt06_known_and_unknown_logins_are_answered_alike_and_a_strangers_positions_never_acked(gateway):
    known = tf.terminal(protocol="gt06")
    pings_before = Ping.objects.count()
    with connect(gateway.ports["gt06"]) as mine, connect(gateway.ports["gt06"]) as stranger:
        mine.sendall(gt06.encode_login(known.imei, 7))
        stranger.sendall(gt06.encode_login(tf.imei(990301), 7))
        assert recv_exact(mine, 10) == recv_exact(stranger, 10) == gt06.login_ack(7)

        stranger.sendall(gt06.encode_location(yutian_fix(0), 8) + gt06.encode_heartbeat(9))
        mine.sendall(gt06.encode_location(yutian_fix(0), 8))
        assert recv_exact(mine, 10) == gt06.ack(0x12, 8)
        # Nothing answered to the stranger (a device fitted before its record keeps its buffer),
        # and its connection closed at the login deadline.
        assert closed_by_peer(stranger, timeout=LOGIN_TIMEOUT_S + 5) == b""
    assert Ping.objects.filter(terminal_id=known.pk).count() == 1
    assert Ping.objects.count() == pings_before + 1  # the stranger's position was not stored


# --- OsmAnd: the key --------------------------------------------------------------------------------------


def test_osmand_key_required_when_set_and_its_absence_answered_as_an_unknown_id(gateway):
    clerk = factories.user("clerk")
    keyed = tf.terminal(protocol="osmand", clerk=clerk)
    key = terminal_osmand_key_issue(clerk=clerk, terminal_id=keyed.pk, reason="车主手机")
    open_ = tf.terminal(protocol="osmand", clerk=clerk)
    stamp = int(yutian_fix(0).time.timestamp())
    where = f"timestamp={stamp}&lat=39.8826&lon=117.739"

    unknown = http(gateway, f"/?id={tf.imei(990302)}&{where}")
    assert unknown == (404, "unknown device\n")
    assert http(gateway, f"/?id={keyed.imei}&{where}") == unknown  # no key: as if unknown
    assert http(gateway, f"/?id={keyed.imei}&{where}&key=not-the-key") == unknown
    assert http(gateway, f"/?key=not-the-key&id={keyed.imei}&{where}") == unknown
    assert not Ping.objects.filter(terminal_id=keyed.pk).exists()

    # With the key in the server URL (Traccar Client keeps its query and appends its parameters).
    assert http(gateway, f"/?key={key}&id={keyed.imei}&{where}")[0] == 200
    later = yutian_fix(60).time.isoformat().replace("+00:00", "Z")
    body = {
        "device_id": keyed.imei,
        "location": {"timestamp": later, "coords": {"latitude": 39.883, "longitude": 117.74}},
    }
    assert http(gateway, f"/?key={key}", body=json.dumps(body).encode(), content_type="application/json")[0] == 200
    assert http(gateway, "/", body=json.dumps(body).encode(), content_type="application/json") == unknown
    assert Ping.objects.filter(terminal_id=keyed.pk).count() == 2

    # A terminal without a key needs none (and one sent anyway changes nothing).
    assert http(gateway, f"/?id={open_.imei}&{where}")[0] == 200
    assert http(gateway, f"/?id={open_.imei}&timestamp={stamp + 30}&lat=39.8827&lon=117.739&key=x")[0] == 200
    assert Ping.objects.filter(terminal_id=open_.pk).count() == 2
    assert Terminal.objects.get(pk=keyed.pk).osmand_key_digest == secret_digest(key)
