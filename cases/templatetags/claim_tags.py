"""Claim texts in the reader's language for templates that show a claim without its view's help."""

from django import template

from cases.claims import services as claims

register = template.Library()


@register.filter
def claim_reason(reason: str) -> str:
    """A rejection reason: the system's own translated, a person's as written."""
    return claims.reason_text(reason or "")
