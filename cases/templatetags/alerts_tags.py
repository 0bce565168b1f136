from django import template

from cases.alerts.services import notifications_unread_count

register = template.Library()


@register.simple_tag
def unread_notifications(user: object) -> int:
    """The bell count in the navigation bar: one indexed count per page view."""
    if not getattr(user, "is_authenticated", False):
        return 0
    return notifications_unread_count(user)  # type: ignore[arg-type]
