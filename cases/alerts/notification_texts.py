"""What a notification says, in the reader's language.

A notification is stored as a message key and its parameters (Notification.message, .params) and
rendered with gettext when it is shown (page, count badge's list, API), so a reader who switches to
English reads English whatever language the sender's process ran in. Title and body columns keep
the text rendered in the site language when the row was written: old rows without a key, and the
admin, show those.

Parameters are JSON values. By name: `time` holds an ISO 8601 instant shown in local time, `alarm`
an alarm kind shown by its label; the others are shown as stored.
"""

import datetime
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import formats, timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from cases.models import Notification
from tracking.alarm_kinds import alarm_label


@dataclass(frozen=True)
class Message:
    title: Promise
    body: Promise | None = None


_QUEUE = _("Raised at %(time)s; open the duty-room queue to acknowledge it.")

MESSAGES: dict[str, Message] = {
    "sighting": Message(
        _("Stolen bike %(plate)s sighted"),
        _("Report %(number)s: the bike's terminal reported a position at %(time)s (%(lat).5f, %(lon).5f)."),
    ),
    "rescue": Message(_("Rescue call: %(plate)s (%(alarm)s)"), _QUEUE),
    "conflict": Message(_("Terminal conflict on %(plate)s: is someone sending as this bike?"), _QUEUE),
    "displacement": Message(_("Armed bike %(plate)s moved or lost power"), _QUEUE),
    "displacement_owner": Message(
        _("Your armed bike %(plate)s is moving or lost power"),
        _("If this is not you, confirm the theft now; if it is, dismiss the alarm."),
    ),
    "owner_confirmed": Message(_("Owner confirms the theft of %(plate)s: act now")),
    "owner_dismissed": Message(_("Owner dismissed the alarm for %(plate)s")),
    "claim_eligible": Message(_("Insurance claim eligible for report %(number)s: %(amount)s yuan")),
    "claim_found_after_payout": Message(
        _("Your bike was found after the insurance payout of report %(number)s: see the counter to settle it.")
    ),
    "reviews_weekly": Message(
        _("%(n)d looks at positions on a stated reason last week"),
        _("Officers looked at bikes' positions without a duty on them, stating a reason. Review them."),
    ),
    "lookup_alert": Message(
        _("Unusual lookups by %(user)s: %(n)d in 24 hours"),
        _("Usually %(median)s a day. Check the audit trail for this account."),
    ),
}


def param_time(value: datetime.datetime) -> str:
    """A moment as a notification parameter (shown in local time when rendered)."""
    return value.isoformat()


def _shown(params: dict[str, Any]) -> dict[str, Any]:
    shown = dict(params)
    if isinstance(shown.get("time"), str):
        moment = parse_datetime(shown["time"])
        if moment is not None:
            shown["time"] = formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")
    if isinstance(shown.get("alarm"), str):
        shown["alarm"] = alarm_label(shown["alarm"])
    return shown


def render(message: str, params: dict[str, Any]) -> tuple[str, str] | None:
    """(title, body) of a message in the active language; None for an unknown key or parameters
    that no longer fit it (the caller falls back to the stored text)."""
    entry = MESSAGES.get(message)
    if entry is None:
        return None
    shown = _shown(params)
    try:
        title = str(entry.title) % shown
        body = str(entry.body) % shown if entry.body is not None else ""
    except (KeyError, TypeError, ValueError):
        return None
    return title, body


def notification_text(notification: Notification) -> tuple[str, str]:
    """What the reader sees: the message in their language, or the stored text of an old row."""
    rendered = render(notification.message, notification.params or {}) if notification.message else None
    return rendered if rendered is not None else (notification.title, notification.body)


def site_text(message: str, params: dict[str, Any]) -> tuple[str, str]:
    """The message in the site language, stored with the row as its fallback text."""
    with translation.override(settings.LANGUAGE_CODE):
        rendered = render(message, params)
    if rendered is None:
        raise ValueError(f"notification message {message!r} does not take {sorted(params)}")
    return rendered
