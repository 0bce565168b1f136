"""A theft report's times and free text must mean something: refused with the field named, nothing
stored, and the bike not marked stolen."""

import pytest

from cases.models import TheftReport
from tests import factories
from tests.cases.test_api import report_payload
from vehicles.models import Vehicle

pytestmark = pytest.mark.django_db


@pytest.fixture
def bike(clerk_api):
    return clerk_api.post("/api/v1/registrations", factories.registration_payload(), format="json").json()["vehicle"]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"last_seen_at": "1900-01-01T00:00:00+08:00"}, "last_seen_at", "past the limitation period"),
        (
            {"last_seen_at": "2015-03-01T08:00:00+08:00", "missing_at": "2015-03-01T09:00:00+08:00"},
            "missing_at",
            "past the limitation period",
        ),
        ({"reporter_name": "李\u202e国建"}, "reporter_name", "invisible characters"),
        ({"place_address": "玉田县\u200b虹桥镇"}, "place_address", "invisible characters"),
    ],
)
def test_implausible_report_input_is_refused(officer_api, bike, overrides, field, message):
    response = officer_api.post(
        "/api/v1/theft-reports", report_payload(plate=bike["plate"]["number"], **overrides), format="json"
    )
    assert response.status_code == 400
    assert message in response.json()[field][0]
    assert not TheftReport.objects.exists()
    assert Vehicle.objects.get(pk=bike["id"]).status == "registered"
