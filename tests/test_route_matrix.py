"""The route × role matrix: every page and API route, driven as every kind of user.

The routes come from the URL configuration itself: a route without an entry in MATRIX fails
`test_every_route_has_an_entry`, so nobody adds a page or an endpoint without deciding who may use
it. Each persona test then requests every route (GET, or POST with an empty body where the route
takes no GET) on one scene, inside a savepoint rolled back after each request, and checks:

- a persona the entry names is served: not refused (401/403), not sent to the login page, no 5xx;
- any other persona is refused: 401/403, 404 for another's object, or the login page;
- no response to a persona without the right to full identity carries the owner's full resident ID
  number or phone (they may appear masked).

The Django admin's routes are covered through each registered model's changelist.
"""

import datetime
import io
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.gis.geos import Point
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from accounts.services import administrator_role_grant
from cases.claims.services import claims_make_eligible
from cases.models import CaseLink, DutyCall, Notification
from cases.workflow.services import CaseFiling, VehicleQuery, case_link, report_take, report_transition
from tests import factories
from tests.cases.casework import approved_case
from tests.tracking import factories as tf
from tests.url_routes import url_routes
from tracking.ingest import Incoming, ingest_fixes
from tracking.models import Alarm
from vehicles.certificates import certificate_token
from vehicles.models import Plate, Vehicle, VehiclePhoto
from vehicles.services.photos import photo_add

pytestmark = pytest.mark.django_db

ANON = "anonymous"
OWNER = "owner_own"
OTHER_OWNER = "owner_other"
CLERK = "clerk"
OFFICER = "officer"  # of the bike's station, receiving officer of its report, on its case
OTHER_OFFICER = "officer_other"  # of another station, no duty
LEADER = "leader"  # the `admin` group, of the bike's station
SYSADMIN = "sysadmin"
AUDITADMIN = "auditadmin"
SECADMIN = "secadmin"
PERSONAS = (ANON, OWNER, OTHER_OWNER, CLERK, OFFICER, OTHER_OFFICER, LEADER, SYSADMIN, AUDITADMIN, SECADMIN)
# Who may see a resident ID number and a phone in full (audited): officers, leaders, the owner.
FULL_IDENTITY = {OWNER, OFFICER, OTHER_OFFICER, LEADER}

EVERYONE = set(PERSONAS)
SIGNED_IN = EVERYONE - {ANON}
OWNERS = {OWNER, OTHER_OWNER}
STAFF = {CLERK, OFFICER, OTHER_OFFICER, LEADER}
OFFICERS = {OFFICER, OTHER_OFFICER}
ADMINS = {SYSADMIN, AUDITADMIN, SECADMIN}


# Who may use each route: the policy of the rules.py modules, written out. A route the URL
# configuration gains without an entry here fails the suite.
MATRIX: dict[str, set[str]] = {
    "admin:accounts_auditentry_changelist": {AUDITADMIN},
    "admin:accounts_recoverycodedevice_changelist": {SECADMIN},
    "admin:accounts_registrationpoint_changelist": {SYSADMIN},
    "admin:accounts_station_changelist": {SYSADMIN},
    "admin:accounts_township_changelist": {SYSADMIN},
    "admin:accounts_user_changelist": {SYSADMIN},
    "admin:auth_group_changelist": set(),
    "admin:axes_accessattempt_changelist": {SECADMIN},
    "admin:axes_accessfailurelog_changelist": set(),
    "admin:axes_accesslog_changelist": set(),
    "admin:cases_webhookdelivery_changelist": {SYSADMIN},
    "admin:knox_authtoken_changelist": set(),
    "admin:otp_totp_totpdevice_changelist": {SECADMIN},
    "admin:stats_plateestimate_changelist": set(),
    "admin:stats_stationarea_changelist": set(),
    "admin:tracking_ingestoutbox_changelist": {SYSADMIN},
    "admin:vehicles_insurancepolicy_changelist": set(),
    "admin:vehicles_insurancescheme_changelist": {SYSADMIN},
    "admin:vehicles_owner_changelist": set(),
    "admin:vehicles_plate_changelist": set(),
    "admin:vehicles_plateseries_changelist": {SYSADMIN},
    "admin:vehicles_registrationevent_changelist": set(),
    "admin:vehicles_vehicle_changelist": set(),
    "admin:vehicles_vehiclephoto_changelist": set(),
    "alerts:duty": OFFICERS,
    "alerts:duty-step": {OFFICER},
    "alerts:my-alarms": OWNERS,
    "alerts:my-answer": OWNERS,
    "alerts:my-arm": OWNERS,
    "alerts:my-contact": OWNERS,
    "alerts:notification-read": {OFFICER},
    "alerts:notifications": SIGNED_IN,
    "alerts:notifications-read-all": SIGNED_IN,
    "api-docs": STAFF,
    "api-token": EVERYONE,
    "api-token-logout": set(),  # token authentication only (a session is refused)
    "api-token-logout-all": SIGNED_IN,
    "case-approve": {LEADER},
    "case-close": {LEADER},
    "case-create": OFFICERS,
    "case-detail": {OFFICER, LEADER},
    "case-evidence": {OFFICER},
    "case-link": {OFFICER},
    "case-solve": {OFFICER},
    "case-unlink": {OFFICER},
    "cases:case": {OFFICER, LEADER},
    "cases:case-list": OFFICERS | {LEADER},
    "cases:decision": {CLERK, OFFICER, LEADER},
    "cases:my-cases": OFFICERS,
    "cases:reason-reviews": {LEADER},
    "cases:receipt": {CLERK, OFFICER, LEADER},
    "cases:report": {CLERK, OFFICER, LEADER},
    "cases:report-new": OFFICERS | {CLERK},
    "cases:reports-undecided": {LEADER},
    "cases:stolen-check": EVERYONE,
    # The insured owner following an older notification's link is sent on to web:owner-claim.
    "claims:detail": STAFF | {OWNER},
    "claims:list": STAFF,
    "duty-call": {OFFICER},
    "duty-call-step": {OFFICER},
    "duty-calls": OFFICERS,
    "evidence-public-key": EVERYONE,
    "evidence-verify": EVERYONE,
    "evidence:case": {OFFICER},
    "evidence:report": {OFFICER},
    "favicon": EVERYONE,
    "healthz": EVERYONE,
    "insurance-claim-approve": {LEADER},
    "insurance-claim-detail": STAFF,
    "insurance-claim-list": STAFF,
    "insurance-claim-pay": {LEADER},
    "insurance-claim-reject": {LEADER},
    "insurance-claim-settle": {CLERK, LEADER},
    "insurance-claim-submit": OFFICERS | {CLERK},
    "login": EVERYONE,
    "logout": SIGNED_IN,  # always ends on the login page: see SIGNS_OUT
    "metrics": set(),  # the Prometheus scraper only: METRICS_ALLOWED_NETWORKS or METRICS_TOKEN (tests/test_health.py)
    "my-alarm-answer": OWNERS,
    "my-alarms": OWNERS,
    "my-emergency-contact": OWNERS,
    "my-vehicle-arm": OWNERS,
    "my-vehicles": OWNERS,
    "notification-read": {OFFICER},
    "notifications": SIGNED_IN,
    "notifications-read-all": SIGNED_IN,
    "notifications-unread": SIGNED_IN,
    "pings-ingest": set(),  # integrations with an ingestion token only
    "plate-replace": {CLERK, LEADER},
    "public-stolen-check": EVERYONE,
    "registration-create": {CLERK, LEADER},
    "schema": STAFF,
    "second-factor": SIGNED_IN,
    "second-factor-enrol": SIGNED_IN,
    # The security policy: the security administrator alone (accounts.set_security_policy).
    "security-policy": {SECADMIN},
    # Accounts without an authenticator (these clerks and owners) are sent to set one up first.
    "recovery-codes": SIGNED_IN - {CLERK} - OWNERS,
    "set_language": EVERYONE,
    "station-list": STAFF | {SYSADMIN},
    "stats-alarms": {LEADER},
    "stats-cases": {LEADER},
    "stats-estimates": {LEADER},
    "stats-estimates-import": {LEADER},
    "stats-hotspots": {LEADER},
    "stats-plate-rate-stations": {LEADER},
    "stats-plate-rate-townships": {LEADER},
    "stats-registrations": {LEADER},
    "stats-rescues": {LEADER},
    "stats-thefts": {LEADER},
    "stats:dashboard": {LEADER},
    "stats:estimates": {LEADER},
    "stolen-near": OFFICERS | {LEADER},
    "terminal-bind": {CLERK, LEADER},
    "terminal-fit": {CLERK, LEADER},
    "terminal-list": STAFF,
    "terminal-replace": {CLERK, LEADER},
    "terminal-unbind": {CLERK, LEADER},
    "theft-report-assign": {LEADER},
    "theft-report-create": OFFICERS | {CLERK, OTHER_OWNER, OWNER},
    "theft-report-detail": {CLERK, OFFICER, LEADER},
    "theft-report-evidence": {OFFICER},
    "theft-report-sightings": {OFFICER},
    "theft-report-transition": {OFFICER},
    "township-list": STAFF | {SYSADMIN},
    "tracing-near": OFFICERS | {LEADER},
    "tracking:fit": {CLERK, LEADER},
    "tracking:identity": {CLERK, LEADER},
    "vehicle-change": {CLERK, LEADER},
    "vehicle-correct": {CLERK, LEADER},
    "vehicle-deregister": {CLERK, LEADER},
    "vehicle-detail": STAFF,
    "vehicle-photo-add": {CLERK, LEADER},
    "vehicle-position": {OWNER, OFFICER},
    "vehicle-search": STAFF,
    "vehicle-stops": {OWNER, OFFICER},
    "vehicle-trajectory": {OWNER, OFFICER},
    "vehicle-transfer": {CLERK, LEADER},
    "vehicles:certificate": STAFF,
    "vehicles:change": {CLERK, LEADER},
    "vehicles:correct": {CLERK, LEADER},
    "vehicles:counter": {CLERK, LEADER},
    "vehicles:deregister": {CLERK, LEADER},
    "vehicles:detail": STAFF,
    "vehicles:receipt": {CLERK, LEADER},
    "vehicles:replace_plate": {CLERK, LEADER},
    "vehicles:transfer": {CLERK, LEADER},
    "vehicles:home": SIGNED_IN,
    "vehicles:photo": STAFF | {OWNER},
    "vehicles:search": STAFF,
    "vehicles:verify": EVERYONE,
    "web:crime-scene": OFFICERS | {LEADER},
    "web:map": OFFICERS,
    "web:map-card": OFFICERS,
    "web:map-markers": OFFICERS,
    "web:owner-bikes": OWNERS,
    "web:owner-claim": {OWNER},
    "web:owner-claims": OWNERS,
    "web:owner-policy": {OWNER},
    "web:owner-position": {OWNER},
    "web:owner-report": {OWNER},
    "web:owner-report-theft": OWNERS,
    "web:trace": {OWNER, OFFICER},
}
# Routes whose answer to everyone is the login page by design.
SIGNS_OUT = {"logout"}


def routes() -> dict[str, str]:
    """Every named route outside the Django admin, plus each admin model's changelist."""
    found = {}
    for name, path in url_routes():
        if name is None or name.startswith("admin:"):
            continue
        found[name] = path
    for model in admin.site._registry:
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"
        found[name] = f"admin/{model._meta.app_label}/{model._meta.model_name}/"
    return found


# --- the scene ---------------------------------------------------------------------------------------------


@dataclass
class Scene:
    users: dict[str, Any]
    ids: dict[str, Any]
    secrets: list[str]  # the owner's full ID number and phones


def _plain(username: str):
    from accounts.models import User

    return User.objects.create_user(username=username, password="correct-horse-battery-9")


def build_scene() -> Scene:
    clerk = factories.user("clerk")
    officer = factories.user("officer")
    users = {
        CLERK: clerk,
        OFFICER: officer,
        OTHER_OFFICER: factories.user("officer", station_code="13022902"),
        LEADER: factories.user("admin"),
        OWNER: factories.user("owner", station_code=None),
        OTHER_OWNER: factories.user("owner", station_code=None),
    }
    for role in (SYSADMIN, AUDITADMIN, SECADMIN):
        users[role] = _plain(f"matrix-{role}")
        administrator_role_grant(username=f"matrix-{role}", role=role, granted_by="test")

    terminal = tf.terminal(clerk=clerk)
    vehicle = Vehicle.objects.select_related("owner").get(pk=terminal.vehicle_id)
    factories.insured_since(vehicle.pk)  # the theft below falls inside the policy even just after midnight
    owner = vehicle.owner
    owner.user = users[OWNER]
    owner.save(update_fields=["user"])
    other = tf.terminal(clerk=clerk).vehicle
    other.owner.user = users[OTHER_OWNER]
    other.owner.save(update_fields=["user"])

    now = timezone.now()
    ingest_fixes([Incoming(terminal.pk, tf.fix(30 + i, lat=39.8826 + i * 0.0005)) for i in range(5)])
    report = report_take(
        user=officer,
        channel="walk_in",
        vehicle_query=VehicleQuery(frame_number=vehicle.frame_number),
        reporter_name=owner.name,
        reporter_phone=owner.phone,
        reporter_id_number=owner.id_number,
        last_seen_at=now - datetime.timedelta(hours=2),
        missing_at=now - datetime.timedelta(hours=1),
        place_address="玉田县无终街道兴隆路超市门口",
    )
    case = approved_case(filer=officer, number="玉公刑立字〔2026〕9001号", officers=[officer])
    link = case_link(user=officer, case_id=case.pk, report_id=report.pk)
    png = io.BytesIO()
    Image.new("RGB", (8, 8), (20, 20, 20)).save(png, format="PNG")
    photo = photo_add(
        user=clerk,
        vehicle_id=vehicle.pk,
        kind=VehiclePhoto.Kind.DOCUMENT,
        upload=SimpleUploadedFile("id.png", png.getvalue(), content_type="image/png"),
    )
    alarm = Alarm.objects.create(terminal=terminal, vehicle=vehicle, kind="sos", at=now)
    call = DutyCall.objects.create(
        kind=DutyCall.Kind.RESCUE,
        station=vehicle.station,
        alarm_id=alarm.pk,
        vehicle=vehicle,
        raised_at=now,
        point=Point(117.7, 39.9, srid=4326),
    )
    notification = Notification.objects.create(user=officer, kind="sighting", title="matrix")
    plate = Plate.objects.get(vehicle=vehicle, status=Plate.Status.ISSUED)
    report_transition(
        user=officer,
        report_id=report.pk,
        to_status="filed_criminal",
        note="价值 2999 元",
        filing=CaseFiling(case_id=case.pk),
    )
    claims = claims_make_eligible(now=now + datetime.timedelta(days=400))
    assert claims, "the scene's report should make a claim eligible"
    ids = {
        "vehicle_id": vehicle.pk,
        "event_id": vehicle.events.order_by("id").first().pk,  # its registration: a receipt
        "report_id": report.pk,
        "case_id": case.pk,
        "link_id": link.pk,
        "photo_id": photo.pk,
        "terminal_id": terminal.pk,
        "call_id": call.pk,
        "notification_id": notification.pk,
        "claim_id": claims[0].pk,
        "token": certificate_token(vehicle_id=vehicle.pk, plate_number=plate.number),
        "action": "acknowledge",
    }
    secrets = [owner.id_number, owner.phone]
    assert CaseLink.objects.filter(pk=link.pk).exists()
    return Scene(users=users, ids=ids, secrets=secrets)


# --- driving ---------------------------------------------------------------------------------------------


def _url(name: str, path: str, ids: dict[str, Any]) -> str:
    if name.startswith("admin:"):
        return "/" + path
    import re

    kwargs = {key: ids[key] for key in re.findall(r"<(?:\w+:)?(\w+)>", path)}
    return reverse(name, kwargs=kwargs)


def _client(persona: str, scene: Scene) -> Client:
    client = Client()
    if persona != ANON:
        client.force_login(scene.users[persona])
    return client


REFUSED = {401, 403, 404, 405}


def _refused(response) -> bool:
    if response.status_code in REFUSED:
        return True
    location = response.get("Location", "") if response.status_code in (301, 302) else ""
    return "/login/" in location


def drive(client: Client, name: str, path: str, scene: Scene):
    url = _url(name, path, scene.ids)
    sid = transaction.savepoint()
    try:
        response = client.get(url)
        if response.status_code == 405:
            response = client.post(url, data={}, content_type="application/json")
        return response
    finally:
        transaction.savepoint_rollback(sid)


def observe(persona: str, scene: Scene) -> dict[str, Any]:
    """Every route's response for the persona (a fresh sign-in each: some routes sign out)."""
    return {name: drive(_client(persona, scene), name, path, scene) for name, path in sorted(routes().items())}


# --- the tests -------------------------------------------------------------------------------------------


def test_every_route_has_an_entry():
    found = set(routes())
    assert sorted(found - MATRIX.keys()) == [], "routes without an entry in MATRIX: decide who may use them"
    assert sorted(MATRIX.keys() - found) == [], "entries in MATRIX for routes that no longer exist"


@pytest.mark.parametrize("persona", PERSONAS)
def test_each_route_serves_exactly_the_personas_the_matrix_names(persona, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    scene = build_scene()
    wrong = []
    for name, response in observe(persona, scene).items():
        status = response.status_code
        if status >= 500:
            wrong.append(f"{name}: {status}")
            continue
        if name not in SIGNS_OUT:
            expected = persona in MATRIX[name]
            if expected == _refused(response):
                wrong.append(
                    f"{name}: {status} {response.get('Location', '')} ({'allowed' if expected else 'refused'} expected)"
                )
        if persona not in FULL_IDENTITY and not response.streaming:
            body = response.content.decode(errors="replace")
            leaked = [secret for secret in scene.secrets if secret in body]
            if leaked:
                wrong.append(f"{name}: shows the owner's full ID number or phone to {persona}")
    assert wrong == []
