#!/usr/bin/env bash
# Point-in-time restore from the pgBackRest repository into a NEW cluster (new data directory, new
# port), never over the running one; then the files and keys of the backup used, beside it.
#
#   TARGET_TIME='2026-12-06 09:30:00+08' scripts/restore.sh      (make restore TARGET_TIME=...)
#
# TARGET_TIME: a PostgreSQL timestamp, with its zone (without one, the cluster's TimeZone applies).
# Recovery replays WAL up to the last commit at or before it, then promotes (a new timeline) with
# archiving off, so the restored cluster never writes into the repository.
# Optional: RESTORE_DIR (default var/restore/<UTC time>; data in RESTORE_DIR/data unless RESTORE_PATH),
# RESTORE_HOST (127.0.0.1), RESTORE_PORT (a free port), RESTORE_SET (a backup label; default: the
# newest backup before TARGET_TIME), RESTORE_FILES=0 (skip the files archive), RESTORE_TIMEOUT (600 s).
# The last line printed is JSON: restore_seconds, host, port, data, backup_set, files.
set -euo pipefail
LOG_PREFIX="[restore]"
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/backup_lib.sh
source "$ROOT/scripts/backup_lib.sh"

[[ -n "${TARGET_TIME:-}" ]] || die "TARGET_TIME is required, e.g. make restore TARGET_TIME='2026-12-06 09:30:00+08'"
backup_settings
backup_resolve_pg_path optional

RESTORE_DIR="$(abs_path "${RESTORE_DIR:-var/restore/$(date -u +%Y%m%dT%H%M%SZ)}")"
RESTORE_PATH="$(abs_path "${RESTORE_PATH:-$RESTORE_DIR/data}")"
RESTORE_HOST="${RESTORE_HOST:-127.0.0.1}"
RESTORE_TIMEOUT="${RESTORE_TIMEOUT:-600}"
if [[ -z "${RESTORE_PORT:-}" ]]; then
    RESTORE_PORT="$("$SYSTEM_PYTHON" -c '
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$RESTORE_HOST")"
fi

# --- never over the running cluster ----------------------------------------------------------------
for live in "$BACKUP_PG_PATH" "${BACKUP_NODE_PATH[@]}"; do # with the pair: either node's
    live="$(realpath -m "$live")"
    if [[ "$(realpath -m "$RESTORE_PATH")" == "$live" ]]; then
        die "RESTORE_PATH is the live cluster's data directory ($live): restore into a new directory"
    fi
done
if [[ -e "$RESTORE_PATH" && -n "$(ls -A "$RESTORE_PATH" 2>/dev/null)" ]]; then
    die "RESTORE_PATH $RESTORE_PATH is not empty: give a new directory"
fi
if port_open "$RESTORE_HOST" "$RESTORE_PORT"; then
    die "something already listens on $RESTORE_HOST:$RESTORE_PORT: choose another RESTORE_PORT"
fi

backup_render_config
mkdir -p "$RESTORE_DIR" "$RESTORE_PATH"
chown postgres:postgres "$RESTORE_DIR" "$RESTORE_PATH"
chmod 755 "$RESTORE_DIR"
chmod 700 "$RESTORE_PATH"

started="$("$SYSTEM_PYTHON" -c 'import time; print(time.monotonic())')"
restore_args=(--pg1-path="$RESTORE_PATH" --type=time "--target=$TARGET_TIME" --target-action=promote
    --archive-mode=off --log-level-console=info)
[[ -n "${RESTORE_SET:-}" ]] && restore_args+=("--set=$RESTORE_SET")
log "restoring to $TARGET_TIME into $RESTORE_PATH"
output="$(pgbr "${restore_args[@]}" restore 2>&1)" || die "pgbackrest restore failed: $output"
backup_set="$(grep -oE 'repo[0-9]+: restore backup set [^ ,]+' <<<"$output" | awk '{print $NF}' | tail -1)"
log "database files of backup set ${backup_set:-?} in place; replaying WAL"

# The restored cluster's own settings: its address and port, its socket in RESTORE_DIR, and no
# archiving (postgresql.auto.conf is read last, so these win over anything restored).
if [[ ! -f "$RESTORE_PATH/postgresql.conf" ]]; then
    # A Debian cluster keeps its configuration in /etc/postgresql; it is NOT copied (its
    # data_directory would point at the live cluster). A minimal one instead.
    as_postgres sh -c "printf '%s\n' '# written by scripts/restore.sh' > '$RESTORE_PATH/postgresql.conf'"
fi
if [[ ! -f "$RESTORE_PATH/pg_hba.conf" ]]; then
    hba="$(pg_sql 'SHOW hba_file' 2>/dev/null || true)"
    if [[ -n "$hba" && -r "$hba" ]]; then
        install -o postgres -g postgres -m 600 "$hba" "$RESTORE_PATH/pg_hba.conf"
    else
        as_postgres sh -c "printf '%s\n' 'local all postgres peer' 'host all all 127.0.0.1/32 scram-sha-256' \
            > '$RESTORE_PATH/pg_hba.conf'"
    fi
fi
[[ -f "$RESTORE_PATH/pg_ident.conf" ]] || as_postgres touch "$RESTORE_PATH/pg_ident.conf"
as_postgres sh -c "cat >> '$RESTORE_PATH/postgresql.auto.conf'" <<EOF
# scripts/restore.sh: a new cluster beside the live one
listen_addresses = '$RESTORE_HOST'
port = $RESTORE_PORT
unix_socket_directories = '$RESTORE_DIR'
archive_mode = 'off'
EOF

as_postgres "$PG_BIN/pg_ctl" -D "$RESTORE_PATH" -l "$RESTORE_DIR/postgres.log" -w -t "$RESTORE_TIMEOUT" start >/dev/null ||
    die "the restored cluster did not start; see $RESTORE_DIR/postgres.log"
deadline=$((SECONDS + RESTORE_TIMEOUT))
until [[ "$(as_postgres "$PG_BIN/psql" -X -At -h "$RESTORE_DIR" -p "$RESTORE_PORT" -d postgres \
    -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" == f ]]; do
    ((SECONDS < deadline)) || die "still recovering after ${RESTORE_TIMEOUT}s; see $RESTORE_DIR/postgres.log"
    sleep 0.1
done
seconds="$("$SYSTEM_PYTHON" -c 'import sys, time; print(round(time.monotonic() - float(sys.argv[1]), 2))' "$started")"
log "recovered to $TARGET_TIME and promoted in ${seconds}s: postgres on $RESTORE_HOST:$RESTORE_PORT, data $RESTORE_PATH"

files=""
archive="$(backup_files_archive "${backup_set:-none}")"
if [[ "${RESTORE_FILES:-1}" != 0 && -n "$backup_set" ]]; then
    if [[ -f "$archive" ]]; then
        files="$RESTORE_DIR/files"
        mkdir -p "$files"
        chmod 700 "$files"
        files_cipher -d <"$archive" | tar -C "$files" -xf -
        log "files of $backup_set in $files (paths as on the server; copy back what you need)"
    else
        warn "no files archive for $backup_set ($archive)"
    fi
fi
log "stop it with: runuser -u postgres -- $PG_BIN/pg_ctl -D '$RESTORE_PATH' stop"
"$SYSTEM_PYTHON" -c 'import json, sys; k = ["restore_seconds", "host", "port", "data", "backup_set", "files"]
print(json.dumps(dict(zip(k, [float(sys.argv[1]), sys.argv[2], int(sys.argv[3]), *sys.argv[4:]]))))' \
    "$seconds" "$RESTORE_HOST" "$RESTORE_PORT" "$RESTORE_PATH" "$backup_set" "$files"
