from django import template

from cases.alerts import notifications_unread_count

register = template.Library()


@register.simple_tag
def unread_notifications(user: object) -> int:
    """The bell count in the navigation bar: one indexed count per page view."""
    if not getattr(user, "is_authenticated", False):
        return 0
    return notifications_unread_count(user)  # type: ignore[arg-type]


@register.simple_tag
def report_sightings(report: object) -> list:
    """Movement episodes of a report's stolen bike, newest first, for the report page."""
    from cases.models import Sighting

    return list(Sighting.objects.filter(report=report).order_by("-started_at")[:20])
