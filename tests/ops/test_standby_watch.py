"""The synchronous standby away (issue 19, point 2): with STANDBY_AWAY_POLICY=wait nothing is
acknowledged until it is back; with "alone" the watcher lets the primary carry on after N seconds and
raises the alarm; when the standby streams again it is made synchronous again and the alarm cleared.

Throwaway clusters (bench/harness/clusters.py), never the machine's own cluster. About 15 s.
"""

import contextlib
import shutil
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest

from bench.harness.clusters import ThrowawayCluster
from ebike_registry.standby import WatchConfig, WatchState, check, standby_alarm
from tests.ops.failover_drill import make_synchronous

NAME = "ebike_standby"


@pytest.fixture
def pair():
    base = Path(tempfile.mkdtemp(prefix="ebike-standby-"))
    base.chmod(0o755)
    primary = standby = None
    try:
        primary = ThrowawayCluster(host="127.0.0.2", name="watch-a", base_dir=base / "a")
        standby = ThrowawayCluster(
            host="127.0.0.3", port=primary.port, name="watch-b", base_dir=base / "b", initdb=False
        )
        primary.start()
        primary.sql("CREATE TABLE acks (id int)")
        standby.basebackup_from(primary, application_name=NAME, slot=NAME)
        standby.start()
        make_synchronous(primary, NAME)
        yield primary, standby, base
    finally:
        for cluster in (primary, standby):
            if cluster is not None:
                cluster.cleanup()
        shutil.rmtree(base, ignore_errors=True)


class Commit(threading.Thread):
    """One INSERT committed on the primary in the background; `done` once COMMIT returned."""

    def __init__(self, primary: ThrowawayCluster) -> None:
        super().__init__(daemon=True)
        self.conninfo = primary.conninfo()
        self.done = threading.Event()

    def run(self) -> None:
        with contextlib.suppress(psycopg.Error), psycopg.connect(self.conninfo, autocommit=True) as connection:
            connection.execute("INSERT INTO acks VALUES (1)")
            self.done.set()


def test_standby_away_wait_acknowledges_nothing_alone_carries_on_with_an_alarm_and_back_is_synchronous(pair):
    primary, standby, base = pair
    config = WatchConfig(admin_conninfo=primary.conninfo(), standby_name=NAME, policy="wait", alone_after_s=1,
                         alarm_file=base / "alarm.json")  # fmt: skip
    state = WatchState()
    with psycopg.connect(standby.conninfo(), autocommit=True) as on_standby:  # a standby is left alone
        assert check(on_standby, config, WatchState(), now=0) == "standby"
    with psycopg.connect(primary.conninfo(), autocommit=True) as admin:
        assert check(admin, config, state, now=0) == "sync"

        standby.stop()
        commit = Commit(primary)
        commit.start()
        assert check(admin, config, state, now=100) == "away"  # not for N seconds yet: no alarm
        assert standby_alarm(config.alarm_file) is None
        assert check(admin, config, state, now=101.5) == "waiting"
        assert not commit.done.wait(2), "a commit was acknowledged without the standby"
        alarm = standby_alarm(config.alarm_file)
        assert alarm is not None and alarm["alone"] is False
        assert primary.sql("SHOW synchronous_standby_names") == f'"{NAME}"'

        config.policy = "alone"
        assert check(admin, config, state, now=102) == "alone"
        assert commit.done.wait(10), "the waiting commit did not return once the primary went on alone"
        assert standby_alarm(config.alarm_file)["alone"] is True
        assert primary.sql("SHOW synchronous_standby_names") == ""

        standby.start()
        primary.wait_sync_standby(NAME, state="async")
        deadline = time.monotonic() + 10
        while check(admin, config, state, now=200) != "restored":
            assert time.monotonic() < deadline, "the returned standby was not made synchronous again"
            time.sleep(0.1)
        primary.wait_sync_standby(NAME, state="sync")
        assert standby_alarm(config.alarm_file) is None
        assert check(admin, config, state, now=201) == "sync"
    assert standby.sql("SELECT count(*) FROM acks") == "1"  # what was committed alone reached it
