import datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from tests import factories
from tests.tracking import factories as tf
from tracking.ingest import LAST_SQL
from tracking.models import LastPosition, Ping, Terminal, TerminalInstallation
from tracking.pings_http import KNOWN_SQL
from tracking.services import ingest_token_create

pytestmark = pytest.mark.django_db


def registered_vehicle(clerk_api):
    body = clerk_api.post("/api/v1/registrations", factories.registration_payload(), format="json").json()
    return body["vehicle"]["id"]


def test_clerk_registers_a_terminal_and_fits_it_at_the_counter(clerk_api, clerk, officer_api):
    vehicle_id = registered_vehicle(clerk_api)
    imei = tf.imei()
    created = clerk_api.post("/api/v1/terminals", {"imei": imei, "protocol": "gt06"}, format="json")
    assert created.status_code == 201, created.json()
    terminal_id = created.json()["id"]

    bound = clerk_api.post(
        f"/api/v1/terminals/{terminal_id}/bind", {"vehicle_id": vehicle_id, "owner_consent": True}, format="json"
    )
    assert bound.status_code == 201, bound.json()
    assert (bound.json()["installed_by"], bound.json()["station"]) == (clerk.username, clerk.station.name)

    # The filing search finds the bike by the terminal's IMEI.
    found = officer_api.get("/api/v1/vehicles", {"imei": imei}).json()["results"]
    assert [row["id"] for row in found] == [vehicle_id]


def test_jt808_terminal_needs_its_phone_and_awaits_its_first_register_for_a_code(clerk_api):
    missing = clerk_api.post("/api/v1/terminals", {"imei": tf.imei(), "protocol": "jt808"}, format="json")
    assert missing.status_code == 400 and "phone" in missing.json()
    body = {"imei": tf.imei(), "protocol": "jt808", "phone": "013912345678", "maker": "ZHIXIN", "model_code": "ZX-9"}
    ok = clerk_api.post("/api/v1/terminals", body, format="json")
    assert ok.status_code == 201
    # The gateway issues the code at the terminal's first register; the counter never sees one.
    terminal = Terminal.objects.get(pk=ok.json()["id"])
    assert (terminal.auth_code_digest, terminal.maker, terminal.model_code) == ("", "ZHIXIN", "ZX-9")
    assert not any("auth_code" in key for key in ok.json())


def test_a_maker_with_spaces_or_for_a_gt06_terminal_is_refused_naming_the_field(clerk_api):
    spaces = {"imei": tf.imei(), "protocol": "jt808", "phone": "013912345679", "maker": "ZHI XIN"}
    response = clerk_api.post("/api/v1/terminals", spaces, format="json")
    assert response.status_code == 400 and "letters, digits" in response.json()["maker"][0]
    gt06 = {"imei": tf.imei(), "protocol": "gt06", "model_code": "GT06N"}
    response = clerk_api.post("/api/v1/terminals", gt06, format="json")
    assert response.status_code == 400 and "Only JT/T 808" in response.json()["model_code"][0]


@pytest.mark.parametrize(
    ("imei", "fragment"), [("86471700328358", "15 digits"), ("864717003283582", "Luhn"), ("86471700328358X", "15")]
)
def test_bad_imeis_are_refused_with_the_reason(clerk_api, imei, fragment):
    response = clerk_api.post("/api/v1/terminals", {"imei": imei, "protocol": "gt06"}, format="json")
    assert response.status_code == 400
    assert fragment in response.json()["imei"][0]
    assert not Terminal.objects.exists()


def test_a_terminal_is_registered_once(clerk_api):
    imei = tf.imei()
    clerk_api.post("/api/v1/terminals", {"imei": imei, "protocol": "gt06"}, format="json")
    again = clerk_api.post("/api/v1/terminals", {"imei": imei, "protocol": "gt06"}, format="json")
    assert again.status_code == 400 and "already registered" in again.json()["imei"][0]


def test_binding_needs_consent_and_a_free_terminal_and_bike(clerk_api, clerk):
    term = tf.terminal(clerk=clerk)
    other_vehicle = registered_vehicle(clerk_api)
    response = clerk_api.post(
        f"/api/v1/terminals/{term.pk}/bind", {"vehicle_id": other_vehicle, "owner_consent": False}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()) == {"owner_consent", "terminal"}
    second = tf.terminal(bound=False)
    response = clerk_api.post(
        f"/api/v1/terminals/{second.pk}/bind", {"vehicle_id": term.vehicle_id, "owner_consent": True}, format="json"
    )
    assert response.status_code == 400 and "already has a terminal" in response.json()["vehicle"][0]


def test_unbind_and_replace_keep_the_installation_history(clerk_api, clerk):
    term = tf.terminal(clerk=clerk)
    vehicle_id = term.vehicle_id
    spare = tf.terminal(bound=False)
    replaced = clerk_api.post(
        f"/api/v1/vehicles/{vehicle_id}/replace-terminal",
        {"new_terminal_id": spare.pk, "reason": "进水损坏"},
        format="json",
    )
    assert replaced.status_code == 201, replaced.json()
    history = TerminalInstallation.objects.filter(vehicle_id=vehicle_id).order_by("installed_at", "id")
    assert [(i.terminal_id, i.removal_reason) for i in history] == [(term.pk, "进水损坏"), (spare.pk, "")]
    assert Terminal.objects.get(pk=spare.pk).vehicle_id == vehicle_id
    assert Terminal.objects.get(pk=term.pk).vehicle_id is None

    unbound = clerk_api.post(f"/api/v1/terminals/{spare.pk}/unbind", {"reason": "车主退出"}, format="json")
    assert unbound.status_code == 200 and unbound.json()["removed_by"] == clerk.username
    again = clerk_api.post(f"/api/v1/terminals/{spare.pk}/unbind", {"reason": "x"}, format="json")
    assert again.status_code == 400


# --- HTTP ingestion ---------------------------------------------------------------------------------


def ping(imei, minutes_ago=30, **extra):
    time = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=minutes_ago)
    return {"terminal": imei, "time": time.isoformat(), "latitude": 39.88, "longitude": 117.74, **extra}


def test_an_integration_posts_a_batch_and_retries_safely(api):
    terms = [tf.terminal(bound=False) for _ in range(2)]
    _token, raw = ingest_token_create(name="车卫士平台")
    batch = {"pings": [ping(t.imei, m) for t in terms for m in (30, 20, 10)]}
    first = api.post("/api/v1/pings", batch, format="json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert first.status_code == 201, first.json()
    assert first.json() == {"stored": 6, "duplicates": 0, "outliers": 0}
    again = api.post("/api/v1/pings", batch, format="json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert again.json() == {"stored": 0, "duplicates": 6, "outliers": 0}
    assert Ping.objects.count() == 6


def test_a_terminal_token_posts_only_for_its_terminal(api):
    mine, other = tf.terminal(bound=False), tf.terminal(bound=False)
    _token, raw = ingest_token_create(name="phone", terminal=mine)
    ok = api.post("/api/v1/pings", ping(mine.imei), format="json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert ok.status_code == 201
    refused = api.post("/api/v1/pings", ping(other.imei), format="json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert refused.status_code == 400 and "its own terminal" in refused.json()["terminal"][0]


def test_missing_or_wrong_token_is_401(api):
    term = tf.terminal(bound=False)
    assert api.post("/api/v1/pings", ping(term.imei), format="json").status_code in (401, 403)
    wrong = api.post("/api/v1/pings", ping(term.imei), format="json", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code in (401, 403)
    assert not Ping.objects.exists()


def test_every_bad_item_is_named_and_nothing_is_stored(api):
    term = tf.terminal(bound=False)
    _token, raw = ingest_token_create(name="integration")
    future = ping(term.imei, minutes_ago=-3 * 24 * 60)
    batch = {
        "pings": [
            ping(term.imei),
            {**ping(term.imei, 5), "latitude": 95},
            {**ping("999999999999999", 6)},
            {**ping(term.imei, 7), "time": "yesterday"},
            future,
            {**ping(term.imei, 8), "speed_kmh": "fast"},
        ]
    }
    response = api.post("/api/v1/pings", batch, format="json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 400
    errors = response.json()["pings"]
    assert set(errors) == {"1", "2", "3", "4", "5"}
    assert "latitude" in errors["1"] and "terminal" in errors["2"] and "time" in errors["3"]
    assert "ahead" in errors["4"]["time"][0] and "speed_kmh" in errors["5"]
    assert not Ping.objects.exists()


def test_a_time_shared_by_many_pings_is_read_once_each_and_a_bad_one_named_every_time(api):
    terms = [tf.terminal(bound=False) for _ in range(3)]
    _token, raw = ingest_token_create(name="integration")
    at = ping(terms[0].imei)["time"]
    good = {"pings": [{**ping(t.imei), "time": at} for t in terms]}
    response = api.post("/api/v1/pings", good, format="json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 201 and response.json()["stored"] == 3
    assert set(Ping.objects.values_list("device_time", flat=True)) == {datetime.datetime.fromisoformat(at)}
    bad = {"pings": [{**ping(t.imei, 3), "time": "2026-11-28 08:00"} for t in terms]}
    response = api.post("/api/v1/pings", bad, format="json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 400 and set(response.json()["pings"]) == {"0", "1", "2"}
    assert Ping.objects.count() == 3


def test_a_retired_token_is_refused(api):
    term = tf.terminal(bound=False)
    token, raw = ingest_token_create(name="integration")
    token.active = False
    token.save()
    response = api.post("/api/v1/pings", ping(term.imei), format="json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code in (401, 403) and not Ping.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"latitude": True}, "latitude"),
        ({"longitude": "117.74"}, "longitude"),
        ({"longitude": -180.5}, "longitude"),
        ({"time": "2026-11-28T08:00:00"}, "time"),  # no time zone
        ({"time": 1764316800}, "time"),
        ({"valid": "yes"}, "valid"),
        ({"alarms": "sos"}, "alarms"),
        ({"alarms": [""]}, "alarms"),
        ({"alarms": None}, "alarms"),
        ({"satellites": 65}, "satellites"),
        ({"battery": False}, "battery"),
        ({"terminal": 352099001234567}, "terminal"),
    ],
)
def test_each_bad_value_is_refused_with_its_field(api, change, field):
    term = tf.terminal(bound=False)
    _token, raw = ingest_token_create(name="integration")
    response = api.post(
        "/api/v1/pings", {**ping(term.imei), **change}, format="json", HTTP_AUTHORIZATION=f"Bearer {raw}"
    )
    assert response.status_code == 400 and set(response.json()) == {field}, response.json()
    assert not Ping.objects.exists()


def test_a_utc_z_time_and_every_optional_field_are_stored(api):
    term = tf.terminal(bound=False)
    _token, raw = ingest_token_create(name="integration")
    when = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)).replace(microsecond=0)
    item = {
        **ping(term.imei),
        "time": when.isoformat().replace("+00:00", "Z"),
        "speed_kmh": 18,
        "course": 90.5,
        "altitude": 12,
        "satellites": 8,
        "battery": 55,
        "valid": True,
        "alarms": ["sos"],
    }
    response = api.post("/api/v1/pings", {"pings": [item]}, format="json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 201, response.json()
    stored = Ping.objects.get()
    assert (stored.device_time, stored.speed_kmh, stored.course, stored.altitude) == (when, 18.0, 90.5, 12.0)
    assert (stored.satellites, stored.battery, stored.alarms) == (8, 55, ["sos"])


@pytest.mark.parametrize("remembered", [False, True], ids=["read-back", "remembered"])
def test_a_jump_from_the_stored_last_position_is_an_outlier_and_liveness_is_kept(
    api, remembered, django_capture_on_commit_callbacks
):
    """Judged against the last position the worker remembers from its own commit (when the commit
    callbacks run, as outside a test transaction), or else reads back from the table."""
    term = tf.terminal(bound=False)
    _token, raw = ingest_token_create(name="integration")
    sent: list[str] = []

    def post(*pings):
        def spy(execute, sql, params, many, context):
            sent.append(sql)
            return execute(sql, params, many, context)

        with django_capture_on_commit_callbacks(execute=remembered), connection.execute_wrapper(spy):
            response = api.post(
                "/api/v1/pings", {"pings": list(pings)}, format="json", HTTP_AUTHORIZATION=f"Bearer {raw}"
            )
        assert response.status_code == 201, response.json()
        return response.json()

    assert post(ping(term.imei, 30))["outliers"] == 0
    term.refresh_from_db()
    first_seen = term.last_seen_at
    assert first_seen is not None  # heard from for the first time
    # A minute later 500 km away, in the next request: judged against the stored last position.
    assert post({**ping(term.imei, 29), "latitude": 44.38})["outliers"] == 1
    assert post(ping(term.imei, 28))["outliers"] == 0  # back where it was
    term.refresh_from_db()
    assert term.last_seen_at == first_seen  # refreshed at most once a minute
    assert LastPosition.objects.get(terminal=term).point.y == pytest.approx(39.88)
    assert sent.count(LAST_SQL) == (1 if remembered else 3)
    assert sent.count(KNOWN_SQL) == 1  # the terminal is read once, then remembered by the worker


def test_a_terminal_retired_is_refused_at_once_though_the_worker_remembered_it(api):
    term = tf.terminal(bound=False)
    _token, raw = ingest_token_create(name="integration")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert api.post("/api/v1/pings", ping(term.imei, 30), format="json", **auth).status_code == 201
    term.active = False
    term.save()
    refused = api.post("/api/v1/pings", ping(term.imei, 20), format="json", **auth)
    assert refused.status_code == 400 and "retired" in refused.json()["terminal"][0]
    assert Ping.objects.filter(terminal=term).count() == 1


def test_batches_over_the_limit_are_refused(api):
    term = tf.terminal(bound=False)
    _token, raw = ingest_token_create(name="integration")
    batch = {"pings": [ping(term.imei, m) for m in range(1001)]}
    response = api.post("/api/v1/pings", batch, format="json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 400 and "1000" in response.json()["pings"][0]


def test_token_command_prints_a_working_token(api, capsys):
    term = tf.terminal(bound=False)
    call_command("create_ingest_token", "--name", "phone", "--imei", term.imei)
    raw = capsys.readouterr().out.strip()
    response = api.post("/api/v1/pings", ping(term.imei), format="json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 201
    with pytest.raises(CommandError):
        call_command("create_ingest_token", "--name", "x", "--imei", "000000000000000")


@pytest.mark.parametrize("role", ["clerk", "officer"])
def test_the_terminal_lookup_shows_no_position_and_no_auth_code_and_is_audited(role, api):
    from accounts.models import AuditEntry
    from tests import factories
    from tracking.ingest import Incoming, ingest_fixes

    terminal = tf.terminal(protocol="jt808")
    ingest_fixes([Incoming(terminal.pk, tf.fix(0))])
    user = factories.user(role)
    api.force_authenticate(user)
    [found] = api.get("/api/v1/terminals", {"imei": terminal.imei}).json()
    assert not any("auth_code" in key for key in found) and "last_position" not in found
    assert "39.88" not in str(found)
    assert found["last_heard_at"]  # the clerk still sees that the fitted terminal reports
    entry = AuditEntry.objects.get(action="terminal.find", user=user)
    assert entry.query == {"imei": terminal.imei} and entry.result_count == 1
