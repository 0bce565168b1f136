"""GET /metrics: the web side's Prometheus text, for the scraper only (the gateway's is on its metrics port).

Requests are counted by `RequestMetricsMiddleware` in each process (added up over gunicorn's workers
through PROMETHEUS_MULTIPROC_DIR); the operations figures are read at scrape time from the same parts
as /healthz (ebike_registry.health), so the two never disagree. A part that cannot be read is
`ebike_health_part_error{part=…} 1`. Who may scrape: ebike_registry.ops_access. Each figure and its
alarm: README "Operations" > "What to watch"; docs/architecture.md#health-and-metrics.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from ebike_registry import health
from ebike_registry.ops_access import operator_allowed

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

REQUESTS = Counter(
    "ebike_web_requests",
    "Web requests answered, by view (the URL name), method and status.",
    ["view", "method", "status"],
)
LATENCY = Histogram(
    "ebike_web_request_duration_seconds",
    "Seconds from a request's arrival at the middleware to its response, by view and method.",
    ["view", "method"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}  # any other: "other"


class RequestMetricsMiddleware:
    """Counts and times every request by its view's URL name (bounded: never the path itself)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or "unnamed") if match is not None else "unresolved"
        method = request.method if request.method in KNOWN_METHODS else "other"
        REQUESTS.labels(view, method, str(response.status_code)).inc()
        LATENCY.labels(view, method).observe(time.perf_counter() - started)
        return response


def metrics(request: HttpRequest) -> HttpResponse:
    if not operator_allowed(request):
        return HttpResponse(
            "metrics are for the scraper: METRICS_ALLOWED_NETWORKS or METRICS_TOKEN\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        requests = CollectorRegistry()
        MultiProcessCollector(requests)
    else:
        requests = REGISTRY
    operations = CollectorRegistry()
    operations.register(OperationsCollector())
    return HttpResponse(generate_latest(requests) + generate_latest(operations), content_type=CONTENT_TYPE)


def _age_s(iso: str | None, now: datetime.datetime) -> float | None:
    if not iso:
        return None
    return (now - datetime.datetime.fromisoformat(iso)).total_seconds()


class OperationsCollector:
    """The /healthz parts as gauges, read at each scrape."""

    def collect(self) -> Iterator[Metric]:
        ignored: health.Warnings = []
        errors = GaugeMetricFamily(
            "ebike_health_part_error", "1 for each part that could not be read at this scrape.", labels=["part"]
        )
        checks = {"database": health.database_check(), "redis": health.redis_check()}
        serving = all(value.startswith("ok") for value in checks.values())
        yield GaugeMetricFamily(
            "ebike_health_serving", "1 while /healthz answers 200 (database writable, Redis up).", int(serving)
        )
        parts: dict[str, Callable[[health.Warnings], dict[str, Any]]] = {
            "database": health.database_role,
            "replication": health.replication,
            "backup": health.backup,
            "outbox": health.outbox,
            "gateway": health.gateway_nodes,
            "clock": health.clock,
        }
        now = datetime.datetime.now(datetime.UTC)
        for name, part in parts.items():
            result = health.run_part(name, part, ignored)
            if "error" in result:
                errors.add_metric([name], 1)
                continue
            yield from getattr(self, f"_{name}")(result, now)
        yield errors

    def _database(self, part: dict[str, Any], now: datetime.datetime) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "ebike_database_primary",
            "1 when the database this node uses is the primary.",
            int(part["role"] == "primary"),
        )

    def _replication(self, part: dict[str, Any], now: datetime.datetime) -> Iterator[Metric]:
        if "standbys" not in part:  # this node's database is a standby
            yield GaugeMetricFamily(
                "ebike_standby_replay_lag_bytes",
                "On a standby: WAL received and not yet replayed.",
                part["replay_lag_bytes"] or 0,
            )
            return
        streaming = GaugeMetricFamily(
            "ebike_replication_standbys", "Standby connections by state and sync_state.", labels=["state", "sync_state"]
        )
        counts: dict[tuple[str, str], int] = {}
        lag_bytes = GaugeMetricFamily(
            "ebike_replication_lag_bytes", "WAL the standby has not replayed yet.", labels=["standby", "sync_state"]
        )
        lag_seconds = GaugeMetricFamily(
            "ebike_replication_lag_seconds",
            "Replay lag as PostgreSQL measures it (0 when the standby is idle and caught up).",
            labels=["standby", "sync_state"],
        )
        for standby in part["standbys"]:
            key = (standby["state"] or "unknown", standby["sync_state"] or "unknown")
            counts[key] = counts.get(key, 0) + 1
            labels = [standby["name"] or "", standby["sync_state"] or "unknown"]
            if standby["replay_lag_bytes"] is not None:
                lag_bytes.add_metric(labels, standby["replay_lag_bytes"])
            lag_seconds.add_metric(labels, standby["replay_lag_seconds"] or 0)
        for key, count in sorted(counts.items()):
            streaming.add_metric(list(key), count)
        yield streaming
        yield lag_bytes
        yield lag_seconds
        yield GaugeMetricFamily(
            "ebike_standby_alarm",
            "1 while the standby watcher's alarm is raised.",
            int(part["standby_alarm"] is not None),
        )

    def _backup(self, part: dict[str, Any], now: datetime.datetime) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "ebike_backup_enabled", "1 where backups are on (BACKUP_ENABLED).", int(part["enabled"])
        )
        yield GaugeMetricFamily("ebike_backup_ok", "1 when backups and WAL archiving show no problem.", int(part["ok"]))
        last = part["backup"]
        if last is not None:
            yield GaugeMetricFamily(
                "ebike_backup_last_success_age_seconds",
                "Seconds since the newest successful backup finished.",
                _age_s(last["finished_at"], now),
            )
        archived = _age_s(part["archive"].get("last_archived_at"), now)
        if archived is not None:
            yield GaugeMetricFamily(
                "ebike_wal_archive_last_success_age_seconds", "Seconds since a WAL segment was last archived.", archived
            )
        archive = part["archive"]
        failing = bool(archive.get("last_failed_at")) and (
            not archive.get("last_archived_at") or archive["last_failed_at"] > archive["last_archived_at"]
        )
        yield GaugeMetricFamily("ebike_wal_archive_failing", "1 when the last archive attempt failed.", int(failing))

    def _outbox(self, part: dict[str, Any], now: datetime.datetime) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "ebike_outbox_pending", "Outbox rows waiting (due or backing off), not dead.", part["pending"]
        )
        yield GaugeMetricFamily(
            "ebike_outbox_retrying", "Waiting outbox rows that failed at least once.", part["retrying"]
        )
        yield GaugeMetricFamily(
            "ebike_outbox_dead", "Outbox rows set aside as dead (manage.py outbox_rerun).", part["dead"]
        )
        yield GaugeMetricFamily(
            "ebike_outbox_oldest_pending_age_seconds",
            "Age of the oldest waiting outbox row (0 when none waits).",
            part["oldest_pending_age_s"] or 0,
        )

    def _gateway(self, part: dict[str, Any], now: datetime.datetime) -> Iterator[Metric]:
        nodes = GaugeMetricFamily("ebike_gateway_nodes", "Gateway worker processes by lease state.", labels=["state"])
        nodes.add_metric(["alive"], part["alive"])
        nodes.add_metric(["expired"], part["expired"])
        yield nodes
        renewal = GaugeMetricFamily(
            "ebike_gateway_node_last_renewal_age_seconds", "Seconds since each node renewed its lease.", labels=["node"]
        )
        for node in part["nodes"]:
            renewal.add_metric([node["node"]], node["last_renewal_age_s"])
        yield renewal

    def _clock(self, part: dict[str, Any], now: datetime.datetime) -> Iterator[Metric]:
        if part["synchronized"] in ("yes", "no"):
            yield GaugeMetricFamily(
                "ebike_clock_synchronized",
                "1 when this host's clock is NTP-synchronised (absent when unknown).",
                int(part["synchronized"] == "yes"),
            )
