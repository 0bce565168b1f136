"""The public stolen check's budget: one per real client address, shared by the page and the API.

Plates are issued in sequence, so without a budget the whole stolen list could be walked; the
budget is counted per `accounts.audit.client_ip` (a forged X-Forwarded-For does not change it) and
holds with Redis away (ebike_registry.ratelimit falls back to a budget per process).
"""

from accounts.throttles import ClientBudget


class StolenCheckBudget(ClientBudget):
    budget_scope = "stolen_check"
    limit_setting = "STOLEN_CHECK_RATE_PER_MINUTE"
