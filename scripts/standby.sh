#!/usr/bin/env bash
# The project-managed database pair: a primary and its synchronous streaming standby on this machine
# (STANDBY_ENABLED=1; README "Operations"). Two PostgreSQL 15 clusters under $PG_PAIR_DIR (var/pg):
# node-a on $PG_NODE_A_HOST, node-b on $PG_NODE_B_HOST, both on port $PG_PAIR_PORT, each on its own
# loopback address so one libpq multi-host URL reaches both:
#   postgis://ebike:ebike@127.0.0.2,127.0.0.3:5432/ebike?target_session_attrs=read-write
# Either node may be the primary; the other streams from it through a replication slot and is named
# $STANDBY_NAME in the primary's synchronous_standby_names (synchronous_commit = on: a commit returns
# once the standby has flushed it to disk; remote_apply would also wait for it to be replayed, which
# only read queries on the standby would need, and we send none there).
#
#   scripts/standby.sh up        create what is missing (initdb -k; pg_basebackup -R -C), start both,
#                                make the standby synchronous once it streams (setup, run)
#   scripts/standby.sh status    which node is what, and pg_stat_replication
#   scripts/standby.sh promote   promote the standby (pg_promote), clear its synchronous_standby_names,
#                                fence the old primary (standby.signal; stopped if it still runs)
#   scripts/standby.sh rejoin    the fenced old primary: pg_rewind onto the new timeline, start as the
#                                standby, synchronous again
#   scripts/standby.sh stop      stop both (fast)
#
# Never touches the machine's own cluster (127.0.0.1:5432): only the two directories under
# $PG_PAIR_DIR, which it created. Environment: PG_PAIR_DIR, PG_PAIR_PORT (5432), PG_NODE_A_HOST
# (127.0.0.2), PG_NODE_B_HOST (127.0.0.3), STANDBY_NAME (ebike_standby), STANDBY_SYNC (1; 0 leaves
# the standby asynchronous), PG_BIN (/usr/lib/postgresql/15/bin).
set -euo pipefail
LOG_PREFIX="[standby]"
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
unset PGTARGETSESSIONATTRS # psql_on asks one node at a time, standby or not

PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PAIR_DIR="${PG_PAIR_DIR:-$VAR/pg}"
PORT="${PG_PAIR_PORT:-5432}"
NAME="${STANDBY_NAME:-ebike_standby}"
declare -A HOST=([node-a]="${PG_NODE_A_HOST:-127.0.0.2}" [node-b]="${PG_NODE_B_HOST:-127.0.0.3}")

as_postgres() {
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && sudo -n -u postgres -- "$@")
    fi
}
data_of() { printf '%s/%s/data' "$PAIR_DIR" "$1"; }
other() { [[ "$1" == node-a ]] && echo node-b || echo node-a; }
psql_on() { # psql_on NODE SQL...: as postgres over TCP, unaligned, stop at the first error
    local node="$1"
    shift
    "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "${HOST[$node]}" -p "$PORT" -U postgres -d postgres "$@"
}
running() { # the postmaster of postmaster.pid is alive (a killed, unreaped one is a zombie: not alive)
    local pid state
    pid="$(head -n 1 "$(data_of "$1")/postmaster.pid" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/stat" ]] || return 1
    state="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)"
    [[ -n "$state" && "$state" != Z ]]
}
exists() { [[ -f "$(data_of "$1")/PG_VERSION" ]]; }
in_recovery() { [[ "$(psql_on "$1" -c 'SELECT pg_is_in_recovery()')" == t ]]; }

# The node's own address, port and sockets, appended after any copy of the other node's files.
node_conf() {
    local node="$1" data
    data="$(data_of "$node")"
    as_postgres tee -a "$data/postgresql.conf" >/dev/null <<CONF

# scripts/standby.sh: $node
listen_addresses = '${HOST[$node]}'
port = $PORT
unix_socket_directories = '$PAIR_DIR/$node'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
max_slot_wal_keep_size = 4GB
# pg_rewind reads the old primary's own WAL back to the last checkpoint before the timelines
# diverged; without a WAL archive it must still be in pg_wal.
wal_keep_size = 1GB
hot_standby = on
synchronous_commit = on
CONF
    as_postgres tee "$data/pg_hba.conf" >/dev/null <<'HBA'
local all all trust
host all all 127.0.0.0/8 trust
host replication all 127.0.0.0/8 trust
HBA
}

start_node() {
    running "$1" && return 0
    if ! as_postgres "$PG_BIN/pg_ctl" -D "$(data_of "$1")" -l "$PAIR_DIR/$1/postgres.log" -w -t 120 start >/dev/null; then
        tail -n 25 "$PAIR_DIR/$1/postgres.log" >&2 || true
        die "$1 did not start (the end of $PAIR_DIR/$1/postgres.log above)"
    fi
    log "$1 up on ${HOST[$1]}:$PORT"
}

# follow NODE PRIMARY: NODE (stopped) becomes a standby of PRIMARY named $NAME, through slot $NAME.
follow() {
    local data
    data="$(data_of "$1")"
    as_postgres tee -a "$data/postgresql.auto.conf" >/dev/null <<CONF
primary_conninfo = 'host=${HOST[$2]} port=$PORT user=postgres application_name=$NAME'
primary_slot_name = '$NAME'
CONF
    as_postgres touch "$data/standby.signal"
}

make_synchronous() { # make_synchronous PRIMARY: once $NAME streams, commits wait for it
    local i
    for ((i = 0; i < 300; i++)); do
        [[ "$(psql_on "$1" -v n="$NAME" <<<"SELECT count(*) FROM pg_stat_replication WHERE application_name = :'n' AND state = 'streaming'")" == 1 ]] && break
        sleep 0.2
    done
    ((i < 300)) || die "standby $NAME does not stream from $1"
    if ((${STANDBY_SYNC:-1})); then
        psql_on "$1" -c "ALTER SYSTEM SET synchronous_standby_names = '\"$NAME\"'" -c 'SELECT pg_reload_conf()' >/dev/null
        # The walsender takes the new setting at its next round: done once it reports itself sync.
        for ((i = 0; i < 150; i++)); do
            [[ "$(psql_on "$1" -v n="$NAME" <<<"SELECT sync_state FROM pg_stat_replication WHERE application_name = :'n'")" == sync ]] && break
            sleep 0.2
        done
        ((i < 150)) || die "standby $NAME streams from $1 but is not synchronous after 30 s"
        log "$1: commits wait for standby $NAME (synchronous_commit = on)"
    else
        log "$1: standby $NAME streams asynchronously (STANDBY_SYNC=0)"
    fi
}

primary_node() { # the running node that takes writes
    local node
    for node in node-a node-b; do
        if running "$node" && ! in_recovery "$node"; then
            echo "$node"
            return 0
        fi
    done
    return 1
}

cmd_up() {
    mkdir -p "$PAIR_DIR"
    chown postgres:postgres "$PAIR_DIR" 2>/dev/null || true
    local node
    for node in node-a node-b; do
        exists "$node" && start_node "$node"
    done
    local primary
    if ! primary="$(primary_node)"; then
        exists node-a && die "no node takes writes: promote one (scripts/standby.sh promote) or see status"
        log "node-a: initdb -k (data checksums, for pg_rewind)"
        as_postgres mkdir -p "$PAIR_DIR/node-a"
        as_postgres "$PG_BIN/initdb" -k -D "$(data_of node-a)" -U postgres --auth=trust -E UTF8 \
            --locale=C.UTF-8 --no-instructions >/dev/null
        node_conf node-a
        start_node node-a
        primary=node-a
    fi
    local standby
    standby="$(other "$primary")"
    if ! exists "$standby"; then
        log "$standby: pg_basebackup from $primary (slot $NAME)"
        as_postgres mkdir -p "$PAIR_DIR/$standby"
        psql_on "$primary" -v n="$NAME" <<<"SELECT pg_create_physical_replication_slot(:'n') WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = :'n')" >/dev/null
        as_postgres "$PG_BIN/pg_basebackup" -h "${HOST[$primary]}" -p "$PORT" -U postgres \
            -D "$(data_of "$standby")" -X stream --checkpoint=fast
        node_conf "$standby"
        follow "$standby" "$primary"
        start_node "$standby"
    fi
    make_synchronous "$primary"
}

cmd_status() {
    local node
    for node in node-a node-b; do
        if ! exists "$node"; then
            echo "$node ${HOST[$node]}:$PORT: absent"
        elif ! running "$node"; then
            echo "$node ${HOST[$node]}:$PORT: stopped$([[ -f "$(data_of "$node")/standby.signal" ]] && echo ', fenced (standby.signal)')"
        elif in_recovery "$node"; then
            echo "$node ${HOST[$node]}:$PORT: standby"
        else
            echo "$node ${HOST[$node]}:$PORT: PRIMARY, synchronous_standby_names=$(psql_on "$node" -c 'SHOW synchronous_standby_names')"
            psql_on "$node" -c "SELECT application_name, state, sync_state, pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn) AS lag_bytes FROM pg_stat_replication"
        fi
    done
}

cmd_promote() {
    local standby="" node
    for node in node-a node-b; do
        running "$node" && in_recovery "$node" && standby="$node"
    done
    [[ -n "$standby" ]] || die "no running standby to promote"
    local old
    old="$(other "$standby")"
    # Fence first: from now on the old primary's data directory starts only as a standby.
    as_postgres touch "$(data_of "$old")/standby.signal"
    if running "$old"; then # a switchover, or the old primary is back: it must not take writes
        as_postgres "$PG_BIN/pg_ctl" -D "$(data_of "$old")" -m fast -w stop >/dev/null || true
    fi
    [[ "$(psql_on "$standby" -c 'SELECT pg_promote(true, 60)')" == t ]] || die "pg_promote() failed on $standby"
    # Nobody to wait for until the old primary has rejoined (then `rejoin` sets it again).
    psql_on "$standby" -c 'ALTER SYSTEM RESET synchronous_standby_names' -c 'SELECT pg_reload_conf()' >/dev/null
    log "$standby is the primary (${HOST[$standby]}:$PORT); $old fenced: run 'scripts/standby.sh rejoin'"
}

cmd_rejoin() {
    local primary old
    primary="$(primary_node)" || die "no primary running"
    old="$(other "$primary")"
    running "$old" && die "$old is running: stop it first (it must not be a second writer)"
    local data
    data="$(data_of "$old")"
    # A killed postmaster's pid file stays behind, and its pid may linger as an unreaped zombie,
    # which PostgreSQL's lock check takes for a live server: it is dead (running said so).
    # Its socket's lock file names the same pid, and the same check refuses it.
    as_postgres rm -f "$data/postmaster.pid" "$PAIR_DIR/$old/.s.PGSQL.$PORT.lock" "$PAIR_DIR/$old/.s.PGSQL.$PORT"
    # The promoted node records its new timeline in its control file at its first checkpoint.
    psql_on "$primary" -c CHECKPOINT
    psql_on "$primary" -v n="$NAME" <<<"SELECT pg_create_physical_replication_slot(:'n') WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = :'n')" >/dev/null
    # pg_rewind's own crash recovery runs in single-user mode, which refuses standby.signal: the
    # fence is lifted for it alone (nothing else starts this node meanwhile) and written again.
    as_postgres rm -f "$data/standby.signal"
    as_postgres "$PG_BIN/pg_rewind" -D "$data" --source-server="host=${HOST[$primary]} port=$PORT user=postgres" --progress ||
        { as_postgres touch "$data/standby.signal"; die "pg_rewind failed"; }
    node_conf "$old"
    follow "$old" "$primary"
    start_node "$old"
    # Its slot from its days as primary would hold WAL back on it (now a standby): dropped.
    psql_on "$old" -v n="$NAME" <<<"SELECT pg_drop_replication_slot(:'n') FROM pg_replication_slots WHERE slot_name = :'n'" >/dev/null
    make_synchronous "$primary"
}

cmd_stop() {
    local node
    for node in node-a node-b; do
        if running "$node"; then
            as_postgres "$PG_BIN/pg_ctl" -D "$(data_of "$node")" -m fast -w stop >/dev/null
            log "$node stopped"
        fi
    done
}

case "${1:-}" in
    up | status | promote | rejoin | stop) "cmd_$1" ;;
    *) die "usage: scripts/standby.sh up|status|promote|rejoin|stop" ;;
esac
