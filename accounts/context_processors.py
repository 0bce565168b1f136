"""Template context every page gets from accounts."""

from typing import Any

from django.http import HttpRequest
from django.utils import timezone

WATERMARK_TILES = range(36)


def watermark(request: HttpRequest) -> dict[str, Any]:
    """The viewer's account and the time, drawn faintly across every signed-in page, so a photo or
    a print of a screen with personal data names who looked and when."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    text = f"{user.get_username()} · {timezone.localtime():%Y-%m-%d %H:%M}"
    return {"watermark": text, "watermark_tiles": WATERMARK_TILES}
