#!/usr/bin/env bash
# Backups with pgBackRest: the database (full, differential or incremental, WAL archived
# continuously) and, beside each backup, the files and keys that live outside the database.
#
#   scripts/backup.sh            (make backup)   a backup; BACKUP_TYPE=full|diff|incr (default incr:
#                                pgBackRest takes a full one when the repository has none yet)
#   scripts/backup.sh configure  only the configuration, the stanza and the cluster's archiving
#   scripts/backup.sh verify     pgbackrest check + verify + info, and each backup's files archive
#   scripts/backup.sh info       pgbackrest info
#
# Nothing happens unless BACKUP_ENABLED=true: enabling sets archive_mode=on and archive_command
# (ALTER SYSTEM) on the cluster DATABASE_URL points at (the standby pair: on both nodes; the
# backup is taken from whichever is the primary, scripts/backup_lib.sh). archive_mode needs one restart of that
# cluster: the first run says so and stops (exit 3); run it again after the restart.
# Settings: scripts/backup_lib.sh (top), .env.example, README "Operations" > "Backups".
set -euo pipefail
LOG_PREFIX="[backup]"
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/backup_lib.sh
source "$ROOT/scripts/backup_lib.sh"

EXIT_RESTART_NEEDED=3

require_enabled() {
    backup_enabled && return 0
    die "backups are off (BACKUP_ENABLED=${BACKUP_ENABLED}). Setting BACKUP_ENABLED=true lets this script set
archive_mode and archive_command on the PostgreSQL cluster at port $BACKUP_PG_PORT (one restart needed) and write
the repository at $BACKUP_REPO_PATH. Do that on the production database host, not on a development machine."
}

sql_literal() {
    printf "'%s'" "${1//\'/\'\'}"
}

# archive_mode, archive_command and wal_level on the cluster (with the pair: on every node that
# answered, so a promoted standby archives too; a standby archives nothing before its promotion);
# exit 3 when a restart must apply them. archive-push is told the archiving node's own data
# directory ($PWD: PostgreSQL runs archive_command there): %p is relative to it, and the rendered
# pg1-path is the primary of the last run, not necessarily the node that archives now.
ensure_archiving() {
    local want i restart=()
    want="$PGBACKREST --config=$BACKUP_CONFIG --stanza=$BACKUP_STANZA --pg1-path=\"\$PWD\" archive-push %p"
    if ((BACKUP_PAIR)); then
        for i in "${!BACKUP_NODE_HOST[@]}"; do
            archiving_on "${BACKUP_NODE_SOCKET[$i]}" "${BACKUP_NODE_PORT[$i]}" \
                "${BACKUP_NODE_ROLE[$i]} ${BACKUP_NODE_HOST[$i]}:${BACKUP_NODE_PORT[$i]}" "$want"
            if ((RESTART_NEEDED)); then
                restart+=("${BACKUP_NODE_ROLE[$i]} ${BACKUP_NODE_HOST[$i]}:${BACKUP_NODE_PORT[$i]}")
            fi
        done
        if ((${#BACKUP_NODE_HOST[@]} < ${#BACKUP_URL_HOSTS[@]})); then
            warn "a node of DATABASE_URL did not answer: run make backup again once it is back, so that it archives after a promotion"
        fi
    else
        archiving_on "$BACKUP_PG_SOCKET" "$BACKUP_PG_PORT" "the cluster (port $BACKUP_PG_PORT)" "$want"
        if ((RESTART_NEEDED)); then
            restart+=("the cluster (port $BACKUP_PG_PORT)")
        fi
    fi
    if ((${#restart[@]})); then
        warn "archive_mode/wal_level set; they take effect after a restart of: ${restart[*]}"
        if ((BACKUP_PAIR)); then
            warn "e.g. 'scripts/standby.sh stop && scripts/standby.sh up'. Then run make backup again."
        else
            warn "e.g. 'systemctl restart postgresql@15-main'. Then run make backup again."
        fi
        exit "$EXIT_RESTART_NEEDED"
    fi
}

# archiving_on SOCKET PORT NAME COMMAND: sets what is missing on one cluster; RESTART_NEEDED=1 when
# archive_mode or wal_level wait for a restart.
archiving_on() {
    local socket="$1" port="$2" name="$3" want="$4" mode command level
    RESTART_NEEDED=0
    mode="$(pg_sql_at "$socket" "$port" 'SHOW archive_mode')"
    command="$(pg_sql_at "$socket" "$port" 'SHOW archive_command')"
    level="$(pg_sql_at "$socket" "$port" 'SHOW wal_level')"
    if [[ "$command" != "$want" ]]; then
        log "setting archive_command on $name: $want"
        pg_sql_at "$socket" "$port" "ALTER SYSTEM SET archive_command = $(sql_literal "$want")" >/dev/null
        pg_sql_at "$socket" "$port" 'SELECT pg_reload_conf()' >/dev/null
    fi
    if [[ "$mode" == off ]]; then
        pg_sql_at "$socket" "$port" "ALTER SYSTEM SET archive_mode = 'on'" >/dev/null
        RESTART_NEEDED=1
    fi
    if [[ "$level" == minimal ]]; then
        pg_sql_at "$socket" "$port" "ALTER SYSTEM SET wal_level = 'replica'" >/dev/null
        RESTART_NEEDED=1
    fi
    return 0
}

prepare() {
    backup_settings
    require_enabled
    backup_resolve_pg_path
    backup_render_config
    # Idempotent: creates the stanza once, afterwards checks it matches the cluster.
    pgbr --log-level-console=warn stanza-create
    ensure_archiving
}

latest_label() {
    pgbr --output=json info | "$SYSTEM_PYTHON" -c '
import json, sys
stanzas = json.load(sys.stdin)
backups = stanzas[0].get("backup", []) if stanzas else []
print(backups[-1]["label"] if backups else "")'
}

# The files outside the database, as one tar encrypted with the repository passphrase (openssl
# AES-256-CBC, PBKDF2), mode 0600, named after the database backup it belongs to.
backup_files() {
    local label="$1" archive paths=() path
    archive="$(backup_files_archive "$label")"
    mkdir -p "$(dirname "$archive")"
    chmod 700 "$(dirname "$archive")"
    while IFS= read -r path; do
        [[ -e "$path" ]] && paths+=("${path#/}")
    done < <(backup_file_paths)
    if ((${#paths[@]} == 0)); then
        warn "no files to back up beside $label"
        return 0
    fi
    (
        umask 077
        tar -C / --exclude="${BACKUP_PASSPHRASE_FILE#/}" -cf - "${paths[@]}" | files_cipher -e >"$archive.tmp"
    )
    mv "$archive.tmp" "$archive"
    log "files: ${paths[*]/#//} -> $archive ($(du -h "$archive" | cut -f1), encrypted)"
}

# Files archives whose database backup pgBackRest expired go too.
prune_files() {
    local labels archive label
    labels="$(pgbr --output=json info | "$SYSTEM_PYTHON" -c '
import json, sys
for stanza in json.load(sys.stdin):
    for backup in stanza.get("backup", []):
        print(backup["label"])')"
    shopt -s nullglob
    for archive in "$BACKUP_REPO_PATH"/files/*.tar.enc; do
        label="$(basename "$archive" .tar.enc)"
        if ! grep -qxF "$label" <<<"$labels"; then
            rm -f "$archive"
            log "files: removed $archive (its backup expired)"
        fi
    done
}

# `pgbackrest info` as JSON for /healthz (ebike_registry/backup_status.py); no secrets in it.
write_status() {
    local tmp="$BACKUP_STATUS_FILE.tmp"
    pgbr --output=json info | "$SYSTEM_PYTHON" -c '
import json, sys, time
info = json.load(sys.stdin)
files = sys.argv[1]
import os
for stanza in info:
    for backup in stanza.get("backup", []):
        backup["files_archive"] = os.path.exists(os.path.join(files, backup["label"] + ".tar.enc"))
json.dump({"written_at": int(time.time()), "stanzas": info}, sys.stdout, indent=1)' "$BACKUP_REPO_PATH/files" >"$tmp"
    chmod 644 "$tmp"
    mv "$tmp" "$BACKUP_STATUS_FILE"
}

cmd_backup() {
    local type="${BACKUP_TYPE:-incr}" repo label started
    case "$type" in
        full | diff | incr) ;;
        *) die "BACKUP_TYPE must be full, diff or incr (got '$type')" ;;
    esac
    prepare
    # Proves the archive_command works end to end (switches WAL, waits for it in the repository).
    pgbr check
    started=$SECONDS
    local -a repos=()
    read -r -a repos <<<"$BACKUP_REPOS"
    for repo in "${repos[@]}"; do
        log "database: $type backup to repo$repo"
        pgbr "--repo=$repo" "--type=$type" backup
    done
    label="$(latest_label)"
    [[ -n "$label" ]] || die "pgBackRest reports no backup after the run"
    backup_files "$label"
    prune_files
    write_status
    log "done: $label in $((SECONDS - started)) s (repository $BACKUP_REPO_PATH, status $BACKUP_STATUS_FILE)"
}

cmd_verify() {
    backup_settings
    backup_resolve_pg_path optional
    backup_render_config
    local rc=0 label archive
    log "pgbackrest check (archiving works now)"
    pgbr check || rc=1
    log "pgbackrest verify (every file in the repository against its checksum)"
    pgbr --log-level-console=info verify || rc=1
    for label in $(pgbr --output=json info | "$SYSTEM_PYTHON" -c '
import json, sys
for stanza in json.load(sys.stdin):
    for backup in stanza.get("backup", []):
        print(backup["label"])'); do
        archive="$(backup_files_archive "$label")"
        if [[ -f "$archive" ]] && files_cipher -d <"$archive" | tar -tf - >/dev/null; then
            log "files of $label: readable"
        else
            warn "files of $label: missing or unreadable ($archive)"
            rc=1
        fi
    done
    pgbr info
    [[ -f "$BACKUP_STATUS_FILE" ]] && write_status
    ((rc == 0)) || die "verification found problems (above)"
    log "verified. The full proof is a restore drill: make restore TARGET_TIME=... (README 'Operations')"
}

main() {
    case "${1:-backup}" in
        backup) cmd_backup ;;
        configure) prepare && log "configured: $BACKUP_CONFIG, stanza $BACKUP_STANZA, archiving on" ;;
        verify) cmd_verify ;;
        info)
            backup_settings
            backup_resolve_pg_path optional
            backup_render_config
            pgbr info
            ;;
        *) die "usage: scripts/backup.sh [backup|configure|verify|info]" ;;
    esac
}

main "$@"
