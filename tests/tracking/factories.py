"""Terminals for tests: valid IMEIs (Luhn) and bound bikes."""

import datetime
import itertools

from stdnum import luhn

from tests import factories
from tracking.models import Terminal
from tracking.protocols.common import Fix
from tracking.services import terminal_bind, terminal_register
from vehicles.services.registration import vehicle_register

_serial = itertools.count(1)


def imei(n: int | None = None) -> str:
    body = f"86471700{(n if n is not None else next(_serial)):06d}"
    return body + luhn.calc_check_digit(body)


def terminal(*, protocol: str = "gt06", bound: bool = True, clerk=None, **extra) -> Terminal:
    n = next(_serial)
    if protocol == "jt808":
        extra.setdefault("phone", f"0139{n:08d}")
    term = terminal_register(imei=imei(n), protocol=protocol, **extra)
    if bound:
        clerk = clerk or factories.user("clerk")
        registration = vehicle_register(
            clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=True
        )
        terminal_bind(clerk=clerk, terminal_id=term.pk, vehicle_id=registration.vehicle.pk, owner_consent=True)
        term.refresh_from_db()
    return term


def fix(
    minute: int = 0,
    *,
    lat: float = 39.8826,
    lon: float = 117.7390,
    base: datetime.datetime | None = None,
    alarms: tuple[str, ...] = (),
    valid: bool = True,
    speed: float = 12.0,
) -> Fix:
    """A fix in Yutian town, `minute` minutes after `base` (default: an hour ago)."""
    base = base or datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(hours=1)
    return Fix(
        time=base + datetime.timedelta(minutes=minute),
        latitude=lat,
        longitude=lon,
        valid=valid,
        speed_kmh=speed,
        course=90.0,
        alarms=alarms,
    )
