"""scripts/lib.sh's parse_url, which run.sh and db.sh use to build the runtime roles' URLs: a
multi-host DATABASE_URL in either of libpq's forms must keep every server, and a bad one must stop
with a message."""

import subprocess
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parent.parent / "scripts" / "lib.sh"
BASH = "/bin/bash"


def parse(url: str) -> dict[str, str]:
    script = 'source "$1"; parse_url "$2" T; printf "%s\\n" "$T_HOST" "$T_PORT" "$T_HOSTPORT" "$T_DBNAME" "$T_QUERY"'
    done = subprocess.run([BASH, "-c", script, "_", str(LIB), url], capture_output=True, text=True, check=True)  # noqa: S603 (our script)
    return dict(zip(["host", "port", "hostport", "dbname", "query"], done.stdout.split("\n"), strict=False))


def test_one_server():
    assert parse("postgis://ebike:secret@db.example:6432/ebike") == {
        "host": "db.example",
        "port": "6432",
        "hostport": "db.example:6432",
        "dbname": "ebike",
        "query": "",
    }


@pytest.mark.parametrize(
    ("url", "host", "port", "hostport"),
    [
        # The standby pair's default form: one port for both hosts.
        (
            "postgis://ebike:ebike@127.0.0.2,127.0.0.3:5432/ebike",
            "127.0.0.2,127.0.0.3",
            "5432",
            "127.0.0.2,127.0.0.3:5432",
        ),
        # Host:port pairs, which stopped run.sh before ("cannot parse URL").
        ("postgis://ebike:ebike@db1:5432,db2:5433/ebike", "db1,db2", "5432,5433", "db1:5432,db2:5433"),
        # A host without a port takes the default, as libpq does.
        ("postgis://ebike:ebike@db1,db2:5433/ebike", "db1,db2", "5432,5433", "db1,db2:5433"),
    ],
)
def test_a_multi_host_url_keeps_every_server(url, host, port, hostport):
    parsed = parse(url + "?target_session_attrs=read-write")
    assert (parsed["host"], parsed["port"], parsed["hostport"]) == (host, port, hostport)
    assert parsed["dbname"] == "ebike" and parsed["query"] == "target_session_attrs=read-write"
    # run.sh's runtime URL for the app role names the same servers in the same order.
    rebuilt = f"postgis://ebike_app:ebike_app@{parsed['hostport']}/{parsed['dbname']}?{parsed['query']}"
    assert parse(rebuilt)["hostport"] == hostport


def test_a_url_that_does_not_parse_stops_with_a_message():
    script = 'source "$1"; parse_url "$2" T'
    bad = "postgis://u@db:notaport/x"
    done = subprocess.run([BASH, "-c", script, "_", str(LIB), bad], capture_output=True, text=True, check=False)  # noqa: S603
    assert done.returncode != 0 and "cannot parse URL for T" in done.stderr
