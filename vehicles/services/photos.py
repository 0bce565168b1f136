"""Photos of a bike and scans of its documents, re-encoded on the server.

An upload is decoded with Pillow and written out again as a new JPEG or PNG: whatever else the file
carried (a script appended after the image data, EXIF with the phone's GPS position, comments,
thumbnails) is not kept. The pixel limit refuses decompression bombs before they are decoded.
"""

import io
import secrets
import warnings

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _
from PIL import Image, ImageOps

from accounts.models import User
from ebike_registry.problems import TooLarge
from vehicles.models import Vehicle, VehiclePhoto

MAX_PHOTO_BYTES = 8 * 1024 * 1024
# 40 megapixels: more than any phone camera or document scanner at 600 dpi gives (A4 is ~35 MP);
# a small file that claims more is a decompression bomb.
MAX_PHOTO_PIXELS = 40_000_000
# Recognised by their first bytes, not by the name or Content-Type the client claims.
SIGNATURES = {b"\xff\xd8\xff": ".jpg", b"\x89PNG\r\n\x1a\n": ".png"}
FORMATS = {".jpg": "JPEG", ".png": "PNG"}


def photo_reencode(*, data: bytes, extension: str) -> bytes:
    """Decode the image and encode its pixels alone again, in the same format; ValueError when the
    bytes are not one whole image of that format within the pixel limit."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[FORMATS[extension]]) as image:
                width, height = image.size
                if width * height > MAX_PHOTO_PIXELS:
                    raise ValueError("too many pixels")
                image.load()
                upright = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(str(exc)) from exc
    out = io.BytesIO()
    if extension == ".jpg":
        upright.convert("RGB").save(out, format="JPEG", quality=90, optimize=True)
    else:
        mode = upright.mode if upright.mode in {"1", "L", "LA", "P", "RGB", "RGBA"} else "RGBA"
        upright.convert(mode).save(out, format="PNG", optimize=True)
    return out.getvalue()


def photo_upload_size_check(*, content_length: str | int | None) -> None:
    """Refuse an upload whose declared size is over the limit before its body is read."""
    try:
        size = int(content_length or 0)
    except ValueError:
        return
    if size > MAX_PHOTO_BYTES + 64 * 1024:  # the form's other fields and the multipart framing
        raise TooLarge({"image": [_("A photo may be at most 8 MB.")]})


def photo_add(*, user: User, vehicle_id: int, kind: str, upload: UploadedFile) -> VehiclePhoto:
    problems: dict[str, list[str]] = {}
    if kind not in VehiclePhoto.Kind.values:
        problems["kind"] = [_("Photo kind must be one of: %(kinds)s.") % {"kinds": ", ".join(VehiclePhoto.Kind.values)}]
    if upload.size is None or upload.size > MAX_PHOTO_BYTES:
        raise TooLarge({"image": [_("A photo may be at most 8 MB.")], **problems})
    data = upload.read()
    extension = next((ext for sig, ext in SIGNATURES.items() if data.startswith(sig)), None)
    image = b""
    if extension is None:
        problems["image"] = [_("Only JPEG and PNG photos are accepted.")]
    else:
        try:
            image = photo_reencode(data=data, extension=extension)
        except ValueError:
            problems["image"] = [
                _("The file is not a readable JPEG or PNG image of at most %(mp)s megapixels.")
                % {"mp": MAX_PHOTO_PIXELS // 1_000_000}
            ]
    if problems:
        raise ValidationError(problems)
    vehicle = Vehicle.objects.get(pk=vehicle_id)
    # An unguessable name: files are served only through the photo view, which asks the policy and
    # audits, but a name that leaks (a log, a backup listing) must not lead to another owner's ID card.
    name = f"{secrets.token_urlsafe(24)}{extension}"
    return VehiclePhoto.objects.create(vehicle=vehicle, kind=kind, image=ContentFile(image, name=name))
