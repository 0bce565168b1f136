from typing import Any

from django import template
from django.utils.formats import number_format
from django.utils.translation import pgettext

from accounts.labels import alarm_label
from stats.models import EstimateMethod

register = template.Library()


@register.filter
def cell(row: dict[str, Any], key: str) -> str:
    """A table cell as people read it: rates in per cent, unknown figures said so."""
    value = row.get(key)
    if value is None:
        return pgettext("statistics", "unknown") if key in {"rate", "estimated", "recovery_rate"} else "—"
    if key in {"rate", "recovery_rate"}:
        return percent(value)
    if key == "method":
        return str(EstimateMethod(value).label) if value in EstimateMethod.values else value
    if key == "kind":  # alarm kinds (alarms_by_kind)
        return alarm_label(value)
    return str(value)


MAX_DECIMALS = 12


@register.filter
def percent(value: float | None) -> str:
    """A fraction in per cent as a leader reads it: one decimal (50.0%), and below that as many
    digits as it takes not to read as nothing (0.04%) or as everything (99.96%); 0% only for zero."""
    if value is None:
        return ""
    pct = value * 100
    if pct == 0:
        return "0%"
    decimals = 1
    while decimals < MAX_DECIMALS and (round(pct, decimals) == 0 or (round(pct, decimals) == 100) != (pct == 100)):
        decimals += 1
    if round(pct, decimals) == 0:  # below what any count of bikes gives; still not nothing
        return f"<{number_format(10**-MAX_DECIMALS, MAX_DECIMALS)}%"
    return f"{number_format(round(pct, decimals), decimals)}%"


@register.filter
def sort_value(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    return "" if value is None else str(value)


@register.simple_tag
def estimate_methods() -> list[tuple[str, str]]:
    """(code, name) of each estimate method, for the import file's help."""
    return [(code, str(label)) for code, label in EstimateMethod.choices]
