"""Who may read the operations figures: GET /metrics and the parts of GET /healthz beyond its checks.

A request from an address inside METRICS_ALLOWED_NETWORKS (the client address as accounts.audit.client_ip
finds it, so behind TRUSTED_PROXY_COUNT proxies the real client's, and a forged X-Forwarded-For counts
for nothing), or one with "Authorization: Bearer <METRICS_TOKEN>". Neither setting: nobody. Machines
(the Prometheus scraper, an operator's curl) read these, not people signed in: the policy layer's
rules are about users and objects, so the decision lives here.
"""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest

from accounts.audit import client_ip


def operator_allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip().encode(), token.encode()):
        return True
    address = client_ip(request)
    if not address or not settings.METRICS_ALLOWED_NETWORKS:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in settings.METRICS_ALLOWED_NETWORKS)
