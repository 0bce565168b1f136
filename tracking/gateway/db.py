"""psycopg connection parameters for the gateway, built from Django's DATABASES["default"].

The gateway talks to PostgreSQL through its own psycopg AsyncConnections (no ORM on the hot path).
TCP keepalives and a connect timeout make a vanished server visible within seconds instead of the
kernel's two hours.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

# Django-only OPTIONS keys that are not libpq parameters.
_DJANGO_OPTIONS = {"isolation_level", "server_side_binding", "pool", "assume_role", "cursor_factory"}


def conninfo(database: dict[str, Any] | None = None, *, application_name: str = "ebike-gateway") -> str:
    if database is None:
        from django.conf import settings

        database = settings.DATABASES["default"]
    params: dict[str, Any] = {
        "dbname": database.get("NAME") or None,
        "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None,
        "host": database.get("HOST") or None,
        "port": str(database["PORT"]) if database.get("PORT") else None,
        "application_name": application_name,
        "connect_timeout": 5,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }
    options = {key: value for key, value in (database.get("OPTIONS") or {}).items() if key not in _DJANGO_OPTIONS}
    params.update(options)
    return make_conninfo(**{key: value for key, value in params.items() if value is not None})


async def connect(info: str, *, autocommit: bool) -> psycopg.AsyncConnection:
    connection = await psycopg.AsyncConnection.connect(info, autocommit=autocommit)
    # CREATE TEMP TABLE IF NOT EXISTS in every batch would otherwise send a NOTICE each time.
    await connection.execute("SET client_min_messages = warning")
    if not autocommit:
        await connection.commit()
    return connection


async def close_quietly(connection: psycopg.AsyncConnection | None) -> None:
    """Close a connection that may be broken or hung, without waiting on the network."""
    if connection is None:
        return
    with contextlib.suppress(Exception):  # already broken: nothing left to release
        connection.pgconn.finish()
    with contextlib.suppress(Exception):
        await connection.close()
