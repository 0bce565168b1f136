#!/usr/bin/env bash
# Make sure the PostgreSQL+PostGIS database in DATABASE_URL is reachable and prepared. Idempotent.
#
# - Nothing listens on the URL's local port: start Debian's cluster 15/main (create it if needed).
# - As the postgres superuser (peer auth over the socket via runuser, else TCP as postgres, which
#   works under trust auth): for the default DATABASE_URL create role ebike (LOGIN CREATEDB, password
#   ebike) and database ebike owned by it. A DATABASE_URL chosen in the environment is used as given:
#   its role must exist; its database is created when missing.
# - CREATE EXTENSION IF NOT EXISTS postgis, pg_trgm, btree_gist in the database and in template1, so
#   the test database that Django creates from template1 as the non-superuser already has them.
# - The runtime roles (issue 16): DATABASE_APP_URL's role (web server, Celery) and
#   DATABASE_GATEWAY_URL's role (terminal gateway), each LOGIN with the URL's password and nothing
#   more (no superuser, CREATEDB, CREATEROLE, membership in the owner role). Unset, their URLs are
#   DATABASE_URL's server and database as ebike_app / ebike_gateway (password = role name). What they
#   may do on each table is granted by `manage.py migrate` (accounts/db_privileges.py), not here.
# - Finally connect as the application role over TCP with its password and check PostGIS.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_VERSION="${PG_VERSION:-15}"
PG_CLUSTER="${PG_CLUSTER:-main}"
PG_SUPERUSER="${PG_SUPERUSER:-postgres}"
read -r -a PG_EXTENSIONS <<<"${PG_EXTENSIONS:-postgis pg_trgm btree_gist}"

command -v psql >/dev/null 2>&1 || die "psql not found; run 'scripts/setup.sh apt' first"

parse_url "$DATABASE_URL" DB
case "$DB_SCHEME" in
    postgis | postgres | postgresql | pgsql) ;;
    *) die "DATABASE_URL must be a postgis:// URL (got scheme '$DB_SCHEME')" ;;
esac
[[ -n "$DB_HOST" ]] || DB_HOST=127.0.0.1
[[ -n "$DB_USER" && -n "$DB_DBNAME" ]] || die "DATABASE_URL must name a user and a database"

cluster_field() { # cluster_field COLUMN (1-based column of `pg_lsclusters -h`)
    pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" -v f="$1" \
        '$1 == v && $2 == c { print $f }'
}

wait_for_port() {
    local i
    for ((i = 0; i < 60; i++)); do
        if pg_isready -q -h "$DB_HOST" -p "$DB_PORT" -t 1 >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}

ensure_server() {
    if standby_enabled; then # scripts/standby.sh started the pair; psql picks its primary
        log "postgres: the project's pair ($DB_HOST, port $DB_PORT)"
        return 0
    fi
    if port_open "$DB_HOST" "$DB_PORT"; then
        log "postgres: server listening on $DB_HOST:$DB_PORT"
        return 0
    fi
    is_local_host "$DB_HOST" ||
        die "nothing listens on $DB_HOST:$DB_PORT (DATABASE_URL) and that is not this machine"
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! pkg_installed "postgresql-$PG_VERSION"; then
        apt_install_missing "postgresql-$PG_VERSION" "postgresql-$PG_VERSION-postgis-3"
    fi
    if [[ -z "$(cluster_field 1)" ]]; then
        log "postgres: creating cluster $PG_VERSION/$PG_CLUSTER on port $DB_PORT"
        run_as_root pg_createcluster --port "$DB_PORT" "$PG_VERSION" "$PG_CLUSTER"
    fi
    local port status
    port="$(cluster_field 3)"
    status="$(cluster_field 4)"
    [[ "$port" == "$DB_PORT" ]] ||
        die "cluster $PG_VERSION/$PG_CLUSTER uses port $port but DATABASE_URL wants $DB_PORT"
    if [[ "$status" != online* ]]; then
        log "postgres: starting cluster $PG_VERSION/$PG_CLUSTER"
        run_as_root pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" start
    fi
    wait_for_port || die "PostgreSQL did not come up on $DB_HOST:$DB_PORT (see /var/log/postgresql/)"
    log "postgres: cluster $PG_VERSION/$PG_CLUSTER up on port $DB_PORT"
}

# --- superuser access ----------------------------------------------------------------------------
ADMIN_MODE=""

# pg_admin PSQL_ARGS...: psql as the superuser, quiet, stops at the first error, no NOTICEs.
pg_admin() {
    local -a psql_args=(-X -q -v ON_ERROR_STOP=1 -p "$DB_PORT")
    local quiet="PGOPTIONS=-c client_min_messages=warning"
    case "$ADMIN_MODE" in
        runuser) (cd / && runuser -u postgres -- env "$quiet" psql "${psql_args[@]}" "$@") ;;
        sudo) (cd / && sudo -n -u postgres env "$quiet" psql "${psql_args[@]}" "$@") ;;
        tcp) env "$quiet" psql "${psql_args[@]}" -h "$DB_HOST" -U "$PG_SUPERUSER" -w "$@" ;;
        *) die "no superuser access" ;;
    esac
}

is_superuser() {
    [[ "$(pg_admin -d postgres -Atc 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user' \
        2>/dev/null)" == "t" ]]
}

# Peer auth on the socket first (stock Debian), then TCP as postgres (trust, or PGPASSWORD if set).
find_admin() {
    local modes=()
    if is_local_host "$DB_HOST" && id postgres >/dev/null 2>&1; then
        if [[ $EUID -eq 0 ]]; then
            modes+=(runuser)
        elif command -v sudo >/dev/null 2>&1; then
            modes+=(sudo)
        fi
    fi
    modes+=(tcp)
    if [[ -n "${PG_ADMIN_MODES:-}" ]]; then # override for debugging: "runuser", "sudo", "tcp"
        read -r -a modes <<<"$PG_ADMIN_MODES"
    fi
    for ADMIN_MODE in "${modes[@]}"; do
        if is_superuser; then
            log "postgres: superuser access via $ADMIN_MODE"
            return 0
        fi
    done
    ADMIN_MODE=""
    return 1
}

ensure_role() {
    if ((DATABASE_URL_IS_DEFAULT)); then
        pg_admin -d postgres -v role="$DB_USER" -v pw="$DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'pw')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'pw') \gexec
SQL
        log "postgres: role $DB_USER ready"
    else
        [[ "$(pg_admin -d postgres -v role="$DB_USER" -At \
            <<<"SELECT count(*) FROM pg_roles WHERE rolname = :'role'")" == "1" ]] ||
            die "role '$DB_USER' from DATABASE_URL does not exist; create it or unset DATABASE_URL"
        log "postgres: using existing role $DB_USER (DATABASE_URL from environment)"
    fi
}

# runtime_url ROLE: DATABASE_URL's server and database as ROLE, password ROLE (the one-machine default).
runtime_url() {
    printf 'postgis://%s:%s@%s:%s/%s' "$1" "$1" "$DB_HOST" "$DB_PORT" "$DB_DBNAME"
}

# Create or update the runtime roles (cluster-wide, like the owner role). Idempotent.
ensure_runtime_roles() {
    local url
    for url in "${DATABASE_APP_URL:-$(runtime_url ebike_app)}" \
        "${DATABASE_GATEWAY_URL:-$(runtime_url ebike_gateway)}"; do
        parse_url "$url" RT
        [[ -n "$RT_USER" && -n "$RT_PASSWORD" ]] || die "runtime database URL must name a user and a password: $url"
        [[ "$RT_USER" != "$DB_USER" ]] || die "a runtime role must not be the owner role $DB_USER"
        pg_admin -d postgres -v role="$RT_USER" -v pw="$RT_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'pw')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %L',
              :'role', :'pw') \gexec
SELECT format('REVOKE %I FROM %I', r.rolname, :'role')
  FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
 WHERE u.rolname = :'role' \gexec
SQL
        log "postgres: runtime role $RT_USER ready (its table privileges come from manage.py migrate)"
    done
}

# The monitoring role /healthz reads replication with (HEALTH_DATABASE_URL, ebike_registry/health.py):
# LOGIN, a member of pg_read_all_stats (each standby's state and lag in pg_stat_replication) and of
# nothing else, no table privileges. Unset, HEALTH_DATABASE_URL's role is ebike_monitor (password =
# name); set, its role and password are created or updated the same way; set empty, none. Idempotent.
ensure_monitor_role() {
    local url="${HEALTH_DATABASE_URL-$(runtime_url ebike_monitor)}"
    [[ -n "$url" ]] || return 0
    parse_url "$url" MON
    [[ -n "$MON_USER" ]] || return 0
    [[ "$MON_USER" != "$DB_USER" ]] || return 0 # the owner itself: nothing to create
    pg_admin -d postgres -v role="$MON_USER" -v pw="${MON_PASSWORD:-$MON_USER}" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'pw')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %L',
              :'role', :'pw') \gexec
SELECT format('REVOKE %I FROM %I', r.rolname, :'role')
  FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
 WHERE u.rolname = :'role' AND r.rolname <> 'pg_read_all_stats' \gexec
SELECT format('GRANT pg_read_all_stats TO %I', :'role') \gexec
SQL
    log "postgres: monitoring role $MON_USER ready (pg_read_all_stats, for /healthz)"
}

ensure_extensions_in() {
    local dbname="$1" ext
    local -a cmds=()
    for ext in "${PG_EXTENSIONS[@]}"; do
        cmds+=(-c "CREATE EXTENSION IF NOT EXISTS $ext")
    done
    pg_admin -d "$dbname" "${cmds[@]}"
}

ensure_database() {
    # template1 first: a database created afterwards inherits the extensions.
    ensure_extensions_in template1
    pg_admin -d postgres -v role="$DB_USER" -v db="$DB_DBNAME" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
    if ((DATABASE_URL_IS_DEFAULT)); then
        pg_admin -d postgres -v role="$DB_USER" -v db="$DB_DBNAME" \
            <<<"SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'role') \gexec"
    fi
    ensure_extensions_in "$DB_DBNAME"
    log "postgres: database $DB_DBNAME ready (extensions ${PG_EXTENSIONS[*]}, also in template1)"
}

# Connect exactly as the application does: TCP, application role, password.
check_app_connection() {
    local version
    # shellcheck disable=SC2016  # $$...$$ is SQL dollar quoting
    if ! version="$(PGPASSWORD="$DB_PASSWORD" PGCONNECT_TIMEOUT=5 psql -X -q -w -At \
        -h "$DB_HOST" -p "$DB_PORT" -U "$DB_USER" -d "$DB_DBNAME" \
        -c 'SELECT extversion FROM pg_extension WHERE extname = $$postgis$$')"; then
        die "cannot connect as $DB_USER to $DB_HOST:$DB_PORT/$DB_DBNAME (password auth in pg_hba.conf?)"
    fi
    [[ -n "$version" ]] || die "PostGIS is not installed in database $DB_DBNAME"
    log "postgres: $DB_USER@$DB_HOST:$DB_PORT/$DB_DBNAME OK (PostGIS $version)"
}

# Leftovers of drills or of a removed standby (issue 19) on a cluster the project does not run as a
# pair: a synchronous_standby_names naming no connected standby makes every commit wait forever, and
# an archive_command that keeps failing fills pg_wal (and hangs CI). The first is reset (ALTER SYSTEM
# RESET, reload) when ALTER SYSTEM set it; the second is only reported (backups may own it).
check_replication_leftovers() {
    standby_enabled && return 0 # the pair's primary has them on purpose (scripts/standby.sh)
    local sync source waiting
    IFS='|' read -r sync source waiting < <(pg_admin -d postgres -At <<'SQL'
SELECT s.setting, coalesce(s.sourcefile, s.source),
       (SELECT count(*) FROM pg_stat_replication r WHERE r.sync_state IN ('sync', 'quorum'))
  FROM pg_settings s WHERE s.name = 'synchronous_standby_names'
SQL
)
    if [[ -n "$sync" && "$waiting" == "0" ]]; then
        if [[ "$source" == *postgresql.auto.conf ]]; then
            pg_admin -d postgres -c 'ALTER SYSTEM RESET synchronous_standby_names' -c 'SELECT pg_reload_conf()' >/dev/null
            warn "postgres: reset leftover synchronous_standby_names ($sync, no such standby connected): commits would wait forever"
        else
            warn "postgres: synchronous_standby_names = $sync (set in $source) but no synchronous standby is connected: every commit waits; remove it"
        fi
    fi
    local archive
    archive="$(pg_admin -d postgres -At <<'SQL'
SELECT current_setting('archive_command') || ' (' || failed_count || ' failures, last ' ||
       coalesce(last_failed_wal, '?') || ')'
  FROM pg_stat_archiver
 WHERE current_setting('archive_mode') <> 'off' AND current_setting('archive_command') <> ''
   AND failed_count > 0 AND (last_archived_time IS NULL OR last_failed_time > last_archived_time)
SQL
)"
    if [[ -n "$archive" ]]; then
        warn "postgres: archive_command is failing: $archive; WAL piles up in pg_wal until it works or is removed"
    fi
}

ensure_server
if find_admin; then
    check_replication_leftovers # first: with such a leftover, the CREATEs below would wait forever
    ensure_role
    ensure_runtime_roles
    ensure_monitor_role
    ensure_database
else
    warn "no superuser access to $DB_HOST:$DB_PORT; assuming role, database and extensions exist"
fi
check_app_connection
