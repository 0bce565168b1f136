import datetime

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Station
from vehicles.models import Plate, PlateKind, PlateSeries, Vehicle


def plate_format(prefix: str, number: int) -> str:
    return f"{prefix}{number:0{settings.PLATE_NUMBER_WIDTH}d}"


def plate_kind_for(*, conforming: bool, use_type: str) -> PlateKind:
    """Temporary white plates for bikes that fail GB 17761; yellow for commercial use; else green."""
    if not conforming:
        return PlateKind.WHITE
    if use_type == Vehicle.UseType.COMMERCIAL:
        return PlateKind.YELLOW
    return PlateKind.GREEN


def temporary_plate_transition_end() -> datetime.date | None:
    raw = settings.TEMPORARY_PLATE_END_DATE
    return datetime.date.fromisoformat(raw) if raw else None


def temporary_plate_expiry(issued_on: datetime.date) -> datetime.date:
    expiry = issued_on + relativedelta(months=settings.TEMPORARY_PLATE_MONTHS)
    end = temporary_plate_transition_end()
    return min(expiry, end) if end else expiry


def plate_issue(*, vehicle: Vehicle, station: Station, kind: str, keep_number: str | None = None) -> Plate:
    """Issue the next number of the station's series for `kind` (or re-issue `keep_number`).

    Must run inside the caller's transaction: the series row lock serialises concurrent counters,
    and a rollback of the caller returns the number to the series, so numbers are never skipped.
    """
    today = timezone.localdate()
    expires_on = temporary_plate_expiry(today) if kind == PlateKind.WHITE else None
    if keep_number is not None:
        old = Plate.objects.filter(number=keep_number, vehicle=vehicle).order_by("-issued_at").first()
        if old is None:
            raise ValueError(f"plate {keep_number} never belonged to vehicle {vehicle.pk}")
        return Plate.objects.create(
            number=keep_number, series_id=old.series_id, kind=old.kind, vehicle=vehicle, expires_on=old.expires_on
        )
    series = (
        PlateSeries.objects.select_for_update()
        .filter(station=station, kind=kind, active=True, next_number__lte=F("last_number"))
        .order_by("id")
        .first()
    )
    if series is None:
        raise ValidationError(
            {
                "plate_kind": _(
                    "Station %(station)s has no %(kind)s plate numbers left; ask an admin for a new series."
                )
                % {"station": station.name, "kind": PlateKind(kind).label}
            }
        )
    number = series.next_number
    series.next_number = number + 1
    series.save(update_fields=["next_number"])
    return Plate.objects.create(
        number=plate_format(series.prefix, number), series=series, kind=kind, vehicle=vehicle, expires_on=expires_on
    )


def plate_end(*, plate: Plate, status: str) -> None:
    plate.status = status
    plate.ended_at = timezone.now()
    plate.save(update_fields=["status", "ended_at"])
