#!/usr/bin/env bash
# Run the whole system in the foreground: web (gunicorn on 0.0.0.0:8000), Celery worker, the Celery
# maintenance worker (the owner's jobs), Celery beat, and the terminal gateway (once
# tracking/management/commands/run_gateway.py exists). Expects `scripts/setup.sh` to have run
# (`make run` does both).
#
# Each child runs in its own process group; output lines are prefixed with its name. A child that
# exits on its own (a crash, a SIGKILL) is restarted with backoff and the others keep serving; one
# that keeps crashing (5 exits in a minute) stops everything, exit 1. Ctrl-C or SIGTERM stops all of
# them (SIGTERM to each, SIGKILL to whatever is left after RUN_STOP_TIMEOUT seconds). The supervision
# is scripts/supervise.sh.
#
# Environment: WEB_BIND (0.0.0.0:8000), WEB_CONCURRENCY (gunicorn workers, 2), CELERY_LOG_LEVEL
# (INFO), RUN_STOP_TIMEOUT (20), RUN_RESTART_DELAY (1 s, doubled per recent exit),
# RUN_RESTART_MAX_DELAY (30 s), RUN_CRASH_LIMIT (5) and RUN_CRASH_WINDOW (60 s), CELERY_BEAT_SCHEDULE
# (var/celery/celerybeat-schedule: beat's state file), plus everything in .env.example.
set -euo pipefail
LOG_PREFIX="[run]"
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_venv
mkdir -p "$VAR/celery"

# shellcheck source=scripts/supervise.sh
source "$ROOT/scripts/supervise.sh"

# --- the processes -------------------------------------------------------------------------------
# Each process connects as its own database role (README "Database roles"): web, worker and beat as
# the app role, the gateway as the gateway role, the maintenance worker (partitions, retention, audit
# seals: the "maintenance" queue) as the owner of DATABASE_URL. Unset, a runtime URL is DATABASE_URL's
# server and database as ebike_app / ebike_gateway, as scripts/db.sh created them. (Set as
# `DATABASE_URL=… start …`: the child's environment, not its logged command line, holds the password.)
parse_url "$DATABASE_URL" OWNER_DB
# (A multi-host DATABASE_URL keeps its host list and ?target_session_attrs=read-write: README "Operations".)
OWNER_DB_OPTIONS="${OWNER_DB_QUERY:+?$OWNER_DB_QUERY}"
APP_DATABASE_URL="${DATABASE_APP_URL:-postgis://ebike_app:ebike_app@$OWNER_DB_HOSTPORT/$OWNER_DB_DBNAME$OWNER_DB_OPTIONS}"
GATEWAY_DATABASE_URL="${DATABASE_GATEWAY_URL:-postgis://ebike_gateway:ebike_gateway@$OWNER_DB_HOSTPORT/$OWNER_DB_DBNAME$OWNER_DB_OPTIONS}"

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
# /metrics adds up every gunicorn worker's request counters from this directory (prometheus_client's
# multiprocess mode, ebike_registry/metrics.py); emptied when run.sh starts (a restarted web adds on).
WEB_METRICS_DIR="$VAR/prometheus-web"
rm -rf "$WEB_METRICS_DIR" && mkdir -p "$WEB_METRICS_DIR"
DATABASE_URL="$APP_DATABASE_URL" start web env PROMETHEUS_MULTIPROC_DIR="$WEB_METRICS_DIR" "$GUNICORN" "${gunicorn_args[@]}"

CELERY="$VENV/bin/celery"
DATABASE_URL="$APP_DATABASE_URL" start worker "$CELERY" -A ebike_registry worker --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
    --queues celery --hostname "worker@%h"
start maintenance "$CELERY" -A ebike_registry worker --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
    --queues maintenance --concurrency 1 --hostname "maintenance@%h"
# Beat may run on every host: only the one holding the beat lock (ebike_registry/beat.py) sends.
DATABASE_URL="$APP_DATABASE_URL" start beat "$CELERY" -A ebike_registry beat --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
    --schedule "${CELERY_BEAT_SCHEDULE:-$VAR/celery/celerybeat-schedule}"

if [[ -f tracking/management/commands/run_gateway.py ]]; then
    DATABASE_URL="$GATEWAY_DATABASE_URL" start gateway "$VENV/bin/python" manage.py run_gateway
else
    log "gateway: tracking/management/commands/run_gateway.py does not exist yet; not started"
fi

# The synchronous standby's watcher (ebike_registry/standby.py): alarm, and STANDBY_AWAY_POLICY.
if standby_enabled && [[ "${STANDBY_SYNC:-1}" != 0 ]]; then # STANDBY_SYNC=0: asynchronous, nothing to watch
    start standby-watch "$VENV/bin/python" -m ebike_registry.standby watch
fi

supervise
