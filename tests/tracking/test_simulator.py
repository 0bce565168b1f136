"""The terminal simulator: plausible routes, and a small fleet of each protocol against a real gateway."""

import asyncio
import json
import random

import pytest
from django.core.management import call_command

from tests.tracking import factories as tf
from tests.tracking.test_gateway import GatewayProcess, database_url
from tracking.models import Alarm, Ping, Terminal
from tracking.simulator import YUTIAN, Route, SimTerminal, distance_m, run_fleet

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(scope="module")
def gateway(django_db_setup, django_db_blocker):
    process = GatewayProcess(database_url())
    try:
        yield process
    finally:
        process.stop()


@pytest.mark.django_db(transaction=False)
def test_routes_stay_around_yutian_at_e_bike_speeds():
    route = Route(random.Random(7), radius_km=5)
    previous = (route.lat, route.lon)
    for _ in range(2000):
        lat, lon, speed, course = route.step(10)
        assert 0 <= speed <= 25 and 0 <= course < 360
        assert distance_m(*previous, lat, lon) <= 25 / 3.6 * 10 + 0.5  # never faster than 25 km/h
        assert distance_m(lat, lon, *YUTIAN) < 5000 + 300
        previous = (lat, lon)


def test_a_gt06_fleet_logs_in_and_every_position_is_acked_and_stored(gateway):
    terminals = [tf.terminal(protocol="gt06", bound=False) for _ in range(3)]
    stats = _fleet("gt06", [SimTerminal(t.imei) for t in terminals], gateway.ports["gt06"])
    assert (stats.logged_in, stats.refused, stats.errors) == (3, 0, 0)
    assert stats.sent >= 6 and stats.acked == stats.sent
    assert Ping.objects.filter(terminal_id__in=[t.pk for t in terminals]).count() == stats.sent
    assert 0 < stats.percentile(50) <= stats.percentile(99)


def test_a_jt808_fleet_registers_once_then_authenticates_with_the_codes_it_kept(gateway):
    terminals = [tf.terminal(protocol="jt808", bound=False) for _ in range(3)]
    codes: dict[str, str] = {}
    fleet = [SimTerminal(t.imei, t.phone) for t in terminals]
    stats = _fleet("jt808", fleet, gateway.ports["jt808"], on_code=lambda t, code: codes.update({t.phone: code}))
    assert (stats.logged_in, stats.refused) == (3, 0)
    assert stats.acked == stats.sent >= 6
    assert Ping.objects.filter(terminal_id__in=[t.pk for t in terminals]).count() == stats.sent
    assert sorted(codes) == sorted(t.phone for t in terminals)

    # The next run: each terminal authenticates with its code, no register (a second one is refused).
    again = _fleet("jt808", [SimTerminal(t.imei, t.phone, codes[t.phone]) for t in terminals], gateway.ports["jt808"])
    assert (again.logged_in, again.refused) == (3, 0) and again.acked == again.sent
    assert not Alarm.objects.filter(kind="terminal_conflict", terminal__in=terminals).exists()


def test_unregistered_terminals_are_never_acknowledged(gateway):
    # A GT06 stranger's login is answered as any (no enumeration); nothing after it is.
    stats = _fleet("gt06", [SimTerminal(tf.imei(990201))], gateway.ports["gt06"], ack_wait=1)
    assert (stats.logged_in, stats.acked) == (1, 0) and stats.sent >= 2
    jt808 = _fleet("jt808", [SimTerminal(tf.imei(990202), "014599990000")], gateway.ports["jt808"])
    assert (jt808.logged_in, jt808.refused, jt808.sent) == (0, 1, 0)


def test_the_command_creates_terminals_prints_totals_and_keeps_their_codes(gateway, capsys, tmp_path):
    codes = tmp_path / "codes.json"
    options = {"protocol": "jt808", "terminals": 2, "interval": 1, "duration": 2, "seed": 1, "codes": str(codes)}
    call_command("simulate_terminals", port=gateway.ports["jt808"], create=True, **options)
    out = capsys.readouterr().out
    assert "logged in 2" in out and "positions sent 4, acked 4 (0 unacked)" in out
    assert Terminal.objects.filter(protocol="jt808", imei__startswith="35861800").count() == 2
    assert len(json.loads(codes.read_text())) == 2 and codes.stat().st_mode & 0o077 == 0

    call_command("simulate_terminals", port=gateway.ports["jt808"], **options)  # the same two, with their codes
    assert "logged in 2" in capsys.readouterr().out


def _fleet(protocol, terminals, port, **options):
    options = {"interval": 1, "duration": 2.2, "ack_wait": 5, "seed": 3} | options
    return asyncio.run(run_fleet(protocol, terminals, host="127.0.0.1", port=port, **options))
