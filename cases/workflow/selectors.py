import datetime
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from cases.models import MISSING_STATUSES, TheftReport
from vehicles.identifiers import normalize_code
from vehicles.models import Plate, Vehicle


@dataclass(frozen=True)
class StolenCheck:
    registered: bool
    stolen: bool
    reported_on: datetime.date | None


def stolen_check(*, plate: str = "", frame_number: str = "") -> StolenCheck:
    """For buyers and repair shops: is this bike reported stolen, and since when. No personal data."""
    plate, frame_number = plate.strip().upper(), normalize_code(frame_number)
    if bool(plate) == bool(frame_number):
        raise ValidationError({"query": _("Give either a plate number or a frame number.")})
    if plate:
        vehicle = Vehicle.objects.filter(pk__in=Plate.objects.filter(number=plate).values("vehicle_id")).first()
    else:
        vehicle = Vehicle.objects.filter(frame_number=frame_number).first()
    if vehicle is None:
        return StolenCheck(registered=False, stolen=False, reported_on=None)
    report = TheftReport.objects.filter(vehicle=vehicle, status__in=MISSING_STATUSES).order_by("-received_at").first()
    return StolenCheck(
        registered=vehicle.status != Vehicle.Status.DEREGISTERED,
        stolen=report is not None,
        reported_on=timezone.localdate(report.received_at) if report else None,
    )
