#!/bin/sh
# First start of the db container: what the streaming standby (the db-standby service) needs from
# its primary (README "Operations", "Synchronous standby and failover"): a REPLICATION role and its
# pg_hba line, and the settings pg_rewind needs to bring this node back as a standby after a
# failover. Which standby commits wait for (synchronous_standby_names) is set by the standby-watch
# service once db-standby streams, never here: a commit must not wait for a standby that is not
# there yet. Idempotent: docker-compose exec db sh /docker-entrypoint-initdb.d/30-replication.sh
set -eu
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    -v pw="${REPLICATION_PASSWORD:-replicator}" <<'SQL'
SELECT 'CREATE ROLE replicator LOGIN REPLICATION' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replicator') \gexec
SELECT format('ALTER ROLE replicator LOGIN REPLICATION NOSUPERUSER PASSWORD %L', :'pw') \gexec
ALTER SYSTEM SET wal_log_hints = on;
ALTER SYSTEM SET max_slot_wal_keep_size = '4GB';
SQL
grep -q '^host replication replicator' "$PGDATA/pg_hba.conf" ||
    echo 'host replication replicator all scram-sha-256' >>"$PGDATA/pg_hba.conf"
