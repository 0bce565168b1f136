import datetime
from decimal import Decimal

import pytest

from tests import factories
from vehicles.models import InsurancePolicy, InsuranceScheme
from vehicles.services.insurance import payout_bands_problem, policy_payout_amount

pytestmark = pytest.mark.django_db


@pytest.fixture
def policy(clerk_api):
    vehicle = factories.vehicle_data(purchase_date=datetime.date(2025, 3, 1))
    clerk_api.post("/api/v1/registrations", factories.registration_payload(vehicle=vehicle), format="json")
    return InsurancePolicy.objects.get()


def test_default_scheme_is_free_three_years_sixty_days(policy):
    scheme = InsuranceScheme.objects.get(is_default=True)
    assert (scheme.term_months, scheme.waiting_days) == (36, 60)
    assert (policy.ends_on - policy.starts_on).days in range(1094, 1097)
    assert policy.consent_by.groups.filter(name="clerk").exists()


@pytest.mark.parametrize(
    ("lost_on", "amount"),
    [
        (datetime.date(2025, 8, 31), Decimal("1200.00")),  # under 12 months old
        (datetime.date(2026, 3, 1), Decimal("900.00")),  # 12 months exactly: second band
        (datetime.date(2027, 2, 28), Decimal("900.00")),
        (datetime.date(2027, 3, 1), Decimal("600.00")),  # 24 months and older
    ],
)
def test_payout_follows_the_age_band(policy, lost_on, amount):
    assert policy_payout_amount(policy=policy, on=lost_on) == amount


def test_deductible_is_taken_off(policy):
    InsuranceScheme.objects.update(deductible_percent=Decimal("20"))
    policy.refresh_from_db()
    assert policy_payout_amount(policy=policy, on=datetime.date(2025, 8, 31)) == Decimal("960.00")


@pytest.mark.parametrize(
    "bands",
    [
        [],
        [{"max_age_months": 12}],
        [{"max_age_months": 24, "amount": "900"}, {"max_age_months": 12, "amount": "1200"}],
        [{"max_age_months": None, "amount": "600"}, {"max_age_months": 12, "amount": "1200"}],
        [{"max_age_months": 12, "amount": "-1"}],
    ],
)
def test_bad_band_tables_are_refused(bands):
    assert payout_bands_problem(bands) is not None
