import base64

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

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
    assert photo.image.read() == PNG
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
