"""Run the terminal gateway: GT06 (TCP), JT/T 808 (TCP) and OsmAnd (HTTP) in one asyncio process."""

import dataclasses
import json
import logging
import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from tracking.gateway import db
from tracking.gateway.config import SPEC_VARIABLE, GatewayConfig


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
        if config.event_loop not in ("auto", "uvloop", "asyncio"):
            raise CommandError(f"GATEWAY_EVENT_LOOP must be auto, uvloop or asyncio, not {config.event_loop!r}")
        spec = {
            "config": dataclasses.asdict(config),
            "conninfo": db.conninfo(),
            "log_level": logging.getLevelName(logging.getLogger().getEffectiveLevel()),
        }
        connections.close_all()
        # The gateway runs without Django (tracking/gateway/__main__.py): same pid, a fresh process
        # image. sys.stdout/stderr are flushed first so nothing written so far is lost.
        sys.stdout.flush()
        sys.stderr.flush()
        env = {**os.environ, SPEC_VARIABLE: json.dumps(spec)}
        os.chdir(settings.BASE_DIR)
        os.execve(sys.executable, [sys.executable, "-m", "tracking.gateway"], env)  # noqa: S606 - our own module
