"""WGS-84 → GCJ-02 against published pairs (the eviltransform and coordtransform test values)."""

import pytest

from tests.web.coords_pairs import PAIRS
from tracking.coords import out_of_china, to_display, wgs84_to_gcj02


@pytest.mark.parametrize(("wgs", "gcj"), PAIRS)
def test_it_matches_published_pairs(wgs, gcj):
    lat, lon = wgs84_to_gcj02(*wgs)
    assert lat == pytest.approx(gcj[0], abs=1e-9)
    assert lon == pytest.approx(gcj[1], abs=1e-9)


def test_the_offset_in_the_county_is_hundreds_of_metres():
    lat, lon = wgs84_to_gcj02(39.8826, 117.7390)
    assert 0.0005 < lat - 39.8826 < 0.003
    assert 0.003 < lon - 117.7390 < 0.009


def test_outside_china_nothing_moves():
    assert out_of_china(48.8566, 2.3522)
    assert wgs84_to_gcj02(48.8566, 2.3522) == (48.8566, 2.3522)


def test_display_converts_only_for_gcj02_tiles():
    assert to_display(39.9, 117.7, "wgs84") == (39.9, 117.7)
    assert to_display(39.9, 117.7, "gcj02") == wgs84_to_gcj02(39.9, 117.7)
