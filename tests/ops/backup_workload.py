"""Writes a set of registrations, theft reports and pings through the project's services, into the
database DATABASE_URL names (a throwaway cluster's, for the backup/restore test and drill).

    DATABASE_URL=postgis://postgres@127.0.0.41:PORT/app .venv/bin/python -m tests.ops.backup_workload \\
        --tag a --first 100 --count 20

`--first` makes this run's identifiers (frame numbers, IMEIs, ID numbers, user names) distinct from
earlier runs' in the same database; the counters of tests/factories.py restart in every process.
Prints one JSON line: what it wrote.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tag", required=True, help="names this run's accounts")
    parser.add_argument("--first", type=int, required=True, help="first serial of this run's identifiers")
    parser.add_argument("--count", type=int, default=10, help="registrations (each with a terminal)")
    parser.add_argument("--pings", type=int, default=10, help="pings per terminal")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ebike_registry.settings")
    import django

    django.setup()
    from ebike_registry.celery import app as celery_app

    # Whatever a service hands to Celery runs here, against this database, not on a shared worker.
    celery_app.conf.task_always_eager = True
    print(json.dumps(write(tag=args.tag, first=args.first, count=args.count, pings=args.pings)))


def write(*, tag: str, first: int, count: int, pings: int) -> dict[str, int]:
    from django.utils import timezone

    from cases.workflow.services import VehicleQuery, report_take
    from tests import factories
    from tests.tracking.factories import fix, imei
    from tracking.ingest import Incoming, ingest_fixes
    from tracking.services import terminal_bind, terminal_register
    from vehicles.services.registration import vehicle_register

    clerk = factories.user("clerk", username=f"backup-clerk-{tag}")
    officer = factories.user("officer", username=f"backup-officer-{tag}")
    now = timezone.now()
    base = now.replace(microsecond=0) - datetime.timedelta(hours=2)
    written = {"registrations": 0, "reports": 0, "pings": 0}
    incoming = []
    for i in range(count):
        serial = first + i
        registration = vehicle_register(
            clerk=clerk,
            owner=factories.owner_data(
                id_number=factories.resident_id(birth=f"19{60 + serial // 1000 % 40}0315", seq=serial % 1000),
                phone=factories.phone(serial),
            ),
            vehicle=factories.vehicle_data(
                frame_number=factories.frame_number(serial), motor_number=f"YD48V{serial:08d}"
            ),
            insurance_consent=True,
        )
        written["registrations"] += 1
        terminal = terminal_register(imei=imei(serial), protocol="gt06")
        terminal_bind(clerk=clerk, terminal_id=terminal.pk, vehicle_id=registration.vehicle.pk, owner_consent=True)
        incoming += [
            Incoming(terminal.pk, fix(minute, base=base, lat=39.88 + i / 1000, lon=117.73 + minute / 1000))
            for minute in range(pings)
        ]
        if i % 2 == 0:
            report_take(
                user=officer,
                channel="walk_in",
                vehicle_query=VehicleQuery(frame_number=registration.vehicle.frame_number),
                reporter_name="赵敏",
                reporter_phone=factories.phone(serial),
                last_seen_at=now - datetime.timedelta(hours=5),
                missing_at=now - datetime.timedelta(hours=1),
                place_address="玉田县亮甲店镇中学门口",
            )
            written["reports"] += 1
    result = ingest_fixes(incoming)
    if result.stored != len(incoming):
        sys.exit(f"ingest stored {result.stored} of {len(incoming)} pings: {result.rejected[:3]}")
    written["pings"] = result.stored
    return written


if __name__ == "__main__":
    main()
