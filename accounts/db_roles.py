"""What the runtime database roles may do, table by table, applied after every migrate.

The owner role owns every table; the web server and Celery connect as the app role, the gateway as
the gateway role (settings.DATABASE_RUNTIME_ROLES). Neither owns anything, so neither can ALTER,
DROP, TRUNCATE or switch off a trigger. Each app declares its tables in `<app>/db_privileges.py`
(`APP` and `GATEWAY`: table name -> Grant; a delete says why, append-only tables say so), and a
table nobody declared gets nothing (`privileges_undeclared()` fails the tests). `privileges_apply`
revokes everything and grants the declarations again from post_migrate.
See docs/architecture.md#database-roles.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from ebike_registry.app_declarations import app_declarations

logger = logging.getLogger(__name__)

ROLE_KEYS = ("app", "gateway")
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")


@dataclass(frozen=True)
class Grant:
    privileges: frozenset[str]
    # Column-level grant (only these columns), for a role that must not read the rest of a row.
    columns: tuple[str, ...] = ()
    # Why the role may DELETE rows (required with DELETE: a table holding a record never gets it).
    reason: str = ""

    def __post_init__(self) -> None:
        unknown = set(self.privileges) - set(PRIVILEGES)
        if unknown:
            raise ValueError(f"unknown privileges {sorted(unknown)}")
        if "DELETE" in self.privileges and not self.reason:
            raise ValueError("a DELETE grant must say why the application deletes from the table")

    def sql(self, table: str, role: str, quote: Any) -> str:
        columns = f" ({', '.join(quote(c) for c in self.columns)})" if self.columns else ""
        privileges = ", ".join(f"{p}{columns}" for p in PRIVILEGES if p in self.privileges)
        return f"GRANT {privileges} ON TABLE {quote(table)} TO {quote(role)}"


READ = Grant(frozenset({"SELECT"}))
# Audit trail, registration history, report transitions, claim steps: rows are added, never changed.
APPEND_ONLY = Grant(frozenset({"SELECT", "INSERT"}))
READ_WRITE = Grant(frozenset({"SELECT", "INSERT", "UPDATE"}))
INSERT_ONLY = Grant(frozenset({"INSERT"}))


def deletes(reason: str) -> Grant:
    """SELECT, INSERT, UPDATE and DELETE, for a table whose rows the application removes itself."""
    return Grant(frozenset(PRIVILEGES), reason=reason)


def columns(*names: str, privileges: Iterable[str] = ("SELECT",)) -> Grant:
    return Grant(frozenset(privileges), columns=names)


def runtime_roles() -> dict[str, str]:
    """Role key ("app", "gateway") -> PostgreSQL role name, from settings.DATABASE_RUNTIME_ROLES."""
    return {key: settings.DATABASE_RUNTIME_ROLES[key]["USER"] for key in ROLE_KEYS}


def privileges_declared(app_configs: Iterable[Any] | None = None) -> dict[str, dict[str, Grant]]:
    """Role key -> table -> Grant, collected from every installed app's db_privileges module."""
    declared: dict[str, dict[str, Grant]] = {key: {} for key in ROLE_KEYS}
    owners: dict[tuple[str, str], str] = {}
    for module_name, module in app_declarations("db_privileges", app_configs):
        for key in ROLE_KEYS:
            grants: Mapping[str, Grant] = getattr(module, key.upper(), {})
            for table, grant in grants.items():
                if (key, table) in owners:
                    raise ValueError(f"{table} ({key}) is declared by {owners[key, table]} and {module_name}")
                owners[key, table] = module_name
                declared[key][table] = grant
    return declared


def _owned_tables(cursor: Any) -> dict[str, list[str]]:
    """The current role's tables in the public schema -> their partitions (a plain table: [])."""
    cursor.execute(
        """
        SELECT c.relname, coalesce(array_agg(p.relname ORDER BY p.relname) FILTER (WHERE p.relname IS NOT NULL), '{}')
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
          LEFT JOIN pg_inherits i ON i.inhparent = c.oid
          LEFT JOIN pg_class p ON p.oid = i.inhrelid
         WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND pg_has_role(c.relowner, 'USAGE')
         GROUP BY c.relname
        """
    )
    return {name: list(parts) for name, parts in cursor.fetchall()}


def _sequences_of(cursor: Any, tables: list[str]) -> dict[str, list[str]]:
    """Sequences owned by a column of each table (serial and identity columns)."""
    cursor.execute(
        """
        SELECT t.relname, s.relname
          FROM pg_depend d
          JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
          JOIN pg_class t ON t.oid = d.refobjid
          JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public'
         WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
           AND d.deptype IN ('a', 'i') AND t.relname = ANY(%s)
        """,
        [tables],
    )
    result: dict[str, list[str]] = {}
    for table, sequence in cursor.fetchall():
        result.setdefault(table, []).append(sequence)
    return result


def privileges_undeclared(*, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """The owner's tables no app declared for the app role (they get no privileges at all)."""
    with connections[using].cursor() as cursor:
        tables = _owned_tables(cursor)
    return sorted(set(tables) - set(privileges_declared()["app"]))


def privileges_apply(*, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Revoke what the runtime roles hold on the owner's tables, grant the declarations again.

    Returns the statements run. Roles missing from the cluster are skipped with a warning
    (scripts/db.sh creates them). One transaction: no moment with half the grants."""
    connection = connections[using]
    quote = connection.ops.quote_name
    declared = privileges_declared()
    statements: list[str] = []
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", [list(runtime_roles().values())])
        existing = {row[0] for row in cursor.fetchall()}
        tables = _owned_tables(cursor)
        sequences = _sequences_of(cursor, list(tables))
        for key, role in runtime_roles().items():
            if role not in existing:
                logger.warning("database role %s (%s) does not exist: run scripts/db.sh; no grants for it", role, key)
                continue
            for table, partitions in tables.items():
                for relation in [table, *partitions]:
                    statements.append(f"REVOKE ALL ON TABLE {quote(relation)} FROM {quote(role)}")
                statements.extend(
                    f"REVOKE ALL ON SEQUENCE {quote(sequence)} FROM {quote(role)}"
                    for sequence in sequences.get(table, [])
                )
            for table, grant in sorted(declared[key].items()):
                if table not in tables:
                    logger.info("db_privileges: table %s declared for %s does not exist (yet)", table, key)
                    continue
                statements.extend(grant.sql(relation, role, quote) for relation in [table, *tables[table]])
                if "INSERT" in grant.privileges:
                    statements.extend(
                        f"GRANT USAGE ON SEQUENCE {quote(sequence)} TO {quote(role)}"
                        for sequence in sequences.get(table, [])
                    )
        for statement in statements:
            cursor.execute(statement)
    return statements


def privileges_apply_after_migrate(sender: Any, *, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """post_migrate receiver. `flush` (test teardown) sends post_migrate without a plan and changes
    no table: nothing to do then."""
    if "plan" not in kwargs:
        return
    statements = privileges_apply(using=using)
    if kwargs.get("verbosity", 1) >= 2:
        print(f"  Granted the runtime roles their privileges ({len(statements)} statements)")
