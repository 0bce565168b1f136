# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables set here are used by the scripts that source this file
# Shared helpers for the scripts in this folder. Source it; do not run it.
#
# After sourcing: the working directory is the repository root ($ROOT), `.env` (if present) has
# filled in variables the environment does not already set, and DATABASE_URL / REDIS_URL are set.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

VENV="$ROOT/.venv"
VAR="$ROOT/var"
SYSTEM_PYTHON="${SYSTEM_PYTHON:-/usr/bin/python3}"
DEFAULT_DATABASE_URL="postgis://ebike:ebike@127.0.0.1:5432/ebike"
DEFAULT_REDIS_URL="redis://127.0.0.1:6379/0"

LOG_PREFIX="${LOG_PREFIX:-[setup]}"
log() { printf '%s %s\n' "$LOG_PREFIX" "$*"; }
warn() { printf '%s WARNING: %s\n' "$LOG_PREFIX" "$*" >&2; }
die() { printf '%s ERROR: %s\n' "$LOG_PREFIX" "$*" >&2; exit 1; }

# Read KEY=VALUE lines from .env without executing it. Variables already set in the environment win,
# so `DATABASE_URL=... make test` overrides .env. Values may be wrapped in single or double quotes.
load_dotenv() {
    local file="$ROOT/.env" line key value
    [[ -f "$file" ]] || return 0
    while IFS= read -r line || [[ -n "$line" ]]; do
        line="${line#"${line%%[![:space:]]*}"}"          # strip leading whitespace
        [[ -z "$line" || "$line" == \#* ]] && continue
        line="${line#export }"
        [[ "$line" =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
        key="${BASH_REMATCH[1]}"
        value="${BASH_REMATCH[2]}"
        value="${value%"${value##*[![:space:]]}"}"        # strip trailing whitespace
        if [[ "$value" =~ ^\"(.*)\"$ || "$value" =~ ^\'(.*)\'$ ]]; then
            value="${BASH_REMATCH[1]}"
        fi
        if [[ -z "${!key+set}" ]]; then
            export "$key=$value"
        fi
    done <"$file"
}

load_dotenv

# STANDBY_ENABLED (issue 19): the database is the project-managed pair of scripts/standby.sh, and
# the default DATABASE_URL names both nodes; libpq connects to whichever takes writes.
standby_enabled() {
    case "${STANDBY_ENABLED:-0}" in
        1 | true | yes | on) return 0 ;;
        *) return 1 ;;
    esac
}
if standby_enabled; then
    DEFAULT_DATABASE_URL="postgis://ebike:ebike@${PG_NODE_A_HOST:-127.0.0.2},${PG_NODE_B_HOST:-127.0.0.3}:${PG_PAIR_PORT:-5432}/ebike?target_session_attrs=read-write"
fi

# DATABASE_URL_FROM_ENV=1 when someone chose the database (environment or .env) rather than the default.
if [[ -n "${DATABASE_URL:-}" && "${DATABASE_URL}" != "$DEFAULT_DATABASE_URL" ]]; then
    DATABASE_URL_IS_DEFAULT=0
else
    DATABASE_URL_IS_DEFAULT=1
fi
export DATABASE_URL="${DATABASE_URL:-$DEFAULT_DATABASE_URL}"
export REDIS_URL="${REDIS_URL:-$DEFAULT_REDIS_URL}"
export PYTHONUNBUFFERED=1

run_as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root for: $* (run as root or install sudo)"
    fi
}

# True when something accepts TCP connections on host:port (no client tools needed).
port_open() {
    local host="$1" port="$2"
    # shellcheck disable=SC2016  # $0/$1 expand in the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null
}

is_local_host() {
    case "$1" in
        "" | 127.0.0.1 | localhost | ::1 | "[::1]") return 0 ;;
        *) return 1 ;;
    esac
}

# parse_url URL PREFIX: sets PREFIX_SCHEME, PREFIX_HOST, PREFIX_PORT, PREFIX_HOSTPORT, PREFIX_USER,
# PREFIX_PASSWORD, PREFIX_QUERY and PREFIX_DBNAME (user, password and database name percent-decoded).
# A multi-host URL (a,b:5432 or a:5432,b:5433) gives libpq's lists: HOST "a,b", PORT "5432" or
# "5432,5433", and HOSTPORT the URL's own list, to build another URL to the same servers.
# Needs the system python3.
parse_url() {
    local assignments
    assignments="$("$SYSTEM_PYTHON" - "$1" "$2" <<'PY'
import shlex
import sys
from urllib.parse import unquote, urlsplit

url, prefix = sys.argv[1], sys.argv[2]
u = urlsplit(url)
default_port = 6379 if u.scheme.startswith("redis") else 5432
servers = u.netloc.rpartition("@")[2]
if "," in servers:  # libpq's multi-host form: each host with its own port or the default
    hosts, ports = [], []
    for entry in servers.split(","):
        name, _, number = entry.rpartition(":")
        hosts.append(name if number.isdigit() else entry)
        ports.append(number if number.isdigit() else str(default_port))
    host, port = ",".join(hosts), ports[0] if len(set(ports)) == 1 else ",".join(ports)
    hostport = servers
else:
    host, port = u.hostname or "", str(u.port or default_port)
    hostport = f"{host}:{port}"
values = {
    "scheme": u.scheme,
    "host": host,
    "port": port,
    "hostport": hostport,
    "user": unquote(u.username or ""),
    "password": unquote(u.password or ""),
    "dbname": unquote(u.path.lstrip("/")),
    "query": u.query,  # libpq options, e.g. target_session_attrs=read-write (multi-host URLs)
}
for key, value in values.items():
    print(f"{prefix}_{key.upper()}={shlex.quote(value)}")
PY
)" || die "cannot parse URL for $2"
    eval "$assignments"
}

venv_ready() {
    [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1
}

require_venv() {
    venv_ready || die "no working .venv; run 'make setup' first"
}

# --- apt -----------------------------------------------------------------------------------------
APT_UPDATED=0

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# apt_install_missing PKG...: installs those `dpkg` does not report installed; quiet and fast when
# nothing is missing. `apt-get update` runs at most once per script run.
apt_install_missing() {
    local pkg missing=()
    for pkg in "$@"; do
        pkg_installed "$pkg" || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    log "apt: installing ${missing[*]}"
    if ((APT_UPDATED == 0)); then
        run_as_root apt-get update -qq
        APT_UPDATED=1
    fi
    run_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
