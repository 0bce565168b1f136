"""The runtime database roles cannot rewrite the records (issue 16, point 4).

Every test connects to the real test database: as the app role (web server, Celery) and as the
gateway role (terminal gateway), with the passwords scripts/db.sh gave them, and shows what
PostgreSQL refuses them; the grants come from accounts.db_roles, applied by the test database's
migrate like any other.
"""

import contextlib
import datetime
import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from django.conf import settings
from django.db import connection, connections, transaction
from rest_framework.test import APIClient

from accounts.db_roles import APPEND_ONLY, privileges_declared, privileges_undeclared, runtime_roles
from accounts.models import AuditEntry
from tests import factories
from tracking.partitions import partition_create, partition_name
from vehicles.models import RegistrationEvent, Vehicle

pytestmark = pytest.mark.django_db

# Rows that are added and never changed. Each one is refused every rewrite by both runtime roles.
APPEND_ONLY_TABLES = [
    "accounts_auditentry",
    "accounts_auditseal",
    "accounts_securitypolicy",
    "vehicles_registrationevent",
    "cases_reporttransition",
    "cases_claimstep",
    "tracking_ping",
]
REWRITES = {
    "ALTER": "ALTER TABLE {t} ADD COLUMN tampered integer",
    "DISABLE TRIGGER": "ALTER TABLE {t} DISABLE TRIGGER ALL",
    "TRUNCATE": "TRUNCATE {t}",
    "DROP": "DROP TABLE {t} CASCADE",
    "DELETE": "DELETE FROM {t}",
    "UPDATE": "UPDATE {t} SET {c} = {c}",
}


def role_conninfo(key: str) -> dict[str, str]:
    """The test database, as the runtime role `key` ("app" or "gateway") logs in."""
    role = settings.DATABASE_RUNTIME_ROLES[key]
    test_db = connection.settings_dict
    return {
        "host": test_db["HOST"] or "127.0.0.1",
        "port": str(test_db["PORT"] or 5432),
        "dbname": test_db["NAME"],
        "user": role["USER"],
        "password": role["PASSWORD"],
    }


@pytest.fixture(scope="module")
def as_role(django_db_setup, django_db_blocker) -> Iterator[dict[str, psycopg.Connection]]:
    with django_db_blocker.unblock():
        connections_by_role = {
            key: psycopg.connect(**role_conninfo(key), autocommit=True) for key in ("app", "gateway")
        }
    yield connections_by_role
    for conn in connections_by_role.values():
        conn.close()


def refused(conn: psycopg.Connection, sql: str) -> str:
    """Run `sql` in a transaction that is rolled back whatever happens; the refusal's message."""
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(sql)
    except psycopg.errors.InsufficientPrivilege as error:
        return str(error)
    pytest.fail(f"{conn.info.user} was allowed: {sql}")


def first_column(table: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "ORDER BY ordinal_position LIMIT 1",
            [table],
        )
        return cursor.fetchone()[0]


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
@pytest.mark.parametrize("role", ["app", "gateway"])
@pytest.mark.parametrize("what", list(REWRITES))
def test_runtime_roles_cannot_rewrite_an_append_only_table(as_role, role, table, what):
    sql = REWRITES[what].format(t=table, c=first_column(table))
    message = refused(as_role[role], sql)
    # Refused by the privileges themselves (not owner, no such grant), not merely by the trigger.
    assert "must be owner" in message or "permission denied" in message, message


def test_the_app_role_appends_to_the_audit_trail_and_reads_it(as_role):
    conn = as_role["app"]
    with conn.transaction(force_rollback=True):
        row = conn.execute(
            "INSERT INTO accounts_auditentry (at, action, object_type, object_id, query, reason) "
            "VALUES (now(), 'search', 'vehicle', '1', '{}', 'test') RETURNING id"
        ).fetchone()
        assert conn.execute("SELECT action FROM accounts_auditentry WHERE id = %s", row).fetchone() == ("search",)


def test_only_the_owner_writes_audit_seals(as_role):
    # The app role may read the chain (verify_audit from a web container) but never extend it.
    sql = (
        "INSERT INTO accounts_auditseal (entry_id, fields, content_hash, previous_hash, chain_hash, sealed_at) "
        "VALUES (1, '{id}', 'a', 'b', 'c', now())"
    )
    assert "permission denied" in refused(as_role["app"], sql)
    with as_role["app"].transaction(force_rollback=True):
        as_role["app"].execute("SELECT count(*) FROM accounts_auditseal")


def test_the_owners_jobs_go_to_the_maintenance_queue():
    # Their worker connects as the owner; run as the app role they would be refused (test above).
    for task in (
        "tracking.tasks.maintain_partitions",
        "tracking.tasks.apply_retention",
        "accounts.tasks.seal_audit_trail",
    ):
        assert settings.CELERY_TASK_ROUTES[task] == {"queue": "maintenance"}


def test_the_gateway_cannot_read_personal_data_or_the_audit_trail(as_role):
    conn = as_role["gateway"]
    for sql in [
        "SELECT name, id_number, phone FROM vehicles_owner",
        "SELECT * FROM accounts_auditentry",
        "SELECT * FROM accounts_user",
        "SELECT frame_number FROM vehicles_vehicle",
        "SELECT * FROM cases_theftreport",
    ]:
        assert "permission denied" in refused(conn, sql)
    # What ingestion needs of a bike: whether it is stolen.
    with conn.transaction(force_rollback=True):
        conn.execute("SELECT id, status FROM vehicles_vehicle LIMIT 1")


def test_only_declared_tables_let_a_runtime_role_delete_and_none_truncates_or_adds_triggers():
    declared = privileges_declared()
    with connection.cursor() as cursor:
        for key, role in runtime_roles().items():
            cursor.execute(
                "SELECT c.relname, has_table_privilege(%s, c.oid, 'DELETE'), "
                "has_table_privilege(%s, c.oid, 'TRUNCATE, TRIGGER, REFERENCES') "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public' "
                "WHERE c.relkind IN ('r', 'p')",
                [role, role],
            )
            rows = cursor.fetchall()
            deletable = {table for table, delete, _ in rows if delete}
            existing = {table for table, _, _ in rows}
            assert deletable == {t for t, g in declared[key].items() if "DELETE" in g.privileges and t in existing}
            assert all(declared[key][t].reason for t in deletable)
            assert not deletable & set(APPEND_ONLY_TABLES)
            assert [table for table, _, other in rows if other] == []
    # The app role's deletions, each with its reason in code: sessions, link rows, rollups, estimates.
    assert "vehicles_vehicle" not in {t for t, g in declared["app"].items() if "DELETE" in g.privileges}
    assert {"accounts_auditentry", "vehicles_registrationevent", "cases_claimstep", "cases_reporttransition"} <= {
        t for t, g in declared["app"].items() if g == APPEND_ONLY
    }


def test_every_table_has_declared_privileges():
    # A new model's table (or a new library's) must say what the runtime roles may do with it, in
    # its app's db_privileges.py (Django's and the libraries' tables: accounts/db_privileges.py).
    assert privileges_undeclared() == []


def test_the_gateway_reaches_only_the_ingestion_tables():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "AND n.nspname = 'public' JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
            "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> 'spatial_ref_sys' "
            "AND has_column_privilege(%s, c.oid, a.attnum, 'SELECT, INSERT, UPDATE')",
            [runtime_roles()["gateway"]],
        )
        reachable = {row[0] for row in cursor.fetchall()}
    assert reachable == {
        "tracking_terminal",
        "tracking_ping",
        "tracking_pingcell",
        "tracking_lastposition",
        "tracking_alarm",
        "tracking_ingestoutbox",
        "tracking_terminalsession",  # its sessions: opened, watched, ended (tracking.gateway.leases)
        "tracking_gatewaynode",  # each worker's lease
        "vehicles_vehicle",  # id and status only (test above)
    }


def test_runtime_roles_own_nothing_and_hold_no_power():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.rolname, r.rolsuper OR r.rolcreatedb OR r.rolcreaterole OR r.rolbypassrls, "
            "(SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid), "
            "(SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid) "
            "FROM pg_roles r WHERE r.rolname = ANY(%s) ORDER BY 1",
            [list(runtime_roles().values())],
        )
        rows = cursor.fetchall()
    assert rows == sorted((role, False, 0, 0) for role in runtime_roles().values())


def test_a_partition_the_owner_creates_later_is_usable_by_the_runtime_roles_only_as_declared():
    day = datetime.date(2099, 1, 1)
    assert partition_create(day)
    name = partition_name(day)
    roles = runtime_roles()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT has_table_privilege(%(app)s, %(t)s, 'SELECT'), has_table_privilege(%(app)s, %(t)s, 'INSERT'), "
            "has_table_privilege(%(app)s, %(t)s, 'UPDATE, DELETE, TRUNCATE'), "
            "has_table_privilege(%(gw)s, %(t)s, 'INSERT'), has_table_privilege(%(gw)s, %(t)s, 'DELETE, TRUNCATE'), "
            "pg_get_userbyid(relowner) FROM pg_class WHERE relname = %(t)s",
            {"app": roles["app"], "gw": roles["gateway"], "t": name},
        )
        assert cursor.fetchone() == (True, True, False, True, False, connection.settings_dict["USER"])


@contextlib.contextmanager
def django_connected_as(key: str) -> Iterator[None]:
    """Django's default connection replaced by one that logs in as the runtime role `key`; all its
    work is rolled back at the end (the test's own transaction stays on the owner's connection)."""
    owner = connections["default"]
    role = settings.DATABASE_RUNTIME_ROLES[key]
    runtime = owner.__class__({**owner.settings_dict, "USER": role["USER"], "PASSWORD": role["PASSWORD"]}, "default")
    connections["default"] = runtime
    try:
        with transaction.atomic():
            yield
            transaction.set_rollback(True)
    finally:
        runtime.close()
        connections["default"] = owner


def test_counter_work_runs_over_the_app_roles_connection():
    """A clerk registers a bike and searches for it through the API while Django is connected as the
    app role: the registration, its history event, its plate and the audit row are written."""
    with django_connected_as("app"):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == runtime_roles()["app"]
        client = APIClient()
        client.force_authenticate(factories.user("clerk"))
        payload = factories.registration_payload()
        response = client.post("/api/v1/registrations", payload, format="json")
        assert response.status_code == 201, response.content
        vehicle = Vehicle.objects.get(frame_number=payload["vehicle"]["frame_number"])
        assert RegistrationEvent.objects.filter(vehicle=vehicle).count() == 1
        response = client.get("/api/v1/vehicles", {"frame_number": vehicle.frame_number, "reason": "counter"})
        assert response.status_code == 200, response.content
        assert AuditEntry.objects.filter(object_type__startswith="vehicle").exists()
        # …and the same connection is refused a rewrite of what it just wrote.
        with pytest.raises(Exception, match="permission denied"), transaction.atomic():
            RegistrationEvent.objects.filter(vehicle=vehicle).delete()


# Registration, search, lifecycle, photos, pages, theft reports and their API: what the counters and
# the officers do all day. Tests that commit (TransactionTestCase) are left out: flushing the test
# database between them is TRUNCATE, the owner's privilege.
APP_ROLE_SUITE = ["tests/vehicles", "tests/cases/test_reports.py", "tests/cases/test_api.py"]
# Transactional tests (live servers, threads) empty the database between tests, which the app role
# may not: its grants are what is tested, not its power to TRUNCATE.
APP_ROLE_SKIP = ["tests/vehicles/test_concurrency.py", "tests/vehicles/test_nginx_media.py"]


def test_a_part_of_the_suite_passes_connected_as_the_app_role():
    """The same tests the suite runs as the owner, run again in a pytest of their own that connects
    as ebike_app (tests/conftest.py, TEST_DATABASE_ROLE): the grants are enough for that work."""
    env = {
        **os.environ,
        "TEST_DATABASE_ROLE": "app",
        "TEST_DATABASE_NAME": f"{os.environ.get('TEST_DATABASE_NAME') or 'test_ebike'}_app",
    }
    skips = [f"--ignore={path}" for path in APP_ROLE_SKIP]
    result = subprocess.run(  # noqa: S603 - our own test suite
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--create-db", *skips, *APP_ROLE_SUITE],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-2000:]
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
