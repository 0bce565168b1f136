#!/usr/bin/env bash
# Run the whole system in the foreground: web (gunicorn on 0.0.0.0:8000), Celery worker, the Celery
# maintenance worker (the owner's jobs), Celery beat, and the terminal gateway (once
# tracking/management/commands/run_gateway.py exists). Expects `scripts/setup.sh` to have run
# (`make run` does both).
#
# Each child runs in its own process group; output lines are prefixed with its name. Ctrl-C or
# SIGTERM stops all of them (SIGTERM to each, SIGKILL to whatever is left after RUN_STOP_TIMEOUT
# seconds). When any child exits on its own, the others are stopped and this script exits non-zero.
#
# Environment: WEB_BIND (0.0.0.0:8000), WEB_CONCURRENCY (gunicorn workers, 2), CELERY_LOG_LEVEL
# (INFO), RUN_STOP_TIMEOUT (20), plus everything in .env.example.
set -euo pipefail
LOG_PREFIX="[run]"
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_venv
mkdir -p "$VAR/celery"

PIDS=()
NAMES=()

# start NAME CMD...: runs CMD in a new session (so its process group is its pid), prefixing output.
# The prefixing sed ignores INT/TERM so that shutdown messages still get through.
start() {
    local name="$1"
    shift
    setsid "$@" > >(trap '' INT TERM && exec sed -u "s/^/[$name] /") 2>&1 &
    PIDS+=("$!")
    NAMES+=("$name")
    log "started $name (pid $!): $*"
}

name_of() {
    local i
    for i in "${!PIDS[@]}"; do
        if [[ "${PIDS[$i]}" == "$1" ]]; then
            printf '%s' "${NAMES[$i]}"
            return
        fi
    done
    printf 'pid %s' "$1"
}

group_alive() {
    kill -0 -- "-$1" 2>/dev/null
}

stop_all() {
    local rc="$1" pid
    trap '' INT TERM
    log "stopping ${NAMES[*]}"
    # The leaders first (gunicorn master, celery main process, gateway): they stop their own children.
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    local deadline=$((SECONDS + ${RUN_STOP_TIMEOUT:-20})) alive
    while :; do
        alive=()
        for pid in "${PIDS[@]}"; do
            if group_alive "$pid"; then
                alive+=("$pid")
                # Leader gone but members left over: ask them too.
                kill -0 "$pid" 2>/dev/null || kill -TERM -- "-$pid" 2>/dev/null || true
            fi
        done
        ((${#alive[@]})) || break
        if ((SECONDS >= deadline)); then
            for pid in "${alive[@]}"; do
                log "killing $(name_of "$pid") (still running after ${RUN_STOP_TIMEOUT:-20}s)"
                kill -KILL -- "-$pid" 2>/dev/null || true
            done
            break
        fi
        sleep 0.2
    done
    wait "${PIDS[@]}" 2>/dev/null || true
    log "stopped (exit $rc)"
    exit "$rc"
}

trap 'log "interrupted"; stop_all 130' INT
trap 'log "terminated"; stop_all 143' TERM

# --- the processes -------------------------------------------------------------------------------
# Each process connects as its own database role (README "Database roles"): web, worker and beat as
# the app role, the gateway as the gateway role, the maintenance worker (partitions, retention, audit
# seals: the "maintenance" queue) as the owner of DATABASE_URL. Unset, a runtime URL is DATABASE_URL's
# server and database as ebike_app / ebike_gateway, as scripts/db.sh created them. (Set as
# `DATABASE_URL=… start …`: the child's environment, not its logged command line, holds the password.)
parse_url "$DATABASE_URL" OWNER_DB
APP_DATABASE_URL="${DATABASE_APP_URL:-postgis://ebike_app:ebike_app@$OWNER_DB_HOST:$OWNER_DB_PORT/$OWNER_DB_DBNAME}"
GATEWAY_DATABASE_URL="${DATABASE_GATEWAY_URL:-postgis://ebike_gateway:ebike_gateway@$OWNER_DB_HOST:$OWNER_DB_PORT/$OWNER_DB_DBNAME}"

GUNICORN="$VENV/bin/gunicorn"
gunicorn_args=(
    ebike_registry.wsgi:application
    --bind "${WEB_BIND:-0.0.0.0:8000}"
    --workers "${WEB_CONCURRENCY:-2}"
    --access-logfile -
    # ID numbers and phones in search URLs are masked in the access log (ebike_registry/log_masking.py).
    --logger-class ebike_registry.log_masking.AccessLogMasker
)
# gunicorn 27 opens a control socket under $HOME unless told not to; older versions lack the flag.
if "$GUNICORN" --help 2>/dev/null | grep -q -- '--no-control-socket'; then
    gunicorn_args+=(--no-control-socket)
fi
DATABASE_URL="$APP_DATABASE_URL" start web "$GUNICORN" "${gunicorn_args[@]}"

CELERY="$VENV/bin/celery"
DATABASE_URL="$APP_DATABASE_URL" start worker "$CELERY" -A ebike_registry worker --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
    --queues celery --hostname "worker@%h"
start maintenance "$CELERY" -A ebike_registry worker --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
    --queues maintenance --concurrency 1 --hostname "maintenance@%h"
DATABASE_URL="$APP_DATABASE_URL" start beat "$CELERY" -A ebike_registry beat --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
    --schedule "$VAR/celery/celerybeat-schedule"

if [[ -f tracking/management/commands/run_gateway.py ]]; then
    DATABASE_URL="$GATEWAY_DATABASE_URL" start gateway "$VENV/bin/python" manage.py run_gateway
else
    log "gateway: tracking/management/commands/run_gateway.py does not exist yet; not started"
fi

log "running; Ctrl-C stops everything"

# --- wait for the first child to exit --------------------------------------------------------------
rc=0
died=""
wait -n -p died "${PIDS[@]}" || rc=$?
log "$(name_of "$died") exited with status $rc; stopping the others"
if ((rc == 0)); then
    rc=1
fi
stop_all "$rc"
