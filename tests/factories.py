"""Test data builders: realistic, valid identifiers, imported explicitly by the tests that use them."""

import datetime
import itertools
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group

from accounts.models import Station, User
from vehicles.identifiers import resident_id_check_char

_serial = itertools.count(1)


def resident_id(*, area: str = "130229", birth: str = "19850315", seq: int | None = None) -> str:
    """A valid 18-character resident ID number with the right check digit."""
    body = f"{area}{birth}{(seq if seq is not None else next(_serial) % 1000):03d}"
    return body + resident_id_check_char(body)


def frame_number(serial: int | None = None) -> str:
    """Standard 15-digit frame number: maker 1757, type 2, year 25, 8-digit serial."""
    return f"1757225{(serial if serial is not None else next(_serial)):08d}"


def phone(n: int | None = None) -> str:
    return f"138{(n if n is not None else next(_serial)):08d}"


def station(code: str = "13022901") -> Station:
    return Station.objects.get(code=code)


def user(role: str, *, username: str | None = None, station_code: str | None = "13022901", **extra: Any) -> User:
    name = username or f"{role}{next(_serial)}"
    account = User.objects.create_user(
        username=name,
        password="correct-horse-battery-9",
        station=Station.objects.get(code=station_code) if station_code else None,
        **extra,
    )
    account.groups.add(Group.objects.get(name=role))
    return account


def owner_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "kind": "person",
        "name": "王秀英",
        "id_number": resident_id(),
        "phone": phone(),
        "address": "河北省唐山市玉田县无终街道兴隆路12号",
        "township_code": "130229001",
    }
    data.update(overrides)
    return data


def vehicle_data(**overrides: Any) -> dict[str, Any]:
    n = next(_serial)
    data = {
        "frame_number": frame_number(n),
        "motor_number": f"YD48V{n:08d}",
        "manufacturer": "雅迪科技集团有限公司",
        "brand": "雅迪",
        "model_name": "TDT2312Z",
        "colour": "白",
        "production_date": datetime.date(2025, 1, 10),
        "use_type": "self_use",
        "purchase_date": datetime.date(2025, 3, 1),
        "purchase_price": Decimal("2999.00"),
        "ccc_certificate_no": "2023011119567890",
        "conforming": True,
    }
    data.update(overrides)
    return data


def as_json(data: dict[str, Any]) -> dict[str, Any]:
    """The same data as a JSON client would send it."""
    return {key: (str(value) if isinstance(value, datetime.date | Decimal) else value) for key, value in data.items()}


def registration_payload(
    *, owner: dict[str, Any] | None = None, vehicle: dict[str, Any] | None = None, insurance_consent: bool = True
) -> dict[str, Any]:
    return {
        "owner": as_json(owner if owner is not None else owner_data()),
        "vehicle": as_json(vehicle if vehicle is not None else vehicle_data()),
        "insurance_consent": insurance_consent,
        "documents": ["invoice", "ccc_certificate"],
    }
