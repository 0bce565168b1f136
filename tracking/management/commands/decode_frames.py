"""Decode captured terminal frames: JSON lines on stdin, one JSON line out each (docs/architecture.md#decode_frames)."""

import io
import sys

from django.core.management.base import BaseCommand, CommandError

from tracking.protocols import cli


class Command(BaseCommand):
    help = "Decode GT06 / JT/T 808 / OsmAnd messages given as JSON lines on stdin; writes one JSON line each."

    def add_arguments(self, parser):
        parser.add_argument("--input", default="-", help="JSON lines file to read instead of stdin ('-')")

    def handle(self, *args, **options):
        if options["input"] == "-":
            # Undecodable bytes become U+FFFD, so such a line reports "not JSON" instead of a traceback.
            raw = getattr(sys.stdin, "buffer", None)
            lines = io.TextIOWrapper(raw, encoding="utf-8", errors="replace") if raw is not None else sys.stdin
            status = cli.run(lines, self.stdout)
        else:
            with open(options["input"], encoding="utf-8", errors="replace") as lines:
                status = cli.run(lines, self.stdout)
        if status:
            raise CommandError("input is not JSON lines", returncode=status)
