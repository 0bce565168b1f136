"""Query parameters every statistics view shares: the period, the station, the granularity.

Parsed once here for the API and the dashboard alike; every problem is reported at once, keyed by
the parameter's name, as a Django ValidationError (the API answers it as HTTP 400).
"""

import datetime
from dataclasses import dataclass
from typing import Any

from dateutil.relativedelta import relativedelta
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Station
from ebike_registry.lengths import stored_length
from ebike_registry.problems import Problems

EARLIEST = datetime.date(2000, 1, 1)
MAX_SPAN_DAYS = 10 * 366
MAX_DAY_SPAN_DAYS = 366  # a daily series longer than a year is unreadable; use weeks or months
GRANULARITIES = ("day", "week", "month")
CELL_M_RANGE = (100, 5000)
DEFAULT_CELL_M = 500
STATION_CODE_LENGTH = stored_length(Station, "code")


@dataclass(frozen=True)
class Period:
    start: datetime.date  # first day, county time
    end: datetime.date  # last day, inclusive

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


@dataclass(frozen=True)
class Filters:
    period: Period
    station: Station | None = None
    granularity: str = "month"
    cell_m: int = DEFAULT_CELL_M


def default_period(today: datetime.date | None = None) -> Period:
    """The last twelve months, this one included."""
    today = today or timezone.localdate()
    return Period(start=today.replace(day=1) - relativedelta(months=11), end=today)


def _date(problems: Problems, name: str, raw: Any) -> datetime.date | None:
    if raw in (None, ""):
        return None
    try:
        return datetime.date.fromisoformat(str(raw))
    except ValueError:
        problems.add(name, _("Enter a date as YYYY-MM-DD, not %(value)r.") % {"value": str(raw)[:40]})
        return None


def parse_filters(query: Any, *, today: datetime.date | None = None) -> Filters:
    """start, end (YYYY-MM-DD, inclusive), station (code), granularity, cell_m."""
    today = today or timezone.localdate()
    problems = Problems()
    default = default_period(today)
    start = _date(problems, "start", query.get("start"))
    end = _date(problems, "end", query.get("end"))
    granularity = query.get("granularity") or "month"
    if granularity not in GRANULARITIES:
        problems.add("granularity", _("Granularity is day, week or month."))
    if start is not None and start < EARLIEST:
        problems.add("start", _("The period cannot start before %(d)s.") % {"d": EARLIEST.isoformat()})
    if start is not None and start > today + relativedelta(years=1):  # its day after would overflow at 9999-12-31
        problems.add("start", _("The period cannot start more than a year from today."))
    if end is not None and end > today + relativedelta(years=1):
        problems.add("end", _("The period cannot end more than a year from today."))
    if end is not None and end < EARLIEST:  # alone it would start the period there, days before 0001-01-01
        problems.add("end", _("The period cannot end before %(d)s.") % {"d": EARLIEST.isoformat()})
    if start is not None and end is not None and not problems:
        if end < start:
            problems.add(
                "end",
                _("The end date %(end)s is before the start date %(start)s.")
                % {"end": end.isoformat(), "start": start.isoformat()},
            )
        elif (end - start).days > MAX_SPAN_DAYS:
            problems.add("end", _("The period is longer than ten years."))
        elif granularity == "day" and (end - start).days >= MAX_DAY_SPAN_DAYS:
            problems.add("granularity", _("Daily figures cover at most a year; choose weeks or months."))
    station = None
    code = (query.get("station") or "").strip()
    if len(code) > STATION_CODE_LENGTH:
        problems.add("station", _("A station code has at most %(n)d characters.") % {"n": STATION_CODE_LENGTH})
    elif code:
        station = Station.objects.filter(code=code).first()
        if station is None:
            problems.add("station", _("Unknown station %(code)s.") % {"code": code})
    cell_m = DEFAULT_CELL_M
    raw_cell = query.get("cell_m")
    if raw_cell not in (None, ""):
        try:
            cell_m = int(raw_cell)
        except (TypeError, ValueError):
            problems.add("cell_m", _("The cell size is a whole number of metres."))
        else:
            if not CELL_M_RANGE[0] <= cell_m <= CELL_M_RANGE[1]:
                problems.add(
                    "cell_m",
                    _("The cell size is between %(lo)s and %(hi)s metres.")
                    % {"lo": CELL_M_RANGE[0], "hi": CELL_M_RANGE[1]},
                )
    problems.raise_if_any()
    if start is not None:
        period = Period(start=start, end=end or max(start, today))
    elif end is None:
        period = default
    else:
        period = Period(start=min(default.start, end), end=end)
        if granularity == "day":
            period = Period(start=max(period.start, end - datetime.timedelta(days=MAX_DAY_SPAN_DAYS - 1)), end=end)
    return Filters(period=period, station=station, granularity=granularity, cell_m=cell_m)
