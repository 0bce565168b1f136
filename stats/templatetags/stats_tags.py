from typing import Any

from django import template
from django.utils.formats import number_format
from django.utils.translation import pgettext

from stats.models import EstimateMethod

register = template.Library()


@register.filter
def cell(row: dict[str, Any], key: str) -> str:
    """A table cell as people read it: rates in per cent, unknown figures said so."""
    value = row.get(key)
    if value is None:
        return pgettext("statistics", "unknown") if key in {"rate", "estimated", "recovery_rate"} else "—"
    if key in {"rate", "recovery_rate"}:
        return f"{number_format(value * 100, 1)}%"
    if key == "method":
        return str(EstimateMethod(value).label) if value in EstimateMethod.values else value
    return str(value)


@register.filter
def sort_value(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    return "" if value is None else str(value)
