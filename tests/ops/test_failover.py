"""Failover drill (issue 19, point 3): SIGKILL the primary under load, promote the synchronous
standby, and nothing acknowledged is lost; the old primary rejoins as a standby (pg_rewind).

Throwaway clusters on 127.0.0.2 / 127.0.0.3 (one port), never the machine's own cluster; the whole
drill is tests/ops/failover_drill.py, which `make drills` runs five times. About 45 s here.
"""

from tests.ops.failover_drill import RTO_TARGET_S, run_drill


def test_killing_the_primary_loses_no_acknowledged_ping_or_registration_and_the_gateway_follows_the_promotion():
    figures = run_drill()

    assert figures["problems"] == []
    assert figures["acked_pings"] > 100
    assert figures["acked_and_lost"] == 0
    assert figures["stored_twice"] == 0
    assert figures["acked_without_primary"] == 0
    assert figures["registrations_ok"] > 0
    assert figures["registrations_lost"] == 0
    # The gateway and the counter found the new primary on their own (multi-host URL), in time.
    assert figures["rto_s"] is not None and figures["rto_s"] <= RTO_TARGET_S, figures
    assert figures["registration_rto_s"] is not None and figures["registration_rto_s"] <= RTO_TARGET_S, figures
    assert figures["rejoin_s"] < 60
