"""Gateway counters: logged every GATEWAY_METRICS_LOG_S seconds and served as Prometheus text.

Counters are plain dicts keyed by label tuples, incremented on the hot path (a dict update costs
tens of nanoseconds; a metrics library would cost more than the decoding). Batch timings keep the
last minute of samples for p50/p99.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable

log = logging.getLogger("tracking.gateway")

WINDOW_S = 60.0


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile (q in 0..1); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class Metrics:
    def __init__(self) -> None:
        self.started = time.time()
        self.connections_open: Counter[str] = Counter()  # protocol
        self.connections_total: Counter[str] = Counter()  # protocol
        self.connections_closed: Counter[tuple[str, str]] = Counter()  # protocol, reason
        self.frames: Counter[tuple[str, str]] = Counter()  # protocol, kind
        self.frame_errors: Counter[tuple[str, str]] = Counter()  # protocol, ProtocolError.code
        self.garbage_bytes: Counter[str] = Counter()  # protocol
        self.unknown_terminals: Counter[str] = Counter()  # protocol
        self.refused: Counter[tuple[str, str]] = Counter()  # protocol, reason (not logged in, bad auth…)
        self.acks: Counter[str] = Counter()  # protocol: acks sent after a commit ("osmand": HTTP 200)
        self.replies: Counter[str] = Counter()  # protocol: immediate replies (login, heartbeat, auth…)
        self.http_responses: Counter[int] = Counter()  # status
        self.errors: Counter[str] = Counter()  # internal errors by kind (db_connection, db_rejected, internal…)
        self.pings_stored = 0
        self.pings_duplicate = 0
        self.pings_outlier = 0
        self.pings_rejected: Counter[str] = Counter()  # reason label
        self.alarms_queued = 0
        self.alarms_dropped = 0  # alarm names past GATEWAY_MAX_ALARMS_PER_FIX (tracking.ingest.alarm_kinds)
        # Limits (tracking.gateway.limits): connections closed as they came, by reason (port_cap,
        # address_cap, login_failures); failed logins; the limits in force.
        self.connections_refused: Counter[tuple[str, str]] = Counter()  # protocol, reason
        self.login_failures: Counter[str] = Counter()  # protocol
        self.limits: dict[str, float] = {}  # name -> value
        self.terminal_conflicts = 0  # cloned identities found (tracking.gateway.leases)
        self.sessions_open: Callable[[], int] = lambda: 0
        self.batches = 0
        self.batch_failures = 0
        self.lookups: Counter[str] = Counter()  # hit, miss, unknown, failed
        self.db_up = 0
        self.paused = 0
        self.draining = 0  # 1 from SIGUSR1 on: /healthz answers 503 so that the balancer stops sending
        self.pending_items: Callable[[], int] = lambda: 0
        self.inflight_items: Callable[[], int] = lambda: 0
        # (monotonic time, seconds in the database, seconds from the oldest message's arrival to commit)
        self._batch_samples: deque[tuple[float, float, float, int]] = deque()

    # --- batches -------------------------------------------------------------------------------------

    def batch_done(self, db_seconds: float, oldest_wait_s: float, size: int) -> None:
        now = time.monotonic()
        self.batches += 1
        self._batch_samples.append((now, db_seconds, oldest_wait_s, size))
        self._trim(now)

    def _trim(self, now: float) -> None:
        samples = self._batch_samples
        while samples and samples[0][0] < now - WINDOW_S:
            samples.popleft()

    def batch_stats(self) -> dict[str, float]:
        self._trim(time.monotonic())
        db = [sample[1] for sample in self._batch_samples]
        wait = [sample[2] for sample in self._batch_samples]
        sizes = [sample[3] for sample in self._batch_samples]
        return {
            "db_p50": quantile(db, 0.5),
            "db_p99": quantile(db, 0.99),
            "ack_p50": quantile(wait, 0.5),
            "ack_p99": quantile(wait, 0.99),
            "size_mean": sum(sizes) / len(sizes) if sizes else math.nan,
            "count": len(sizes),
        }

    # --- output --------------------------------------------------------------------------------------

    def summary(self) -> str:
        stats = self.batch_stats()
        rejected = sum(self.pings_rejected.values())
        frame_errors = sum(self.frame_errors.values())
        open_by_protocol = " ".join(f"{p}={n}" for p, n in sorted(self.connections_open.items())) or "0"
        return (
            f"connections {open_by_protocol}; pings stored={self.pings_stored} duplicate={self.pings_duplicate} "
            f"rejected={rejected} outlier={self.pings_outlier}; acks={sum(self.acks.values())}; "
            f"frames={sum(self.frames.values())} invalid={frame_errors} unknown_terminals="
            f"{sum(self.unknown_terminals.values())}; batches={self.batches} (last min {stats['count']}, "
            f"mean size {stats['size_mean']:.0f}, db p50/p99 {stats['db_p50'] * 1000:.0f}/"
            f"{stats['db_p99'] * 1000:.0f} ms, oldest-message ack p50/p99 {stats['ack_p50'] * 1000:.0f}/"
            f"{stats['ack_p99'] * 1000:.0f} ms); pending={self.pending_items()} inflight={self.inflight_items()} "
            f"paused={self.paused} db_up={self.db_up} errors={dict(self.errors)}"
        )

    def prometheus(self) -> str:
        out: list[str] = []

        def family(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, object], float]]) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                if labels:
                    text = ",".join(f'{key}="{_escape(str(val))}"' for key, val in labels.items())
                    out.append(f"{name}{{{text}}} {_number(value)}")
                else:
                    out.append(f"{name} {_number(value)}")

        def by(counter: Counter, *names: str) -> list[tuple[dict[str, object], float]]:
            rows: list[tuple[dict[str, object], float]] = []
            for key, value in sorted(counter.items(), key=lambda item: str(item[0])):
                values = key if isinstance(key, tuple) else (key,)
                rows.append((dict(zip(names, values, strict=True)), value))
            return rows

        stats = self.batch_stats()
        family("gateway_up_seconds", "gauge", "Seconds since the gateway started.", [({}, time.time() - self.started)])
        family("gateway_connections_open", "gauge", "Open connections.", by(self.connections_open, "protocol"))
        family("gateway_connections_total", "counter", "Accepted connections.", by(self.connections_total, "protocol"))
        family(
            "gateway_connections_closed_total",
            "counter",
            "Closed connections by reason.",
            by(self.connections_closed, "protocol", "reason"),
        )
        family(
            "gateway_connections_refused_total",
            "counter",
            "Connections closed as they came: a cap reached (port_cap, address_cap) or an address "
            "blocked after failed logins (login_failures).",
            by(self.connections_refused, "protocol", "reason"),
        )
        family(
            "gateway_login_failures_total",
            "counter",
            "Failed logins (unknown terminal, wrong auth code), counted per source address against "
            "GATEWAY_LOGIN_FAILURES_PER_ADDRESS.",
            by(self.login_failures, "protocol"),
        )
        family(
            "gateway_limit",
            "gauge",
            "Limits in force (connection caps after fitting them to the descriptor limit, deadlines).",
            by(Counter(self.limits), "limit"),
        )
        family("gateway_frames_total", "counter", "Valid frames by message kind.", by(self.frames, "protocol", "kind"))
        family(
            "gateway_frame_errors_total",
            "counter",
            "Invalid frames or requests by error code.",
            by(self.frame_errors, "protocol", "code"),
        )
        family(
            "gateway_garbage_bytes_total",
            "counter",
            "Bytes skipped outside frames.",
            by(self.garbage_bytes, "protocol"),
        )
        family(
            "gateway_unknown_terminals_total",
            "counter",
            "Logins, registrations and requests from terminals not registered (or not active).",
            by(self.unknown_terminals, "protocol"),
        )
        family(
            "gateway_refused_total",
            "counter",
            "Messages refused (not logged in, wrong auth code, wrong terminal).",
            by(self.refused, "protocol", "reason"),
        )
        family("gateway_acks_total", "counter", "Acknowledgements sent after commit.", by(self.acks, "protocol"))
        family(
            "gateway_replies_total",
            "counter",
            "Immediate replies (login, heartbeat, register, auth).",
            by(self.replies, "protocol"),
        )
        family("gateway_http_responses_total", "counter", "OsmAnd HTTP responses.", by(self.http_responses, "status"))
        family("gateway_pings_stored_total", "counter", "Positions newly stored.", [({}, self.pings_stored)])
        family(
            "gateway_pings_duplicate_total",
            "counter",
            "Positions already stored (resent).",
            [({}, self.pings_duplicate)],
        )
        family("gateway_pings_outlier_total", "counter", "Positions flagged as outliers.", [({}, self.pings_outlier)])
        family(
            "gateway_pings_rejected_total",
            "counter",
            "Positions not stored, by reason (acknowledged all the same).",
            by(self.pings_rejected, "reason"),
        )
        family(
            "gateway_terminal_conflicts_total",
            "counter",
            "Cloned identities found: two live sessions of one terminal (a duty-room call each).",
            [({}, self.terminal_conflicts)],
        )
        family("gateway_sessions_open", "gauge", "Logged-in sessions holding a lease.", [({}, self.sessions_open())])
        family(
            "gateway_alarms_dropped_total",
            "counter",
            "Alarm names not stored: past GATEWAY_MAX_ALARMS_PER_FIX for one position or message.",
            [({}, self.alarms_dropped)],
        )
        family("gateway_batches_total", "counter", "Committed batches.", [({}, self.batches)])
        family(
            "gateway_batch_failures_total", "counter", "Failed batch attempts (retried).", [({}, self.batch_failures)]
        )
        family(
            "gateway_batch_db_seconds",
            "summary",
            "Seconds a batch transaction took, last minute.",
            [({"quantile": "0.5"}, stats["db_p50"]), ({"quantile": "0.99"}, stats["db_p99"])],
        )
        family(
            "gateway_batch_ack_delay_seconds",
            "summary",
            "Seconds from the arrival of a batch's oldest message to its commit, last minute.",
            [({"quantile": "0.5"}, stats["ack_p50"]), ({"quantile": "0.99"}, stats["ack_p99"])],
        )
        family(
            "gateway_pending_items",
            "gauge",
            "Positions received and not yet committed (waiting and in flight).",
            [({"state": "waiting"}, self.pending_items()), ({"state": "in_flight"}, self.inflight_items())],
        )
        family("gateway_paused", "gauge", "1 while reading is paused (pending cap reached).", [({}, self.paused)])
        family(
            "gateway_draining",
            "gauge",
            "1 while the node drains (SIGUSR1): /healthz answers 503, then the node stops.",
            [({}, self.draining)],
        )
        family("gateway_db_up", "gauge", "1 while the batch writer has a working connection.", [({}, self.db_up)])
        family("gateway_errors_total", "counter", "Errors by kind.", by(self.errors, "kind"))
        family("gateway_terminal_lookups_total", "counter", "Terminal lookups by result.", by(self.lookups, "result"))
        return "\n".join(out) + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return repr(value)
    return str(value)


async def log_periodically(metrics: Metrics, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        log.info("metrics: %s", metrics.summary())


async def serve_metrics(metrics: Metrics, host: str, port: int) -> asyncio.Server:
    """GET /metrics (Prometheus text) and GET /healthz on a plain asyncio server. /healthz is what
    HAProxy checks (deploy/haproxy): 200 "ok", or 503 "draining" once the node drains."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            path = request_line[1].split("?", 1)[0] if len(request_line) >= 2 else ""
            if len(request_line) >= 2 and request_line[0] == "GET" and path == "/metrics":
                status, body, kind = "200 OK", metrics.prometheus().encode(), "text/plain; version=0.0.4"
            elif len(request_line) >= 2 and request_line[0] == "GET" and path == "/healthz":
                if metrics.draining:
                    status, body, kind = "503 Service Unavailable", b"draining\n", "text/plain"
                else:
                    status, body, kind = "200 OK", b"ok\n", "text/plain"
            else:
                status, body, kind = "404 Not Found", b"not found\n", "text/plain"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        except Exception:
            log.exception("metrics endpoint failed")
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port, reuse_address=True)
