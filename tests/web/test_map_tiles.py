import pytest
from django.core.exceptions import ImproperlyConfigured

from tracking.map_tiles import map_config, tile_provider


def test_osm_by_default_in_wgs84(settings):
    settings.MAP_TILES = "osm"
    settings.MAP_TILES_URL = ""
    config = map_config()
    assert config["datum"] == "wgs84" and "openstreetmap" in config["layers"][0]["url"]


def test_a_local_tile_server_replaces_the_osm_url(settings):
    settings.MAP_TILES = "osm"
    settings.MAP_TILES_URL = "http://tiles.county.local/{z}/{x}/{y}.png"
    assert map_config()["layers"][0]["url"] == "http://tiles.county.local/{z}/{x}/{y}.png"


def test_tianditu_needs_its_key_and_draws_labels_over_streets(settings):
    settings.MAP_TILES = "tianditu"
    settings.TIANDITU_KEY = ""
    with pytest.raises(ImproperlyConfigured):
        tile_provider()
    settings.TIANDITU_KEY = "abc123"
    provider = tile_provider()
    assert provider.datum == "wgs84" and len(provider.layers) == 2
    assert all("tk=abc123" in layer.url and "{z}" in layer.url for layer in provider.layers)


def test_amap_is_gcj02(settings):
    settings.MAP_TILES = "amap"
    assert map_config()["datum"] == "gcj02"


def test_unknown_providers_fail_loudly(settings):
    settings.MAP_TILES = "bing"
    with pytest.raises(ImproperlyConfigured):
        tile_provider()
