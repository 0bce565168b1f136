"""Helpers for the sighting and duty-room tests: bikes with terminals, owners with logins, a local
webhook receiver (never the internet), and the outbox run the beat schedule makes.
"""

import datetime
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.utils import timezone

from accounts.models import User
from cases.models import TheftReport
from cases.workflow.services import VehicleQuery, report_take
from tests import factories
from tests.tracking import factories as tf
from tracking import tasks
from tracking.ingest import BareAlarm, Incoming, ingest_fixes
from tracking.models import Terminal
from vehicles.models import Owner


def report_theft(officer: User, terminal: Terminal) -> TheftReport:
    """A walk-in report for the bike the terminal is fitted to (marks it stolen)."""
    now = timezone.now()
    return report_take(
        user=officer,
        channel="walk_in",
        vehicle_query=VehicleQuery(frame_number=terminal.vehicle.frame_number),
        reporter_name="王秀英",
        reporter_phone="13812345678",
        last_seen_at=now - datetime.timedelta(hours=10),
        missing_at=now - datetime.timedelta(hours=2),
        place_address="玉田县无终街道兴隆路超市门口",
    )


def owner_login(terminal: Terminal) -> User:
    """A login for the owner of the terminal's bike."""
    user = factories.user("owner", station_code=None)
    Owner.objects.filter(pk=terminal.vehicle.owner_id).update(user=user)
    return user


def send(terminal: Terminal, *fixes, bare: tuple[BareAlarm, ...] = ()) -> None:
    """Positions (and bare alarms) through the real ingestion path, then the outbox run."""
    ingest_fixes([Incoming(terminal.pk, fix) for fix in fixes], bare_alarms=bare)
    tasks.process_outbox()


def path(base: datetime.datetime, minutes: range, *, step_deg: float = 0.002, **kwargs) -> list:
    """Fixes one a minute moving east about 170 m a minute (step 0.002° of longitude)."""
    return [tf.fix(m, base=base, lon=117.7390 + step_deg * i, **kwargs) for i, m in enumerate(minutes)]


class WebhookReceiver:
    """A tiny HTTP server on 127.0.0.1 that records JSON POSTs and answers with scripted statuses."""

    def __init__(self, statuses: list[int] | None = None, delay: float = 0.0) -> None:
        self.received: list[dict] = []
        self.bodies: list[bytes] = []
        self.headers: list[dict] = []
        self.statuses = list(statuses or [])
        self.delay = delay
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                receiver.bodies.append(raw)
                receiver.received.append(json.loads(raw))
                receiver.headers.append(dict(self.headers))
                if receiver.delay:
                    threading.Event().wait(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                try:
                    self.send_response(status)
                    self.end_headers()
                except OSError:  # the client timed out and went away
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "WebhookReceiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
