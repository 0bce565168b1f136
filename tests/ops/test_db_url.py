"""DATABASE_URL naming several servers (libpq multi-host), as every component gets it with a standby."""

import psycopg
import pytest

from ebike_registry import db_url
from tracking.gateway import db as gateway_db


def test_one_port_for_every_host_with_read_write_target():
    config = db_url.parse("postgis://ebike:pw@127.0.0.2,127.0.0.3:5432/ebike?target_session_attrs=read-write")
    assert (config["HOST"], str(config["PORT"]), config["NAME"]) == ("127.0.0.2,127.0.0.3", "5432", "ebike")
    assert config["OPTIONS"] == {"target_session_attrs": "read-write"}


def test_host_port_pairs_that_dj_database_url_refuses_become_libpq_lists():
    config = db_url.parse("postgis://ebike:pw@db1:5432,db2:5433/ebike?target_session_attrs=read-write")
    assert (config["HOST"], config["PORT"], config["USER"], config["PASSWORD"]) == (
        "db1,db2",
        "5432,5433",
        "ebike",
        "pw",
    )
    assert config["ENGINE"] == "django.contrib.gis.db.backends.postgis"


@pytest.mark.parametrize(
    "url",
    [
        "postgis://ebike:pw@127.0.0.2,127.0.0.3:5432/ebike?target_session_attrs=read-write",
        "postgis://ebike:pw@db1:5432,db2:5433/ebike?target_session_attrs=read-write",
        "postgis://ebike:pw@127.0.0.1:5432/ebike",
    ],
)
def test_a_runtime_role_url_keeps_every_host_and_the_options(url):
    owner = db_url.parse(url)
    runtime = db_url.parse(db_url.build(owner, user="ebike_app", password="s3cr/t"))
    assert runtime["USER"] == "ebike_app" and runtime["PASSWORD"] == "s3cr/t"
    assert {k: runtime[k] for k in ("HOST", "PORT", "NAME")} == {k: owner[k] for k in ("HOST", "PORT", "NAME")}
    assert runtime.get("OPTIONS", {}) == owner.get("OPTIONS", {})


def test_the_gateway_passes_the_host_list_and_target_to_libpq():
    info = psycopg.conninfo.conninfo_to_dict(
        gateway_db.conninfo(db_url.parse("postgis://g:pw@db1:5432,db2:5433/ebike?target_session_attrs=read-write"))
    )
    assert (info["host"], info["port"], info["target_session_attrs"]) == ("db1,db2", "5432,5433", "read-write")
