"""Throwaway processes on this machine for the benchmarks, the operations tests and the drills:
PostgreSQL clusters (clusters.py) and gateway nodes behind HAProxy (gateway_nodes.py).

Here rather than under tests/ so that bench/ imports nothing from tests/; the tests import them
from here (`from bench.harness.clusters import ThrowawayCluster`), a bench script as
`from harness.clusters import ...` (bench/ is its sys.path[0]).
"""
