"""Budgets of the public endpoints: so many requests a minute per real client address
(accounts.audit.client_ip: a forged X-Forwarded-For does not change it), counted in Redis across web
workers and per process while Redis is away (ebike_registry.ratelimit)."""

from typing import Any, NoReturn

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework.exceptions import Throttled
from rest_framework.throttling import BaseThrottle

from accounts.audit import client_ip
from ebike_registry.ratelimit import Verdict, rate_limit_take


class ClientBudget(BaseThrottle):
    """`limit_setting` requests a minute per client address, counted under `budget_scope`: a DRF
    throttle for an API view, and `take` for a page sharing the budget."""

    budget_scope = ""
    limit_setting = ""

    @classmethod
    def limit(cls) -> int:
        return getattr(settings, cls.limit_setting)

    @classmethod
    def take(cls, request: Any) -> Verdict:
        """Count one request of the client (a Django or DRF request)."""
        return rate_limit_take(scope=cls.budget_scope, client=client_ip(request), limit=cls.limit())

    @classmethod
    def refuse(cls, wait: float | None) -> NoReturn:
        """The API's 429 when over budget, naming the limit."""
        raise Throttled(
            wait, detail=_("Too many checks from your address (%(limit)s a minute).") % {"limit": cls.limit()}
        )

    def allow_request(self, request: Any, view: object) -> bool:
        self.verdict = self.take(request)
        return self.verdict.allowed

    def wait(self) -> float:
        return self.verdict.retry_after
