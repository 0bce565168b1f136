"""Registration certificates: a signed token in the QR code lets anyone verify a printed certificate.

The token names the vehicle and the plate number printed on it, signed with the certificate key
(settings.CERTIFICATE_SIGNING_KEY, not SECRET_KEY: rotating the session key never voids a printed
certificate), so a forged or altered certificate fails and a certificate for a since-replaced plate
shows as void. A rotated certificate key stays valid for verifying while it is listed in
CERTIFICATE_SIGNING_KEY_FALLBACKS.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core import signing

from vehicles.models import Plate, Vehicle

SALT = "vehicles.certificate"


@dataclass(frozen=True)
class Verification:
    vehicle: Vehicle
    plate_number: str
    plate_current: bool


def certificate_token(*, vehicle_id: int, plate_number: str) -> str:
    return signing.dumps(
        {"v": vehicle_id, "p": plate_number}, key=settings.CERTIFICATE_SIGNING_KEY, salt=SALT, compress=True
    )


def certificate_verify(token: str) -> Verification | None:
    """None if the token is forged or damaged; otherwise what the record says today."""
    try:
        payload = signing.loads(
            token,
            key=settings.CERTIFICATE_SIGNING_KEY,
            fallback_keys=[*settings.CERTIFICATE_SIGNING_KEY_FALLBACKS],
            salt=SALT,
        )
        vehicle = Vehicle.objects.select_related("owner", "station").get(pk=int(payload["v"]))
        plate_number = str(payload["p"])
    except (signing.BadSignature, KeyError, TypeError, ValueError, Vehicle.DoesNotExist):
        return None
    current = Plate.objects.filter(vehicle=vehicle, number=plate_number, status=Plate.Status.ISSUED).exists()
    return Verification(vehicle=vehicle, plate_number=plate_number, plate_current=current)
