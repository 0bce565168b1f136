#!/usr/bin/env python3
"""Render deploy/haproxy/haproxy.cfg.in: HAProxy's TCP frontends before the terminal gateway nodes.

    scripts/haproxy_config.py --node 10.0.3.11 --node 10.0.3.12 > /etc/haproxy/haproxy.cfg
    scripts/haproxy_config.py --node 127.0.0.2 --node 127.0.0.3 --listen 127.0.0.1 --source 127.0.0.1 -o var/haproxy.cfg
    scripts/haproxy_config.py --compose -o deploy/haproxy/compose.cfg      # docker-compose.yml's copy

Each --node is one gateway node's address (a host of its own in production; a loopback address
127.0.0.x of its own on one machine), serving GT06, JT/T 808, OsmAnd and metrics on the --node-*
ports. Every node must list the address HAProxy connects from (--source, or what the route picks)
in GATEWAY_PROXY_FROM. --compose: the nodes are the replicas of the compose service `gateway`,
found through Docker's DNS (up to --slots of them). Standard library only: runs before the venv.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1] / "deploy" / "haproxy" / "haproxy.cfg.in"
PROTOCOLS = ("gt06", "jt808", "osmand")
DEFAULT_PORTS = {"gt06": 5023, "jt808": 5015, "osmand": 5055, "metrics": 9105}

COMPOSE_RESOLVERS = """
# Docker's embedded DNS: `gateway` resolves to every replica of the compose service.
resolvers docker
    nameserver dns 127.0.0.11:53
    resolve_retries 3
    timeout resolve 1s
    timeout retry 1s
    hold valid 5s
    hold obsolete 5s
"""


def render(
    *,
    nodes: list[str],
    listen: str = "0.0.0.0",  # noqa: S104 (terminals connect from anywhere)
    ports: dict[str, int] | None = None,
    node_ports: dict[str, int] | None = None,
    source: str = "",
    stats_bind: str = "127.0.0.1:8405",
    stats_socket: str = "/run/haproxy/admin.sock",
    maxconn: int = 0,
    compose_slots: int = 0,
) -> str:
    """The configuration text. `nodes`: the nodes' addresses; `compose_slots` > 0: the replicas of
    the compose service `gateway` instead (then `nodes` is ignored)."""
    ports = {**DEFAULT_PORTS, **(ports or {})}
    node_ports = {**ports, **(node_ports or {})}
    if not compose_slots and not nodes:
        raise ValueError("at least one --node")
    values = {
        # 0: HAProxy derives it from its descriptor limit (ulimit -n / LimitNOFILE): an explicit value
        # whose descriptors the hard limit does not allow stops it from starting.
        "MAXCONN": f"    maxconn {maxconn}" if maxconn else "",
        "STATS_SOCKET": stats_socket,
        "STATS_BIND": stats_bind,
        "METRICS_PORT": str(node_ports["metrics"]),
        "LISTEN": listen,
        "SOURCE": f"    source {source}" if source else "",
        "RESOLVERS": COMPOSE_RESOLVERS if compose_slots else "",
    }
    for protocol in PROTOCOLS:
        port = node_ports[protocol]
        values[f"{protocol.upper()}_PORT"] = str(ports[protocol])
        if compose_slots:
            lines = [f"    server-template gateway {compose_slots} gateway:{port} resolvers docker init-addr none"]
        else:
            lines = [f"    server node{number} {_host(node)}:{port}" for number, node in enumerate(nodes, 1)]
        values[f"{protocol.upper()}_SERVERS"] = "\n".join(lines)
    text = TEMPLATE.read_text()
    for name, value in values.items():
        if not value:  # a placeholder alone on its line goes with its line
            text = text.replace(f"@{name}@\n", "")
        text = text.replace(f"@{name}@", value)
    leftover = re.findall(r"@[A-Z0-9_]+@", text)
    if leftover:
        raise ValueError(f"placeholders left in the template: {leftover}")
    return text


def _host(address: str) -> str:
    """An address as HAProxy reads it before :port (an IPv6 address with the ipv6@ prefix)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address  # a host name, resolved when HAProxy starts
    return f"ipv6@{parsed}" if parsed.version == 6 else str(parsed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--node", action="append", default=[], help="a gateway node's address (repeat)")
    parser.add_argument("--compose", action="store_true", help="the replicas of the compose service `gateway`")
    parser.add_argument("--slots", type=int, default=4, help="--compose: most replicas served (default 4)")
    parser.add_argument("--listen", default="0.0.0.0", help="address the frontends bind (default 0.0.0.0)")  # noqa: S104
    for name, port in DEFAULT_PORTS.items():
        if name != "metrics":
            parser.add_argument(f"--{name}-port", type=int, default=port, help=f"{name} frontend port ({port})")
        parser.add_argument(f"--node-{name}-port", type=int, help=f"the nodes' {name} port (default: as the frontend)")
    parser.add_argument("--source", default="", help="address HAProxy connects to the nodes from")
    parser.add_argument("--stats-bind", help="stats page and /metrics, host:port (127.0.0.1:8405; --compose: *:8405)")
    parser.add_argument(
        "--stats-socket", help="runtime API socket (/run/haproxy/admin.sock; --compose: /var/lib/haproxy/admin.sock)"
    )
    parser.add_argument(
        "--maxconn", type=int, default=0, help="connections HAProxy accepts in all (0: as its descriptor limit allows)"
    )
    parser.add_argument("-o", "--output", help="write here instead of stdout")
    args = parser.parse_args(argv)
    ports = {name: getattr(args, f"{name}_port") for name in PROTOCOLS}
    node_ports = {name: value for name in DEFAULT_PORTS if (value := getattr(args, f"node_{name}_port")) is not None}
    try:
        text = render(
            nodes=args.node,
            listen=args.listen,
            ports=ports,
            node_ports=node_ports,
            source=args.source,
            # In the compose network the stats port is the operators' (not published to the world);
            # the official image runs as the user haproxy, who owns /var/lib/haproxy.
            stats_bind=args.stats_bind or ("0.0.0.0:8405" if args.compose else "127.0.0.1:8405"),
            stats_socket=args.stats_socket
            or ("/var/lib/haproxy/admin.sock" if args.compose else "/run/haproxy/admin.sock"),
            maxconn=args.maxconn,
            compose_slots=args.slots if args.compose else 0,
        )
    except ValueError as error:
        parser.error(str(error))
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
