"""scripts/db.sh (make setup) on a cluster left with a synchronous_standby_names that names no
connected standby (a drill's or a removed standby's leftover): every commit would wait forever, CI
would hang. The setup resets it and says so. A throwaway cluster, never the machine's own."""

import os
import subprocess
from pathlib import Path

import psycopg

from bench.harness.clusters import ThrowawayCluster

ROOT = Path(__file__).resolve().parents[2]


def test_setup_resets_a_leftover_synchronous_standby_names_and_commits_return():
    with ThrowawayCluster(host="127.0.0.4", name="leftovers") as cluster:
        cluster.start()
        cluster.sql("CREATE ROLE ebike LOGIN CREATEDB PASSWORD 'ebike'")
        cluster.sql("ALTER SYSTEM SET synchronous_standby_names = 'gone_standby'")
        cluster.sql("SELECT pg_reload_conf()")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "STANDBY_", "PG"))},
            "DATABASE_URL": f"postgis://ebike:ebike@{cluster.host}:{cluster.port}/ebike",
            "PG_ADMIN_MODES": "tcp",
        }
        setup = subprocess.run(
            ["/bin/bash", "scripts/db.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
        )

        assert setup.returncode == 0, setup.stderr
        assert "reset leftover synchronous_standby_names (gone_standby" in setup.stderr
        assert cluster.sql("SHOW synchronous_standby_names") == ""
        with psycopg.connect(cluster.conninfo("ebike"), autocommit=True) as connection:
            connection.execute("SET statement_timeout = '5s'")
            connection.execute("CREATE TABLE committed (id int)")  # returns: nothing to wait for
