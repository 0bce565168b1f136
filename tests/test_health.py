"""/healthz and /metrics as an operator sees them (issue 19, point 6; README "Operations" > "What to watch").

/healthz answers 503 only when this node cannot serve (its database unreachable or read-only, Redis
down); everything else is a part of its body and, when it needs a look, a warning with status 200.
/metrics is for the Prometheus scraper only. Run on this machine's own cluster: a primary without a
standby, no backups configured; tests/ops/test_health_standby.py covers a primary with a standby.
"""

import datetime
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from ebike_registry import backup_status as backup_module
from ebike_registry.health import clock_sync_state
from ebike_registry.kernel_clock import kernel_clock_state, read_timex
from tests.tracking import factories as tf
from tracking import tasks
from tracking.derived import Batch
from tracking.ingest import Incoming, ingest_fixes
from tracking.models import GatewayNode, IngestOutbox

pytestmark = pytest.mark.django_db

POISONED: set[int] = set()


def poison(batch: Batch) -> None:
    bad = POISONED & set(batch.terminal_ids)
    if bad:
        raise ValueError(f"cannot handle terminal {min(bad)}")


def not_the_clock(warnings: list[str]) -> list[str]:
    """The warnings that do not depend on the host running the tests (its clock may be unsynchronised)."""
    return [line for line in warnings if not line.startswith("clock:")]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends: nothing listens there


@pytest.fixture(autouse=True)
def fresh_backup_status():
    cache.delete(backup_module.CACHE_KEY)
    yield
    cache.delete(backup_module.CACHE_KEY)


@pytest.fixture(autouse=True)
def operator(settings):
    """The test client (127.0.0.1) is the operators' network: /healthz shows it every part."""
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.METRICS_TOKEN = ""


def test_anyone_else_gets_the_two_checks_only(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    settings.METRICS_TOKEN = "scrape-secret-7f3a"
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    # No servers, roles, node names or backup labels for whoever polls it, and no queries run for them.
    assert sorted(body) == ["checks", "status"] and body["status"] == "ok"
    assert body["checks"]["database"].startswith("ok (PostGIS 3") and body["checks"]["redis"] == "ok"
    detailed = client.get("/healthz", HTTP_AUTHORIZATION="Bearer scrape-secret-7f3a").json()
    assert detailed["database"]["role"] == "primary" and "gateway" in detailed


def test_the_body_on_this_machines_cluster_a_primary_without_standby(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"]["database"].startswith("ok (PostGIS 3") and body["checks"]["redis"] == "ok"
    assert not_the_clock(body["warnings"]) == []
    assert body["status"] == ("warn" if body["warnings"] else "ok")
    assert body["database"]["role"] == "primary"
    assert body["database"]["server"].endswith(":5432")
    # Read as the monitoring role scripts/db.sh creates (a member of pg_read_all_stats).
    assert body["replication"] == {
        "synchronous_standby_names": "",
        "standbys": [],
        "read_as": "ebike_monitor",
        "standby_alarm": None,
    }
    assert body["backup"]["enabled"] is False and body["backup"]["archive"]["mode"] == "off"
    assert body["outbox"] == {"pending": 0, "retrying": 0, "dead": 0, "oldest_pending_age_s": None}
    assert body["gateway"] == {"alive": 0, "expired": 0, "nodes": []}
    assert body["clock"]["synchronized"] in {"yes", "no", "unknown"}
    assert body["took_ms"] < 3000


def test_a_dead_outbox_row_shows_in_the_backlog_and_as_a_warning(client, settings):
    settings.INGEST_HANDLERS = ["tracking.derived.stolen_bike_sightings", "tests.test_health.poison"]
    settings.OUTBOX_MAX_ATTEMPTS = 1
    bad, good = tf.terminal(), tf.terminal()
    POISONED.add(bad.pk)
    try:
        ingest_fixes([Incoming(bad.pk, tf.fix(0)), Incoming(good.pk, tf.fix(0))])
        tasks.process_outbox()
    finally:
        POISONED.clear()
    assert IngestOutbox.objects.filter(dead_at__isnull=False).count() == 1

    response = client.get("/healthz")
    assert response.status_code == 200  # a dead row is for an operator, not a reason to stop serving
    body = response.json()
    assert body["outbox"]["dead"] == 1 and body["outbox"]["pending"] == 0
    assert body["status"] == "warn"
    assert "outbox: 1 dead row(s): see the admin's outbox list, fix, then manage.py outbox_rerun" in body["warnings"]


def test_an_old_waiting_outbox_row_is_a_warning_with_its_age(client, settings):
    settings.HEALTH_OUTBOX_AGE_WARN_S = 60
    terminal = tf.terminal()
    ingest_fixes([Incoming(terminal.pk, tf.fix(0))])
    IngestOutbox.objects.update(created_at=timezone.now() - datetime.timedelta(minutes=10))
    body = client.get("/healthz").json()
    assert body["outbox"]["pending"] == 1 and 599 < body["outbox"]["oldest_pending_age_s"] < 700
    assert any(line.startswith("outbox: oldest waiting row is 6") for line in body["warnings"])


def test_a_stale_backup_is_a_warning_not_a_503(client, settings, tmp_path):
    stopped = time.time() - 3 * 24 * 3600
    status_file = tmp_path / "backup-status.json"
    status_file.write_text(
        json.dumps(
            {
                "written_at": stopped,
                "stanzas": [
                    {
                        "backup": [
                            {
                                "label": "20261203-020000F",
                                "type": "full",
                                "timestamp": {"start": stopped - 60, "stop": stopped},
                                "files_archive": True,
                            }
                        ],
                        "archive": [{"max": "000000010000000000000009"}],
                    }
                ],
            }
        )
    )
    settings.BACKUP_ENABLED = True
    settings.BACKUP_STATUS_FILE = status_file
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "warn"
    assert body["backup"]["backup"]["label"] == "20261203-020000F"
    assert 3 * 24 * 3600 - 5 < body["backup"]["backup"]["age_seconds"] < 3 * 24 * 3600 + 60
    assert "backup: newest backup 20261203-020000F is 72.0 h old (limit 26 h)" in body["warnings"]
    # This cluster archives nothing: with backups on, that is said too.
    assert any("archive_mode is off" in line for line in body["warnings"])


def test_each_gateway_node_with_its_lease_an_expired_one_a_warning(client, settings):
    settings.GATEWAY_LEASE_S = 90.0
    now = timezone.now()
    GatewayNode.objects.create(
        node="gw-a:101", started_at=now - datetime.timedelta(hours=1), lease_until=now + datetime.timedelta(seconds=80)
    )
    GatewayNode.objects.create(
        node="gw-b:202", started_at=now - datetime.timedelta(hours=2), lease_until=now - datetime.timedelta(seconds=30)
    )
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    gateway = body["gateway"]
    assert (gateway["alive"], gateway["expired"]) == (1, 1)
    alive, dead = gateway["nodes"]
    assert (alive["node"], alive["alive"], dead["node"], dead["alive"]) == ("gw-a:101", True, "gw-b:202", False)
    assert 5 < alive["last_renewal_age_s"] < 15  # renewed 10 s ago: 90 s lease, 80 s left
    assert 115 < dead["last_renewal_age_s"] < 125
    assert [line for line in body["warnings"] if line.startswith("gateway:")] == [
        f"gateway: node gw-b:202 lease expired at {dead['lease_until'][:19]}+00:00: it stopped renewing"
    ]


def test_no_live_gateway_node_while_terminals_are_fitted_is_a_warning_not_a_503(client, settings):
    settings.GATEWAY_LEASE_S = 90.0
    tf.terminal()
    tf.terminal()
    tf.terminal(bound=False)  # in stock, not fitted: it reports through nobody
    down = "gateway: no node holds a lease while 2 terminal(s) are fitted to bikes: no gateway is receiving"

    response = client.get("/healthz")  # the gateway never started
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "warn" and body["gateway"] == {"alive": 0, "expired": 0, "nodes": []}
    assert [line for line in body["warnings"] if line.startswith(down)] != []

    now = timezone.now()  # the only node died: both are said
    GatewayNode.objects.create(
        node="gw-a:101", started_at=now - datetime.timedelta(hours=1), lease_until=now - datetime.timedelta(seconds=5)
    )
    warnings = [line for line in client.get("/healthz").json()["warnings"] if line.startswith("gateway:")]
    assert len(warnings) == 2 and warnings[0].startswith("gateway: node gw-a:101 lease expired")
    assert warnings[1].startswith(down)

    GatewayNode.objects.create(node="gw-b:202", started_at=now, lease_until=now + datetime.timedelta(seconds=80))
    warnings = [line for line in client.get("/healthz").json()["warnings"] if line.startswith("gateway:")]
    assert len(warnings) == 1 and "gw-a:101" in warnings[0]  # one node takes positions again


def test_redis_down_is_a_503_and_the_other_parts_still_answer(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error" and body["checks"]["redis"].startswith("error")
    assert body["checks"]["database"].startswith("ok")
    assert body["database"]["role"] == "primary" and body["outbox"]["dead"] == 0


def test_without_the_monitoring_role_replication_is_read_as_this_process_and_says_why(client, settings):
    settings.HEALTH_DATABASE_URL = f"postgresql://ebike_monitor:ebike_monitor@127.0.0.1:{closed_port()}/ebike"
    settings.STANDBY_ENABLED = True  # a standby is expected: that it cannot be seen is said
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    replication = body["replication"]
    assert replication["read_as"] == connection.settings_dict["USER"] and replication["standbys"] == []
    assert replication["monitor_error"].startswith("HEALTH_DATABASE_URL: ")
    assert any(
        line.startswith("replication: 0 standby connection(s) seen, details hidden") for line in body["warnings"]
    )


def test_a_read_only_database_is_a_503(client):
    with connection.cursor() as cursor:  # for the rest of the test's transaction
        cursor.execute("SELECT set_config('default_transaction_read_only', 'on', true)")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "error: read-only (default_transaction_read_only is on)"


def test_a_part_stuck_on_a_lock_is_cut_off_and_reported_not_a_500(client, settings):
    """Another session holds the gateway nodes' table: that part times out, the rest answer."""
    settings.HEALTH_STATEMENT_TIMEOUT_MS = 300
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    holder = psycopg.connect(**params, autocommit=False)
    try:
        holder.execute("LOCK TABLE tracking_gatewaynode IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        response = client.get("/healthz")
        took = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    assert response.status_code == 200 and took < 3
    body = response.json()
    assert "statement timeout" in body["gateway"]["error"]
    assert any(line.startswith("gateway: cannot read:") for line in body["warnings"])
    assert body["outbox"]["dead"] == 0  # the next part ran on a usable connection


def test_the_clock_from_timedatectl_else_chronyc_else_unknown_and_never_waits_long():
    say = lambda text: ["sh", "-c", f"printf '{text}'"]  # noqa: E731
    assert clock_sync_state(say("yes\\n"), say(""))["synchronized"] == "yes"
    assert clock_sync_state(say("no\\n"), say(""))["synchronized"] == "no"
    chrony = (
        "Reference ID    : C0A80001 (ntp)\\n"
        "System time     : 0.000012 seconds fast of NTP time\\n"
        "Leap status     : Normal\\n"
    )
    assert clock_sync_state(["false"], say(chrony)) == {
        "synchronized": "yes",
        "source": "chronyc",
        "offset": "0.000012 seconds fast of NTP time",
    }
    unsynced = "Leap status     : Not synchronised\\n"
    assert clock_sync_state(["false"], say(unsynced))["synchronized"] == "no"
    started = time.monotonic()
    state = clock_sync_state(["sleep", "30"], ["/nonexistent/chronyc"], kernel=lambda: None)
    assert state == {"synchronized": "unknown", "source": None}
    assert time.monotonic() - started < 2.5


def test_without_any_tool_the_clock_is_the_kernels_own_state_as_timedatectl_reads_it():
    # A container has neither timedatectl nor chronyc: the kernel (the host's) still answers.
    state = clock_sync_state(["/nonexistent/timedatectl"], ["/nonexistent/chronyc"])
    assert state["source"] == "kernel" and state["synchronized"] in {"yes", "no"}
    assert 0 <= state["max_error_ms"] <= 16000  # the kernel's ceiling, where it sits unsynchronised
    assert (state["synchronized"] == "yes") == (state["max_error_ms"] < 16000)
    # The struct is read as the kernel lays it out: its clock and tick where adjtimex(2) puts them.
    timex = read_timex()
    assert timex is not None and abs(timex.time.tv_sec - time.time()) < 5
    assert timex.tick == 1_000_000 // os.sysconf("SC_CLK_TCK")  # microseconds per tick
    # Synchronised below the 16 s ceiling, as systemd-timedated judges it.
    assert kernel_clock_state(max_error_us=15_999_999, estimated_error_us=250)["synchronized"] == "yes"
    unsynced = kernel_clock_state(max_error_us=16_000_000, estimated_error_us=16_000_000)
    assert unsynced == {
        "synchronized": "no",
        "source": "kernel",
        "max_error_ms": 16000.0,
        "estimated_error_ms": 16000.0,
    }


# --- /metrics -----------------------------------------------------------------------------------------


def test_metrics_refuse_outsiders(client, settings):
    settings.METRICS_TOKEN = "scrape-secret-7f3a"
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    assert client.get("/metrics").status_code == 403  # 127.0.0.1, no token
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic scrape-secret-7f3a").status_code == 403
    # A forged X-Forwarded-For counts for nothing without a trusted proxy in front.
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.20.1.1").status_code == 403
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = []
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403  # nothing set: nobody


def test_metrics_serve_the_allowed_with_requests_and_operations(client, settings):
    settings.METRICS_TOKEN = "scrape-secret-7f3a"
    settings.METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    now = timezone.now()
    GatewayNode.objects.create(node="gw-a:101", started_at=now, lease_until=now + datetime.timedelta(seconds=60))
    client.get("/healthz")
    assert client.get("/metrics").status_code == 403
    by_token = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-7f3a")
    by_address = client.get("/metrics", REMOTE_ADDR="10.20.3.4")
    assert by_token.status_code == 200 and by_address.status_code == 200
    assert by_token["Content-Type"].startswith("text/plain; version=0.0.4")
    lines = by_address.content.decode().splitlines()
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines if not line.startswith("#")}
    assert values['ebike_web_requests_total{method="GET",status="200",view="healthz"}'] >= 1
    assert values['ebike_web_requests_total{method="GET",status="403",view="metrics"}'] >= 1  # refusals too
    assert values['ebike_web_request_duration_seconds_count{method="GET",view="healthz"}'] >= 1
    assert values["ebike_health_serving"] == 1 and values["ebike_database_primary"] == 1
    assert values["ebike_outbox_dead"] == 0 and values["ebike_outbox_oldest_pending_age_seconds"] == 0
    assert values['ebike_gateway_nodes{state="alive"}'] == 1 and values['ebike_gateway_nodes{state="expired"}'] == 0
    assert values["ebike_backup_enabled"] == 0
    assert not any(name.startswith("ebike_health_part_error{") for name in values)


def test_metrics_count_dead_rows_and_the_oldest_age(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    terminal = tf.terminal()
    ingest_fixes([Incoming(terminal.pk, tf.fix(0))])
    ingest_fixes([Incoming(terminal.pk, tf.fix(30))])
    first, second = IngestOutbox.objects.order_by("id")
    IngestOutbox.objects.filter(pk=first.pk).update(dead_at=timezone.now(), last_error="boom", attempts=8)
    IngestOutbox.objects.filter(pk=second.pk).update(created_at=timezone.now() - datetime.timedelta(seconds=120))
    text = client.get("/metrics").content.decode()
    assert "\nebike_outbox_dead 1.0\n" in text and "\nebike_outbox_pending 1.0\n" in text
    age = float(text.split("\nebike_outbox_oldest_pending_age_seconds ")[1].split("\n")[0])
    assert 119 < age < 180


def test_under_gunicorn_every_scrape_adds_up_every_workers_requests(tmp_path):
    """Two gunicorn workers, as scripts/run.sh starts the web: whichever worker answers the scrape,
    it counts the requests both answered (PROMETHEUS_MULTIPROC_DIR)."""
    port = closed_port()
    metrics_dir = tmp_path / "prometheus-web"
    metrics_dir.mkdir()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "METRICS_ALLOWED_NETWORKS": "127.0.0.1/32",
        "DJANGO_SETTINGS_MODULE": "ebike_registry.settings",
    }
    env.pop("TEST_DATABASE_NAME", None)
    web = subprocess.Popen(  # noqa: S603 (our own application)
        [str(Path(sys.executable).with_name("gunicorn")), "ebike_registry.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", "2", "--no-control-socket"],
        cwd=Path(__file__).resolve().parents[1], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=5)  # noqa: S310 (our own server)
                break
            except OSError:
                assert web.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        # Spread over both workers for certain (the kernel may hand every accept to one): a request
        # left half-sent holds one sync worker, the other answers 18, then the first finishes its.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as held:
            held.sendall(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n")
            time.sleep(0.5)  # accepted by a worker, which now waits for the rest
            for _ in range(18):  # 20 with the probe that answered above and the held one
                urllib.request.urlopen(f"{base}/healthz", timeout=5)  # noqa: S310
            held.sendall(b"\r\n")
            answer = b""
            while chunk := held.recv(4096):  # HTTP/1.0: the worker closes when done
                answer += chunk
        assert answer.split(b" ", 2)[1] == b"200", answer[:200]
        marker = 'ebike_web_requests_total{method="GET",status="200",view="healthz"} '
        for _ in range(6):  # each scrape may land on either worker
            with urllib.request.urlopen(f"{base}/metrics", timeout=10) as answer:  # noqa: S310
                text = answer.read().decode()
            assert float(text.split(marker)[1].split("\n")[0]) == 20
    finally:
        web.terminate()
        web.wait(timeout=20)
    assert len(list(metrics_dir.glob("counter_*.db"))) >= 2  # both workers wrote their counters
