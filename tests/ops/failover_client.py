"""The Django side of the failover drill (tests/ops/failover_drill.py), run as a subprocess with
DATABASE_URL set to the pair's multi-host URL, like the web server and Celery are.

    python tests/ops/failover_client.py seed N        the drill's clerk and N GT06 terminals; prints
                                                      one JSON line {"clerk": ..., "imeis": [...]}
    python tests/ops/failover_client.py register NAME STOP_FILE
                                                      registers bikes as clerk NAME until STOP_FILE
                                                      exists; one JSON line per attempt

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


if __name__ == "__main__":
    sys.exit(main())
