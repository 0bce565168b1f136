"""The gateway process: listeners, the batch writer, terminal lookups, metrics, idle sweeping, shutdown.

One asyncio event loop serves every protocol. Listeners start whether or not the database answers
(logins are refused until lookups work). SIGTERM/SIGINT: stop accepting and reading, commit and
acknowledge what was received (up to GATEWAY_SHUTDOWN_TIMEOUT_S), close; what was not committed is
not acknowledged, so the terminals resend it to the next gateway. SIGUSR1 drains first: /healthz on
the metrics port answers 503 for GATEWAY_DRAIN_GRACE_S so that HAProxy moves new connections away,
then the same shutdown with exit status 0. See docs/architecture.md#the-gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import resource
import signal
import time
from typing import Any

from . import db
from .config import GatewayConfig
from .http import OsmAndSession
from .leases import SessionLedger
from .limits import fd_reserve, fit_port_cap
from .metrics import Metrics, log_periodically, serve_metrics
from .sessions import Context, Gt06Session, Jt808Session
from .terminals import TerminalDirectory
from .writer import BatchWriter

log = logging.getLogger("tracking.gateway")


def raise_fd_limit(wanted: int = 0) -> int:
    """Thousands of terminals need thousands of descriptors: set the soft limit to `wanted`
    (GATEWAY_FD_LIMIT), or to the hard limit for 0 or more than it allows. The limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = 1_048_576 if hard == resource.RLIM_INFINITY else hard
    target = min(wanted, ceiling) if wanted > 0 else ceiling
    if soft != target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def fit_to_descriptors(config: GatewayConfig, fd_limit: int) -> GatewayConfig:
    """The configuration with per-port caps that fit under the descriptor limit (limits.fit_port_cap)."""
    listening = sum(1 for port in (config.gt06_port, config.jt808_port, config.osmand_port) if port)
    cap = fit_port_cap(config.max_connections, listening, fd_limit)
    if cap >= config.max_connections:
        return config
    log.warning(
        "descriptor limit %d is too low for %d ports of %d connections (GATEWAY_MAX_CONNECTIONS) and %d kept for "
        "the database, metrics and logs: each port now takes %d connections (raise the hard limit, "
        "e.g. LimitNOFILE / ulimit -n, or lower GATEWAY_MAX_CONNECTIONS)",
        fd_limit,
        listening,
        config.max_connections,
        fd_reserve(fd_limit),
        cap,
    )
    return dataclasses.replace(config, max_connections=cap)


class Gateway:
    def __init__(self, config: GatewayConfig, conninfo: str | None = None) -> None:
        self.config = config
        self.conninfo = conninfo or db.conninfo()
        self.metrics = Metrics()
        self.servers: list[asyncio.Server] = []
        self.tasks: list[asyncio.Task[Any]] = []
        self.context: Context | None = None
        self.writer_task: asyncio.Task[None] | None = None
        self.failed = asyncio.Event()

    async def start(self) -> None:
        config = self.config
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._loop_exception)
        limit = raise_fd_limit(config.fd_limit)
        config = self.config = fit_to_descriptors(config, limit)
        self.metrics.limits.update(
            fd=limit,
            connections_per_port=config.max_connections,
            connections_per_address=config.max_connections_per_address,
            login_failures_per_address=config.login_failures_per_address,
            login_timeout_seconds=config.login_timeout_s,
            http_request_timeout_seconds=config.http_request_timeout_s,
            alarms_per_fix=config.max_alarms_per_fix,
        )
        writer = BatchWriter(
            self.conninfo,
            self.metrics,
            batch_size=config.batch_size,
            batch_ms=config.batch_ms,
            batch_max=config.batch_max,
            pending_cap=config.pending_cap,
            writers=config.db_writers,
            db_timeout_s=config.db_timeout_s,
            retry_min_s=config.db_retry_min_s,
            retry_max_s=config.db_retry_max_s,
            outlier_speed_kmh=config.outlier_speed_kmh,
            max_alarms_per_fix=config.max_alarms_per_fix,
        )
        directory = TerminalDirectory(
            self.conninfo,
            self.metrics,
            ttl_s=config.terminal_cache_ttl_s,
            unknown_ttl_s=config.unknown_terminal_cache_ttl_s,
            retry_s=config.db_retry_min_s,
        )
        ledger = SessionLedger(
            self.conninfo,
            self.metrics,
            lease_s=config.lease_s,
            renew_s=config.lease_renew_s,
            conflict_margin_s=config.conflict_margin_s,
            retry_s=config.db_retry_min_s,
        )
        self.metrics.sessions_open = lambda: ledger.open_sessions
        self.context = context = Context(config, self.metrics, writer, directory, ledger)
        writer.on_pressure = context.set_pressure
        self.writer_task = loop.create_task(writer.run(), name="batch-writer")
        await ledger.prime()
        self.tasks.append(loop.create_task(ledger.run(), name="terminal-sessions"))
        self.writer_task.add_done_callback(self._writer_done)

        listeners = (
            ("gt06", config.gt06_port, Gt06Session),
            ("jt808", config.jt808_port, Jt808Session),
            ("osmand", config.osmand_port, OsmAndSession),
        )
        opened = []
        for name, port, session in listeners:
            if not port:
                continue
            server = await loop.create_server(
                functools.partial(session, context),
                config.host,
                port,
                backlog=config.backlog,
                reuse_address=True,
                reuse_port=config.processes > 1,
            )
            self.servers.append(server)
            opened.append(f"{name} {config.host}:{port}")
        if config.metrics_port:
            self.servers.append(await serve_metrics(self.metrics, config.host, config.metrics_port))
            opened.append(f"metrics http://{config.host}:{config.metrics_port}/metrics")
        self.tasks.append(loop.create_task(log_periodically(self.metrics, config.metrics_log_s), name="metrics-log"))
        self.tasks.append(loop.create_task(self._sweep_idle(), name="idle-sweeper"))
        log.info(
            "gateway listening: %s (%s loop, batch %d positions / %g ms, %d writers, pending cap %d, fd limit %d, "
            "connections per port %d, per address %d)",
            ", ".join(opened),
            type(loop).__module__.split(".")[0],
            config.batch_size,
            config.batch_ms,
            config.db_writers,
            config.pending_cap,
            limit,
            config.max_connections,
            config.max_connections_per_address,
        )

    def _writer_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        # The writer never gives up on the database by design; ending means a bug. Stop the process:
        # nothing uncommitted was acknowledged, and a supervisor restarts the gateway.
        log.critical("batch writer crashed", exc_info=task.exception())
        self.failed.set()

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.metrics.errors["loop"] += 1
        loop.default_exception_handler(context)

    async def _sweep_idle(self) -> None:
        config = self.config
        every = max(0.5, min(5.0, config.idle_timeout_s / 4, config.http_idle_timeout_s / 4))
        while True:
            await asyncio.sleep(every)
            if self.context is None:
                continue
            self.context.guard.sweep()
            now = time.monotonic()
            for connection in list(self.context.connections):
                limit = config.http_idle_timeout_s if connection.protocol_name == "osmand" else config.idle_timeout_s
                if now - connection.last_seen > limit and not connection.inflight:
                    connection.close("idle")

    def drain(self) -> None:
        """Fail the health check from now on; connections already here are served as before."""
        self.metrics.draining = 1
        log.info(
            "gateway draining: /healthz answers 503; stopping in %g s (GATEWAY_DRAIN_GRACE_S) with %d connections open",
            self.config.drain_grace_s,
            len(self.context.connections) if self.context is not None else 0,
        )

    async def stop(self, reason: str = "shutdown") -> None:
        """Stop accepting and reading, commit and acknowledge what was received, close everything
        (connections and terminal sessions end with `reason`)."""
        log.info("gateway stopping (%s)", reason)
        for server in self.servers:
            server.close()
        context = self.context
        if context is not None:
            context.pause_all()
            context.writer.stop()
            if self.writer_task is not None and not self.writer_task.done():
                try:
                    await asyncio.wait_for(asyncio.shield(self.writer_task), self.config.shutdown_timeout_s)
                except TimeoutError:
                    log.warning(
                        "shutdown: %d positions not committed in %g s; not acknowledged (terminals will resend)",
                        self.metrics.pending_items() + self.metrics.inflight_items(),
                        self.config.shutdown_timeout_s,
                    )
                    self.writer_task.cancel()
            for connection in list(context.connections):
                connection.close(reason)
            await context.directory.close()
            if context.ledger is not None:
                await context.ledger.close_all(reason)
        for task in self.tasks:
            task.cancel()
        await asyncio.sleep(0.05)  # let transports flush their last acks
        log.info("gateway stopped: %s", self.metrics.summary())


async def serve(config: GatewayConfig, conninfo: str | None = None) -> int:
    """Run until SIGTERM / SIGINT (exit status 0), a drain (SIGUSR1, 0) or a writer crash (1)."""
    gateway = Gateway(config, conninfo)
    loop = asyncio.get_running_loop()
    stop, drain = asyncio.Event(), asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, drain.set)
    await gateway.start()

    async def first(events: list[asyncio.Event], timeout: float | None = None) -> None:
        waits = [loop.create_task(event.wait()) for event in events]
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()

    await first([stop, drain, gateway.failed])
    reason = "shutdown"
    if drain.is_set() and not stop.is_set() and not gateway.failed.is_set():
        reason = "drain"
        gateway.drain()
        await first([stop, gateway.failed], config.drain_grace_s)  # SIGTERM cuts the grace short
    await gateway.stop(reason)
    return 1 if gateway.failed.is_set() else 0
