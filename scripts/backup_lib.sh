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
#   With several servers in DATABASE_URL (the standby pair, target_session_attrs=read-write) and
#   BACKUP_PG_PATH unset, each is asked over TCP for its role, data directory and socket: pgBackRest
#   backs up whichever is the primary now (after a failover, the new one), and archiving is set on
#   every node, so a promoted standby goes on archiving into the same repository.
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

# DATABASE_URL's servers, one "host port" line each, in the order libpq tries them. The multi-host
# forms as ebike_registry/db_url.py reads them for Django: h1,h2:5432 (one port for every host) and
# h1:5432,h2:5433.
url_nodes() {
    "$SYSTEM_PYTHON" - "$1" <<'PY'
import sys
from urllib.parse import urlsplit

items = []
for item in urlsplit(sys.argv[1]).netloc.rpartition("@")[2].split(","):
    if item.startswith("["):  # [::1]:5432
        host, _, rest = item[1:].partition("]")
        items.append((host, rest.removeprefix(":")))
    else:
        host, _, port = item.partition(":")
        items.append((host, port))
given = sorted({port for _, port in items} - {""})
for host, port in items:
    if len(given) <= 1:  # one port (or none) for every host
        port = given[0] if given else "5432"
    print(host or "127.0.0.1", port or "5432")
PY
}

is_loopback() {
    case "$1" in
        localhost | ::1 | 127.*) return 0 ;;
        *) return 1 ;;
    esac
}

backup_settings() {
    local host port
    BACKUP_URL_HOSTS=()
    BACKUP_URL_PORTS=()
    while read -r host port; do
        BACKUP_URL_HOSTS+=("$host")
        BACKUP_URL_PORTS+=("$port")
    done < <(url_nodes "$DATABASE_URL")
    ((${#BACKUP_URL_HOSTS[@]})) || die "cannot read the servers of DATABASE_URL"
    DB_HOST="${BACKUP_URL_HOSTS[0]}"
    DB_PORT="${BACKUP_URL_PORTS[0]}"
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
    # BACKUP_PAIR=1: several servers and no cluster named explicitly (BACKUP_PG_PATH): the nodes are
    # found by backup_resolve_pg_path, each on this machine (the project-managed pair, scripts/standby.sh).
    BACKUP_PAIR=0
    if [[ -z "${BACKUP_PG_PATH:-}" ]]; then
        if ((${#BACKUP_URL_HOSTS[@]} > 1)); then
            for host in "${BACKUP_URL_HOSTS[@]}"; do
                is_loopback "$host" ||
                    die "DATABASE_URL's server $host is not this machine: on separate hosts, run make backup on the primary's host with BACKUP_PG_PATH, BACKUP_PG_PORT and BACKUP_PG_SOCKET set (README 'Operations' > 'Backups')"
            done
            BACKUP_PAIR=1
        elif ! is_local_host "$DB_HOST"; then
            die "DATABASE_URL's server ($DB_HOST) is not this machine: run make backup / make restore on the database host"
        fi
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

# pg_sql_at SOCKET PORT QUERY: the same on one node of the pair.
pg_sql_at() {
    as_postgres "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$1" -p "$2" -d postgres -c "$3"
}

# The nodes of the pair that answered (backup_discover_nodes), index by index; the primary's also
# become BACKUP_PG_PATH, BACKUP_PG_SOCKET and BACKUP_PG_PORT (pgBackRest's pg1), so everything
# below works on the primary of the moment.
BACKUP_NODE_HOST=()
BACKUP_NODE_PORT=()
BACKUP_NODE_ROLE=()
BACKUP_NODE_PATH=()
BACKUP_NODE_SOCKET=()

backup_discover_nodes() {
    local i host port answer role path socket primaries=()
    for i in "${!BACKUP_URL_HOSTS[@]}"; do
        host="${BACKUP_URL_HOSTS[$i]}"
        port="${BACKUP_URL_PORTS[$i]}"
        # Over TCP as postgres (the pair's pg_hba trusts loopback; a ~postgres/.pgpass otherwise).
        answer="$(PGCONNECT_TIMEOUT=3 as_postgres "$PG_BIN/psql" -X -q -At -F '|' -v ON_ERROR_STOP=1 -h "$host" \
            -p "$port" -U postgres -d postgres -c "SELECT CASE WHEN pg_is_in_recovery() THEN 'standby' ELSE 'primary' END,
                current_setting('data_directory'), trim(split_part(current_setting('unix_socket_directories'), ',', 1))" \
            2>/dev/null)" || {
            warn "$host:$port does not answer: left out of this run"
            continue
        }
        IFS='|' read -r role path socket <<<"$answer"
        [[ "$socket" == /* ]] || die "$host:$port has no socket directory (unix_socket_directories): pgBackRest needs one"
        BACKUP_NODE_HOST+=("$host")
        BACKUP_NODE_PORT+=("$port")
        BACKUP_NODE_ROLE+=("$role")
        BACKUP_NODE_PATH+=("$path")
        BACKUP_NODE_SOCKET+=("$socket")
        if [[ "$role" == primary ]]; then
            primaries+=("$((${#BACKUP_NODE_HOST[@]} - 1))")
        fi
    done
    if ((${#primaries[@]} > 1)); then
        die "more than one node takes writes ($(for i in "${primaries[@]}"; do printf '%s:%s ' "${BACKUP_NODE_HOST[$i]}" "${BACKUP_NODE_PORT[$i]}"; done)): fence the old primary first (scripts/standby.sh promote)"
    fi
    if ((${#primaries[@]} == 1)); then
        i="${primaries[0]}"
        log "primary: ${BACKUP_NODE_HOST[$i]}:${BACKUP_NODE_PORT[$i]} (data ${BACKUP_NODE_PATH[$i]})"
    elif [[ "${1:-}" == optional && ${#BACKUP_NODE_HOST[@]} -gt 0 ]]; then
        i=0 # restore, info, verify: any node that answers has the cluster's settings
    elif [[ "${1:-}" == optional ]]; then
        BACKUP_PG_PATH="/var/lib/postgresql/15/main" # nobody answers: only backup and check read it
        return 0
    else
        die "no server of DATABASE_URL takes writes (${BACKUP_URL_HOSTS[*]}): promote the standby first (scripts/standby.sh promote)"
    fi
    BACKUP_PG_PATH="${BACKUP_NODE_PATH[$i]}"
    BACKUP_PG_SOCKET="${BACKUP_NODE_SOCKET[$i]}"
    BACKUP_PG_PORT="${BACKUP_NODE_PORT[$i]}"
}

# The data directory of the cluster: BACKUP_PG_PATH, else asked (with the pair: every node's, the
# primary's first). `optional` lets restore go on when the cluster is down (the disaster a restore
# is for).
backup_resolve_pg_path() {
    if [[ -n "${BACKUP_PG_PATH:-}" ]]; then
        return 0
    fi
    if ((BACKUP_PAIR)); then
        backup_discover_nodes "${1:-}"
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
