"""Where a theft happened, from the address the reporter gives.

A report takes a map point when the officer picks one; otherwise the address is geocoded through
geopy with the geocoder the bureau configures (`GEOCODER`):

- "gazetteer" (default, offline): the bureau's own list of place names with their positions (a CSV
  of name,latitude,longitude, `GEOCODER_GAZETTEER`). A Chinese address runs from the county down to
  the doorway, so the name found furthest along it wins (the longer one where two end together):
  "玉田县无终街道兴隆路超市" matches "兴隆路" before "无终街道". Police networks are often cut off from
  the internet, and an address never leaves the building.
- "nominatim": a Nominatim server the bureau runs (`GEOCODER_DOMAIN`, `GEOCODER_SCHEME`).

Geocoding never blocks a report: with no match, or the server away, the report is taken without a
point and the officer places it on the map later.
"""

from __future__ import annotations

import csv
import functools
import logging
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from geopy.distance import great_circle
from geopy.exc import GeopyError
from geopy.geocoders import Nominatim
from geopy.geocoders.base import Geocoder
from geopy.location import Location
from geopy.point import Point

log = logging.getLogger(__name__)

# How far from a listed place a position may be and still be named after it ("near 兴隆路").
NEAR_METRES = 500


class GazetteerGeocoder(Geocoder):
    """A geopy geocoder over a local list of place names: no network, no third party."""

    def __init__(self, entries: dict[str, tuple[float, float]]) -> None:
        super().__init__()
        self.entries = entries

    @classmethod
    def from_csv(cls, path: Path) -> GazetteerGeocoder:
        entries: dict[str, tuple[float, float]] = {}
        with path.open(encoding="utf-8", newline="") as handle:
            rows = (row for row in csv.reader(handle) if row and not row[0].startswith("#"))
            for line, row in enumerate(rows, start=1):
                try:
                    name, lat, lon = row[0].strip(), float(row[1]), float(row[2])
                except (IndexError, ValueError) as exc:
                    raise ImproperlyConfigured(f"{path}: row {line} is not name,latitude,longitude: {row}") from exc
                if not (-90 <= lat <= 90 and -180 <= lon <= 180) or not name:
                    raise ImproperlyConfigured(f"{path}: row {line} has no name or a position out of range")
                entries[name] = (lat, lon)
        return cls(entries)

    def geocode(self, query: str, *, exactly_one: bool = True, **_: object) -> Location | list[Location] | None:
        query = query or ""
        ends = {name: query.rfind(name) + len(name) for name in self.entries if name and name in query}
        ranked = sorted(ends, key=lambda name: (-ends[name], -len(name), name))
        found = [Location(name, Point(*self.entries[name]), {"name": name}) for name in ranked]
        if not found:
            return None
        return found[0] if exactly_one else found

    def reverse(self, query: object, *, exactly_one: bool = True, **_: object) -> Location | list[Location] | None:
        """The nearest listed place within NEAR_METRES of a (latitude, longitude)."""
        point = Point(query)
        near = sorted(
            (great_circle((point.latitude, point.longitude), position).meters, name)
            for name, position in self.entries.items()
        )
        found = [Location(name, Point(*self.entries[name]), {"name": name}) for m, name in near if m <= NEAR_METRES]
        if not found:
            return None
        return found[0] if exactly_one else found


@functools.cache
def geocoder() -> Geocoder:
    kind = settings.GEOCODER
    if kind == "gazetteer":
        return GazetteerGeocoder.from_csv(Path(settings.GEOCODER_GAZETTEER))
    if kind == "nominatim":
        if not settings.GEOCODER_DOMAIN:
            raise ImproperlyConfigured("GEOCODER=nominatim needs GEOCODER_DOMAIN (the bureau's Nominatim server).")
        return Nominatim(
            domain=settings.GEOCODER_DOMAIN,
            scheme=settings.GEOCODER_SCHEME,
            user_agent="ebike-registry",
            timeout=settings.GEOCODER_TIMEOUT_S,
        )
    raise ImproperlyConfigured(f"Unknown GEOCODER {kind!r}: use gazetteer or nominatim.")


def place_near(latitude: float, longitude: float) -> str | None:
    """A place name for a position (the owner's "where is my bike"), or None when the geocoder has
    none near it or is away: the coordinates are shown either way."""
    try:
        location = geocoder().reverse((latitude, longitude), exactly_one=True)
    except (GeopyError, NotImplementedError) as exc:
        log.warning("reverse geocoding %.5f,%.5f failed: %s", latitude, longitude, exc)
        return None
    return location.address if location is not None else None


def address_locate(address: str) -> tuple[float, float] | None:
    """(latitude, longitude) of an address, or None when the geocoder finds nothing or is away."""
    address = address.strip()
    if not address:
        return None
    try:
        location = geocoder().geocode(address, exactly_one=True)
    except GeopyError as exc:
        log.warning("geocoding %r failed: %s", address, exc)
        return None
    if location is None:
        return None
    return (location.latitude, location.longitude)
