import base64
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from tests import factories
from vehicles.models import VehiclePhoto

pytestmark = pytest.mark.django_db

# A real 1x1 PNG, as a phone camera app would never send but a browser canvas might.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def vehicle_id(clerk_api, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    body = clerk_api.post("/api/v1/registrations", factories.registration_payload(), format="json").json()
    return body["vehicle"]["id"]


def test_clerk_attaches_a_photo_and_it_shows_on_the_record(clerk_api, vehicle_id, tmp_path):
    upload = SimpleUploadedFile("IMG_0001.PNG", PNG, content_type="image/png")
    response = clerk_api.post(f"/api/v1/vehicles/{vehicle_id}/photos", {"kind": "plate_fitted", "image": upload})
    assert response.status_code == 201, response.json()
    photo = VehiclePhoto.objects.get()
    with Image.open(photo.image.path) as stored:
        assert (stored.format, stored.size, stored.convert("RGBA").getpixel((0, 0))) == (
            "PNG",
            (1, 1),
            (255, 0, 0, 127),
        )
    assert photo.image.path.startswith(str(tmp_path))
    detail = clerk_api.get(f"/api/v1/vehicles/{vehicle_id}").json()
    assert [p["kind"] for p in detail["photos"]] == ["plate_fitted"]


def test_a_file_that_is_not_an_image_is_refused_whatever_its_name(clerk_api, vehicle_id):
    fake = SimpleUploadedFile("bike.jpg", b"#!/bin/sh\necho hi\n", content_type="image/jpeg")
    response = clerk_api.post(f"/api/v1/vehicles/{vehicle_id}/photos", {"kind": "bike", "image": fake})
    assert response.status_code == 400
    assert "JPEG and PNG" in response.json()["image"][0]
    assert not VehiclePhoto.objects.exists()


def test_unknown_photo_kind_and_missing_file_are_both_reported(clerk_api, vehicle_id):
    response = clerk_api.post(f"/api/v1/vehicles/{vehicle_id}/photos", {"kind": "selfie"})
    assert response.status_code == 400
    assert set(response.json()) == {"kind", "image"}


def image_bytes(fmt, size=(40, 30), **save):
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format=fmt, **save)
    return out.getvalue()


@pytest.mark.parametrize(("fmt", "name"), [("JPEG", "bike.jpg"), ("PNG", "bike.png")])
def test_a_script_appended_to_an_image_is_not_stored(clerk_api, vehicle_id, fmt, name):
    script = b"<?php system($_GET['c']); ?>"
    upload = SimpleUploadedFile(name, image_bytes(fmt) + script, content_type="image/jpeg")
    response = clerk_api.post(f"/api/v1/vehicles/{vehicle_id}/photos", {"kind": "bike", "image": upload})
    assert response.status_code == 201, response.json()
    stored = VehiclePhoto.objects.get().image.read()
    assert b"<?php" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert (image.format, image.size) == (fmt, (40, 30))


def test_metadata_such_as_the_cameras_gps_position_is_not_kept(clerk_api, vehicle_id):
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {2: (39.0, 54.0, 1.0), 4: (117.0, 44.0, 2.0)}  # GPS latitude, longitude
    photo = image_bytes("JPEG", exif=exif.tobytes())
    assert b"PhoneMaker" in photo
    upload = SimpleUploadedFile("bike.jpg", photo, content_type="image/jpeg")
    assert clerk_api.post(f"/api/v1/vehicles/{vehicle_id}/photos", {"kind": "bike", "image": upload}).status_code == 201
    stored = VehiclePhoto.objects.get().image.read()
    assert b"PhoneMaker" not in stored and b"Exif" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert not image.getexif()


def test_a_truncated_image_is_refused(clerk_api, vehicle_id):
    upload = SimpleUploadedFile("bike.jpg", image_bytes("JPEG")[:200], content_type="image/jpeg")
    response = clerk_api.post(f"/api/v1/vehicles/{vehicle_id}/photos", {"kind": "bike", "image": upload})
    assert response.status_code == 400
    assert "not a readable JPEG or PNG image" in response.json()["image"][0]
    assert not VehiclePhoto.objects.exists()


def test_a_decompression_bomb_is_refused_before_it_is_decoded(clerk_api, vehicle_id):
    # 10,000 x 10,000 pixels of one colour: a few hundred kilobytes that would take 300 MB decoded.
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, format="PNG")
    assert len(out.getvalue()) < 8 * 1024 * 1024
    upload = SimpleUploadedFile("bomb.png", out.getvalue(), content_type="image/png")
    response = clerk_api.post(f"/api/v1/vehicles/{vehicle_id}/photos", {"kind": "bike", "image": upload})
    assert response.status_code == 400
    assert "at most 40 megapixels" in response.json()["image"][0]
    assert not VehiclePhoto.objects.exists()


def test_a_photo_over_8_mb_gets_a_json_413(clerk_api, vehicle_id, settings):
    big = SimpleUploadedFile("big.png", b"\x89PNG\r\n\x1a\n" + b"0" * (9 * 1024 * 1024), content_type="image/png")
    response = clerk_api.post(f"/api/v1/vehicles/{vehicle_id}/photos", {"kind": "bike", "image": big})
    assert response.status_code == 413
    assert response.json() == {"image": ["A photo may be at most 8 MB."]}
    assert not VehiclePhoto.objects.exists()


def test_a_photo_is_served_by_its_view_to_staff_and_its_owner_and_each_look_is_audited(
    clerk_api, vehicle_id, owner_user, client
):
    from django.test import Client

    from accounts.models import AuditEntry
    from vehicles.models import Vehicle

    upload = SimpleUploadedFile("id.png", image_bytes("PNG"), content_type="image/png")
    created = clerk_api.post(f"/api/v1/vehicles/{vehicle_id}/photos", {"kind": "document", "image": upload}).json()
    photo = VehiclePhoto.objects.get()
    # The API links to the view, absolute; the stored name tells nothing of the bike or the kind.
    assert created["url"] == f"http://testserver/photos/{photo.pk}/"
    assert str(vehicle_id) not in photo.image.name and "document" not in photo.image.name
    assert client.get(f"/media/{photo.image.name}").status_code == 404  # the media directory is not served
    assert client.get(created["url"]).status_code == 302  # anonymous: to the login page

    staff = Client()
    staff.force_login(factories.user("clerk"))
    shown = staff.get(created["url"])
    assert shown.status_code == 200 and shown["Content-Type"] == "image/png"
    assert b"".join(shown.streaming_content).startswith(b"\x89PNG")
    assert AuditEntry.objects.filter(action="photo.view", object_id=str(vehicle_id), result_count=1).count() == 1

    stranger = Client()
    stranger.force_login(owner_user)  # an owner, not of this bike
    assert stranger.get(created["url"]).status_code == 403
    assert AuditEntry.objects.get(action="photo.view", user=owner_user).query["refused"]
    owner = Vehicle.objects.get(pk=vehicle_id).owner
    owner.user = owner_user
    owner.save(update_fields=["user"])
    assert stranger.get(created["url"]).status_code == 200  # now it is theirs
