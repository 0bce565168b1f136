"""DATABASE_URL with several servers: libpq's multi-host form, which dj-database-url alone refuses.

    postgis://ebike:pw@127.0.0.2,127.0.0.3:5432/ebike?target_session_attrs=read-write
    postgis://ebike:pw@db1:5432,db2:5433/ebike?target_session_attrs=read-write

The first form (one port for every host) dj-database-url already reads; the second it cannot, so
`parse` rewrites it to a one-host URL for dj-database-url and puts the lists back as HOST
"db1,db2" and PORT "5432,5433". psycopg hands both lists to libpq, which tries the hosts in order
and, with target_session_attrs=read-write (a query parameter, kept in OPTIONS), takes the first
one that accepts writes: after a failover every process finds the new primary on its next
connection, without a changed setting (README "Operations").
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import dj_database_url


def parse(url: str, **kwargs: Any) -> dict[str, Any]:
    parts = urlsplit(url)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    hosts, ports = _split_hosts(hostlist)
    if len(set(ports) - {""}) <= 1:  # one port (or none) for every host: dj-database-url reads it
        return dict(dj_database_url.parse(url, **kwargs))
    single = urlunsplit(parts._replace(netloc=f"{userinfo}@{hosts[0]}" if userinfo else hosts[0]))
    config = dict(dj_database_url.parse(single, **kwargs))
    config["HOST"] = ",".join(hosts)
    config["PORT"] = ",".join(port or "5432" for port in ports)
    return config


def _split_hosts(hostlist: str) -> tuple[list[str], list[str]]:
    hosts, ports = [], []
    for item in hostlist.split(","):
        if item.startswith("["):  # [::1]:5432
            host, _, rest = item.partition("]")
            hosts.append(host + "]")
            ports.append(rest.removeprefix(":"))
        else:
            host, _, port = item.partition(":")
            hosts.append(host)
            ports.append(port)
    return hosts, ports


def build(config: dict[str, Any], *, user: str, password: str, scheme: str = "postgis") -> str:
    """The URL of `config`'s servers, database and libpq options for another role (host lists kept)."""
    hosts = str(config.get("HOST") or "127.0.0.1").split(",")
    ports = str(config.get("PORT") or "5432").split(",")
    if len(ports) == 1:
        netloc = f"{','.join(hosts)}:{ports[0]}"
    else:
        netloc = ",".join(f"{host}:{port}" for host, port in zip(hosts, ports, strict=True))
    options = {key: value for key, value in (config.get("OPTIONS") or {}).items() if isinstance(value, str | int)}
    return urlunsplit(
        (scheme, f"{quote(user, safe='')}:{quote(password, safe='')}@{netloc}", f"/{config['NAME']}",
         urlencode(options), "")
    )  # fmt: skip
