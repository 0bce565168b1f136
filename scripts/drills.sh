#!/usr/bin/env bash
# Operations drills on throwaway clusters and processes (never the machine's own PostgreSQL on 5432):
# each runs DRILL_RUNS times (default 5) and prints one JSON line of figures; all lines also go to
# var/drills/results.jsonl. (`make drills`; see README "Operations".)
#
#   scripts/drills.sh              every drill
#   scripts/drills.sh restore      only the named drills
#
# Drills (one function each, drill_<name>; add yours to DRILLS):
#   restore        point-in-time restore with pgBackRest into a new cluster, table by table
#                  (tests/ops/backup_sandbox.py); plus the restore time of the bench's database
#                  (DATABASE_URL's, read with pg_dump) unless DRILL_BENCH_DATABASE=0; with
#                  DRILL_BENCH_SEED_ROWS=20000000 topped up in the copy as bench/ingest.py's full scale
#   gateway_nodes  two gateway nodes behind HAProxy, terminals streaming; SIGKILL the busier node,
#                  measure until its terminals are acknowledged through the other, restart it; per
#                  run: reconnection time, acked-and-lost (tests/ops/test_gateway_nodes.py, on the
#                  pytest test database)
#   failover       primary + synchronous standby (127.0.0.2/.3), gateway and a registering counter
#                  on the multi-host URL; SIGKILL the primary, pg_promote() the standby, rejoin the
#                  old primary with pg_rewind; per run: RTO (kill -> first ack), acked-and-lost,
#                  acked without a primary, rejoin time (tests/ops/failover_drill.py)
#   celery_failover  the same pair with a Celery worker and beat (under scripts/supervise.sh, Redis db
#                  13) raising rescue calls from the outbox and POSTing them to a station webhook while
#                  SOS arrive; SIGKILL the primary mid-POST, promote; per run: calls committed before
#                  the kill, outbox rows and messages in flight, tasks retried on the database error,
#                  lost, written twice, kill -> first call on the new primary
#                  (tests/ops/celery_failover_drill.py)
#   standby_cost   the gateway on the same pair at STANDBY_COST_RATE (4,000) offered pings/s, stages
#                  alternating synchronous / asynchronous standby: acked pings/s, p50, p99 of each
#   poisoned_fix   one terminal's fix poisoning a handler among 1,000 (DRILL_OUTBOX_SCALE=full: 50,000):
#                  five rounds, each the time until every other fix is handled, against a clean
#                  round (bench/outbox.py, on the bench's database; its rows are its own)
#
# A run of every drill starts results.jsonl afresh; a run of named drills appends to it.
set -euo pipefail
LOG_PREFIX="[drills]"
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_venv
PY="$VENV/bin/python"
DRILL_RUNS="${DRILL_RUNS:-5}"
OUT="$VAR/drills"
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

DRILLS=(restore gateway_nodes failover celery_failover standby_cost poisoned_fix)

# record NAME CMD...: runs a drill whose last stdout line is its JSON figures; keeps its log.
record() {
    local name="$1" rc=0
    shift
    log "$name (${DRILL_RUNS} runs)"
    "$@" >"$OUT/$name.log" 2>&1 || rc=$?
    local last
    last="$(tail -n 1 "$OUT/$name.log")"
    if [[ "$last" == \{* ]]; then
        printf '%s\n' "$last" | tee -a "$RESULTS"
    else
        warn "$name printed no figures; see $OUT/$name.log"
        rc=1
    fi
    return "$rc"
}

drill_restore() {
    local rc=0
    record restore "$PY" -m tests.ops.backup_sandbox --runs "$DRILL_RUNS" || rc=1
    if [[ "${DRILL_BENCH_DATABASE:-1}" != 0 ]]; then
        record restore_bench_database "$PY" -m tests.ops.backup_sandbox --bench-database --runs "$DRILL_RUNS" \
            --seed-rows "${DRILL_BENCH_SEED_ROWS:-0}" || rc=1
    fi
    return "$rc"
}

drill_gateway_nodes() {
    local figures="$OUT/gateway-node-kill.json"
    rm -f "$figures"
    # The test writes its figures (one JSON line) to $figures after its assertions passed.
    GATEWAY_NODE_DRILLS="$DRILL_RUNS" record gateway_nodes bash -c \
        '"$1" -m pytest -q -p no:cacheprovider "$2" -k killed && cat "$3"' _ \
        "$PY" tests/ops/test_gateway_nodes.py "$figures"
}

drill_failover() {
    record failover "$PY" tests/ops/failover_drill.py --runs "$DRILL_RUNS"
}

drill_celery_failover() {
    record celery_failover "$PY" tests/ops/celery_failover_drill.py --runs "$DRILL_RUNS"
}

drill_standby_cost() {
    record standby_cost "$PY" tests/ops/failover_drill.py --standby-cost --rate "${STANDBY_COST_RATE:-4000}"
}

drill_poisoned_fix() {
    record poisoned_fix "$PY" bench/outbox.py --scale "${DRILL_OUTBOX_SCALE:-small}"
}

main() {
    local -a names=("$@")
    if ((${#names[@]} == 0)); then
        names=("${DRILLS[@]}")
        : >"$RESULTS"
    fi
    local name failed=()
    for name in "${names[@]}"; do
        declare -F "drill_$name" >/dev/null || die "unknown drill '$name' (${DRILLS[*]})"
        "drill_$name" || failed+=("$name")
    done
    if ((${#failed[@]})); then
        die "drills failed: ${failed[*]} (logs in $OUT)"
    fi
    log "figures in $RESULTS"
}

main "$@"
