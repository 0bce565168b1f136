"""Keeping trajectories only as long as allowed (PIPL: sensitive personal data, DOMAIN.md §8).

Day partitions older than PING_RETENTION_DAYS are dropped whole — unless they hold positions under
legal hold (a vehicle with an open LegalHold, or reported stolen): then only the other terminals'
rows are deleted and the partition stays until the hold is released.
"""

import datetime
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q

from tracking.models import LegalHold, TerminalInstallation
from tracking.partitions import partition_name, partitions_existing
from vehicles.models import Vehicle

logger = logging.getLogger(__name__)


@dataclass
class RetentionResult:
    dropped: list[str] = field(default_factory=list)
    trimmed: dict[str, int] = field(default_factory=dict)  # partition -> rows deleted, hold kept it
    default_rows_deleted: int = 0
    cell_rows_deleted: int = 0


def held_terminal_ids() -> list[int]:
    """Terminals whose positions must be kept: ever fitted to a vehicle under hold or stolen."""
    held_vehicles = Vehicle.objects.filter(
        Q(status=Vehicle.Status.STOLEN) | Q(legal_holds__in=LegalHold.objects.filter(released_at__isnull=True))
    ).values("pk")
    return sorted(
        set(TerminalInstallation.objects.filter(vehicle__in=held_vehicles).values_list("terminal_id", flat=True))
    )


def retention_apply(*, today: datetime.date | None = None, days: int | None = None) -> RetentionResult:
    days = settings.PING_RETENTION_DAYS if days is None else days
    today = today or datetime.datetime.now(datetime.UTC).date()
    cutoff = today - datetime.timedelta(days=days)
    held = held_terminal_ids()
    result = RetentionResult()
    for day in partitions_existing():
        if day >= cutoff:
            continue
        name = partition_name(day)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {name} WHERE terminal_id = ANY(%s))", [held])  # noqa: S608
            if cursor.fetchone()[0]:
                cursor.execute(f"DELETE FROM {name} WHERE terminal_id <> ALL(%s)", [held])  # noqa: S608
                result.trimmed[name] = cursor.rowcount
                continue
            cursor.execute(f"ALTER TABLE tracking_ping DETACH PARTITION {name}")
            cursor.execute(f"DROP TABLE {name}")
            result.dropped.append(name)
    cutoff_time = datetime.datetime.combine(cutoff, datetime.time(), tzinfo=datetime.UTC)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM tracking_ping_default WHERE device_time < %s AND terminal_id <> ALL(%s)", [cutoff_time, held]
        )
        result.default_rows_deleted = cursor.rowcount
        # The cells say where the pings were: they go with them.
        cursor.execute("DELETE FROM tracking_pingcell WHERE hour < %s AND terminal_id <> ALL(%s)", [cutoff_time, held])
        result.cell_rows_deleted = cursor.rowcount
    if result.dropped or result.trimmed or result.default_rows_deleted:
        logger.info(
            "retention: dropped %s, kept under hold %s, %d old rows deleted from the default partition",
            result.dropped,
            result.trimmed,
            result.default_rows_deleted,
        )
    return result
