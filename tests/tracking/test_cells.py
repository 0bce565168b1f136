"""The presence grid: SQL and Python number cells alike, a circle's cover holds every point of the
circle, and the cells are written with the pings and leave with them."""

import datetime

import pytest
from django.db import connection
from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tracking import factories as tf
from tracking.cells import cell_of, cell_sql, cells_covering
from tracking.ingest import Incoming, ingest_fixes
from tracking.models import PingCell
from tracking.retention import retention_apply

POINTS = [(39.8826, 117.7390), (39.0, 117.0), (-33.8688, 151.2093), (0.0, 0.0), (51.4779, -0.0015), (-0.0001, -179.9)]


@pytest.mark.django_db
@pytest.mark.parametrize(("lat", "lon"), POINTS)
def test_sql_and_python_agree(lat, lon):
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {cell_sql('p')} FROM (SELECT ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography AS p) x",  # noqa: S608
            [lon, lat],
        )
        assert cursor.fetchone()[0] == cell_of(lat, lon)


@settings(max_examples=300, deadline=None)
@given(
    lat=st.floats(-60, 60),
    lon=st.floats(-179, 179),
    radius=st.floats(10, 5000),
    bearing=st.floats(0, 360),
    share=st.floats(0, 1),
)
def test_the_cover_of_a_circle_holds_every_point_in_it(lat, lon, radius, bearing, share):
    inside = geodesic(meters=radius * share).destination((lat, lon), bearing)
    assert cell_of(inside.latitude, inside.longitude) in cells_covering(lat, lon, radius)


def test_a_county_search_is_a_few_thousand_cells_at_most():
    assert len(cells_covering(39.88, 117.74, 5000)) < 2500
    assert len(cells_covering(39.88, 117.74, 50)) <= 4


@pytest.mark.django_db
def test_cells_are_written_with_the_pings_once_per_cell_and_hour():
    terminal = tf.terminal()
    base = datetime.datetime.now(datetime.UTC).replace(minute=0, second=0, microsecond=0) - datetime.timedelta(hours=2)
    parked = [tf.fix(m, base=base, speed=0) for m in range(0, 50, 5)]  # ten fixes, one place, one hour
    moved = tf.fix(70, base=base, lat=39.90, lon=117.76)  # the next hour, elsewhere
    assert ingest_fixes([Incoming(terminal.pk, f) for f in [*parked, moved]]).stored == 11
    rows = sorted(PingCell.objects.filter(terminal_id=terminal.pk).values_list("hour", "cell"))
    assert rows == [
        (base, cell_of(parked[0].latitude, parked[0].longitude)),
        (base + datetime.timedelta(hours=1), cell_of(39.90, 117.76)),
    ]


def _cells_by_rule(terminal_id: int) -> set[tuple[int, datetime.datetime]]:
    """What presence_sql, run over every stored ping of the terminal, says its cells should be."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT {cell_sql('point')}, date_trunc('hour', device_time, 'UTC') FROM tracking_ping "  # noqa: S608
            "WHERE terminal_id = %s AND valid AND NOT outlier",
            [terminal_id],
        )
        return set(cursor.fetchall())


@pytest.mark.django_db
@settings(max_examples=25, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(0, 300),  # minutes after the start
            st.integers(-2, 2),  # cells north or south of the previous place
            st.sampled_from(["fix", "fix", "fix", "invalid", "jump"]),
        ),
        min_size=1,
        max_size=30,
        unique_by=lambda step: step[0],  # a fix per device time: the same time again is a retry
    ),
    batches=st.integers(1, 4),
    shuffled=st.randoms(use_true_random=False),
)
def test_cells_written_in_batches_are_those_of_every_plausible_stored_fix(steps, batches, shuffled):
    """Whatever the order, batching, invalid fixes and impossible jumps: the presence rows are
    exactly those of the stored plausible pings, though ingestion skips the fixes that stay in
    their predecessor's cell and hour. A retry may add the row of a fix it judges otherwise than
    the first time (a spare row costs a search one needless look), never take one away."""
    terminal = tf.terminal()
    base = datetime.datetime.now(datetime.UTC).replace(minute=0, second=0, microsecond=0) - datetime.timedelta(hours=8)
    fixes, lat = [], 39.8826
    for minute, rows, kind in steps:
        lat += rows / 400
        if kind == "jump":  # 500 km away within minutes: flagged as an outlier when in order
            fixes.append(tf.fix(minute, base=base, lat=lat + 5))
        else:
            fixes.append(tf.fix(minute, base=base, lat=lat, valid=kind == "fix"))
    shuffled.shuffle(fixes)
    size = -(-len(fixes) // batches)
    for start in range(0, len(fixes), size):
        ingest_fixes([Incoming(terminal.pk, f) for f in fixes[start : start + size]])
    stored = set(PingCell.objects.filter(terminal_id=terminal.pk).values_list("cell", "hour"))
    assert stored == _cells_by_rule(terminal.pk)
    ingest_fixes([Incoming(terminal.pk, f) for f in fixes[:3]])
    assert set(PingCell.objects.filter(terminal_id=terminal.pk).values_list("cell", "hour")) >= stored


@pytest.mark.django_db
def test_retention_takes_the_cells_of_the_pings_it_drops():
    terminal = tf.terminal()
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=200)
    PingCell.objects.create(cell=1, hour=old.replace(minute=0, second=0, microsecond=0), terminal_id=terminal.pk)
    result = retention_apply()
    assert result.deleted["tracking_pingcell"] == 1
    assert not PingCell.objects.filter(terminal_id=terminal.pk).exists()
