"""The outlier check against the rule as written: a fix is an outlier when the geodesic speed from
the terminal's previous plausible fix (in device-time order, starting from its stored last
position) is over the limit. The fast paths of `flag_outliers` (one fix per terminal, the
great-circle screen) must never change a verdict."""

import datetime
import math

from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st

from tracking.ingest import Incoming, flag_outliers
from tracking.protocols.common import Fix

START = datetime.datetime(2026, 11, 26, 8, tzinfo=datetime.UTC)
HOME = (39.88, 117.74)


def written_rule(items, last, limit_kmh):
    flags = [False] * len(items)
    latest = {}
    for terminal in {item.terminal_id for item in items}:
        mine = sorted(
            (i for i, item in enumerate(items) if item.terminal_id == terminal), key=lambda i: items[i].fix.time
        )
        prev = last.get(terminal)
        for i in mine:
            fix = items[i].fix
            cur = (fix.time.timestamp(), fix.latitude, fix.longitude)
            if prev is not None:
                if cur[0] < prev[0]:
                    continue  # older than the last position: no predecessor to judge it by
                metres = geodesic(prev[1:], cur[1:]).meters
                seconds = cur[0] - prev[0]
                speed = (math.inf if metres > 1 else 0.0) if seconds == 0 else metres / seconds * 3.6
                if speed > limit_kmh:
                    flags[i] = True
                    continue
            if fix.valid:
                prev = cur
        if prev is not None:
            latest[terminal] = prev
    return flags, latest


# Positions on a grid of ~100 m steps and whole seconds: no verdict hangs on a metre.
fixes = st.lists(
    st.tuples(
        st.integers(1, 4),  # terminal
        st.integers(-120, 600),  # seconds after START
        st.integers(-40, 40),  # north steps of 0.001 degree
        st.integers(-40, 40),  # east steps
        st.booleans(),  # valid
    ),
    min_size=1,
    max_size=25,
)
lasts = st.dictionaries(st.integers(1, 4), st.tuples(st.integers(-120, 300), st.integers(-40, 40)), max_size=4)


@settings(max_examples=300, deadline=None)
@given(fixes, lasts, st.sampled_from([30.0, 150.0]))
def test_flags_and_last_positions_follow_the_written_rule(rows, stored, limit):
    items = [
        Incoming(
            terminal,
            Fix(START + datetime.timedelta(seconds=s), HOME[0] + north * 0.001, HOME[1] + east * 0.001, valid, 12.0),
        )
        for terminal, s, north, east, valid in rows
    ]
    last = {
        terminal: ((START + datetime.timedelta(seconds=s)).timestamp(), HOME[0] + north * 0.001, HOME[1])
        for terminal, (s, north) in stored.items()
    }
    latest = {}
    flags = flag_outliers(items, last, limit, latest=latest)
    assert (flags, latest) == written_rule(items, last, limit)
