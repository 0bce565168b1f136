"""The kernel's own view of its clock, as systemd-timedated reads it for `timedatectl`'s
NTPSynchronized, but without systemd, chrony or any tool: a container has none of them, and it
shares the host's kernel clock, so this is the host's state seen from inside."""

from __future__ import annotations

import ctypes
import sys
from typing import Any

# The kernel keeps the clock's maximum error at its ceiling (NTP_PHASE_LIMIT, 16 s) until a time
# daemon disciplines the clock, and lets it grow back there when the daemon stops. Below it the clock
# counts as synchronised, the rule timedated applies.
UNSYNCHRONISED_MAX_ERROR_US = 16_000_000


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """struct timex of adjtimex(2), its reserved tail included (the kernel writes the whole struct)."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


def kernel_clock() -> dict[str, Any] | None:
    """The clock's state from adjtimex with no modes set (a read any process may make), or None where
    the kernel cannot be asked (not Linux, or the call refused)."""
    timex = read_timex()
    if timex is None:
        return None
    return kernel_clock_state(max_error_us=timex.maxerror, estimated_error_us=timex.esterror)


def read_timex() -> _Timex | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # the C library this process runs on, found without a search
    timex = _Timex()  # modes 0: change nothing
    if libc.adjtimex(ctypes.byref(timex)) < 0:
        return None
    return timex


def kernel_clock_state(*, max_error_us: int, estimated_error_us: int) -> dict[str, Any]:
    return {
        "synchronized": "yes" if max_error_us < UNSYNCHRONISED_MAX_ERROR_US else "no",
        "source": "kernel",
        "max_error_ms": round(max_error_us / 1000, 3),
        "estimated_error_ms": round(estimated_error_us / 1000, 3),
    }
