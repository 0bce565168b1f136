"""The public stolen check's budget: one per real client address, shared by the page and the API.

Plates are issued in sequence, so without a budget the whole stolen list could be walked; the
budget is counted per `accounts.audit.client_ip` (a forged X-Forwarded-For does not change it) and
holds with Redis away (ebike_registry.ratelimit falls back to a budget per process).
"""

from django.conf import settings

from ebike_registry.ratelimit import Verdict, rate_limit_take


def stolen_check_budget_take(*, client: str | None) -> Verdict:
    return rate_limit_take(scope="stolen_check", client=client, limit=settings.STOLEN_CHECK_RATE_PER_MINUTE)
