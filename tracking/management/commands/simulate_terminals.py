"""Simulate a fleet of GT06 or JT/T 808 terminals against a running gateway, over real TCP.

JT/T 808 terminals keep the auth code their first register was given, as real ones keep it in
flash: the codes are kept in a file (`--codes`, mode 0600) from one run to the next, and a
terminal with a code authenticates without registering again (the gateway gives a code once).
"""

import asyncio
import json
import math
import os
import resource
import time
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from stdnum import luhn
from tqdm import tqdm

from tracking.models import Terminal
from tracking.services import terminal_register
from tracking.simulator import SimTerminal, run_fleet

# IMEIs of simulated terminals: a TAC of their own, a serial, the Luhn digit.
SIM_TAC = "35861800"


class Command(BaseCommand):
    help = (
        "Connect N simulated terminals (GT06 or JT/T 808) to the gateway: login / register + authenticate, then "
        "positions along routes around Yutian every INTERVAL seconds for DURATION seconds; prints sent and acked "
        "totals and the ack latency."
    )

    def add_arguments(self, parser):
        parser.add_argument("--protocol", choices=["gt06", "jt808"], default="gt06")
        parser.add_argument("--terminals", type=int, default=10, help="number of terminals (connections)")
        parser.add_argument("--interval", type=float, default=10.0, help="seconds between positions (>= 1)")
        parser.add_argument("--duration", type=float, default=60.0, help="seconds to send positions")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, help="gateway port (default: the protocol's GATEWAY_*_PORT)")
        parser.add_argument("--heartbeat", type=float, default=60.0, help="GT06 heartbeat every N seconds")
        parser.add_argument("--ack-wait", type=float, default=10.0, help="seconds to wait for the last acks")
        parser.add_argument(
            "--create", action="store_true", help="register N new terminals (unbound) first, instead of using existing"
        )
        parser.add_argument("--seed", type=int, help="random seed for the routes")
        parser.add_argument(
            "--codes",
            default=str(Path(settings.BASE_DIR) / "var" / "simulator" / "jt808-auth-codes.json"),
            help="file keeping the JT/T 808 auth codes the terminals were given (default: var/simulator/)",
        )

    def handle(self, *args, **options):
        protocol = options["protocol"]
        count = options["terminals"]
        if count < 1:
            raise CommandError("--terminals must be at least 1")
        if options["interval"] < 1:
            raise CommandError("--interval must be at least 1 s (device times have whole seconds)")
        if protocol == "gt06":
            port = options["port"] or getattr(settings, "GATEWAY_GT06_PORT", 5023)
        else:
            port = options["port"] or getattr(settings, "GATEWAY_JT808_PORT", 5015)
        terminals = self._create(protocol, count) if options["create"] else self._existing(protocol, count)
        codes_file = Path(options["codes"])
        codes = _read_codes(codes_file) if protocol == "jt808" else {}
        terminals = [SimTerminal(t.imei, t.phone, codes.get(t.phone, "")) for t in terminals]

        def on_code(terminal: SimTerminal, code: str) -> None:
            codes[terminal.phone] = code

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < count + 100 <= hard or (hard == resource.RLIM_INFINITY and soft < count + 100):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

        expected = count * max(1, math.ceil(options["duration"] / options["interval"]))
        bar = tqdm(total=expected, unit="pos", desc=f"{protocol} x{count}", disable=None)
        counts = {"sent": 0, "acked": 0, "login": 0, "refused": 0}
        last_refresh = [0.0]

        def on_event(event: str) -> None:
            counts[event] = counts.get(event, 0) + 1
            if event == "sent":
                bar.update(1)
            now = time.monotonic()
            if now - last_refresh[0] > 0.5:
                last_refresh[0] = now
                bar.set_postfix(logged_in=counts["login"], acked=counts["acked"], refused=counts["refused"])

        started = time.monotonic()
        try:
            stats = asyncio.run(
                run_fleet(
                    protocol,
                    terminals,
                    host=options["host"],
                    port=port,
                    interval=options["interval"],
                    duration=options["duration"],
                    heartbeat=options["heartbeat"],
                    ack_wait=options["ack_wait"],
                    seed=options["seed"],
                    on_event=on_event,
                    on_code=on_code,
                )
            )
        finally:  # even when interrupted: a code given is not given again
            if codes:
                _write_codes(codes_file, codes)
        bar.set_postfix(logged_in=stats.logged_in, acked=stats.acked, refused=stats.refused)
        bar.close()
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"terminals {stats.terminals}: connected {stats.connected}, logged in {stats.logged_in}, "
            f"refused {stats.refused}, errors {stats.errors}\n"
            f"positions sent {stats.sent}, acked {stats.acked} ({stats.sent - stats.acked} unacked) "
            f"in {elapsed:.1f} s; "
            f"ack latency p50 {stats.percentile(50):.1f} ms, p99 {stats.percentile(99):.1f} ms"
        )
        if stats.logged_in == 0:
            raise CommandError(
                "no terminal could log in (is the gateway running, are the terminals registered? A JT/T 808 "
                "terminal given a code that --codes does not hold must have its code reset on its page)"
            )

    def _existing(self, protocol: str, count: int) -> list[SimTerminal]:
        terminals = Terminal.objects.filter(protocol=protocol, active=True)
        if protocol == "jt808":
            terminals = terminals.exclude(phone="")
        rows = list(terminals.order_by("id").values_list("imei", "phone")[:count])
        if len(rows) < count:
            raise CommandError(
                f"only {len(rows)} active {protocol} terminals are registered; pass --create to register {count}"
            )
        return [SimTerminal(imei, phone) for imei, phone in rows]

    def _create(self, protocol: str, count: int) -> list[SimTerminal]:
        taken = set(Terminal.objects.filter(imei__startswith=SIM_TAC).values_list("imei", flat=True))
        phones = set(Terminal.objects.exclude(phone="").values_list("phone", flat=True))
        created: list[SimTerminal] = []
        serial = 0
        with tqdm(total=count, unit="terminal", desc="registering", disable=None) as bar:
            while len(created) < count:
                serial += 1
                if serial > 999_999:
                    raise CommandError("no free simulator IMEIs left")
                body = f"{SIM_TAC}{serial:06d}"
                imei = body + luhn.calc_check_digit(body)
                phone = f"0145{serial:08d}" if protocol == "jt808" else ""
                if imei in taken or phone in phones:
                    continue
                try:
                    terminal_register(imei=imei, protocol=protocol, phone=phone)
                except ValidationError:
                    continue
                created.append(SimTerminal(imei, phone))
                bar.update(1)
        return created


def _read_codes(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot read the auth codes in {path}: {error}") from error
    return {str(phone): str(code) for phone, code in data.items()} if isinstance(data, dict) else {}


def _write_codes(path: Path, codes: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(codes, out, indent=0, sort_keys=True)
    temporary.replace(path)
