"""Gateway settings: read once from the environment (`GATEWAY_*`, each with a one-machine default
below; a Django setting of the same name takes precedence).

Command-line options of `run_gateway` override the listen address and ports. A port of 0 switches
that listener off.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULTS: dict[str, Any] = {
    # Where terminals connect. Production (and docker-compose) sets 0.0.0.0.
    "GATEWAY_HOST": "127.0.0.1",
    "GATEWAY_GT06_PORT": 5023,
    "GATEWAY_JT808_PORT": 5015,
    "GATEWAY_OSMAND_PORT": 5055,
    "GATEWAY_METRICS_PORT": 9105,
    # A connection silent for longer is closed (a bit over the longest expected heartbeat interval).
    "GATEWAY_IDLE_TIMEOUT_S": 600,
    # OsmAnd HTTP keep-alive connections are closed sooner: phones open a new one when they need it.
    "GATEWAY_HTTP_IDLE_TIMEOUT_S": 60,
    # A batch is committed when this many positions are waiting, or when the oldest waited this long.
    "GATEWAY_BATCH_SIZE": 2000,
    "GATEWAY_BATCH_MS": 30,
    # Upper bound on positions in one transaction (after the database was away, the backlog is cut).
    "GATEWAY_BATCH_MAX": 10000,
    # Above this many positions waiting for a commit, every connection stops reading until half drained.
    "GATEWAY_PENDING_CAP": 40000,
    # One connection may have this many messages waiting for their commit before it stops reading.
    "GATEWAY_CONNECTION_PENDING_CAP": 500,
    # Database connections writing batches concurrently, per worker process (each with its own lane
    # of terminals). One: the next batch gathers while the last one commits, so batches grow with
    # the load. Two per worker on two cores halved the batches and cost ~10 % more CPU per
    # position (bench/ingest.py: 40,000/s offered went from p99 ~1.1 s to ~0.3 s with one).
    "GATEWAY_DB_WRITERS": 1,
    # A batch transaction that takes longer is abandoned (connection dropped, batch retried).
    "GATEWAY_DB_TIMEOUT_S": 15.0,
    # Reconnection backoff: doubles from the first value up to the second.
    "GATEWAY_DB_RETRY_MIN_S": 0.2,
    "GATEWAY_DB_RETRY_MAX_S": 5.0,
    # Terminal lookups (login / register / OsmAnd id) are cached in the process.
    "GATEWAY_TERMINAL_CACHE_TTL_S": 60.0,
    "GATEWAY_UNKNOWN_TERMINAL_CACHE_TTL_S": 10.0,
    # Invalid input: a connection is closed after this many invalid frames in a row, or this many
    # garbage bytes since its last valid frame.
    "GATEWAY_MAX_BAD_FRAMES": 10,
    "GATEWAY_MAX_GARBAGE_BYTES": 4096,
    # Largest frame accepted; a longer one closes the connection.
    "GATEWAY_MAX_FRAME_BYTES": 4096,
    # Largest OsmAnd request body (Traccar Client batches).
    "GATEWAY_HTTP_MAX_BODY_BYTES": 1_048_576,
    "GATEWAY_METRICS_LOG_S": 30.0,
    # On SIGTERM: how long to finish committing and acknowledging what is already received.
    "GATEWAY_SHUTDOWN_TIMEOUT_S": 10.0,
    # On SIGUSR1 (drain, for a rolling upgrade behind HAProxy): how long /healthz on the metrics port
    # answers 503 while the node still serves, so that the balancer's health checks take it out of
    # rotation before its listeners close; then it stops as on SIGTERM. Longer than HAProxy's
    # `inter` x `fall` (deploy/haproxy: 1 s x 2).
    "GATEWAY_DRAIN_GRACE_S": 5.0,
    # Worker processes sharing the listening ports (SO_REUSEPORT: the kernel spreads connections over
    # them), each with its own event loop, writers and metrics endpoint (GATEWAY_METRICS_PORT + its
    # number). One event loop is one core: 0 means one process per CPU core.
    "GATEWAY_PROCESSES": 0,
    # "auto" (uvloop when it is installed), "uvloop" or "asyncio".
    "GATEWAY_EVENT_LOOP": "auto",
    # listen() backlog: thousands of terminals reconnect at once after a restart.
    "GATEWAY_BACKLOG": 4096,
    # Limits no client can push the gateway past (tracking.gateway.limits), per worker process.
    # Open connections per listening port; lowered at start when the descriptor limit is too low.
    "GATEWAY_MAX_CONNECTIONS": 100_000,
    # Open connections per source address (IPv6: per /64), all ports together. Carriers put
    # thousands of SIMs behind one NAT address.
    "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS": 2000,
    # The descriptor limit the gateway asks for at start; 0: as many as the hard limit allows.
    "GATEWAY_FD_LIMIT": 0,
    # A GT06 / JT/T 808 connection that has not logged in (authenticated) by then is closed.
    "GATEWAY_LOGIN_TIMEOUT_S": 10.0,
    # An OsmAnd request must arrive whole within this time from its first byte, or gets 408 and a close.
    "GATEWAY_HTTP_REQUEST_TIMEOUT_S": 30.0,
    # Failed logins (unknown terminal, wrong auth code) from one address within a minute; over it,
    # new connections from the address are closed at once for GATEWAY_LOGIN_BLOCK_S.
    "GATEWAY_LOGIN_FAILURES_PER_ADDRESS": 30,
    "GATEWAY_LOGIN_BLOCK_S": 300.0,
    # Alarms stored per position (or per message without one); the rest are dropped and counted.
    "GATEWAY_MAX_ALARMS_PER_FIX": 8,
    # Terminal sessions (tracking.gateway.leases): a logged-in connection's lease runs this long and
    # is renewed this often while it lives; a node that dies leaves leases that run out.
    "GATEWAY_LEASE_S": 90.0,
    "GATEWAY_LEASE_RENEW_S": 20.0,
    # Two sessions of one terminal are both alive when each was heard this long after the other's login.
    "GATEWAY_CONFLICT_MARGIN_S": 5.0,
    # Addresses of proxies (HAProxy) that open connections with a PROXY protocol v2 header, comma
    # separated; empty: none, every connection's socket address is the terminal's.
    "GATEWAY_PROXY_FROM": "",
}


# run_gateway hands the resolved configuration to the Django-free gateway process in this variable.
SPEC_VARIABLE = "EBIKE_GATEWAY_SPEC"


@dataclass(frozen=True)
class GatewayConfig:
    host: str = DEFAULTS["GATEWAY_HOST"]
    gt06_port: int = DEFAULTS["GATEWAY_GT06_PORT"]
    jt808_port: int = DEFAULTS["GATEWAY_JT808_PORT"]
    osmand_port: int = DEFAULTS["GATEWAY_OSMAND_PORT"]
    metrics_port: int = DEFAULTS["GATEWAY_METRICS_PORT"]
    idle_timeout_s: float = DEFAULTS["GATEWAY_IDLE_TIMEOUT_S"]
    http_idle_timeout_s: float = DEFAULTS["GATEWAY_HTTP_IDLE_TIMEOUT_S"]
    batch_size: int = DEFAULTS["GATEWAY_BATCH_SIZE"]
    batch_ms: float = DEFAULTS["GATEWAY_BATCH_MS"]
    batch_max: int = DEFAULTS["GATEWAY_BATCH_MAX"]
    pending_cap: int = DEFAULTS["GATEWAY_PENDING_CAP"]
    connection_pending_cap: int = DEFAULTS["GATEWAY_CONNECTION_PENDING_CAP"]
    db_writers: int = DEFAULTS["GATEWAY_DB_WRITERS"]
    db_timeout_s: float = DEFAULTS["GATEWAY_DB_TIMEOUT_S"]
    db_retry_min_s: float = DEFAULTS["GATEWAY_DB_RETRY_MIN_S"]
    db_retry_max_s: float = DEFAULTS["GATEWAY_DB_RETRY_MAX_S"]
    terminal_cache_ttl_s: float = DEFAULTS["GATEWAY_TERMINAL_CACHE_TTL_S"]
    unknown_terminal_cache_ttl_s: float = DEFAULTS["GATEWAY_UNKNOWN_TERMINAL_CACHE_TTL_S"]
    max_bad_frames: int = DEFAULTS["GATEWAY_MAX_BAD_FRAMES"]
    max_garbage_bytes: int = DEFAULTS["GATEWAY_MAX_GARBAGE_BYTES"]
    max_frame_bytes: int = DEFAULTS["GATEWAY_MAX_FRAME_BYTES"]
    http_max_body_bytes: int = DEFAULTS["GATEWAY_HTTP_MAX_BODY_BYTES"]
    metrics_log_s: float = DEFAULTS["GATEWAY_METRICS_LOG_S"]
    shutdown_timeout_s: float = DEFAULTS["GATEWAY_SHUTDOWN_TIMEOUT_S"]
    drain_grace_s: float = DEFAULTS["GATEWAY_DRAIN_GRACE_S"]
    backlog: int = DEFAULTS["GATEWAY_BACKLOG"]
    max_connections: int = DEFAULTS["GATEWAY_MAX_CONNECTIONS"]
    max_connections_per_address: int = DEFAULTS["GATEWAY_MAX_CONNECTIONS_PER_ADDRESS"]
    fd_limit: int = DEFAULTS["GATEWAY_FD_LIMIT"]
    login_timeout_s: float = DEFAULTS["GATEWAY_LOGIN_TIMEOUT_S"]
    http_request_timeout_s: float = DEFAULTS["GATEWAY_HTTP_REQUEST_TIMEOUT_S"]
    login_failures_per_address: int = DEFAULTS["GATEWAY_LOGIN_FAILURES_PER_ADDRESS"]
    login_block_s: float = DEFAULTS["GATEWAY_LOGIN_BLOCK_S"]
    max_alarms_per_fix: int = DEFAULTS["GATEWAY_MAX_ALARMS_PER_FIX"]
    event_loop: str = DEFAULTS["GATEWAY_EVENT_LOOP"]
    processes: int = DEFAULTS["GATEWAY_PROCESSES"]
    lease_s: float = DEFAULTS["GATEWAY_LEASE_S"]
    lease_renew_s: float = DEFAULTS["GATEWAY_LEASE_RENEW_S"]
    conflict_margin_s: float = DEFAULTS["GATEWAY_CONFLICT_MARGIN_S"]
    proxy_from: str = DEFAULTS["GATEWAY_PROXY_FROM"]
    outlier_speed_kmh: float = 150.0

    @property
    def proxies(self) -> frozenset[str]:
        """The proxy addresses of GATEWAY_PROXY_FROM."""
        return frozenset(part.strip() for part in self.proxy_from.split(",") if part.strip())

    @classmethod
    def from_settings(cls, **overrides: Any) -> GatewayConfig:
        """Each GATEWAY_<FIELD> from Django settings when set there, else from the environment (a value
        that does not parse is refused, ebike_registry.env), else DEFAULTS; then the non-None `overrides`."""
        from django.conf import settings

        from ebike_registry.env import env_bool, env_float, env_int, env_str

        readers: dict[type, Callable[[str, Any], Any]] = {bool: env_bool, int: env_int, float: env_float, str: env_str}
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            name = f"GATEWAY_{item.name.upper()}"
            if name in DEFAULTS:
                default = DEFAULTS[name]
                if hasattr(settings, name):
                    values[item.name] = type(default)(getattr(settings, name))
                else:
                    values[item.name] = readers[type(default)](name, default)
        values["outlier_speed_kmh"] = float(getattr(settings, "OUTLIER_SPEED_KMH", 150.0))
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)
