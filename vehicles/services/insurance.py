import datetime
import secrets
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from vehicles.models import InsurancePolicy, InsuranceScheme, Owner, Vehicle


def scheme_default() -> InsuranceScheme:
    scheme = InsuranceScheme.objects.filter(is_default=True, active=True).first()
    if scheme is None:
        raise ValidationError({"insurance_consent": _("No active default insurance scheme is configured.")})
    return scheme


def payout_bands_problem(bands: object) -> str | None:
    """Validate a scheme's band table: a list of {max_age_months, amount}, ages increasing."""
    if not isinstance(bands, list) or not bands:
        return _("Payout bands must be a non-empty list.")
    previous = -1
    for index, band in enumerate(bands):
        if not isinstance(band, dict) or set(band) != {"max_age_months", "amount"}:
            return _("Band %(n)d must have exactly max_age_months and amount.") % {"n": index + 1}
        limit = band["max_age_months"]
        if limit is None:
            if index != len(bands) - 1:
                return _("Only the last band may have no age limit.")
        elif not isinstance(limit, int) or limit <= previous:
            return _("Band ages must be whole months in increasing order.")
        else:
            previous = limit
        try:
            if Decimal(str(band["amount"])) < 0:
                raise ArithmeticError
        except ArithmeticError:
            return _("Band %(n)d has an invalid amount.") % {"n": index + 1}
    return None


def policy_payout_amount(*, policy: InsurancePolicy, on: datetime.date) -> Decimal:
    """Payout if the bike is lost on `on`: the age band's amount less the scheme's deductible."""
    age = relativedelta(on, policy.vehicle.purchase_date)
    age_months = age.years * 12 + age.months
    scheme = policy.scheme
    amount = Decimal(0)
    for band in scheme.payout_bands:
        if band["max_age_months"] is None or age_months < band["max_age_months"]:
            amount = Decimal(str(band["amount"]))
            break
    deductible = amount * scheme.deductible_percent / Decimal(100)
    return (amount - deductible).quantize(Decimal("0.01"))


def policy_issue(*, vehicle: Vehicle, owner: Owner, consent_by: User) -> InsurancePolicy:
    """Issue the free policy; the owner's consent is recorded with who took it and when."""
    scheme = scheme_default()
    today = timezone.localdate()
    return InsurancePolicy.objects.create(
        number=f"BX{today:%Y%m%d}{secrets.token_hex(4).upper()}",
        vehicle=vehicle,
        owner=owner,
        scheme=scheme,
        starts_on=today,
        ends_on=today + relativedelta(months=scheme.term_months) - datetime.timedelta(days=1),
        consent_at=timezone.now(),
        consent_by=consent_by,
    )


def policy_cancel_active(*, vehicle: Vehicle) -> InsurancePolicy | None:
    policy = InsurancePolicy.objects.filter(vehicle=vehicle, status=InsurancePolicy.Status.ACTIVE).first()
    if policy is not None:
        policy.status = InsurancePolicy.Status.CANCELLED
        policy.ended_at = timezone.now()
        policy.save(update_fields=["status", "ended_at"])
    return policy
