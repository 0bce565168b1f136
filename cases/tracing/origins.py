"""A trace opened from a search: the bike was found by a 伴随 search (audit action trajectory.near)
or seen at a stop of another bike's trace (a ring; trajectory.stops with nearby_stolen).

Such a trace reads on the search's footing: the search's stated reason (for a ring read on a duty,
that duty's basis) is carried as the reason of the trace's own audit rows, each of which names the
search's audit row (query "search"), and it shows only the window in which the search placed the
bike, SEARCH_WINDOW_PAD on either side. The window of a 伴随 search is its since/until; that of a
ring, the bike's first and last fix at the stop (recorded in the stops row as "nearby_seen").

The search must be the reader's own, not refused, and not older than SEARCH_VALID_FOR: a search
opens the bikes it found for the work it was made for, not for later browsing. Whether the reader
may look at all is still trajectory_access's answer (a duty, or the carried reason).
"""

import datetime
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from accounts.models import AuditEntry
from cases.tracing import selectors as tracing
from ebike_registry.problems import Problems

NEAR = "trajectory.near"
STOPS = "trajectory.stops"
# A trace opened from a search shows the search's window and this much on either side: enough to
# see where the bike came from and went to (a ride across the county takes an hour or two), not its
# owner's week.
SEARCH_WINDOW_PAD = datetime.timedelta(hours=3)
# How long a search keeps opening the traces of the bikes it found (one working shift).
SEARCH_VALID_FOR = datetime.timedelta(hours=12)


@dataclass(frozen=True)
class SearchOrigin:
    entry_id: int
    action: str  # NEAR or STOPS
    reason: str  # carried to the trace's audit rows
    since: datetime.datetime  # the window the trace may show
    until: datetime.datetime


def _time(value: Any) -> datetime.datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


def search_origin(*, user: Any, entry_id: int, vehicle_id: int) -> SearchOrigin:
    """The footing the search `entry_id` gives `user` for the vehicle's trace, or PermissionDenied."""
    entry = (
        AuditEntry.objects.filter(pk=entry_id, user_id=user.pk, action__in=[NEAR, STOPS])
        .exclude(query__has_key="refused")
        .first()
    )
    if entry is None:
        raise PermissionDenied(_("This search is not one of yours: open the bike from your own search."))
    now = timezone.now()
    if entry.at < now - SEARCH_VALID_FOR:
        raise PermissionDenied(
            _("This search is more than %(n)d hours old: search again.")
            % {"n": SEARCH_VALID_FOR.total_seconds() // 3600}
        )
    if entry.action == NEAR:
        found = vehicle_id in entry.query.get("vehicles", [])
        since, until = _time(entry.query.get("since")), _time(entry.query.get("until"))
    else:
        seen = entry.query.get("nearby_seen", {}).get(str(vehicle_id))
        found = bool(seen)
        since, until = (_time(seen[0]), _time(seen[1])) if seen else (None, None)
    if not found or since is None or until is None:
        raise PermissionDenied(_("That search did not find this bike."))
    until = min(until + SEARCH_WINDOW_PAD, now)
    since = max(since - SEARCH_WINDOW_PAD, until - tracing.TRAJECTORY_MAX_SPAN)
    reason = entry.reason or str(entry.query.get("basis", ""))
    return SearchOrigin(entry_id=entry.pk, action=entry.action, reason=reason, since=since, until=until)


def search_period(
    origin: SearchOrigin, since: datetime.datetime | None, until: datetime.datetime | None
) -> tuple[datetime.datetime, datetime.datetime]:
    """The period asked for, which must lie in the search's window (the whole window when not given)."""
    since, until = since or origin.since, until or origin.until
    problems = Problems()
    message = _("A trace opened from a search shows %(since)s to %(until)s only.") % {
        "since": timezone.localtime(origin.since).strftime("%Y-%m-%d %H:%M"),
        "until": timezone.localtime(origin.until).strftime("%Y-%m-%d %H:%M"),
    }
    if since < origin.since:
        problems.add("since", message)
    if until > origin.until:
        problems.add("until", message)
    problems.raise_if_any()
    return since, until
