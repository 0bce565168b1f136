import secrets

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _

from accounts.models import User
from vehicles.models import Vehicle, VehiclePhoto

MAX_PHOTO_BYTES = 8 * 1024 * 1024
# Recognised by their first bytes, not by the name or Content-Type the client claims.
SIGNATURES = {b"\xff\xd8\xff": ".jpg", b"\x89PNG\r\n\x1a\n": ".png"}


def photo_add(*, user: User, vehicle_id: int, kind: str, upload: UploadedFile) -> VehiclePhoto:
    problems: dict[str, list[str]] = {}
    if kind not in VehiclePhoto.Kind.values:
        problems["kind"] = [_("Photo kind must be one of: %(kinds)s.") % {"kinds": ", ".join(VehiclePhoto.Kind.values)}]
    if upload.size is None or upload.size > MAX_PHOTO_BYTES:
        problems["image"] = [_("A photo may be at most 8 MB.")]
    else:
        head = upload.read(8)
        upload.seek(0)
        extension = next((ext for sig, ext in SIGNATURES.items() if head.startswith(sig)), None)
        if extension is None:
            problems["image"] = [_("Only JPEG and PNG photos are accepted.")]
    if problems:
        raise ValidationError(problems)
    vehicle = Vehicle.objects.get(pk=vehicle_id)
    # An unguessable name: files are served only through the photo view, which asks the policy and
    # audits, but a name that leaks (a log, a backup listing) must not lead to another owner's ID card.
    upload.name = f"{secrets.token_urlsafe(24)}{extension}"
    return VehiclePhoto.objects.create(vehicle=vehicle, kind=kind, image=upload)
