from django import template

from accounts.models import User
from cases.alerts.services import notifications_unread_count

register = template.Library()


@register.simple_tag
def unread_notifications(user: object) -> int:
    """The bell count in the navigation bar: one indexed count per page view."""
    if not isinstance(user, User):  # anonymous (or no user in the context): no bell count
        return 0
    return notifications_unread_count(user)
