#!/bin/sh
# First start of the db container (postgis/postgis runs /docker-entrypoint-initdb.d/* once, as the
# superuser, after its own 10_postgis.sh): the owner role and database, the runtime roles, the
# extensions. The same roles as scripts/db.sh creates on a machine; idempotent, so it can be run
# again on an existing volume: docker-compose exec db sh /docker-entrypoint-initdb.d/20-ebike-roles.sh
set -eu
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    -v owner_pw="${EBIKE_DB_PASSWORD:-ebike}" \
    -v app_pw="${EBIKE_APP_DB_PASSWORD:-ebike_app}" \
    -v gateway_pw="${EBIKE_GATEWAY_DB_PASSWORD:-ebike_gateway}" \
    -v monitor_pw="${EBIKE_MONITOR_DB_PASSWORD:-ebike_monitor}" <<'SQL'
SELECT 'CREATE ROLE ebike LOGIN CREATEDB' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ebike') \gexec
SELECT format('ALTER ROLE ebike LOGIN CREATEDB NOSUPERUSER PASSWORD %L', :'owner_pw') \gexec
SELECT format('CREATE ROLE %I LOGIN', r) FROM unnest(ARRAY['ebike_app', 'ebike_gateway']) r
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) \gexec
SELECT format('ALTER ROLE ebike_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', :'app_pw') \gexec
SELECT format('ALTER ROLE ebike_gateway LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', :'gateway_pw') \gexec
-- /healthz's monitoring role (HEALTH_DATABASE_URL): reads pg_stat_replication in full, no table.
SELECT 'CREATE ROLE ebike_monitor LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ebike_monitor') \gexec
SELECT format('ALTER ROLE ebike_monitor LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', :'monitor_pw') \gexec
GRANT pg_read_all_stats TO ebike_monitor;
SELECT 'CREATE DATABASE ebike OWNER ebike' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ebike') \gexec
SQL
for db in template1 ebike; do
    psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "$db" \
        -c 'CREATE EXTENSION IF NOT EXISTS postgis' \
        -c 'CREATE EXTENSION IF NOT EXISTS pg_trgm' \
        -c 'CREATE EXTENSION IF NOT EXISTS btree_gist'
done
