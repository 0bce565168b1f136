"""Failover drill with the Celery worker running (issue 19, point 3: "web and Celery reconnect on their
own"): SIGKILL the primary while a real `celery worker` and `celery beat`, supervised as `make run`
runs them, raise rescue calls from the ingestion outbox and POST them to the station's webhook;
promote the standby. Every SOS whose commit was acknowledged gets exactly one call, one notification
and one delivered message; the outbox rows and webhook tasks caught by the kill finish on the new
primary. The whole drill is tests/ops/celery_failover_drill.py, which `make drills` runs five times.
Throwaway clusters on 127.0.0.2 / 127.0.0.3 and Redis database 13; about 55 s here.
"""

from tests.ops.celery_failover_drill import RTO_TARGET_S, run_drill


def test_killing_the_primary_under_the_celery_worker_loses_no_derived_work_and_writes_nothing_twice():
    figures = run_drill()

    assert figures["problems"] == [], figures
    assert figures["sos_acknowledged"] > 20 and figures["calls_committed_before_kill"] > 0, figures
    assert figures["lost"] == 0 and figures["written_twice"] == 0, figures
    # The kill caught a deliver_webhook task mid-POST: it and the messages queued behind it were
    # retried on the database error and delivered by the new primary, the one whose outcome could
    # not be written POSTed again under its delivery id.
    assert figures["posts_in_flight_at_kill"] >= 1 and figures["messages_in_flight"] >= 1, figures
    assert figures["tasks_retried_on_db_error"] >= 1, figures
    if figures["outbox_claim_open_before_kill"]:  # a process_outbox run held its claimed rows: it failed,
        assert figures["tasks_failed_on_db_error"] >= 1, figures  # and beat's next run did its rows
    # Beat lost its lock with the primary, stopped, and the supervisor's restart took the lock on
    # the new primary: derived work went on within the target.
    assert figures["beat_stopped_on_lost_lock"] >= 1, figures
    assert figures["derived_rto_s"] is not None and figures["derived_rto_s"] <= RTO_TARGET_S, figures
