"""GET /healthz: can this node serve, and what should an operator look at.

503 only when this web node cannot serve: its database does not answer or answers read-only, or
Redis does not answer; those two `checks` are all that anyone gets. The scraper
(ebike_registry.ops_access) also gets replication, backups, the outbox, the gateway nodes and the
clock, each finding a warning with status "warn", still 200, and each part bounded by
HEALTH_STATEMENT_TIMEOUT_MS and never a 500. README "Operations" > "What to watch": each figure
and what to do; docs/architecture.md#health-and-metrics.
"""

from __future__ import annotations

import contextlib
import datetime
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import redis
from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest, JsonResponse

from ebike_registry.backup_status import backup_status
from ebike_registry.kernel_clock import kernel_clock
from ebike_registry.ops_access import operator_allowed
from ebike_registry.standby import standby_alarm
from tracking.derived import outbox_backlog
from tracking.gateway.config import GatewayConfig
from tracking.models import GatewayNode, Terminal

CLOCK_CACHE_SECONDS = 10.0
CLOCK_TOOL_TIMEOUT_S = 1.0

Warnings = list[str]


def healthz(request: HttpRequest) -> JsonResponse:
    body, serving = health_report(detailed=operator_allowed(request))
    return JsonResponse(body, status=200 if serving else 503)


def health_report(*, detailed: bool = True) -> tuple[dict[str, Any], bool]:
    """The body of /healthz and whether this node can serve. Not `detailed` (anyone outside
    ebike_registry.ops_access): the two checks only, neither the servers, roles and node names of the
    parts nor their queries for whoever polls it."""
    started = time.monotonic()
    checks = {"database": database_check(), "redis": redis_check()}
    serving = all(value.startswith("ok") for value in checks.values())
    if not detailed:
        return {"status": "ok" if serving else "error", "checks": checks}, serving
    warnings: Warnings = []
    body: dict[str, Any] = {"status": "ok", "checks": checks, "warnings": warnings}
    database_up = checks["database"].startswith("ok") or checks["database"].startswith("error: read-only")
    parts: dict[str, Callable[[Warnings], dict[str, Any]]] = {
        "database": database_role,
        "replication": replication,
        "backup": backup,
        "outbox": outbox,
        "gateway": gateway_nodes,
    }
    for name, part in parts.items():
        if name != "backup" and not database_up:
            body[name] = {"error": "database unreachable"}
            continue
        body[name] = run_part(name, part, warnings)
    body["clock"] = run_part("clock", clock, warnings)
    body["status"] = "error" if not serving else ("warn" if warnings else "ok")
    body["took_ms"] = round((time.monotonic() - started) * 1000)
    return body, serving


def run_part(name: str, part: Callable[[Warnings], dict[str, Any]], warnings: Warnings) -> dict[str, Any]:
    """One part, failing soft: an error is the part's answer and a warning, never an exception."""
    found: Warnings = []
    try:
        result = part(found)
    except Exception as exc:  # health reporting must not raise
        result = {"error": f"{type(exc).__name__}: {exc}".strip()}
        found.append(f"cannot read: {result['error']}")
    warnings.extend(f"{name}: {line}" for line in found)
    return result


@contextlib.contextmanager
def bounded() -> Iterator[None]:
    """A transaction whose statements are cut off after HEALTH_STATEMENT_TIMEOUT_MS; an error rolls it
    back, so one slow or failing part leaves the connection usable for the next."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, true)", [str(settings.HEALTH_STATEMENT_TIMEOUT_MS)]
            )
        yield


# --- the two checks that decide 503 -----------------------------------------------------------------


def database_check() -> str:
    try:
        with bounded(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT postgis_lib_version(), pg_is_in_recovery(), current_setting('default_transaction_read_only')"
            )
            version, in_recovery, read_only = cursor.fetchone()
    except Exception as exc:
        return f"error: {exc}".strip()
    if in_recovery:
        return "error: read-only (connected to a standby: DATABASE_URL should name the primary)"
    if read_only == "on":
        return "error: read-only (default_transaction_read_only is on)"
    return f"ok (PostGIS {version})"


def redis_check() -> str:
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        return f"error: {exc}"
    return "ok"


# --- the parts ------------------------------------------------------------------------------------------


def database_role(warnings: Warnings) -> dict[str, Any]:
    with bounded(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery(), host(inet_server_addr()), inet_server_port(), current_user")
        in_recovery, address, port, user = cursor.fetchone()
    return {
        "role": "standby" if in_recovery else "primary",
        "server": f"{address}:{port}" if address else "local socket",
        "user": user,
    }


def replication(warnings: Warnings) -> dict[str, Any]:
    """On a primary, each standby (pg_stat_replication); on a standby, its own receive/replay lag."""
    with bounded(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        if cursor.fetchone()[0]:
            return _standby_side(cursor, warnings)
    (names, rows, sees_stats, read_as), unavailable = _primary_view()
    standbys = [
        {
            "name": name,
            "address": address,
            "state": state,
            "sync_state": sync_state,
            "replay_lag_bytes": replay_bytes,
            "replay_lag_seconds": None if lag_s is None else round(lag_s, 3),
            "flush_lag_bytes": flush_bytes,
        }
        for name, address, state, sync_state, replay_bytes, lag_s, flush_bytes in rows
    ]
    result: dict[str, Any] = {"synchronous_standby_names": names, "standbys": standbys, "read_as": read_as}
    if unavailable:
        result["monitor_error"] = unavailable
    if not sees_stats and (rows or settings.STANDBY_ENABLED):
        result["note"] = f"details hidden from {read_as}: HEALTH_DATABASE_URL names a member of pg_read_all_stats"
        warnings.append(f"{len(rows)} standby connection(s) seen, {result['note']} ({unavailable or 'not a member'})")
    streaming = [s for s in standbys if s["state"] == "streaming"]
    if settings.STANDBY_ENABLED and sees_stats and not streaming:
        warnings.append("no standby is streaming (STANDBY_ENABLED): one disk or server away from losing data")
    if names and sees_stats and not any(s["sync_state"] in ("sync", "quorum") for s in standbys):
        warnings.append(f"synchronous_standby_names is {names!r} and no standby is synchronous: commits wait")
    for standby in streaming:
        if (standby["replay_lag_bytes"] or 0) > settings.HEALTH_REPLICATION_LAG_WARN_BYTES:
            warnings.append(f"standby {standby['name']} is {standby['replay_lag_bytes']} bytes behind")
        if (standby["replay_lag_seconds"] or 0) > settings.HEALTH_REPLICATION_LAG_WARN_S:
            warnings.append(f"standby {standby['name']} replays {standby['replay_lag_seconds']} s behind")
    alarm = standby_alarm()
    result["standby_alarm"] = alarm
    if alarm is not None:
        since = datetime.datetime.fromtimestamp(alarm.get("since", 0), datetime.UTC).isoformat(timespec="seconds")
        what = "the primary continues alone" if alarm.get("alone") else "commits wait for it"
        warnings.append(f"standby away since {since}: {what} (STANDBY_AWAY_POLICY={alarm.get('policy')})")
    return result


_PRIMARY_SQL = """
SELECT application_name, host(client_addr), state, sync_state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,
       extract(epoch FROM replay_lag)::float8,
       pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn)::bigint
FROM pg_stat_replication ORDER BY application_name, pid
"""
_WHO_SQL = (
    "SELECT current_setting('synchronous_standby_names'), current_user,"
    " pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'), pg_is_in_recovery()"
)


def _primary_view() -> tuple[tuple[str, list[tuple[Any, ...]], bool, str], str | None]:
    """(synchronous_standby_names, pg_stat_replication's rows, whether the reader sees their details,
    the reader's role), read as HEALTH_DATABASE_URL's monitoring role, else as this process's role;
    and why the monitoring role could not be used."""
    unavailable = None
    if settings.HEALTH_DATABASE_URL:
        timeout = settings.HEALTH_STATEMENT_TIMEOUT_MS
        try:
            with psycopg.connect(
                settings.HEALTH_DATABASE_URL,
                connect_timeout=2,
                autocommit=True,
                options=f"-c statement_timeout={timeout}",
            ) as monitor:
                names, user, sees_stats, in_recovery = monitor.execute(_WHO_SQL).fetchall()[0]
                if not in_recovery:
                    return (names, monitor.execute(_PRIMARY_SQL).fetchall(), sees_stats, user), None
                unavailable = "HEALTH_DATABASE_URL: connected to a standby (target_session_attrs=read-write?)"
        except psycopg.Error as exc:
            unavailable = f"HEALTH_DATABASE_URL: {str(exc).strip().splitlines()[-1] if str(exc).strip() else exc!r}"
    with bounded(), connection.cursor() as cursor:
        cursor.execute(_WHO_SQL)
        names, user, sees_stats, _in_recovery = cursor.fetchone()
        cursor.execute(_PRIMARY_SQL)
        return (names, cursor.fetchall(), sees_stats, user), unavailable


def _standby_side(cursor: Any, warnings: Warnings) -> dict[str, Any]:
    cursor.execute(
        """
        SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,
               pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint,
               extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8,
               (SELECT status FROM pg_stat_wal_receiver LIMIT 1)
        """
    )
    received, replayed, behind, since_replay, receiver = cursor.fetchone()
    result = {
        "receiver": receiver,
        "received_lsn": received,
        "replayed_lsn": replayed,
        "replay_lag_bytes": behind,
        "seconds_since_last_replayed_commit": None if since_replay is None else round(since_replay, 3),
    }
    if receiver != "streaming":
        warnings.append(f"this standby's WAL receiver is {receiver or 'not running'}")
    if (behind or 0) > settings.HEALTH_REPLICATION_LAG_WARN_BYTES:
        warnings.append(f"replay is {behind} bytes behind what was received")
    return result


def backup(warnings: Warnings) -> dict[str, Any]:
    status = backup_status()
    warnings.extend(status["problems"])
    return status


def outbox(warnings: Warnings) -> dict[str, Any]:
    with bounded():
        backlog = outbox_backlog()
    if backlog["dead"]:
        warnings.append(f"{backlog['dead']} dead row(s): see the admin's outbox list, fix, then manage.py outbox_rerun")
    age = backlog["oldest_pending_age_s"]
    if age is not None and age > settings.HEALTH_OUTBOX_AGE_WARN_S:
        warnings.append(f"oldest waiting row is {age:.0f} s old (limit {settings.HEALTH_OUTBOX_AGE_WARN_S} s)")
    return backlog


def gateway_nodes(warnings: Warnings) -> dict[str, Any]:
    """Each gateway worker's lease (tracking.gateway.leases): alive while it runs. No node alive while
    terminals are fitted to bikes is a warning of its own: no gateway anywhere is taking positions."""
    lease_s = GatewayConfig.from_settings().lease_s
    with bounded(), connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        now = cursor.fetchone()[0]
        nodes = list(GatewayNode.objects.order_by("node").values_list("node", "started_at", "lease_until"))
        # Counted only when nobody holds a lease (the usual answer costs no query).
        fitted = 0 if any(lease_until > now for *_, lease_until in nodes) else _fitted_terminals()
    listed = []
    for node, started_at, lease_until in nodes:
        alive = lease_until > now
        renewed = lease_until - datetime.timedelta(seconds=lease_s)
        listed.append(
            {
                "node": node,
                "alive": alive,
                "started_at": started_at.isoformat(),
                "last_renewal": renewed.isoformat(),
                "last_renewal_age_s": round((now - renewed).total_seconds(), 1),
                "lease_until": lease_until.isoformat(),
            }
        )
        if not alive:
            warnings.append(
                f"node {node} lease expired at {lease_until.isoformat(timespec='seconds')}: it stopped renewing"
            )
    alive_count = sum(1 for item in listed if item["alive"])
    if fitted:
        warnings.append(
            f"no node holds a lease while {fitted} terminal(s) are fitted to bikes: no gateway is receiving "
            "positions or alarms (start the gateway: make run, or the gateway containers)"
        )
    return {"alive": alive_count, "expired": len(listed) - alive_count, "nodes": listed}


def _fitted_terminals() -> int:
    """Active terminals fitted to a bike: those expected to report through a gateway."""
    return Terminal.objects.filter(active=True, vehicle__isnull=False).count()


# --- the clock ------------------------------------------------------------------------------------------

_clock_cache: tuple[float, dict[str, Any]] | None = None


def clock(warnings: Warnings) -> dict[str, Any]:
    """Whether this host's clock is synchronised: timedatectl, else chronyc, else the kernel's own
    state (in a container: the host's), else "unknown"."""
    global _clock_cache
    now = time.monotonic()
    if _clock_cache is None or now - _clock_cache[0] > CLOCK_CACHE_SECONDS:
        _clock_cache = (now, clock_sync_state())
    state = _clock_cache[1]
    if state["synchronized"] == "no":
        warnings.append(f"not synchronised ({state['source']}): timestamps of positions and audit rows drift")
    return state


def _run(command: list[str]) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 (fixed commands, no shell)
            command, capture_output=True, text=True, timeout=CLOCK_TOOL_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def clock_sync_state(
    timedatectl: list[str] | None = None,
    chronyc: list[str] | None = None,
    kernel: Callable[[], dict[str, Any] | None] = kernel_clock,
) -> dict[str, Any]:
    answer = _run(timedatectl or ["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    if answer is not None and answer.strip() in ("yes", "no"):
        return {"synchronized": answer.strip(), "source": "timedatectl"}
    answer = _run(chronyc or ["chronyc", "-n", "tracking"])
    if answer is not None:
        fields = {}
        for line in answer.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        leap = fields.get("leap status", "")
        if leap:
            state = {"synchronized": "no" if "not synchronised" in leap.lower() else "yes", "source": "chronyc"}
            if "system time" in fields:
                state["offset"] = fields["system time"]
            return state
    return kernel() or {"synchronized": "unknown", "source": None}
