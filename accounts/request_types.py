"""Request types for the views that only signed-in users reach.

`login_required`, the page mixins and the API's permission classes turn anonymous visitors away
before a view runs, so inside it `request.user` is a `User`, not `User | AnonymousUser`.
Annotating the view's `request` with these types tells mypy so, once per view.
"""

from django.http import HttpRequest
from rest_framework.request import Request

from accounts.models import User


class AuthedHttpRequest(HttpRequest):
    """A page request past `login_required` (or a policy that requires signing in)."""

    user: User


class AuthedRequest(Request):
    """An API request past a permission class that requires an authenticated user."""

    user: User
