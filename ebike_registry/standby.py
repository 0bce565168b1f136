"""The synchronous standby's watcher: what the primary does when its standby is away.

    .venv/bin/python -m ebike_registry.standby watch     (scripts/run.sh starts it with STANDBY_ENABLED)

With synchronous_standby_names set, every commit waits for the standby. After STANDBY_ALONE_AFTER_S
without it, STANDBY_AWAY_POLICY "wait" keeps waiting (nothing acknowledged can be lost) and "alone"
clears the names so that the primary carries on by itself; either raises the alarm (an ERROR line
and STANDBY_ALARM_FILE, which /healthz reads: `standby_alarm()`). Once the standby streams again
within STANDBY_RESTORE_LAG_BYTES the names are set back and the alarm cleared. It connects as
STANDBY_ADMIN_URL through the multi-host URL, and only ever changes a cluster the project manages.
See docs/architecture.md#standby-and-failover.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger("ebike_registry.standby")


@dataclass
class WatchConfig:
    admin_conninfo: str
    standby_name: str = "ebike_standby"
    policy: str = "wait"  # or "alone"
    alone_after_s: float = 30.0
    restore_lag_bytes: int = 1 << 20
    alarm_file: Path = Path("var/standby/alarm.json")

    @classmethod
    def from_settings(cls) -> WatchConfig:
        from django.conf import settings

        return cls(
            admin_conninfo=settings.STANDBY_ADMIN_URL,
            standby_name=settings.STANDBY_NAME,
            policy=settings.STANDBY_AWAY_POLICY,
            alone_after_s=settings.STANDBY_ALONE_AFTER_S,
            restore_lag_bytes=settings.STANDBY_RESTORE_LAG_BYTES,
            alarm_file=Path(settings.STANDBY_ALARM_FILE),
        )


@dataclass
class WatchState:
    away_since: float | None = None


def standby_alarm(alarm_file: Path | None = None) -> dict[str, Any] | None:
    """The raised alarm ({"since", "policy", "alone"}), or None when the standby is in place."""
    if alarm_file is None:
        from django.conf import settings

        alarm_file = Path(settings.STANDBY_ALARM_FILE)
    try:
        return json.loads(alarm_file.read_text())
    except (OSError, ValueError):
        return None


def _value(connection: psycopg.Connection, query: str) -> Any:
    """The value of a query that returns one row of one column."""
    row = connection.execute(query).fetchone()
    if row is None:
        raise RuntimeError(f"{query!r} returned no row")
    return row[0]


def check(connection: psycopg.Connection, config: WatchConfig, state: WatchState, *, now: float) -> str:
    """One look at the primary (autocommit connection); returns what it found or did, for the log."""
    if _value(connection, "SELECT pg_is_in_recovery()"):
        return "standby"  # not the primary: nothing to decide here
    names = _value(connection, "SHOW synchronous_standby_names")
    row = connection.execute(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn) FROM pg_stat_replication "
        "WHERE application_name = %s AND state = 'streaming'",
        (config.standby_name,),
    ).fetchone()
    alarm = standby_alarm(config.alarm_file)
    if row is not None:
        state.away_since = None
        lag = int(row[0] or 0)
        if names == "" and lag <= config.restore_lag_bytes:
            _set_names(connection, f'"{config.standby_name}"')
            log.warning("standby %s is back and caught up: commits wait for it again", config.standby_name)
            config.alarm_file.unlink(missing_ok=True)
            return "restored"
        if names and alarm is not None:
            config.alarm_file.unlink(missing_ok=True)
            log.warning("standby %s is back", config.standby_name)
            return "back"
        return "sync" if names else "catching-up"
    state.away_since = state.away_since if state.away_since is not None else now
    if now - state.away_since < config.alone_after_s:
        return "away"
    alone = config.policy == "alone"
    if alone and names:
        _set_names(connection, "")
        log.error(
            "standby %s away for %.0f s: synchronous replication OFF, the primary continues alone",
            config.standby_name,
            now - state.away_since,
        )
    if alarm is None or alarm.get("alone") != alone:
        _raise_alarm(config, since=time.time() - (now - state.away_since), alone=alone)
        if not alone:
            log.error(
                "standby %s away for %.0f s: commits wait for it (STANDBY_AWAY_POLICY=wait)",
                config.standby_name,
                now - state.away_since,
            )
    return "alone" if alone else "waiting"


def _set_names(connection: psycopg.Connection, value: str) -> None:
    connection.execute(sql.SQL("ALTER SYSTEM SET synchronous_standby_names = {}").format(sql.Literal(value)))
    connection.execute("SELECT pg_reload_conf()")


def _raise_alarm(config: WatchConfig, *, since: float, alone: bool) -> None:
    config.alarm_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = config.alarm_file.with_suffix(".tmp")
    temporary.write_text(json.dumps({"since": since, "policy": config.policy, "alone": alone}))
    temporary.replace(config.alarm_file)


def watch(config: WatchConfig, *, interval_s: float = 1.0) -> None:
    state = WatchState()
    connection: psycopg.Connection | None = None
    last = ""
    while True:
        try:
            if connection is None or connection.closed:
                connection = psycopg.connect(config.admin_conninfo, autocommit=True, connect_timeout=5)
            found = check(connection, config, state, now=time.monotonic())
        except psycopg.Error as error:  # no primary at the moment (a failover): look again
            found = f"no primary ({type(error).__name__})"
            if connection is not None:
                with contextlib.suppress(psycopg.Error):
                    connection.close()
            connection = None
        if found != last:
            log.info("standby watcher: %s", found)
            last = found
        time.sleep(interval_s)


def main(argv: list[str]) -> int:
    if argv[1:] != ["watch"]:
        print("usage: python -m ebike_registry.standby watch", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ebike_registry.settings")
    import django

    django.setup()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        watch(WatchConfig.from_settings())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
