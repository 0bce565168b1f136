"""The map's tile source, chosen by settings.MAP_TILES; the browser gets it as JSON (map_config).

Positions are stored in WGS-84. OpenStreetMap and Tianditu tiles are drawn in WGS-84 (Tianditu in
CGCS2000, which differs from WGS-84 by centimetres), AMap tiles in GCJ-02: for them every position
is converted before it is drawn (tracking.coords in Python for our own endpoints, static/web/coords.js
for the tracing API's GeoJSON). Tiles are only a background: the data layers are drawn whether or
not the tile server answers.
"""

from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _


@dataclass(frozen=True)
class TileLayer:
    url: str
    attribution: str
    subdomains: str = ""
    max_zoom: int = 18


@dataclass(frozen=True)
class TileProvider:
    code: str
    datum: str  # "wgs84" or "gcj02": the datum positions are drawn in
    layers: list[TileLayer] = field(default_factory=list)


OSM_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


def tile_provider() -> TileProvider:
    code = settings.MAP_TILES.strip().lower()
    if code == "osm":
        return TileProvider(
            "osm",
            "wgs84",
            [TileLayer(settings.MAP_TILES_URL or OSM_URL, "© OpenStreetMap contributors", max_zoom=19)],
        )
    if code == "tianditu":
        if not settings.TIANDITU_KEY:
            raise ImproperlyConfigured("MAP_TILES=tianditu needs TIANDITU_KEY (a Tianditu browser key).")
        key = settings.TIANDITU_KEY
        base = "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
        tail = "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}"
        layers = [
            TileLayer(
                (base + tail).format(s="{s}", layer=layer) + f"&tk={key}",
                "© 天地图 Tianditu",
                subdomains="01234567",
            )
            for layer in ("vec", "cva")  # streets, then Chinese labels on top
        ]
        return TileProvider("tianditu", "wgs84", layers)
    if code == "amap":
        return TileProvider(
            "amap",
            "gcj02",
            [
                TileLayer(
                    "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
                    "© 高德地图 AutoNavi",
                    subdomains="1234",
                )
            ],
        )
    raise ImproperlyConfigured(f"MAP_TILES must be osm, tianditu or amap, not {settings.MAP_TILES!r}.")


def tile_origins() -> list[str]:
    """The origins the configured tiles come from (each {s} subdomain spelt out), for the
    Content-Security-Policy's img-src. A tile URL on our own host adds nothing: 'self' covers it."""
    origins: list[str] = []
    for layer in tile_provider().layers:
        for subdomain in layer.subdomains or [""]:
            parts = urlsplit(layer.url.replace("{s}", subdomain))
            if parts.scheme in ("http", "https") and parts.netloc:
                origins.append(f"{parts.scheme}://{parts.netloc}")
    return list(dict.fromkeys(origins))


def map_config() -> dict[str, Any]:
    """What the page scripts need to draw the background (json_script in the templates)."""
    provider = tile_provider()
    return {
        "provider": provider.code,
        "datum": provider.datum,
        "layers": [asdict(layer) for layer in provider.layers],
        "center": [39.8826, 117.7390],  # the county seat: where the map opens before data arrives
        "zoom": 11,
        "poll_seconds": settings.MAP_POLL_SECONDS,
        "time_zone": settings.TIME_ZONE,
    }


def map_strings() -> dict[str, str]:
    """Messages every map page's script may show, in the user's language."""
    return {
        "tiles_unavailable": _(
            "The map background could not be loaded (no tile server answers); the positions are drawn anyway."
        ),
        "failed": _("The data could not be loaded. Try again."),
    }
