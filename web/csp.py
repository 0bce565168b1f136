"""The Content-Security-Policy header (django-csp), with the map tile server allowed for images.

The policy itself is settings.CONTENT_SECURITY_POLICY (or ..._REPORT_ONLY with CSP_REPORT_ONLY);
the tile server is a setting of its own (MAP_TILES, MAP_TILES_URL), so its origins are added here
rather than written twice.
"""

from typing import Any

from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from csp.middleware import PolicyParts
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponseBase

from tracking.map_tiles import tile_origins


class CSPMiddleware(BaseCSPMiddleware):
    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        try:
            origins = tile_origins()
        except ImproperlyConfigured:
            origins = []  # the map pages say what is wrong; every other page keeps its policy
        if origins:
            update: dict[str, Any] = dict(parts.update or {})
            update["img-src"] = [*_as_list(update.get("img-src")), *origins]
            parts.update = update
        return parts


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)
