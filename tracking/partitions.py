"""Daily partitions of tracking_ping: created ahead of time, dropped after the retention period.

Partition names carry their day (tracking_ping_p20261128). Creating a partition for a range that
the default partition already holds rows for would fail, so rows are moved out of the default
partition into the new one in the same transaction.
"""

import datetime
import re
from typing import Any

from django.db import connection as default_connection
from django.db import transaction

PARTITION_RE = re.compile(r"^tracking_ping_p(\d{8})$")
DAYS_AHEAD = 7
DAYS_BEHIND = 2


def partition_name(day: datetime.date) -> str:
    return f"tracking_ping_p{day:%Y%m%d}"


def partitions_existing(*, connection: Any = None) -> list[datetime.date]:
    connection = connection or default_connection
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'tracking_ping'"
        )
        names = [row[0] for row in cursor.fetchall()]
    days = []
    for name in names:
        match = PARTITION_RE.match(name)
        if match:
            days.append(datetime.datetime.strptime(match.group(1), "%Y%m%d").date())  # noqa: DTZ007
    return sorted(days)


def partition_create(day: datetime.date, *, connection: Any = None) -> bool:
    """Create the partition for one UTC day; False if it already exists."""
    connection = connection or default_connection
    if day in partitions_existing(connection=connection):
        return False
    start = datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)
    end = start + datetime.timedelta(days=1)
    name = partition_name(day)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE tracking_ping_default IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"CREATE TABLE {name} (LIKE tracking_ping INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(
            f"WITH moved AS (DELETE FROM tracking_ping_default WHERE device_time >= %s AND device_time < %s "  # noqa: S608
            f"RETURNING *) INSERT INTO {name} SELECT * FROM moved",
            [start, end],
        )
        cursor.execute(f"ALTER TABLE tracking_ping ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [start, end])
        grants_copy(cursor, to_table=name)
    return True


def grants_copy(cursor: Any, *, to_table: str, from_table: str = "tracking_ping") -> None:
    """Give a new partition the privileges the runtime roles hold on the parent table (declared in
    tracking.db_privileges, granted after every migrate): a partition created later by the owner is
    readable and writable by them like the ones migrate saw, and no more."""
    cursor.execute(
        "SELECT a.grantee::regrole::text, a.privilege_type FROM pg_class c, aclexplode(c.relacl) a "
        "WHERE c.oid = %s::regclass AND a.grantee NOT IN (0, c.relowner)",
        [from_table],
    )
    for role, privilege in cursor.fetchall():
        cursor.execute(f"GRANT {privilege} ON TABLE {to_table} TO {role}")


def partitions_ensure(*, today: datetime.date | None = None, connection: Any = None) -> list[str]:
    """Make sure the partitions from DAYS_BEHIND days ago to DAYS_AHEAD days ahead exist."""
    today = today or datetime.datetime.now(datetime.UTC).date()
    created = []
    for offset in range(-DAYS_BEHIND, DAYS_AHEAD + 1):
        day = today + datetime.timedelta(days=offset)
        if partition_create(day, connection=connection):
            created.append(partition_name(day))
    return created
