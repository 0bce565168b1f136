import pytest
from rest_framework.test import APIClient

from stats.models import PlateEstimate, StationArea
from stats.rollups import plated_refresh
from tests import factories
from tests.stats import builders as b

A, B = "13022901", "13022907"  # 无终 (township 130229001), 虹桥 (township 130229105)


@pytest.fixture
def admin_api(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


@pytest.fixture
def county(db, admin_user):
    """The known county of the figure tests (docstring numbers are what the assertions expect).

    Bikes (registering station, owner's township, day):
      A: 03-02 ×2 (001), 03-20 (105), 04-05 (001); the first 03-02 bike deregistered 04-10
      B: 03-10 (105), 04-15 (105), 04-15 (201, a township with no station, put in B's area)
    Plated now: 001 → 2, 105 → 3, 201 → 1.  Estimates this year: 001 = 4 (survey), 105 = 6.
    Thefts (station, received, recovered): A 03-05→03-07 (2 d), A 03-10→03-14 (4 d), A 03-20 (no),
      A 03-25→04-04 (10 d, no map point), B 04-02→04-03 (1 d).
    """
    clerk = factories.user("clerk")
    officer = factories.user("officer")
    bikes = {
        "a1": b.bike(clerk=clerk, station=A, township="130229001", when="2026-03-02 09:00"),
        "a2": b.bike(clerk=clerk, station=A, township="130229001", when="2026-03-02 15:00"),
        "a3": b.bike(clerk=clerk, station=A, township="130229105", when="2026-03-20 10:00"),
        "a4": b.bike(clerk=clerk, station=A, township="130229001", when="2026-04-05 10:00"),
        "b1": b.bike(clerk=clerk, station=B, township="130229105", when="2026-03-10 10:00"),
        "b2": b.bike(clerk=clerk, station=B, township="130229105", when="2026-04-15 10:00"),
        "b3": b.bike(clerk=clerk, station=B, township="130229201", when="2026-04-15 11:00"),
    }
    b.deregister(clerk=clerk, vehicle=bikes["a1"], when="2026-04-10 10:00")
    StationArea.objects.create(township_id="130229201", station=factories.station(B))
    year = b.at("2026-01-01 00:00").year
    from django.utils import timezone

    year = timezone.localdate().year
    PlateEstimate.objects.create(
        township_id="130229001", year=year, estimated_bikes=4, method="survey", entered_by=admin_user
    )
    PlateEstimate.objects.create(
        township_id="130229105", year=year, estimated_bikes=6, method="per_capita", entered_by=admin_user
    )
    # Hotspot points: centres of two 1 km cells of UTM 50N, so the expected cells are exact.
    hot, cold = cell_point(560, 4415), cell_point(565, 4410)
    reports = {
        "r1": b.report(
            officer=officer,
            station=A,
            received="2026-03-05 10:00",
            point=hot,
            steps=[("filed_criminal", "2026-03-06 10:00"), ("recovered", "2026-03-07 10:00")],
        ),
        "r2": b.report(
            officer=officer,
            station=A,
            received="2026-03-10 08:00",
            point=hot,
            steps=[("recovered", "2026-03-14 08:00")],
        ),
        "r3": b.report(officer=officer, station=A, received="2026-03-20 09:00", point=cold),
        "r4": b.report(
            officer=officer,
            station=A,
            received="2026-03-25 12:00",
            point=None,
            steps=[
                ("filed_public_order", "2026-03-26 12:00"),
                ("recovered", "2026-04-04 12:00"),
                ("returned", "2026-04-05 12:00"),
            ],
        ),
        "r5": b.report(
            officer=officer,
            station=B,
            received="2026-04-02 10:00",
            point=hot,
            steps=[
                ("filed_criminal", "2026-04-02 12:00"),
                ("solved", "2026-04-02 20:00"),
                ("recovered", "2026-04-03 10:00"),
            ],
        ),
    }
    plated_refresh()
    return {
        "bikes": bikes,
        "reports": reports,
        "clerk": clerk,
        "officer": officer,
        "year": year,
        "hot": hot,
        "cold": cold,
    }


def cell_point(i: int, j: int) -> tuple[float, float]:
    """(lat, lon) of the centre of 1 km grid cell (i, j) in EPSG:32650."""
    from django.contrib.gis.geos import Point

    p = Point(i * 1000 + 500, j * 1000 + 500, srid=32650)
    p.transform(4326)
    return (p.y, p.x)
