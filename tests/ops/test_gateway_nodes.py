"""Two gateway nodes behind a real HAProxy (deploy/haproxy, README "Gateway nodes"): simulated GT06
terminals stream positions through it from addresses of their own; a node is SIGKILLed (its whole
process group, as a dead host) or drained (SIGUSR1) mid-stream. Its terminals reconnect through
HAProxy to the other node, log in again and resend what was not acknowledged: every acknowledged
position is stored once, ingestion goes on, and the gateway sees each terminal's own address
(PROXY protocol v2), not HAProxy's.

`make drills` runs the node-kill drill GATEWAY_NODE_DRILLS=5 times (a round: kill the busier node,
measure, restart it) and prints its figures; `make test` runs one round. The figures are also
written to var/drills/gateway-node-kill.json.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.harness.gateway_nodes import ROOT, HAProxy, Node, Terminal, haproxy_binary, loopback_prefix, ports_free_on
from tests.tracking import factories as tf
from tests.tracking.gateway_harness import database_url
from tracking.models import Alarm, Ping, TerminalSession

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

RECONNECT_BOUND_S = 10.0  # every terminal of a killed node acknowledged again within this (target: ~1 s)
MARKED_DOWN_BOUND_S = 6.0  # HAProxy checks every second, two failures: ~2 s


class Site:
    """Two nodes on addresses of their own, HAProxy on a third; all on free ports; `close` ends all."""

    def __init__(self, workdir: Path, *, drain_grace_s: float = 4.0) -> None:
        if haproxy_binary() is None:
            pytest.fail("haproxy is not installed: scripts/setup.sh installs it (apt)")
        prefix = loopback_prefix()
        self.proxy_address = prefix + "1"
        self.terminal_prefix = prefix
        hosts = [prefix + "10", prefix + "11"]
        node_ports = dict(zip(("gt06", "jt808", "osmand", "metrics"), ports_free_on(hosts, 4), strict=True))
        front = dict(zip(("gt06", "jt808", "osmand", "stats"), ports_free_on([self.proxy_address], 4), strict=True))
        env = {
            "GATEWAY_PROCESSES": "1",
            "GATEWAY_PROXY_FROM": self.proxy_address,
            "GATEWAY_DRAIN_GRACE_S": str(drain_grace_s),
            "GATEWAY_LOGIN_TIMEOUT_S": "30",
        }
        self.nodes = [
            Node(f"node{number}", host, node_ports, database_url(), workdir, env)
            for number, host in enumerate(hosts, 1)
        ]
        self.haproxy: HAProxy | None = None
        try:
            for node in self.nodes:
                node.start()
            for node in self.nodes:
                node.wait_ready()
            self.haproxy = HAProxy(
                listen=self.proxy_address, source=self.proxy_address, nodes=self.nodes, ports=front, workdir=workdir
            )
            for node in self.nodes:
                self.haproxy.wait_status(node.name, "UP")
        except BaseException:
            self.close()
            raise
        self.target = (self.proxy_address, front["gt06"])

    def connections(self) -> dict[str, int]:
        """Node name -> terminal connections HAProxy holds to it now."""
        assert self.haproxy is not None
        rows = self.haproxy.servers()
        return {node.name: int(rows[("gt06_nodes", node.name)]["scur"]) for node in self.nodes}

    def node_name(self, node: Node) -> str:
        """The node's name in the database (tracking.gateway.leases.node_name)."""
        return f"{socket.gethostname()}:{node.pid}"[:80]

    def logs(self) -> str:
        parts = [f"--- {node.name}\n{node.log()[-4000:]}" for node in self.nodes]
        if self.haproxy is not None:
            parts.append(f"--- haproxy\n{self.haproxy.log()[-2000:]}")
        return "\n".join(parts)

    def close(self) -> None:
        if self.haproxy is not None:
            self.haproxy.stop()
        for node in self.nodes:
            node.stop()


@pytest.fixture
def site(tmp_path):
    site = Site(tmp_path)
    yield site
    site.close()


def make_terminals(site: Site, count: int) -> list[Terminal]:
    start = datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(hours=1)
    return [
        Terminal(
            imei=tf.terminal(bound=False).imei,
            source=f"{site.terminal_prefix}{100 + number}",
            target=site.target,
            start=start,
        )
        for number in range(count)
    ]


async def streaming(terminals: list[Terminal], scenario) -> None:
    """Run `scenario()` while the terminals stream; then stop sending and wait (30 s at most) until
    every position sent was acknowledged."""
    sending, done = asyncio.Event(), asyncio.Event()
    sending.set()
    tasks = [asyncio.create_task(terminal.run(sending, done)) for terminal in terminals]
    try:
        await scenario()
    finally:
        sending.clear()
        deadline = time.monotonic() + 30
        while any(terminal.pending for terminal in terminals) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        done.set()
        await asyncio.wait(tasks, timeout=15)


async def until(condition, timeout: float, what: str) -> float:
    """Seconds until `condition()` holds; fails after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def dropped_since(terminals: list[Terminal], moment: float) -> list[Terminal]:
    """The terminals that lost their connection after `moment`."""
    return [terminal for terminal in terminals if terminal.drops and terminal.drops[-1] >= moment]


def reconnected_after(terminal: Terminal, moment: float) -> float | None:
    """Seconds from `moment` to the first acknowledgement on a connection logged in after it."""
    logins = [at for at in terminal.logins if at >= moment]
    if not logins:
        return None
    first = terminal.first_ack_after(logins[0])
    return None if first is None else first - moment


def stored_times(terminals: list[Terminal]) -> dict[str, list[datetime.datetime]]:
    """IMEI -> the device times of its stored positions (duplicates kept, if there were any)."""
    stored: dict[str, list[datetime.datetime]] = {terminal.imei: [] for terminal in terminals}
    rows = Ping.objects.filter(terminal__imei__in=list(stored)).values_list("terminal__imei", "device_time")
    for imei, device_time in rows:
        stored[imei].append(device_time)
    return stored


def acked_and_lost(terminals: list[Terminal]) -> int:
    stored = stored_times(terminals)
    return sum(len(set(terminal.acked) - set(stored[terminal.imei])) for terminal in terminals)


async def kill_round(site: Site, terminals: list[Terminal], *, spread: bool) -> tuple[dict, Node]:
    """SIGKILL the node holding the most terminals; wait until each of them is acknowledged again
    through the other node. The round's figures, and the node killed."""
    load = site.connections()
    victim = max(site.nodes, key=lambda node: load[node.name])
    survivor = next(node for node in site.nodes if node is not victim)
    if spread:  # leastconn spread the terminals: some stay where they are
        assert min(load.values()) > 0, f"HAProxy sent every terminal to one node: {load}"
    node = site.node_name(victim)
    acks_before = sum(len(terminal.acked) for terminal in terminals)
    killed_at = time.monotonic()
    victim.kill()
    marked_down = asyncio.create_task(
        asyncio.to_thread(site.haproxy.wait_status, victim.name, "DOWN", MARKED_DOWN_BOUND_S)
    )
    await until(
        lambda: len(dropped_since(terminals, killed_at)) >= load[victim.name],
        10,
        "the killed node's terminals lost their connections",
    )
    affected = dropped_since(terminals, killed_at)
    await until(
        lambda: all(reconnected_after(t, killed_at) is not None for t in affected),
        RECONNECT_BOUND_S,
        "the killed node's terminals acknowledged again through the other node",
    )
    times = sorted(reconnected_after(t, killed_at) for t in affected)
    down_s = await marked_down
    await asyncio.sleep(1.0)
    # Ingestion goes on: every terminal, moved or not, is acknowledged after the kill.
    assert all(terminal.first_ack_after(killed_at) is not None for terminal in terminals)
    assert site.connections()[survivor.name] == len(terminals)
    figure = {
        "node": node,
        "killed": victim.name,
        "terminals_moved": len(affected),
        "reconnect_ms_p50": round(statistics.median(times) * 1000),
        "reconnect_ms_max": round(times[-1] * 1000),
        "haproxy_marked_down_s": round(down_s, 2),
        "acks_before": acks_before,
    }
    return figure, victim


def test_a_killed_node_s_terminals_carry_on_through_the_other_node_and_lose_nothing_acknowledged(site):
    rounds = int(os.environ.get("GATEWAY_NODE_DRILLS", "1"))
    terminals = make_terminals(site, 10)
    by_source = {terminal.source: terminal for terminal in terminals}
    figures: list[dict] = []
    killed_nodes: set[str] = set()

    async def scenario() -> None:
        await until(lambda: all(terminal.acked for terminal in terminals), 20, "every terminal acknowledged")
        for number in range(rounds):
            await asyncio.sleep(1.0)
            figure, victim = await kill_round(site, terminals, spread=number == 0)
            killed_nodes.add(figure.pop("node"))
            figures.append({"round": number + 1, **figure})
            if number + 1 < rounds:  # back into rotation, as after a host's reboot
                victim.start()
                await asyncio.to_thread(victim.wait_ready)
                await asyncio.to_thread(site.haproxy.wait_status, victim.name, "UP", 15)

    try:
        asyncio.run(streaming(terminals, scenario))
    except AssertionError as error:
        raise AssertionError(f"{error}\n{site.logs()}") from None

    assert not any(terminal.pending for terminal in terminals), "positions still unacknowledged at the end"
    stored = stored_times(terminals)
    for terminal in terminals:
        assert len(stored[terminal.imei]) == len(set(stored[terminal.imei])), "a position stored twice"
        assert set(terminal.acked) <= set(stored[terminal.imei]), "an acknowledged position was lost"
    lost = acked_and_lost(terminals)
    assert lost == 0

    # PROXY v2: every session carries the terminal's own address, HAProxy's beside it.
    sessions = list(TerminalSession.objects.filter(terminal__imei__in=[t.imei for t in terminals]))
    assert sessions
    for session in sessions:
        assert session.via_address == site.proxy_address
        assert by_source[session.remote_address].imei == session.terminal.imei
    moved = {session.terminal_id for session in sessions if session.node in killed_nodes}
    assert moved and all(
        len({s.node for s in sessions if s.terminal_id == terminal_id}) >= 2 for terminal_id in moved
    ), "a moved terminal has no session on the surviving node"
    # A terminal reconnecting elsewhere after its node died is no cloned identity.
    assert not Alarm.objects.filter(kind="terminal_conflict", terminal__imei__in=[t.imei for t in terminals]).exists()

    acked = sum(len(terminal.acked) for terminal in terminals)
    report = {
        "drill": "gateway_node_kill",
        "rounds": rounds,
        "terminals": len(terminals),
        "pings_acked": acked,
        "pings_stored": sum(len(times) for times in stored.values()),
        "acked_and_lost": lost,
        "reconnect_ms_max": max(figure["reconnect_ms_max"] for figure in figures),
        "reconnect_ms_p50_of_rounds": round(statistics.median(figure["reconnect_ms_p50"] for figure in figures)),
        "per_round": figures,
    }
    out = ROOT / "var" / "drills"
    out.mkdir(parents=True, exist_ok=True)
    (out / "gateway-node-kill.json").write_text(json.dumps(report) + "\n")
    print(json.dumps(report))


def test_a_drained_node_takes_no_new_terminals_finishes_its_batches_and_exits(site):
    terminals = make_terminals(site, 8)
    late = make_terminals(site, 1)[0]  # connects during the drain
    late.source = f"{site.terminal_prefix}200"
    state: dict = {}

    async def scenario() -> None:
        await until(lambda: all(terminal.acked for terminal in terminals), 20, "every terminal acknowledged")
        await asyncio.sleep(0.5)
        load = site.connections()
        victim = max(site.nodes, key=lambda node: load[node.name])
        survivor = next(node for node in site.nodes if node is not victim)
        state.update(victim=victim, survivor=survivor, node=site.node_name(victim), load=load)
        drained_at = time.monotonic()
        victim.drain()
        # The health check fails at once; HAProxy takes the node out while it still serves.
        await until(lambda: victim.healthz() == (503, "draining\n"), 2, "/healthz says draining")
        assert survivor.healthz() == (200, "ok\n")
        await asyncio.to_thread(site.haproxy.wait_status, victim.name, "DOWN", MARKED_DOWN_BOUND_S)
        assert victim.alive(), "the node stopped before HAProxy took it out of rotation"
        taken = int(site.haproxy.servers()[("gt06_nodes", victim.name)]["stot"])
        # A terminal that comes now goes to the other node.
        late_sending, late_done = asyncio.Event(), asyncio.Event()
        late_sending.set()
        late_task = asyncio.create_task(late.run(late_sending, late_done))
        await until(lambda: late.acked, 10, "a terminal connecting during the drain is served")
        late_sending.clear()
        await until(lambda: not late.pending, 10, "the late terminal acknowledged")
        late_done.set()
        await late_task
        # Its own terminals are served until it closes them, then it exits cleanly.
        status = await asyncio.to_thread(victim.process.wait, 30)
        state.update(status=status, exited_after=time.monotonic() - drained_at, taken=taken, drained_at=drained_at)
        affected = state["affected"] = dropped_since(terminals, drained_at)
        assert len(affected) == load[victim.name]
        for terminal in affected:
            assert terminal.first_ack_after(drained_at + 1.0) is not None
            assert terminal.first_ack_after(drained_at + 1.0) < terminal.drops[-1], "served while draining"
        await until(
            lambda: all(reconnected_after(t, t.drops[-1]) is not None for t in affected),
            RECONNECT_BOUND_S,
            "the drained node's terminals acknowledged through the other node",
        )
        await asyncio.sleep(0.5)

    try:
        asyncio.run(streaming(terminals, scenario))
    except AssertionError as error:
        raise AssertionError(f"{error}\n{site.logs()}") from None

    victim = state["victim"]
    assert state["status"] == 0, victim.log()
    assert "gateway draining" in victim.log()
    assert int(site.haproxy.servers()[("gt06_nodes", victim.name)]["stot"]) == state["taken"], (
        "HAProxy sent a connection to the draining node after taking it out"
    )
    everyone = [*terminals, late]
    assert not any(terminal.pending for terminal in everyone)
    assert acked_and_lost(everyone) == 0
    # Its sessions ended as drained; the late terminal's session is on the other node.
    ended = TerminalSession.objects.filter(node=state["node"])
    assert ended.count() >= len(state["affected"])
    assert set(ended.values_list("end_reason", flat=True)) == {"drain"}
    late_session = TerminalSession.objects.get(terminal__imei=late.imei)
    assert late_session.node == site.node_name(state["survivor"])
    assert late_session.remote_address == late.source


@pytest.mark.django_db(transaction=False)
def test_the_compose_haproxy_configuration_is_the_rendered_template_and_haproxy_accepts_it(tmp_path):
    binary = haproxy_binary()
    if binary is None:
        pytest.fail("haproxy is not installed: scripts/setup.sh installs it (apt)")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603

    script = (sys.executable, str(ROOT / "scripts" / "haproxy_config.py"))
    compose = ROOT / "deploy" / "haproxy" / "compose.cfg"
    assert compose.read_text() == run(*script, "--compose").stdout, (
        "deploy/haproxy/compose.cfg is stale: scripts/haproxy_config.py --compose -o deploy/haproxy/compose.cfg"
    )
    nodes = tmp_path / "nodes.cfg"
    made = run(*script, "--node=10.0.3.11", "--node=10.0.3.12", f"--stats-socket={tmp_path}/admin.sock", f"-o{nodes}")
    assert made.returncode == 0, made.stderr
    for config in (compose, nodes):
        check = run(binary, "-c", "-f", str(config))
        assert check.returncode == 0, check.stdout + check.stderr
    assert "server node2 10.0.3.12:5023" in nodes.read_text()
    # Without a node there is nothing to balance: a clear error, no configuration.
    refused = run(*script)
    assert refused.returncode == 2 and "at least one --node" in refused.stderr
