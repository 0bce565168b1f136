"""Run the terminal gateway: GT06 (TCP), JT/T 808 (TCP) and OsmAnd (HTTP) in one asyncio process."""

import asyncio

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from tracking.gateway.config import GatewayConfig
from tracking.gateway.server import serve


def loop_factory(choice: str):
    """uvloop's event loop when asked for (or "auto" and installed), else asyncio's own."""
    if choice not in ("auto", "uvloop", "asyncio"):
        raise CommandError(f"GATEWAY_EVENT_LOOP must be auto, uvloop or asyncio, not {choice!r}")
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise CommandError("GATEWAY_EVENT_LOOP is uvloop but uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


class Command(BaseCommand):
    help = (
        "Serve GT06, JT/T 808 and OsmAnd terminals; positions are acknowledged only after they are committed. "
        "A port of 0 switches that listener off. Defaults come from the GATEWAY_* settings."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", help="listen address (GATEWAY_HOST, default 127.0.0.1)")
        parser.add_argument("--gt06-port", type=int, help="GT06 / Concox TCP port (GATEWAY_GT06_PORT, 5023)")
        parser.add_argument("--jt808-port", type=int, help="JT/T 808 TCP port (GATEWAY_JT808_PORT, 5015)")
        parser.add_argument("--osmand-port", type=int, help="OsmAnd HTTP port (GATEWAY_OSMAND_PORT, 5055)")
        parser.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (GATEWAY_METRICS_PORT, 9105)")

    def handle(self, *args, **options):
        config = GatewayConfig.from_settings(
            host=options["host"],
            gt06_port=options["gt06_port"],
            jt808_port=options["jt808_port"],
            osmand_port=options["osmand_port"],
            metrics_port=options["metrics_port"],
        )
        connections.close_all()  # the gateway uses its own async connections, never the ORM's
        try:
            with asyncio.Runner(loop_factory=loop_factory(config.event_loop)) as runner:
                status = runner.run(serve(config))
        except OSError as error:  # port in use, address not available
            raise CommandError(f"gateway could not start: {error}") from error
        if status:
            raise CommandError("gateway stopped after an internal failure", returncode=status)
