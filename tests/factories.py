"""Test data builders: realistic, valid identifiers, imported explicitly by the tests that use them."""

import datetime
import itertools
import time
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Station, User
from accounts.signin import second_factor_required, signin_complete, signin_pending
from vehicles.identifiers import resident_id_check_char
from vehicles.models import InsurancePolicy

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
    if second_factor_required(account):
        totp_device(account)
    return account


# The second factor of test users (docs/architecture.md#test-helpers): a role
# that needs one gets an authenticator with RFC 6238's test key, so a browser test types the code
# (totp_code) like a person; sessions the test client opens with force_login() or login() are
# marked verified by the receiver below, as if the code had been given.
TOTP_KEY = "3132333435363738393031323334353637383930"


def totp_device(account: User) -> TOTPDevice:
    return TOTPDevice.objects.create(user=account, name="test authenticator", key=TOTP_KEY, confirmed=True)


def totp_code(account: User, *, step_offset: int = 0) -> str:
    """The code the account's authenticator shows now; the next one when this one was already used
    (a device accepts each code once, and one step ahead by its tolerance)."""
    return device_code(TOTPDevice.objects.get(user=account, confirmed=True), step_offset=step_offset)


def device_code(device: TOTPDevice, *, step_offset: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    ahead = max(step_offset, device.last_t + 1 - totp.t())
    totp.time += ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def _second_factor_for_test_client_logins(sender: Any, request: Any, user: User, **kwargs: Any) -> None:
    # django.test.Client.force_login()/login() sign in through a bare HttpRequest (no REMOTE_ADDR); a
    # request from a client or a browser always carries one and goes through the real steps.
    if "REMOTE_ADDR" in request.META or not signin_pending(request):
        return
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or totp_device(user)
    request.user = user
    signin_complete(request=request, device=device)


user_logged_in.connect(_second_factor_for_test_client_logins, dispatch_uid="tests.factories.second_factor")


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


def insured_since(vehicle_id: int, *, days: int = 30) -> None:
    """Start the bike's policy `days` days ago: a theft "an hour ago" is then covered whatever the
    hour, where a policy starting today leaves a report made just after midnight outside it."""
    InsurancePolicy.objects.filter(vehicle_id=vehicle_id).update(
        starts_on=timezone.localdate() - datetime.timedelta(days=days)
    )


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
