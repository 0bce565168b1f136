"""Every size limit of the API answers a JSON 413 that names the limit, and nothing is stored."""

import pytest
from rest_framework.test import APIClient

from tracking.models import Ping
from tracking.services import ingest_token_create

pytestmark = pytest.mark.django_db


def test_a_100_mb_body_with_a_valid_token_gets_a_json_413():
    _token, raw = ingest_token_create(name="平台")
    body = b'{"pings": [' + b" " * (100 * 1024 * 1024) + b"]}"
    response = APIClient().generic(
        "POST", "/api/v1/pings", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}"
    )
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "The request body is larger than 2621440 bytes."}
    assert not Ping.objects.exists()


def test_too_many_form_fields_get_a_json_413(clerk_api, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    fields = "&".join(f"f{n}=x" for n in range(20))
    response = clerk_api.generic(
        "POST", "/api/v1/registrations", fields, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 413
    assert response.json() == {"detail": "The request has more than 10 fields."}
