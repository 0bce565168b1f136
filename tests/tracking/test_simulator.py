"""The terminal simulator: plausible routes, and a small fleet of each protocol against a real gateway."""

import asyncio
import random

import pytest
from django.core.management import call_command

from tests.tracking import factories as tf
from tests.tracking.test_gateway import GatewayProcess, database_url
from tracking.models import Ping, Terminal
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


def test_a_jt808_fleet_registers_authenticates_and_is_acked(gateway):
    terminals = [tf.terminal(protocol="jt808", bound=False) for _ in range(3)]
    stats = _fleet("jt808", [SimTerminal(t.imei, t.phone) for t in terminals], gateway.ports["jt808"])
    assert (stats.logged_in, stats.refused) == (3, 0)
    assert stats.acked == stats.sent >= 6
    assert Ping.objects.filter(terminal_id__in=[t.pk for t in terminals]).count() == stats.sent


def test_unregistered_terminals_are_refused(gateway):
    stats = _fleet("gt06", [SimTerminal(tf.imei(990201))], gateway.ports["gt06"])
    assert (stats.logged_in, stats.refused, stats.sent) == (0, 1, 0)


def test_the_command_creates_terminals_and_prints_totals(gateway, capsys):
    call_command(
        "simulate_terminals",
        protocol="jt808",
        terminals=2,
        interval=1,
        duration=2,
        port=gateway.ports["jt808"],
        create=True,
        seed=1,
    )
    out = capsys.readouterr().out
    assert "logged in 2" in out and "positions sent 4, acked 4 (0 unacked)" in out
    assert Terminal.objects.filter(protocol="jt808", imei__startswith="35861800").count() == 2


def _fleet(protocol, terminals, port):
    return asyncio.run(
        run_fleet(protocol, terminals, host="127.0.0.1", port=port, interval=1, duration=2.2, ack_wait=5, seed=3)
    )
