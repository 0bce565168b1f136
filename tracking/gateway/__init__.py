"""The terminal gateway: GT06 and JT/T 808 over TCP, OsmAnd over HTTP, in one asyncio process.

    terminal --TCP/HTTP--> sessions (frame, decode, login/auth) --> writer (batch, COPY, commit)
                                   ^                                        |
                                   +-------- ack only after the commit <----+

Modules: `config` (GATEWAY_* settings), `sessions` (GT06 / JT/T 808 connection state), `http`
(OsmAnd), `writer` (batches through tracking.ingest), `terminals` (lookups with a short cache),
`metrics` (counters, log line, Prometheus endpoint), `limits` (connection caps, login failures
per address, the descriptor budget), `server` (process wiring and shutdown).
Start it with `python manage.py run_gateway`.
"""
