"""The coarse grid of tracking_pingcell: cells of 1/CELLS_PER_DEGREE of a degree (about 280 m north
to south and 210 m east to west in the county), numbered by row and column. The SQL expression and
the Python cover of a circle below must agree; tests/tracking/test_cells.py holds them together.
"""

import datetime
import math

CELLS_PER_DEGREE = 400
_ROW_OFFSET = 90 * CELLS_PER_DEGREE  # rows and columns made non-negative
_COLUMN_OFFSET = 180 * CELLS_PER_DEGREE
_ROW_SPAN = 2 * _COLUMN_OFFSET + 1  # columns per row
# Fewer metres than any degree of latitude has (110,574 m at the equator) or a degree of longitude
# has at the parallel used below, so the cover errs on the wide side.
METRES_PER_DEGREE = 110_500.0


def cell_sql(point: str) -> str:
    """SQL for the cell of a geography point column or expression."""
    return (
        f"((floor(ST_Y({point}::geometry) * {CELLS_PER_DEGREE})::bigint + {_ROW_OFFSET}) * {_ROW_SPAN}"
        f" + floor(ST_X({point}::geometry) * {CELLS_PER_DEGREE})::bigint + {_COLUMN_OFFSET})"
    )


def presence_sql(source: str, condition: str = "") -> str:
    """INSERT of the (cell, UTC hour, terminal) rows of the plausible fixes in `source` (a table of
    ping columns), once each; `condition` narrows the rows (SQL, may hold parameters)."""
    narrower = f" AND ({condition})" if condition else ""
    return (
        f"INSERT INTO tracking_pingcell (cell, hour, terminal_id) "  # noqa: S608 - constant SQL from our callers
        f"SELECT DISTINCT {cell_sql('point')}, date_trunc('hour', device_time, 'UTC'), terminal_id "
        f"FROM {source} WHERE valid AND NOT outlier{narrower} ON CONFLICT DO NOTHING"
    )


# The presence rows ingestion found new, as three arrays: cells, UTC hours (epoch hours) and terminals.
PRESENCE_ROWS_SQL = (
    "INSERT INTO tracking_pingcell (cell, hour, terminal_id) "
    "SELECT c, to_timestamp(h * 3600), t FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS x(c, h, t) "
    "ON CONFLICT DO NOTHING"
)


def presence_of(epoch: float, latitude: float, longitude: float) -> tuple[int, int]:
    """(cell, UTC hour as hours since the epoch) of a fix: its row of presence_sql."""
    return cell_of(latitude, longitude), int(epoch // 3600)


def hour_floor(moment: datetime.datetime) -> datetime.datetime:
    """The UTC hour a moment counts in (the hour of presence_sql: date_trunc('hour', …, 'UTC'))."""
    return moment.astimezone(datetime.UTC).replace(minute=0, second=0, microsecond=0)


def cell_of(latitude: float, longitude: float) -> int:
    row = math.floor(latitude * CELLS_PER_DEGREE) + _ROW_OFFSET
    return row * _ROW_SPAN + math.floor(longitude * CELLS_PER_DEGREE) + _COLUMN_OFFSET


def cells_covering(latitude: float, longitude: float, radius_m: float) -> list[int]:
    """Every cell that a circle of `radius_m` around the point touches (its bounding box, with a
    metre to spare for rounding; the exact distance is tested on the pings afterwards)."""
    reach = radius_m + 1.0
    dlat = reach / METRES_PER_DEGREE
    # The parallel of the circle farthest from the equator has the narrowest degrees of longitude.
    widest = min(89.9, abs(latitude) + dlat)
    dlon = reach / (METRES_PER_DEGREE * math.cos(math.radians(widest)))
    first_row, last_row = (
        math.floor((latitude - dlat) * CELLS_PER_DEGREE),
        math.floor((latitude + dlat) * CELLS_PER_DEGREE),
    )
    first_col = math.floor((longitude - dlon) * CELLS_PER_DEGREE)
    last_col = math.floor((longitude + dlon) * CELLS_PER_DEGREE)
    return [
        (row + _ROW_OFFSET) * _ROW_SPAN + col + _COLUMN_OFFSET
        for row in range(first_row, last_row + 1)
        for col in range(first_col, last_col + 1)
    ]
