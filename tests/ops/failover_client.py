"""The Django side of the failover drill (tests/ops/failover_drill.py), run as a subprocess with
DATABASE_URL set to the pair's multi-host URL, like the web server and Celery are.

    python tests/ops/failover_client.py seed N        the drill's clerk and N GT06 terminals; prints
                                                      one JSON line {"clerk": ..., "imeis": [...]}
    python tests/ops/failover_client.py register NAME STOP_FILE
                                                      registers bikes as clerk NAME until STOP_FILE
                                                      exists; one JSON line per attempt
    python tests/ops/failover_client.py seed_duty N URL
                                                      the station's webhook URL, a duty officer and N
                                                      bikes with terminals fitted; one JSON line
    python tests/ops/failover_client.py sos RATE STOP_FILE TERMINAL_ID...
                                                      one SOS per terminal, RATE a second, through the
                                                      HTTP ingestion's entry point; one JSON line per
                                                      attempt (tests/ops/celery_failover_drill.py)

Each registration is a counter's request: `close_old_connections()` before and after, as Django's
request cycle does (with CONN_HEALTH_CHECKS), then the same service the counter page calls. Nothing
here retries or picks a server: reconnecting to whichever host is the primary is libpq's job
(target_session_attrs=read-write). A line {"ok": FRAME, ...} is printed only after the service
returned, that is after the commit; {"error": ...} lines are attempts the client saw fail.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ebike_registry.settings")
    import django

    django.setup()
    command = sys.argv[1]
    if command == "seed":
        return seed(int(sys.argv[2]))
    if command == "register":
        return register(sys.argv[2], Path(sys.argv[3]))
    if command == "seed_duty":
        return seed_duty(int(sys.argv[2]), sys.argv[3])
    if command == "sos":
        return sos(float(sys.argv[2]), Path(sys.argv[3]), [int(arg) for arg in sys.argv[4:]])
    print(f"unknown command {command}", file=sys.stderr)
    return 2


def seed(terminals: int) -> int:
    from tests import factories
    from tests.tracking import factories as tracking_factories
    from tracking.services import terminal_register

    clerk = factories.user("clerk")
    run = int(time.time()) % 100_000
    imeis = [
        terminal_register(imei=tracking_factories.imei(run * 10 + n), protocol="gt06").imei for n in range(terminals)
    ]
    print(json.dumps({"clerk": clerk.username, "imeis": imeis}), flush=True)
    return 0


def register(clerk_name: str, stop_file: Path) -> int:
    from django.db import close_old_connections

    from accounts.models import User
    from tests import factories
    from vehicles.services.registration import vehicle_register

    clerk = None
    while clerk is None:  # the drill may kill the primary before this first query, too
        try:
            clerk = User.objects.get(username=clerk_name)
        except Exception as error:
            print(json.dumps({"error": type(error).__name__, "started": time.time(), "at": time.time()}), flush=True)
            close_old_connections()
            time.sleep(0.1)
    serial = int(time.time() * 10) % 10_000_000 * 10
    while not stop_file.exists():
        serial += 1
        vehicle = factories.vehicle_data(frame_number=factories.frame_number(serial))
        started = time.time()
        close_old_connections()
        try:
            vehicle_register(clerk=clerk, owner=factories.owner_data(), vehicle=vehicle, insurance_consent=True)
        except Exception as error:  # the drill counts every failure the client sees
            print(json.dumps({"error": type(error).__name__, "frame": vehicle["frame_number"], "started": started,
                              "at": time.time()}), flush=True)  # fmt: skip
            time.sleep(0.1)
        else:
            print(json.dumps({"ok": vehicle["frame_number"], "started": started, "at": time.time()}), flush=True)
        finally:
            close_old_connections()
    return 0


def seed_duty(bikes: int, webhook_url: str) -> int:
    from accounts.models import Station
    from tests import factories
    from tests.tracking import factories as tracking_factories

    station = factories.station()
    Station.objects.filter(pk=station.pk).update(webhook_url=webhook_url)
    officer = factories.user("officer")  # the station's duty officer: every rescue call notifies them
    clerk = factories.user("clerk")
    terminals = [tracking_factories.terminal(clerk=clerk).pk for _ in range(bikes)]
    print(json.dumps({"officer": officer.pk, "terminals": terminals}), flush=True)
    return 0


def sos(rate: float, stop_file: Path, terminal_ids: list[int]) -> int:
    """Each terminal presses its SOS button once, `rate` terminals a second, through ingest_fixes
    (what POST /api/v1/pings calls). A failed attempt is sent again, the same fix, as a terminal
    resends what was not acknowledged; {"ok": TERMINAL, ...} only after the commit."""
    import datetime

    from django.db import close_old_connections

    from tracking.ingest import Incoming, ingest_fixes
    from tracking.protocols.common import Fix

    for terminal_id in terminal_ids:
        when = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        fix = Fix(time=when, latitude=39.88, longitude=117.74, valid=True, speed_kmh=0.0, alarms=("sos",))
        while not stop_file.exists():
            started = time.time()
            close_old_connections()
            try:
                ingest_fixes([Incoming(terminal_id, fix)])
            except Exception as error:  # the drill counts every failure the client sees
                print(json.dumps({"error": type(error).__name__, "terminal": terminal_id, "started": started,
                                  "at": time.time()}), flush=True)  # fmt: skip
                time.sleep(0.1)
                continue
            finally:
                close_old_connections()
            print(json.dumps({"ok": terminal_id, "started": started, "at": time.time()}), flush=True)
            break
        if stop_file.exists():
            break
        time.sleep(max(0.0, 1 / rate - (time.time() - started)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
