"""The runtime roles' privileges on tracking's tables (accounts.db_roles explains the scheme).

The gateway (tracking.gateway, tracking.ingest) reads terminals, stores pings, presence cells, last
positions, terminal alarms and an outbox row per batch: nothing else. Dropping old partitions,
trimming them and deleting old cells (tracking.retention) and creating new partitions
(tracking.partitions) is the owner's work, done by the maintenance worker."""

from accounts.db_roles import APPEND_ONLY, INSERT_ONLY, READ, READ_WRITE, Grant, deletes

APP = {
    "tracking_terminal": READ_WRITE,
    "tracking_terminalinstallation": READ_WRITE,
    # Positions are stored once and never changed (the partitions get the same grants).
    "tracking_ping": APPEND_ONLY,
    "tracking_pingcell": APPEND_ONLY,
    "tracking_lastposition": READ_WRITE,
    "tracking_alarm": READ_WRITE,
    "tracking_ingestoutbox": READ_WRITE,
    "tracking_ingesttoken": READ_WRITE,
    "tracking_legalhold": READ_WRITE,
    # Written by the gateway only; the pages and evidence read where a position came from.
    "tracking_terminalsession": READ,
    "tracking_gatewaynode": READ,
}
GATEWAY = {
    # Last-seen time and the armed state the terminal reports are kept on the terminal row.
    "tracking_terminal": Grant(frozenset({"SELECT", "UPDATE"})),
    # INSERT … ON CONFLICT (columns) DO NOTHING needs SELECT on the conflict target's columns.
    "tracking_ping": APPEND_ONLY,
    "tracking_pingcell": APPEND_ONLY,
    "tracking_lastposition": READ_WRITE,
    "tracking_alarm": APPEND_ONLY,
    "tracking_ingestoutbox": INSERT_ONLY,
    # Sessions: opened at login, watched for clones, ended (never deleted).
    "tracking_terminalsession": READ_WRITE,
    # Each worker's lease; a dead node's row goes once its sessions are ended.
    "tracking_gatewaynode": deletes("a gateway node that died is removed once its sessions are ended"),
}
