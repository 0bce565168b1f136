# shellcheck shell=bash
# shellcheck disable=SC2034  # variables set here are used by the scripts that source this file
# Shared by scripts/backup.sh and scripts/restore.sh (source it after lib.sh; do not run it).
#
# The BACKUP_* settings (.env.example, README "Operations" > "Backups"), with their defaults:
#   BACKUP_ENABLED=false          make backup refuses to touch the cluster until the operator sets it
#   BACKUP_REPO_PATH=var/backup   pgBackRest repository 1 (a second disk or host in production)
#   BACKUP_PASSPHRASE_FILE=var/keys/backup-passphrase   the repository's encryption passphrase
#   BACKUP_STANZA=ebike  BACKUP_RETENTION_FULL=2  BACKUP_RETENTION_DIFF=6
#   BACKUP_COMPRESS_TYPE=zst  BACKUP_PROCESS_MAX=2  BACKUP_REPOS="1"
#   BACKUP_PG_PORT=<DATABASE_URL's port>  BACKUP_PG_SOCKET=/var/run/postgresql
#   BACKUP_PG_PATH=<the cluster's data_directory, asked over the socket>
#   BACKUP_STATE_DIR=var/pgbackrest  (rendered configuration, pgBackRest's log and lock files)
#   BACKUP_STATUS_FILE=var/backup-status.json  (what /healthz reads: `pgbackrest info` after each run)
#   BACKUP_FILES="<MEDIA_ROOT> var/keys <AUDIT_HEAD_DIR> <key files set outside var/keys>"

PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PGBACKREST="${PGBACKREST:-pgbackrest}"

abs_path() {
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s\n' "$ROOT/$1" ;;
    esac
}

backup_settings() {
    parse_url "$DATABASE_URL" DB
    BACKUP_ENABLED="${BACKUP_ENABLED:-false}"
    BACKUP_REPO_PATH="$(abs_path "${BACKUP_REPO_PATH:-var/backup}")"
    BACKUP_STATE_DIR="$(abs_path "${BACKUP_STATE_DIR:-var/pgbackrest}")"
    BACKUP_PASSPHRASE_FILE="$(abs_path "${BACKUP_PASSPHRASE_FILE:-var/keys/backup-passphrase}")"
    BACKUP_STATUS_FILE="$(abs_path "${BACKUP_STATUS_FILE:-var/backup-status.json}")"
    BACKUP_STANZA="${BACKUP_STANZA:-ebike}"
    BACKUP_RETENTION_FULL="${BACKUP_RETENTION_FULL:-2}"
    BACKUP_RETENTION_DIFF="${BACKUP_RETENTION_DIFF:-6}"
    BACKUP_COMPRESS_TYPE="${BACKUP_COMPRESS_TYPE:-zst}"
    BACKUP_PROCESS_MAX="${BACKUP_PROCESS_MAX:-2}"
    BACKUP_REPOS="${BACKUP_REPOS:-1}"
    BACKUP_PG_PORT="${BACKUP_PG_PORT:-$DB_PORT}"
    BACKUP_PG_SOCKET="${BACKUP_PG_SOCKET:-/var/run/postgresql}"
    BACKUP_CONFIG="$BACKUP_STATE_DIR/pgbackrest.conf"
    BACKUP_TEMPLATE="$ROOT/deploy/pgbackrest/pgbackrest.conf.in"
    if ! is_local_host "$DB_HOST" && [[ -z "${BACKUP_PG_PATH:-}" ]]; then
        die "DATABASE_URL's server ($DB_HOST) is not this machine: run make backup / make restore on the database host"
    fi
}

backup_enabled() {
    case "${BACKUP_ENABLED,,}" in
        1 | true | yes | on) return 0 ;;
        *) return 1 ;;
    esac
}

# as_postgres CMD...: pgBackRest and the PostgreSQL tools run as the cluster's owner.
as_postgres() {
    if [[ "$(id -un)" == postgres ]]; then
        "$@"
    elif [[ $EUID -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        sudo -u postgres -- "$@"
    fi
}

# pg_sql QUERY: one value from the cluster being backed up (as postgres over its socket).
pg_sql() {
    as_postgres "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$BACKUP_PG_SOCKET" -p "$BACKUP_PG_PORT" \
        -d postgres -c "$1"
}

pgbr() {
    as_postgres "$PGBACKREST" "--config=$BACKUP_CONFIG" "--stanza=$BACKUP_STANZA" "$@"
}

# The data directory of the cluster: BACKUP_PG_PATH, else asked. `optional` lets restore go on when
# the cluster is down (the disaster a restore is for).
backup_resolve_pg_path() {
    if [[ -n "${BACKUP_PG_PATH:-}" ]]; then
        return 0
    fi
    BACKUP_PG_PATH="$(pg_sql 'SHOW data_directory' 2>/dev/null)" || BACKUP_PG_PATH=""
    if [[ -z "$BACKUP_PG_PATH" ]]; then
        [[ "${1:-}" == optional ]] ||
            die "cannot ask the cluster on socket $BACKUP_PG_SOCKET port $BACKUP_PG_PORT for its data directory; set BACKUP_PG_PATH"
        BACKUP_PG_PATH="/var/lib/postgresql/15/main"  # only read by backup and check, not by info/verify/restore
    fi
}

backup_passphrase() {
    [[ -s "$BACKUP_PASSPHRASE_FILE" ]] ||
        die "no backup passphrase at $BACKUP_PASSPHRASE_FILE: run 'scripts/setup.sh keys' (or set BACKUP_PASSPHRASE_FILE)"
    tr -d '\n' <"$BACKUP_PASSPHRASE_FILE"
}

# Directories owned by postgres (the repository, the state) and the configuration, mode 0600.
backup_render_config() {
    local dir
    for dir in "$BACKUP_REPO_PATH" "$BACKUP_STATE_DIR" "$BACKUP_STATE_DIR/log" "$BACKUP_STATE_DIR/lock" \
        "$BACKUP_STATE_DIR/spool"; do
        mkdir -p "$dir"
        chown postgres:postgres "$dir" 2>/dev/null || true
        chmod 750 "$dir"
    done
    local rendered
    rendered="$(
        BACKUP_CIPHER_PASS="$(backup_passphrase)" BACKUP_REPO_PATH="$BACKUP_REPO_PATH" \
            BACKUP_RETENTION_FULL="$BACKUP_RETENTION_FULL" BACKUP_RETENTION_DIFF="$BACKUP_RETENTION_DIFF" \
            BACKUP_COMPRESS_TYPE="$BACKUP_COMPRESS_TYPE" BACKUP_PROCESS_MAX="$BACKUP_PROCESS_MAX" \
            BACKUP_STATE_DIR="$BACKUP_STATE_DIR" BACKUP_STANZA="$BACKUP_STANZA" BACKUP_PG_PATH="$BACKUP_PG_PATH" \
            BACKUP_PG_PORT="$BACKUP_PG_PORT" BACKUP_PG_SOCKET="$BACKUP_PG_SOCKET" \
            envsubst '${BACKUP_REPO_PATH} ${BACKUP_CIPHER_PASS} ${BACKUP_RETENTION_FULL} ${BACKUP_RETENTION_DIFF}
                ${BACKUP_COMPRESS_TYPE} ${BACKUP_PROCESS_MAX} ${BACKUP_STATE_DIR} ${BACKUP_STANZA} ${BACKUP_PG_PATH}
                ${BACKUP_PG_PORT} ${BACKUP_PG_SOCKET}' <"$BACKUP_TEMPLATE"
    )"
    (umask 077 && printf '%s\n' "$rendered" >"$BACKUP_CONFIG.tmp")
    chown postgres:postgres "$BACKUP_CONFIG.tmp" 2>/dev/null || true
    mv "$BACKUP_CONFIG.tmp" "$BACKUP_CONFIG"
}

# The files and keys that live outside the database, backed up beside each database backup.
backup_file_paths() {
    if [[ -n "${BACKUP_FILES:-}" ]]; then
        local -a given=()
        read -r -a given <<<"$BACKUP_FILES"
        printf '%s\n' "${given[@]}"
        return 0
    fi
    abs_path "${MEDIA_ROOT:-media}"
    printf '%s\n' "$VAR/keys"
    abs_path "${AUDIT_HEAD_DIR:-var/audit-heads}"
    local name
    for name in EVIDENCE_SIGNING_KEY_FILE AUDIT_SIGNING_KEY_FILE WEBHOOK_SECRET_KEY_FILE SECRET_KEY_FILE \
        CERTIFICATE_SIGNING_KEY_FILE; do
        [[ -n "${!name:-}" ]] && abs_path "${!name}"
    done
    return 0
}

# Where the encrypted archive of those files for backup LABEL lives.
backup_files_archive() {
    printf '%s/files/%s.tar.enc\n' "$BACKUP_REPO_PATH" "$1"
}

# openssl enc with the repository's passphrase: `files_cipher -e` encrypts stdin, `-d` decrypts.
files_cipher() {
    openssl enc "$1" -aes-256-cbc -pbkdf2 -iter 200000 -salt -pass "file:$BACKUP_PASSPHRASE_FILE"
}
