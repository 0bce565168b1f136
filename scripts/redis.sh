#!/usr/bin/env bash
# Make sure Redis at REDIS_URL answers PING. When it points at this machine and nothing listens
# there, start a project-local redis-server (no persistence) with its files under var/redis/.
# `make clean` stops that one.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_url "$REDIS_URL" REDIS
[[ -n "$REDIS_HOST" ]] || REDIS_HOST=127.0.0.1
REDIS_DIR="$VAR/redis"

# shellcheck disable=SC2153  # REDIS_* come from parse_url
redis_ping() {
    local -a auth=() user=()
    if [[ -n "$REDIS_PASSWORD" ]]; then
        auth=("REDISCLI_AUTH=$REDIS_PASSWORD")
    fi
    if [[ -n "$REDIS_USER" ]]; then
        user=(--user "$REDIS_USER")
    fi
    [[ "$(env "${auth[@]}" timeout 5 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" "${user[@]}" ping \
        2>/dev/null)" == "PONG" ]]
}

if ! command -v redis-cli >/dev/null 2>&1; then
    apt_install_missing redis-tools
fi

if redis_ping; then
    log "redis: $REDIS_HOST:$REDIS_PORT answers PING"
    exit 0
fi

is_local_host "$REDIS_HOST" ||
    die "Redis at $REDIS_HOST:$REDIS_PORT (REDIS_URL) does not answer and is not on this machine"
if port_open "$REDIS_HOST" "$REDIS_PORT"; then
    die "something listens on $REDIS_HOST:$REDIS_PORT but does not answer Redis PING (password?)"
fi

command -v redis-server >/dev/null 2>&1 || apt_install_missing redis-server
mkdir -p "$REDIS_DIR"
args=(
    --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT"
    --save "" --appendonly no
    --dir "$REDIS_DIR" --logfile "$REDIS_DIR/redis.log" --pidfile "$REDIS_DIR/redis.pid"
)
if [[ -n "$REDIS_PASSWORD" ]]; then
    args+=(--requirepass "$REDIS_PASSWORD")
fi
log "redis: starting project-local redis-server on 127.0.0.1:$REDIS_PORT (var/redis/)"
redis-server "${args[@]}"
for ((i = 0; i < 50; i++)); do
    if redis_ping; then
        log "redis: up"
        exit 0
    fi
    sleep 0.2
done
die "redis-server did not answer PING; see $REDIS_DIR/redis.log"
