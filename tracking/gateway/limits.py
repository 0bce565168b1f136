"""What keeps any one client from exhausting the gateway: connection caps per listening port and per
source address, a limit on failed logins per address, and the descriptor budget the caps fit in.

A connection over its port's or its address's cap is closed as it comes (an IPv6 address counts by
its /64; behind HAProxy, the address the PROXY header names). At start the caps are fitted under
the descriptors the process got, so a flood is refused before `accept` fails for everyone. Too many
failed logins from an address within a minute block its new connections for a while. A limit that
bites is logged at most every REPORT_EVERY_S per reason, and every refusal is counted.

Every figure is per worker process (GATEWAY_PROCESSES). Why each limit:
docs/architecture.md#gateway-limits.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from typing import Any

from .metrics import Metrics

log = logging.getLogger("tracking.gateway")

REPORT_EVERY_S = 10.0
FAILURE_WINDOW_S = 60.0
# Descriptors kept back from the connection caps: database connections (writers, lookups, session
# leases), the metrics endpoint and its scrapes, log files, listening sockets, the event loop's own.
FD_RESERVE_MIN = 64
FD_RESERVE_MAX = 1024


def fd_reserve(fd_limit: int) -> int:
    return max(FD_RESERVE_MIN, min(FD_RESERVE_MAX, fd_limit // 8))


def fit_port_cap(cap: int, listeners: int, fd_limit: int) -> int:
    """The per-port cap that lets `listeners` full ports fit under `fd_limit` with the reserve."""
    if listeners <= 0:
        return cap
    room = max(0, fd_limit - fd_reserve(fd_limit))
    return max(1, min(cap, room // listeners))


def address_key(host: str) -> str:
    """What connections are counted by: the IPv4 address, or the /64 of an IPv6 one."""
    if ":" not in host:
        return host
    try:
        address = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


class Guard:
    """The per-address counts, failed-login windows and blocks, and rate-limited refusal lines of
    one gateway process."""

    def __init__(self, config: Any, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self.open: dict[str, int] = {}  # address key -> open connections
        self._failures: dict[str, list[float]] = {}  # address key -> [window start, failures]
        self._blocked: dict[str, float] = {}  # address key -> blocked until (monotonic)
        self._reports: dict[tuple[str, str], list[Any]] = {}  # (reason, subject) -> [at, count since, text]

    # --- connections ---------------------------------------------------------------------------------

    def port_full(self, protocol: str) -> bool:
        return self.metrics.connections_open[protocol] >= self.config.max_connections

    def admit(self, host: str) -> tuple[str, str | None]:
        """(address key, None) when a connection from `host` may open; it is counted until
        `release(key)`. Else (key, the reason it is refused)."""
        key = address_key(host)
        until = self._blocked.get(key)
        if until is not None:
            if time.monotonic() < until:
                return key, "login_failures"
            del self._blocked[key]
        count = self.open.get(key, 0)
        if count >= self.config.max_connections_per_address:
            return key, "address_cap"
        self.open[key] = count + 1
        return key, None

    def release(self, key: str) -> None:
        count = self.open.get(key, 0) - 1
        if count > 0:
            self.open[key] = count
        else:
            self.open.pop(key, None)

    def refused(self, protocol: str, reason: str, subject: str) -> None:
        """Count a connection closed as it came, and log it (rate-limited)."""
        self.metrics.connections_refused[(protocol, reason)] += 1
        if reason == "port_cap":
            text = f"{protocol} port full ({self.config.max_connections} connections): new connections closed"
            self.report(reason, protocol, text)
        elif reason == "address_cap":
            text = (
                f"{subject} holds {self.config.max_connections_per_address} connections "
                "(GATEWAY_MAX_CONNECTIONS_PER_ADDRESS): new connections from it closed"
            )
            self.report(reason, subject, text)
        else:
            self.report(reason, subject, f"{subject} is blocked after failed logins: new connections from it closed")

    # --- failed logins -------------------------------------------------------------------------------

    def login_failed(self, protocol: str, key: str) -> bool:
        """Count a failed login from the address `key`; True once the address is blocked."""
        self.metrics.login_failures[protocol] += 1
        now = time.monotonic()
        window = self._failures.get(key)
        if window is None or now - window[0] >= FAILURE_WINDOW_S:
            window = self._failures[key] = [now, 0]
        window[1] += 1
        if key in self._blocked:
            return True
        if window[1] > self.config.login_failures_per_address:
            self._blocked[key] = now + self.config.login_block_s
            log.warning(
                "%s: %d failed logins within a minute (GATEWAY_LOGIN_FAILURES_PER_ADDRESS %d): new connections "
                "from it are closed for %g s",
                key,
                window[1],
                self.config.login_failures_per_address,
                self.config.login_block_s,
            )
            return True
        return False

    # --- log lines -----------------------------------------------------------------------------------

    def report(self, reason: str, subject: str, text: str) -> None:
        """A warning for `reason` and `subject` (a port or an address): at once if none was written in
        the last REPORT_EVERY_S, else counted and summed up in the next line."""
        now = time.monotonic()
        entry = self._reports.get((reason, subject))
        if entry is not None and now - entry[0] < REPORT_EVERY_S:
            entry[1] += 1
            entry[2] = text
            return
        more = f" ({entry[1]} more in the last {now - entry[0]:.0f} s)" if entry is not None and entry[1] else ""
        log.warning("%s%s", text, more)
        self._reports[(reason, subject)] = [now, 0, text]

    def sweep(self) -> None:
        """Forget windows, blocks and report entries that are over; write the counts no later line
        reported."""
        now = time.monotonic()
        for report, entry in list(self._reports.items()):
            if now - entry[0] >= REPORT_EVERY_S:
                if entry[1]:  # a flood goes on: one line now, the next one no sooner than in REPORT_EVERY_S
                    log.warning("%s (%d times in the last %.0f s)", entry[2], entry[1], now - entry[0])
                    entry[0], entry[1] = now, 0
                else:
                    del self._reports[report]
        for key, window in list(self._failures.items()):
            if now - window[0] >= FAILURE_WINDOW_S:
                del self._failures[key]
        for key, until in list(self._blocked.items()):
            if now >= until:
                del self._blocked[key]
