#!/usr/bin/env bash
# Remove generated state: var/ (after stopping the project-local redis-server that scripts/redis.sh
# may have started there), staticfiles/, and the .venv requirements stamp (the next setup re-runs pip).
# The venv itself, PostgreSQL and its data stay.
set -euo pipefail
LOG_PREFIX="[clean]"
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pidfile="$VAR/redis/redis.pid"
if [[ -f "$pidfile" ]]; then
    pid="$(<"$pidfile")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && [[ "$(ps -o comm= -p "$pid" 2>/dev/null)" == redis-server* ]]; then
        log "stopping project-local redis-server (pid $pid)"
        kill -TERM "$pid"
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
fi

log "removing var/ staticfiles/ .venv/.requirements-stamp"
rm -rf "$VAR" "$ROOT/staticfiles"
rm -f "$VENV/.requirements-stamp"
