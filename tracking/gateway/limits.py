"""What keeps any one client from exhausting the gateway: connection caps per listening port and per
source address, a limit on failed logins per address, and the descriptor budget the caps fit in.

- Caps. A connection over GATEWAY_MAX_CONNECTIONS on its port, or over
  GATEWAY_MAX_CONNECTIONS_PER_ADDRESS from its address (all ports together; an IPv6 address counts
  by its /64, what one subscriber is given), is closed as it comes, in `connection_made`: it costs
  its accept and nothing more. Behind HAProxy (GATEWAY_PROXY_FROM) the address is the one the
  PROXY header names, counted once the header is read.
- Descriptors. Every connection is a descriptor, and past the process's limit `accept` fails for
  everyone: a real terminal's login is reset along with the flood, and the metrics endpoint goes
  dark. At start the gateway asks for GATEWAY_FD_LIMIT descriptors (0: as many as the hard limit
  allows); when its listeners' caps do not fit under the limit it got, with a reserve for the
  database connections, the metrics endpoint and the logs (`fd_reserve`), it lowers them and says so.
- Failed logins. More than GATEWAY_LOGIN_FAILURES_PER_ADDRESS failed logins (unknown terminals,
  wrong auth codes: what enumerating IMEIs or guessing codes looks like) within a minute block the
  address: its new connections are closed as they come for GATEWAY_LOGIN_BLOCK_S. Terminals already
  connected from it stay. The default leaves room for a carrier's NAT address with unregistered
  devices behind it that retry now and then.
- Log lines. A limit that bites is logged at most once every REPORT_EVERY_S for each reason and
  port or address, with the count since the last line: a flood writes a line every ten seconds,
  not one per connection. Every refusal is counted (gateway_connections_refused_total).

Every figure is per worker process (GATEWAY_PROCESSES): descriptor limits are per process, and the
kernel spreads one address's connections over the workers.
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
        for key, entry in list(self._reports.items()):
            if now - entry[0] >= REPORT_EVERY_S:
                if entry[1]:  # a flood goes on: one line now, the next one no sooner than in REPORT_EVERY_S
                    log.warning("%s (%d times in the last %.0f s)", entry[2], entry[1], now - entry[0])
                    entry[0], entry[1] = now, 0
                else:
                    del self._reports[key]
        for key, window in list(self._failures.items()):
            if now - window[0] >= FAILURE_WINDOW_S:
                del self._failures[key]
        for key, until in list(self._blocked.items()):
            if now >= until:
                del self._blocked[key]
