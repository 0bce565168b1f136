# shellcheck shell=bash
# Process supervision for scripts/run.sh. Source it after scripts/lib.sh (it uses `log`); do not run it.
# Sourcing it makes SIGINT (Ctrl-C) and SIGTERM stop every child started so far.
#
#   start NAME CMD...  runs CMD in a new session (its process group is its pid), its output lines
#                      prefixed with "[NAME] ". The DATABASE_URL in effect is kept for its restarts, so
#                      `DATABASE_URL=… start …` restarts it as the same database role (the child's
#                      environment, not its logged command line, holds the password).
#   supervise          waits for the children. One that exits (crash, SIGKILL, OOM) is restarted after
#                      a backoff while the others keep running: RUN_RESTART_DELAY seconds (1), doubled
#                      for each earlier exit of the same child in the last RUN_CRASH_WINDOW seconds
#                      (60), at most RUN_RESTART_MAX_DELAY (30). A child that exits RUN_CRASH_LIMIT
#                      times (5) within the window keeps crashing: everything is stopped, exit 1.
#   stop_all RC        SIGTERM to each child, SIGKILL to whatever is left after RUN_STOP_TIMEOUT
#                      seconds (20), then exit RC. Ctrl-C exits 130, SIGTERM 143.

declare -A SUPERVISED_CMD=()   # name -> the command, shell-quoted
declare -A SUPERVISED_DB=()    # name -> its DATABASE_URL
declare -A SUPERVISED_EXITS=() # name -> the epoch seconds of its exits in the crash window
declare -A CHILD_NAME=()       # pid of a running child -> its name
declare -A BACKOFF_NAME=()     # pid of a backoff timer -> the name it restarts
SUPERVISED=()                  # names, in start order

start() {
    local name="$1"
    shift
    SUPERVISED+=("$name")
    SUPERVISED_CMD[$name]="$(printf '%q ' "$@")"
    SUPERVISED_DB[$name]="${DATABASE_URL-}"
    spawn "$name"
}

spawn() {
    local name="$1" cmd
    eval "cmd=(${SUPERVISED_CMD[$name]})"
    # The prefixing sed ignores INT/TERM so that shutdown messages still get through.
    DATABASE_URL="${SUPERVISED_DB[$name]}" setsid "${cmd[@]}" \
        > >(trap '' INT TERM && exec sed -u "s/^/[$name] /") 2>&1 &
    CHILD_NAME[$!]="$name"
    log "started $name (pid $!): ${cmd[*]}"
}

group_alive() {
    kill -0 -- "-$1" 2>/dev/null
}

# A leader that died may leave members behind (gunicorn workers, a Celery pool, holding the port or
# the queue): SIGTERM them, SIGKILL after 5 s, so that the restarted child starts clean.
clear_group() {
    local pid="$1" name="$2" deadline=$((SECONDS + 5))
    group_alive "$pid" || return 0
    log "stopping what $name left running (process group $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || true
    while group_alive "$pid"; do
        if ((SECONDS >= deadline)); then
            kill -KILL -- "-$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
}

restart_later() {
    local name="$1" rc="$2" now="$EPOCHSECONDS" window="${RUN_CRASH_WINDOW:-60}" limit="${RUN_CRASH_LIMIT:-5}"
    local t recent=() delay
    for t in ${SUPERVISED_EXITS[$name]-}; do
        if ((now - t < window)); then
            recent+=("$t")
        fi
    done
    recent+=("$now")
    SUPERVISED_EXITS[$name]="${recent[*]}"
    if ((${#recent[@]} >= limit)); then
        log "$name exited with status $rc, ${#recent[@]} times in ${window} s: it keeps crashing; stopping everything"
        stop_all 1
    fi
    delay="$(awk -v base="${RUN_RESTART_DELAY:-1}" -v n="${#recent[@]}" -v most="${RUN_RESTART_MAX_DELAY:-30}" \
        'BEGIN { d = base * 2 ^ (n - 1); if (d > most) d = most; print d }')"
    log "$name exited with status $rc; restarting it in $delay s (exit ${#recent[@]} of $limit allowed in ${window} s); the others keep running"
    sleep "$delay" &
    BACKOFF_NAME[$!]="$name"
}

supervise() {
    log "running; Ctrl-C stops everything"
    local pid rc name
    while :; do
        pid=""
        rc=0
        wait -n -p pid "${!CHILD_NAME[@]}" "${!BACKOFF_NAME[@]}" || rc=$?
        if [[ -z "$pid" ]]; then
            continue
        elif [[ -n "${BACKOFF_NAME[$pid]-}" ]]; then
            name="${BACKOFF_NAME[$pid]}"
            unset "BACKOFF_NAME[$pid]"
            spawn "$name"
        elif [[ -n "${CHILD_NAME[$pid]-}" ]]; then
            name="${CHILD_NAME[$pid]}"
            unset "CHILD_NAME[$pid]"
            clear_group "$pid" "$name"
            restart_later "$name" "$rc"
        fi
    done
}

stop_all() {
    local rc="$1" pid
    trap '' INT TERM
    for pid in "${!BACKOFF_NAME[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    log "stopping ${CHILD_NAME[*]}"
    # The leaders first (gunicorn master, celery main process, gateway): they stop their own children.
    for pid in "${!CHILD_NAME[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    local deadline=$((SECONDS + ${RUN_STOP_TIMEOUT:-20})) alive
    while :; do
        alive=()
        for pid in "${!CHILD_NAME[@]}"; do
            if group_alive "$pid"; then
                alive+=("$pid")
                # Leader gone but members left over: ask them too.
                kill -0 "$pid" 2>/dev/null || kill -TERM -- "-$pid" 2>/dev/null || true
            fi
        done
        ((${#alive[@]})) || break
        if ((SECONDS >= deadline)); then
            for pid in "${alive[@]}"; do
                log "killing ${CHILD_NAME[$pid]} (still running after ${RUN_STOP_TIMEOUT:-20}s)"
                kill -KILL -- "-$pid" 2>/dev/null || true
            done
            break
        fi
        sleep 0.2
    done
    wait "${!CHILD_NAME[@]}" "${!BACKOFF_NAME[@]}" 2>/dev/null || true
    log "stopped (exit $rc)"
    exit "$rc"
}

trap 'log "interrupted"; stop_all 130' INT
trap 'log "terminated"; stop_all 143' TERM
