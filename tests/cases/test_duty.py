"""The duty room: displacement calls for armed bikes, rescue calls, the duty officer's steps with
response times, the owner's arming and answers; API and pages, with the refusals a user meets.
"""

import datetime
import threading
import time

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEntry
from cases.alerts.duty_room import duty_calls_raise, vehicle_arm
from cases.models import DutyCall, Notification
from cases.workflow.services import report_transition
from tests import factories
from tests.cases.alerting import owner_login, path, report_theft, send
from tests.tracking import factories as tf
from tracking.derived import Batch, outbox_process
from tracking.ingest import BareAlarm, Incoming, batch_plan, ingest_fixes, run_sync
from tracking.models import Alarm, IngestOutbox, Terminal
from tracking.services import terminal_unbind

pytestmark = pytest.mark.django_db


def now() -> datetime.datetime:
    return timezone.now().replace(microsecond=0)


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def bike():
    """A bike with a terminal, parked in Yutian town two minutes ago; its owner can log in."""
    terminal = tf.terminal()
    send(terminal, tf.fix(0, base=now() - datetime.timedelta(minutes=2), speed=0))
    return terminal, owner_login(terminal)


def arm(owner, terminal) -> datetime.datetime:
    response = client_for(owner).post(f"/api/v1/my/vehicles/{terminal.vehicle_id}/arm", {"armed": True}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["armed"] is True
    return now() + datetime.timedelta(seconds=1)  # positions after this are after arming


# --- raising calls -------------------------------------------------------------------------------


def test_an_armed_bike_that_rides_off_reaches_the_duty_room_and_its_owner_once(officer, bike):
    terminal, owner = bike
    start = arm(owner, terminal)
    send(terminal, *path(start, range(0, 3)))  # 340 m in three minutes
    send(terminal, *path(start, range(3, 6)))  # still riding: the same call

    call = DutyCall.objects.get()
    assert (call.kind, call.status, call.station_id) == ("displacement", "new", officer.station_id)
    assert call.raised_at == start + datetime.timedelta(minutes=1)  # the first fix beyond 100 m
    assert call.point.x == pytest.approx(117.7390 + 0.002)
    assert Alarm.objects.get(pk=call.alarm_id).kind == "displacement"
    assert Notification.objects.filter(user=officer, kind="displacement").count() == 1
    [owner_note] = Notification.objects.filter(user=owner)
    assert owner_note.link == "/my/alarms/"


def test_gps_drift_of_a_parked_armed_bike_raises_nothing(bike):
    terminal, owner = bike
    start = arm(owner, terminal)
    drift = [tf.fix(m, base=start, lat=39.8826 + 0.0002 * (m % 2), speed=0) for m in range(5)]  # ~22 m
    send(terminal, *drift)
    assert not DutyCall.objects.exists()


def test_terminal_defence_alarm_raises_a_call_and_power_cut_only_when_armed(officer, bike):
    terminal, _owner = bike
    t = now()
    send(terminal, tf.fix(0, base=t, alarms=("power_cut",), speed=0))  # battery swapped, not armed
    assert not DutyCall.objects.exists()
    send(terminal, tf.fix(1, base=t, alarms=("movement",), speed=0))  # the terminal's own defence mode
    assert DutyCall.objects.get().kind == "displacement"

    other = tf.terminal()
    other_owner = owner_login(other)
    start = arm(other_owner, other)
    send(other, tf.fix(0, base=start, alarms=("power_cut",), speed=0))
    assert DutyCall.objects.filter(vehicle_id=other.vehicle_id, kind="displacement").count() == 1


def report_defence(terminal, on: bool) -> None:
    """What the gateway stores from a GT06 heartbeat's defence bit (through the same batch plan)."""
    with transaction.atomic(), connection.cursor() as cursor:
        run_sync(cursor, batch_plan([], liveness=[terminal.pk], defence={terminal.pk: on}))


def test_the_terminals_own_defence_bit_arms_the_bike(officer, bike):
    terminal, _owner = bike
    report_defence(terminal, True)  # armed with the terminal's remote, not on our pages
    terminal.refresh_from_db()
    assert (terminal.device_armed, terminal.armed) == (True, False)
    since = terminal.device_armed_changed_at
    report_defence(terminal, True)  # repeated by every heartbeat: the time it was armed stays
    terminal.refresh_from_db()
    assert terminal.device_armed_changed_at == since

    start = now() + datetime.timedelta(seconds=1)
    send(terminal, tf.fix(0, base=start, alarms=("power_cut",), speed=0))  # battery cut while armed
    call = DutyCall.objects.get()
    assert (call.kind, call.raised_at) == ("displacement", start)


def test_a_bike_armed_by_its_terminal_that_rides_off_raises_a_call(officer, bike):
    terminal, _owner = bike
    report_defence(terminal, True)
    start = now() + datetime.timedelta(seconds=1)
    send(terminal, *path(start, range(0, 3)))
    call = DutyCall.objects.get()
    assert call.raised_at == start + datetime.timedelta(minutes=1)  # the first fix beyond 100 m


def test_a_bike_disarmed_with_its_remote_raises_nothing(officer, bike):
    terminal, _owner = bike
    report_defence(terminal, True)
    report_defence(terminal, False)
    start = now() + datetime.timedelta(seconds=1)
    send(terminal, tf.fix(0, base=start, alarms=("power_cut",), speed=0))
    send(terminal, *path(start + datetime.timedelta(minutes=1), range(0, 3)))
    assert not DutyCall.objects.exists()


def test_an_sos_is_a_rescue_call_at_once_and_repeats_join_it(officer, bike):
    terminal, _owner = bike
    t = now()
    send(terminal, tf.fix(0, base=t, alarms=("sos",), lat=39.90, lon=117.75))
    send(terminal, tf.fix(1, base=t, alarms=("sos",), lat=39.90, lon=117.75))  # the button again
    call = DutyCall.objects.get()
    assert (call.kind, call.status) == ("rescue", "new")
    assert (call.point.y, call.point.x) == pytest.approx((39.90, 117.75))
    [note] = Notification.objects.filter(user=officer, kind="rescue")
    assert note.params["alarm"] == "sos" and "(SOS)" in note.title  # the alarm by its name


def test_a_fall_alarm_without_a_fix_is_placed_at_the_last_position(bike):
    terminal, _owner = bike
    ingest_fixes([], bare_alarms=[BareAlarm(terminal.pk, "fall", now())])
    assert IngestOutbox.objects.filter(processed_at__isnull=True).count() == 1  # bare alarms drive the outbox too
    outbox_process()
    call = DutyCall.objects.get()
    assert call.kind == "rescue"
    assert (call.point.y, call.point.x) == pytest.approx((39.8826, 117.7390))


def test_an_alarm_replayed_from_a_terminals_buffer_is_history_not_a_call(bike):
    terminal, _owner = bike
    send(terminal, tf.fix(0, base=now() - datetime.timedelta(hours=2), alarms=("sos",)))
    assert Alarm.objects.filter(kind="sos").exists()
    assert not DutyCall.objects.exists()


def test_processing_a_batch_twice_raises_one_call(officer, bike):
    terminal, _owner = bike
    ingest_fixes([Incoming(terminal.pk, tf.fix(0, base=now(), alarms=("collision",)))])
    outbox_process()
    IngestOutbox.objects.update(processed_at=None)  # a worker died after committing: run again
    outbox_process()
    assert DutyCall.objects.count() == 1
    assert Notification.objects.filter(user=officer, kind="rescue").count() == 1


# --- the duty officer ----------------------------------------------------------------------------


@pytest.fixture
def rescue(bike):
    terminal, owner = bike
    client_for(owner).put("/api/v1/my/emergency-contact", {"name": "李建国", "phone": "13900001111"}, format="json")
    send(terminal, tf.fix(0, base=now(), alarms=("sos",)))
    return DutyCall.objects.get()


def test_the_queue_shows_what_the_duty_officer_needs_and_records_response_times(officer, officer_api, rescue):
    queue = officer_api.get("/api/v1/duty-calls")
    assert queue.status_code == 200
    [card] = queue.json()["results"]
    assert (card["kind"], card["status"], card["alarm"]) == ("rescue", "new", "sos")
    assert card["plate"] and card["position"]["latitude"] == pytest.approx(39.8826)
    assert card["owner"]["phone"].isdigit()  # duty officers see the full number to call back
    assert card["owner"]["emergency_contact_name"] == "李建国"
    assert card["owner"]["emergency_contact_phone"] == "13900001111"
    assert card["actions"] == ["acknowledge"]
    assert AuditEntry.objects.filter(user=officer, action="duty_queue.view").exists()

    url = f"/api/v1/duty-calls/{rescue.pk}"
    acked = officer_api.post(f"{url}/acknowledge", {}, format="json").json()
    assert acked["status"] == "acknowledged" and acked["response_times"]["acknowledged_s"] >= 0
    assert acked["actions"] == ["dispatch", "close"]
    dispatched = officer_api.post(f"{url}/dispatch", {"note": "120 and patrol car 3"}, format="json").json()
    assert dispatched["status"] == "dispatched" and "patrol car 3" in dispatched["note"]
    closed = officer_api.post(f"{url}/close", {"note": "rider taken to county hospital"}, format="json").json()
    assert closed["status"] == "closed" and closed["response_times"]["closed_s"] >= 0
    assert closed["handled_by"] == officer.username
    assert Alarm.objects.get(pk=rescue.alarm_id).status == "closed"
    assert officer_api.get("/api/v1/duty-calls").json()["count"] == 0
    assert officer_api.get("/api/v1/duty-calls?closed=1").json()["count"] == 1


def test_steps_out_of_order_are_refused_naming_the_field(officer_api, rescue):
    url = f"/api/v1/duty-calls/{rescue.pk}"
    response = officer_api.post(f"{url}/dispatch", {}, format="json")
    assert response.status_code == 400 and "action" in response.json()
    assert officer_api.post(f"{url}/teleport", {}, format="json").json()["action"][0].startswith("Unknown action")
    officer_api.post(f"{url}/acknowledge", {}, format="json")
    again = officer_api.post(f"{url}/acknowledge", {}, format="json")
    assert again.status_code == 400 and "action" in again.json()
    no_note = officer_api.post(f"{url}/close", {"note": "  "}, format="json")
    assert no_note.status_code == 400 and "note" in no_note.json()
    too_long = officer_api.post(f"{url}/close", {"note": "x" * 501}, format="json")
    assert too_long.status_code == 400 and "note" in too_long.json()
    rescue.refresh_from_db()
    assert rescue.status == "acknowledged" and rescue.closed_at is None and rescue.note == ""


def test_officers_of_another_station_and_other_roles_get_403(rescue, clerk):
    elsewhere = client_for(factories.user("officer", station_code="13022902"))
    url = f"/api/v1/duty-calls/{rescue.pk}"
    assert elsewhere.post(f"{url}/acknowledge", {}, format="json").status_code == 403
    assert elsewhere.get(url).status_code == 403
    assert elsewhere.get("/api/v1/duty-calls").json()["count"] == 0
    assert client_for(clerk).get("/api/v1/duty-calls").status_code == 403
    rescue.refresh_from_db()
    assert rescue.status == "new" and rescue.acknowledged_at is None


def test_duty_room_page_lists_open_calls_and_takes_the_steps(client, officer, rescue):
    client.force_login(officer)
    page = client.get("/duty/")
    html = page.content.decode()
    assert page.status_code == 200 and f'data-call="{rescue.pk}"' in html
    assert "13900001111" in html and "李建国" in html
    # On the map: where the SOS was raised (the bike's fix) and its latest position.
    [on_map] = page.context["duty_map"]["calls"]
    assert (on_map["id"], on_map["kind"]) == (rescue.pk, "rescue")
    assert on_map["at"] == [pytest.approx(39.8826), pytest.approx(117.7390)]
    assert on_map["now"] == on_map["at"]
    assert 'id="duty-map-data"' in html and "web/duty_map.js" in html
    assert client.post(f"/duty/{rescue.pk}/acknowledge/", {"note": ""}).status_code == 302
    refused = client.post(f"/duty/{rescue.pk}/close/", {"note": ""})
    assert refused.status_code == 400 and "Say how the call ended" in refused.content.decode()
    assert client.post(f"/duty/{rescue.pk}/close/", {"note": "false alarm, rider fine"}).status_code == 302
    rescue.refresh_from_db()
    assert rescue.status == "closed" and "false alarm" in rescue.note

    client.force_login(factories.user("officer", station_code="13022902"))
    assert client.post(f"/duty/{rescue.pk}/dispatch/", {}).status_code == 403


# --- the owner -----------------------------------------------------------------------------------


def test_an_owner_may_arm_only_their_own_bike_with_a_terminal(bike, clerk):
    terminal, owner = bike
    other_terminal = tf.terminal()
    api = client_for(owner)
    assert (
        api.post(f"/api/v1/my/vehicles/{other_terminal.vehicle_id}/arm", {"armed": True}, format="json").status_code
        == 403
    )
    bad = api.post(f"/api/v1/my/vehicles/{terminal.vehicle_id}/arm", {"armed": "maybe"}, format="json")
    assert bad.status_code == 400 and "armed" in bad.json()
    assert api.post(f"/api/v1/my/vehicles/{terminal.vehicle_id}/arm", {}, format="json").json() == {
        "armed": ["This field is required."]
    }
    assert client_for(clerk).post(f"/api/v1/my/vehicles/{terminal.vehicle_id}/arm", {"armed": True}).status_code == 403
    assert not Terminal.objects.filter(armed=True).exists()

    mine = api.get("/api/v1/my/vehicles").json()
    assert [v["id"] for v in mine] == [terminal.vehicle_id] and mine[0]["has_terminal"] is True


def test_a_bike_without_positioning_reported_stolen_or_without_terminal_cannot_be_armed(officer, bike, clerk):
    terminal, owner = bike
    vehicle_id = terminal.vehicle_id
    Terminal.objects.filter(pk=terminal.pk).update(positioning_enabled=False)  # the owner switched it off
    response = client_for(owner).post(f"/api/v1/my/vehicles/{vehicle_id}/arm", {"armed": True}, format="json")
    assert response.status_code == 400 and "Positioning is switched off" in response.json()["armed"][0]
    Terminal.objects.filter(pk=terminal.pk).update(positioning_enabled=True)

    report = report_theft(officer, terminal)
    response = client_for(owner).post(f"/api/v1/my/vehicles/{vehicle_id}/arm", {"armed": True}, format="json")
    assert response.status_code == 400 and "armed" in response.json()

    report_transition(user=officer, report_id=report.pk, to_status="recovered")
    terminal_unbind(clerk=clerk, terminal_id=terminal.pk, reason="terminal broken")
    response = client_for(owner).post(f"/api/v1/my/vehicles/{vehicle_id}/arm", {"armed": True}, format="json")
    assert response.status_code == 400 and "vehicle" in response.json()
    assert not Terminal.objects.filter(armed=True).exists()


def test_owner_confirms_a_displacement_and_is_prompted_to_report_the_theft(officer, bike):
    terminal, owner = bike
    start = arm(owner, terminal)
    send(terminal, *path(start, range(0, 3)))
    call = DutyCall.objects.get()
    api = client_for(owner)
    mine = api.get("/api/v1/my/alarms").json()
    assert [c["id"] for c in mine] == [call.pk]

    answered = api.post(f"/api/v1/my/alarms/{call.pk}/answer", {"answer": "confirmed"}, format="json")
    assert answered.status_code == 200
    body = answered.json()
    assert body["status"] == "confirmed" and body["owner_answer"] == "confirmed"
    prompt = body["theft_report_prompt"]
    assert prompt["channel"] == "online" and prompt["frame_number"] == terminal.vehicle.frame_number
    assert Notification.objects.filter(user=officer, title__contains="confirms the theft").exists()

    # The duty room still acknowledges and dispatches the confirmed call.
    officer_api = client_for(officer)
    assert officer_api.post(f"/api/v1/duty-calls/{call.pk}/acknowledge", {}, format="json").json()["status"] == (
        "confirmed"
    )
    assert officer_api.post(f"/api/v1/duty-calls/{call.pk}/dispatch", {}, format="json").json()["status"] == (
        "dispatched"
    )
    twice = api.post(f"/api/v1/my/alarms/{call.pk}/answer", {"answer": "dismissed"}, format="json")
    assert twice.status_code == 400 and "answer" in twice.json()

    # The prompt is what the owner's online theft report starts from; once filed, it is gone.
    report = api.post(
        "/api/v1/theft-reports",
        {**prompt, "reporter_name": "王秀英", "reporter_phone": "13812345678", "place_address": "小区车棚"},
        format="json",
    )
    assert report.status_code == 201, report.json()
    assert report.json()["vehicle"] == terminal.vehicle_id
    assert api.get("/api/v1/my/alarms").json()[0]["theft_report_prompt"] is None


def test_owner_dismisses_a_displacement_which_disarms_the_bike(officer, bike):
    terminal, owner = bike
    start = arm(owner, terminal)
    send(terminal, *path(start, range(0, 3)))
    call = DutyCall.objects.get()

    stranger = owner_login(tf.terminal())
    assert (
        client_for(stranger)
        .post(f"/api/v1/my/alarms/{call.pk}/answer", {"answer": "dismissed"}, format="json")
        .status_code
        == 403
    )
    bad = client_for(owner).post(f"/api/v1/my/alarms/{call.pk}/answer", {"answer": "perhaps"}, format="json")
    assert bad.status_code == 400 and "answer" in bad.json()

    response = client_for(owner).post(f"/api/v1/my/alarms/{call.pk}/answer", {"answer": "dismissed"}, format="json")
    assert response.json()["status"] == "dismissed"
    terminal.refresh_from_db()
    assert terminal.armed is False
    send(terminal, *path(start, range(3, 6)))  # riding on, disarmed: nothing new
    assert DutyCall.objects.count() == 1


def test_rescue_calls_are_not_the_owners_to_answer(bike):
    terminal, owner = bike
    send(terminal, tf.fix(0, base=now(), alarms=("sos",)))
    call = DutyCall.objects.get()
    response = client_for(owner).post(f"/api/v1/my/alarms/{call.pk}/answer", {"answer": "dismissed"}, format="json")
    assert response.status_code == 400 and "answer" in response.json()


def test_emergency_contact_is_checked_before_it_is_saved(bike):
    terminal, owner = bike
    api = client_for(owner)
    bad = api.put("/api/v1/my/emergency-contact", {"name": "", "phone": "12345"}, format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"name", "phone"}
    own = terminal.vehicle.owner.phone
    assert "phone" in api.put("/api/v1/my/emergency-contact", {"name": "我", "phone": own}, format="json").json()
    assert api.get("/api/v1/my/emergency-contact").json() == {"name": "", "phone": ""}
    ok = api.put("/api/v1/my/emergency-contact", {"name": "李建国", "phone": "+86 139-0000-1111"}, format="json")
    assert ok.json() == {"name": "李建国", "phone": "13900001111"}


def test_owner_page_arms_answers_and_keeps_the_contact_form(client, bike):
    terminal, owner = bike
    client.force_login(owner)
    page = client.get("/my/alarms/")
    assert page.status_code == 200 and f'data-vehicle="{terminal.vehicle_id}"' in page.content.decode()
    assert "device-armed" not in page.content.decode()
    report_defence(terminal, True)  # armed with the terminal's remote: the page says so
    assert "terminal in defence mode" in client.get("/my/alarms/").content.decode()
    assert client.get("/api/v1/my/vehicles").json()[0]["device_armed"] is True
    assert client.post(f"/my/alarms/arm/{terminal.vehicle_id}/", {"armed": "1"}).status_code == 302
    terminal.refresh_from_db()
    assert terminal.armed
    assert client.post(f"/my/alarms/arm/{terminal.vehicle_id}/", {"armed": "x"}).status_code == 400

    start = now() + datetime.timedelta(seconds=1)
    send(terminal, *path(start, range(0, 3)))
    call = DutyCall.objects.get()
    assert f'data-call="{call.pk}"' in client.get("/my/alarms/").content.decode()
    confirmed = client.post(f"/my/alarms/{call.pk}/answer/", {"answer": "confirmed"})
    assert confirmed.status_code == 302 and f"vehicle={terminal.vehicle_id}" in confirmed.url

    refused = client.post("/my/emergency-contact/", {"name": "李建国", "phone": "555"})
    assert refused.status_code == 400 and 'value="555"' in refused.content.decode()

    stranger = factories.user("owner", station_code=None)
    client.force_login(stranger)
    assert client.get("/my/alarms/").status_code == 403


def test_an_owners_note_too_long_to_keep_whole_is_refused_on_the_page_and_nothing_changes(client, bike):
    terminal, owner = bike
    start = arm(owner, terminal)
    send(terminal, *path(start, range(0, 3)))
    call = DutyCall.objects.get()
    client.force_login(owner)

    refused = client.post(f"/my/alarms/{call.pk}/answer/", {"answer": "dismissed", "note": "是我" * 250 + "的"})
    assert refused.status_code == 400 and "500" in refused.content.decode()
    call.refresh_from_db()
    terminal.refresh_from_db()
    assert call.owner_answer == "" and call.status == DutyCall.Status.NEW and terminal.armed

    kept = client.post(f"/my/alarms/{call.pk}/answer/", {"answer": "dismissed", "note": "是我" * 250})
    assert kept.status_code == 302
    call.refresh_from_db()
    assert call.owner_answer == "dismissed" and call.note.endswith("] " + "是我" * 250)  # whole, not cut


def test_arming_from_the_service_refuses_other_peoples_bikes(bike):
    terminal, _owner = bike
    other_owner = owner_login(tf.terminal())
    with pytest.raises(PermissionDenied):
        vehicle_arm(user=other_owner, vehicle_id=terminal.vehicle_id, armed=True)


def test_the_api_schema_documents_the_duty_room_and_owner_endpoints(officer_api):
    schema = officer_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path_ in (
        "/api/v1/duty-calls",
        "/api/v1/duty-calls/{call_id}/{action}",
        "/api/v1/my/vehicles/{vehicle_id}/arm",
        "/api/v1/my/alarms/{call_id}/answer",
        "/api/v1/notifications/unread-count",
        "/api/v1/theft-reports/{report_id}/sightings",
    ):
        assert path_ in schema["paths"], path_


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_workers_with_batches_of_the_same_bike_raise_one_call():
    terminal = tf.terminal()
    t = now()
    for minute in (0, 1):  # two batches, each with an SOS: two outbox rows
        ingest_fixes([Incoming(terminal.pk, tf.fix(minute, base=t, alarms=("sos",)))])
    batches = [
        Batch([row.pk], row.terminal_ids, row.first_device_time, row.last_device_time)
        for row in IngestOutbox.objects.order_by("pk")
    ]
    first_inserted = threading.Event()
    raised: dict[str, list[int]] = {}

    def worker(name: str, batch: Batch, *, hold: bool) -> None:
        try:
            with transaction.atomic():
                raised[name] = duty_calls_raise(batch)
                if hold:
                    first_inserted.set()
                    time.sleep(0.5)  # the other worker runs its insert while this one is uncommitted
        finally:
            first_inserted.set()
            connection.close()

    a = threading.Thread(target=worker, args=("a", batches[0]), kwargs={"hold": True})
    a.start()
    first_inserted.wait(5)
    b = threading.Thread(target=worker, args=("b", batches[1]), kwargs={"hold": False})
    b.start()
    a.join(10)
    b.join(10)

    assert len(raised["a"]) == 1 and raised["b"] == []
    assert DutyCall.objects.filter(vehicle_id=terminal.vehicle_id, kind="rescue").count() == 1


def test_the_duty_rooms_closed_calls_are_recent_with_no_current_position_nor_full_phones(officer, officer_api, rescue):
    from django.db import connection

    url = f"/api/v1/duty-calls/{rescue.pk}"
    officer_api.post(f"{url}/acknowledge", {}, format="json")
    officer_api.post(f"{url}/close", {"note": "rider taken to county hospital"}, format="json")
    [card] = officer_api.get("/api/v1/duty-calls", {"closed": "1"}).json()["results"]
    assert card["owner"]["phone"].count("*") == 4 and card["owner"]["emergency_contact_phone"] == "139****1111"
    assert card["position"]["latitude"] == pytest.approx(39.8826)  # where the call was raised
    assert card["current_position"] is None  # no following the bike once the call is closed
    # A call closed more than DUTY_CLOSED_DAYS ago is history, not the duty room's.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE cases_dutycall SET closed_at = now() - interval '8 days' WHERE id = %s", [rescue.pk])
    assert officer_api.get("/api/v1/duty-calls", {"closed": "1"}).json()["count"] == 0


def test_a_page_of_an_api_list_holds_at_most_200_rows_whatever_limit_asks(officer, officer_api):
    Notification.objects.bulk_create(
        [Notification(user=officer, kind="sighting", title=f"sighting {n}") for n in range(205)]
    )
    page = officer_api.get("/api/v1/notifications", {"limit": "100000"}).json()
    assert page["count"] == 205 and len(page["results"]) == 200
