import pytest
from django.contrib.auth.models import Group

from accounts.models import RegistrationPoint, Station, Township
from accounts.reference import TOWNSHIPS
from tests import factories

pytestmark = pytest.mark.django_db


def test_yutian_townships_and_twenty_demo_stations_are_loaded():
    assert Township.objects.count() == len(TOWNSHIPS) == 23
    assert Township.objects.get(code="130229105").name == "虹桥镇"
    assert Station.objects.count() == 20
    assert Station.objects.filter(is_demo=True).count() == 20
    assert Station.objects.get(township_id="130229105").name == "玉田县公安局虹桥派出所"
    assert RegistrationPoint.objects.filter(station__code="13022901").exists()


def test_roles_grant_what_each_user_needs():
    assert set(Group.objects.values_list("name", flat=True)) >= {
        "owner",
        "clerk",
        "officer",
        "admin",
        "sysadmin",
        "auditadmin",
        "secadmin",
    }
    clerk, officer, admin, owner = (factories.user(r) for r in ("clerk", "officer", "admin", "owner"))
    assert clerk.has_perm("vehicles.register_vehicle") and not clerk.has_perm("vehicles.view_full_identity")
    assert officer.has_perm("vehicles.view_full_identity") and not officer.has_perm("vehicles.register_vehicle")
    # The leadership reads statistics and approves claims; it neither manages accounts nor reads the audit.
    assert admin.has_perm("stats.view_statistics") and admin.has_perm("cases.decide_claim")
    assert not admin.has_perm("accounts.view_auditentry") and not admin.has_perm("vehicles.change_plateseries")
    assert not admin.has_perm("accounts.change_user")
    assert not owner.has_perm("vehicles.search_records")


def test_reference_api_lists_stations_and_townships(clerk_api):
    stations = clerk_api.get("/api/v1/stations").json()
    assert len(stations) == 20 and stations[0]["name"].endswith("派出所")
    assert len(clerk_api.get("/api/v1/townships").json()) == 23


def test_owners_do_not_list_the_stations(api, owner_user):
    api.force_authenticate(owner_user)
    assert api.get("/api/v1/stations").status_code == 403
    assert api.get("/api/v1/townships").status_code == 403


def test_health_reports_database_and_redis(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"].startswith("ok (PostGIS 3")
    assert body["checks"]["redis"] == "ok"


def test_health_names_redis_when_it_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("error")


def test_openapi_schema_documents_the_registry_endpoints(client, clerk):
    client.force_login(clerk)  # the schema and Swagger UI are for staff (tests/test_csp.py)
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/api/v1/registrations", "/api/v1/vehicles", "/api/v1/vehicles/{vehicle_id}/transfer"):
        assert path in paths
    assert client.get("/api/docs/").status_code == 200
