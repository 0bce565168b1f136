"""Owner pages on the real database: only the owner's own records, online reports through the
report intake service, 403 pages for everyone else, and a clear state when there is no position."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry
from cases.models import TheftReport
from tests import factories
from tests.tracking import factories as tf
from tracking.ingest import Incoming, ingest_fixes
from tracking.models import TerminalInstallation
from vehicles.models import Vehicle
from vehicles.services.registration import vehicle_register

pytestmark = pytest.mark.django_db


def register(clerk, *, user=None, consent=True) -> Vehicle:
    vehicle = vehicle_register(
        clerk=clerk, owner=factories.owner_data(), vehicle=factories.vehicle_data(), insurance_consent=consent
    ).vehicle
    if user is not None:
        vehicle.owner.user = user
        vehicle.owner.save(update_fields=["user"])
    return vehicle


@pytest.fixture
def bike(clerk, owner_user):
    return register(clerk, user=owner_user)


def report_post(vehicle, **overrides):
    now = timezone.localtime()
    data = {
        "vehicle": vehicle.pk,
        "last_seen_at": (now - datetime.timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M"),
        "missing_at": (now - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "place_address": "玉田县无终街道兴隆路12号楼下车棚",
        "township_code": "130229001",
        "locked": "true",
        "reporter_phone": "13812345678",
        "narrative": "早上发现不见了",
    }
    data.update(overrides)
    return data


def test_my_bikes_lists_only_the_owners_bikes(client, clerk, owner_user, bike):
    someone_elses = register(clerk)
    client.force_login(owner_user)
    response = client.get(reverse("web:owner-bikes"))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-vehicle="{bike.pk}"' in html and bike.frame_number in html
    assert someone_elses.frame_number not in html
    assert "owner/_bike_extra.html" not in html  # the per-bike slot renders nothing by default


def test_policy_page_shows_the_owners_policy(client, owner_user, bike):
    client.force_login(owner_user)
    response = client.get(reverse("web:owner-policy", args=[bike.pk]))
    assert response.status_code == 200
    assert bike.policies.get().number in response.content.decode()


def test_a_bike_without_policy_says_so(client, clerk, owner_user):
    bare = register(clerk, user=owner_user, consent=False)
    client.force_login(owner_user)
    response = client.get(reverse("web:owner-policy", args=[bare.pk]))
    assert response.status_code == 200 and b"empty-state" in response.content


def test_another_owners_bike_is_403(client, clerk, owner_user, bike):
    other = register(clerk)
    client.force_login(owner_user)
    for name in ("web:owner-policy", "web:owner-position"):
        response = client.get(reverse(name, args=[other.pk]))
        assert response.status_code == 403
        assert b"This bike is not registered to you." in response.content


@pytest.mark.parametrize("role", ["clerk", "officer", "admin"])
def test_staff_without_an_owner_record_get_403_on_owner_pages(client, role):
    client.force_login(factories.user(role))
    response = client.get(reverse("web:owner-bikes"))
    assert response.status_code == 403 and b"<h1>" in response.content
    assert client.get(reverse("web:owner-report-theft")).status_code == 403


def test_position_empty_states(client, clerk, owner_user, bike):
    client.force_login(owner_user)
    response = client.get(reverse("web:owner-position", args=[bike.pk]))
    assert response.status_code == 200
    assert b'id="no-position"' in response.content and b"no anti-theft terminal" in response.content
    terminal = tf.terminal(bound=False)
    from tracking.services import terminal_bind

    terminal_bind(clerk=clerk, terminal_id=terminal.pk, vehicle_id=bike.pk, owner_consent=True)
    response = client.get(reverse("web:owner-position", args=[bike.pk]))
    assert b'id="no-position"' in response.content and b"has not sent a position yet" in response.content


def test_position_shows_the_last_fix_audited(client, clerk, owner_user):
    terminal = tf.terminal(clerk=clerk)
    vehicle = terminal.vehicle
    vehicle.owner.user = owner_user
    vehicle.owner.save(update_fields=["user"])
    TerminalInstallation.objects.filter(terminal=terminal).update(
        installed_at=timezone.now() - datetime.timedelta(days=1)
    )
    ingest_fixes([Incoming(terminal.pk, tf.fix(1, lat=39.89, lon=117.75))])
    client.force_login(owner_user)
    response = client.get(reverse("web:owner-position", args=[vehicle.pk]))
    assert response.status_code == 200
    assert response.context["marker"] == {"lat": 39.89, "lon": 117.75}
    assert AuditEntry.objects.filter(action="trajectory.position", user=owner_user, query__basis="owner").exists()


def test_online_report_goes_through_report_intake(client, owner_user, bike):
    client.force_login(owner_user)
    response = client.post(reverse("web:owner-report-theft"), report_post(bike))
    report = TheftReport.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("web:owner-report", args=[report.pk])
    assert report.channel == TheftReport.Channel.ONLINE and report.receiving_officer is None
    assert report.reporter_name == bike.owner.name and report.station == bike.station
    assert Vehicle.objects.get(pk=bike.pk).status == Vehicle.Status.STOLEN
    receipt = client.get(response["Location"])
    assert receipt.status_code == 200 and report.number in receipt.content.decode()


def test_bad_report_shows_every_problem_in_place_and_keeps_the_input(client, owner_user, bike):
    client.force_login(owner_user)
    data = report_post(bike, place_address="", reporter_phone="123", missing_at="2020-01-01T00:00")
    response = client.post(reverse("web:owner-report-theft"), data)
    assert response.status_code == 400
    form = response.context["form"]
    assert {"place_address", "reporter_phone", "last_seen_at"} <= set(form.errors)
    html = response.content.decode()
    assert 'value="123"' in html and "早上发现不见了" in html
    assert not TheftReport.objects.exists()


def test_a_stolen_bike_cannot_be_reported_again_and_others_bikes_not_at_all(client, clerk, owner_user, bike):
    client.force_login(owner_user)
    assert client.post(reverse("web:owner-report-theft"), report_post(bike)).status_code == 302
    # The stolen bike is no longer offered; posting it anyway is a field error, not a crash.
    response = client.post(reverse("web:owner-report-theft"), report_post(bike))
    assert response.status_code in (200, 400)
    assert not response.context["has_bikes"] or "vehicle" in response.context["form"].errors
    other = register(clerk)
    response = client.post(reverse("web:owner-report-theft"), report_post(other))
    assert response.status_code == 400 and "vehicle" in response.context["form"].errors
    assert TheftReport.objects.count() == 1


def test_someone_elses_receipt_is_403(client, clerk, owner_user, bike, officer):
    other_user = factories.user("owner", station_code=None)
    register(clerk, user=other_user)
    client.force_login(owner_user)
    client.post(reverse("web:owner-report-theft"), report_post(bike))
    report = TheftReport.objects.get()
    client.force_login(other_user)
    assert client.get(reverse("web:owner-report", args=[report.pk])).status_code == 403
