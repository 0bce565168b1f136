#!/usr/bin/env bash
# Prepare this machine for ebike-registry: system packages, .venv, PostgreSQL+PostGIS, Redis, then the
# Django steps (compilemessages, migrate, collectstatic). Idempotent and quick when nothing changed.
#
#   scripts/setup.sh                  all phases (what `make setup` runs)
#   scripts/setup.sh apt venv db      only the named phases, in the order given
#
# Phases: apt venv db redis keys django. Environment: DATABASE_URL, REDIS_URL (defaults in .env.example),
# EXTRA_APT_PACKAGES (space separated, added to the apt phase).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Debian 12 packages every setup needs. PostgreSQL server and redis-server are added by the apt phase
# only when nothing answers on their ports (see need_local_*).
base_apt_packages() {
    local pkgs=(
        python3 python3-venv                 # .venv (created with /usr/bin/python3)
        postgresql-15-postgis-3              # PostGIS 3.3 for the cluster; pulls postgresql-15
        postgresql-client-15                 # psql, pg_isready
        gdal-bin libgdal32 libgeos-c1v5 libproj25   # GeoDjango's C libraries
        gettext                              # compilemessages
        redis-tools                          # redis-cli, to check Redis
        docker-compose                       # only to validate docker-compose.yml (`make lint`)
    )
    printf '%s\n' "${pkgs[@]}"
}

# HOOK for features that need more system packages (for example Chromium for the browser tests:
# `chromium` and `fonts-noto-cjk` for Chinese pages). Add them to the list below, or set
# EXTRA_APT_PACKAGES="pkg1 pkg2" in the environment / .env.
extra_apt_packages() {
    local pkgs=(
        libjs-chart.js                       # Chart.js 3.9 for the statistics dashboard (served as a static file)
        libjs-leaflet libjs-leaflet.markercluster   # the officer map's Leaflet (served as static files)
        chromium fonts-noto-cjk              # browser tests (tests/browser): headless Chromium, CJK glyphs
        zbar-tools                           # zbarimg: the certificate test decodes the printed QR code
        haproxy                              # TCP balancer before the gateway nodes (deploy/haproxy, tests/ops)
        pgbackrest                           # backups, WAL archive, point-in-time restore (scripts/backup.sh)
    )
    # The front server of deploy/nginx/ebike-registry.conf, also started by its test
    # (tests/vehicles/test_nginx_media.py). Any Debian nginx flavour already installed will do: the
    # flavours conflict with each other, so nginx-light only goes where none is.
    if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
        pkgs+=(nginx-light)
    fi
    local -a from_env=()
    read -r -a from_env <<<"${EXTRA_APT_PACKAGES:-}"
    if ((${#pkgs[@]} + ${#from_env[@]})); then
        printf '%s\n' "${pkgs[@]}" "${from_env[@]}"
    fi
}

# url_host_port URL: prints "host port" using only bash (the apt phase may run before python3 exists).
url_host_port() {
    local url="$1" default_port="$2"
    if [[ "$url" =~ ^[A-Za-z][A-Za-z0-9+.-]*://([^@/]*@)?(\[[^]/]*\]|[^:/?#]*)(:([0-9]+))? ]]; then
        local host="${BASH_REMATCH[2]}"
        host="${host#[}"
        host="${host%]}"
        printf '%s %s\n' "${host:-127.0.0.1}" "${BASH_REMATCH[4]:-$default_port}"
    else
        die "cannot parse URL: $url"
    fi
}

# A local server is needed when the URL points at this machine and nothing listens there yet.
need_local_server() {
    local host port
    read -r host port <<<"$(url_host_port "$1" "$2")"
    is_local_host "$host" && ! port_open "$host" "$port"
}

phase_apt() {
    local -a pkgs
    mapfile -t pkgs < <(base_apt_packages)
    if need_local_server "$DATABASE_URL" 5432; then
        pkgs+=(postgresql-15)
    fi
    if need_local_server "$REDIS_URL" 6379; then
        pkgs+=(redis-server)
    fi
    local -a extra
    mapfile -t extra < <(extra_apt_packages)
    pkgs+=("${extra[@]}")
    apt_install_missing "${pkgs[@]}"
    log "apt: ${#pkgs[@]} packages present"
}

# Hash of everything pip installs from; pip runs only when it changes (or the venv is new).
requirements_hash() {
    {
        "$VENV/bin/python" -VV
        local f
        for f in requirements*.txt; do
            printf '== %s\n' "$f"
            cat "$f"
        done
    } | sha256sum | cut -d' ' -f1
}

phase_venv() {
    local stamp="$VENV/.requirements-stamp"
    if ! venv_ready; then
        if ! "$SYSTEM_PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
            apt_install_missing python3 python3-venv
        fi
        log "venv: creating .venv with $SYSTEM_PYTHON"
        "$SYSTEM_PYTHON" -m venv --clear "$VENV"
        rm -f "$stamp"
    fi
    local want
    want="$(requirements_hash)"
    if [[ -f "$stamp" && "$(<"$stamp")" == "$want" ]]; then
        log "venv: requirements unchanged"
        return 0
    fi
    log "venv: pip install -r requirements-dev.txt"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet -r requirements-dev.txt
    printf '%s\n' "$want" >"$stamp"
}

phase_db() {
    if standby_enabled; then # the primary and its synchronous standby first (scripts/standby.sh)
        bash "$ROOT/scripts/standby.sh" up
        # db.sh's psql on the multi-host URL: the node that takes writes, not the standby.
        PGTARGETSESSIONATTRS=read-write bash "$ROOT/scripts/db.sh"
        return
    fi
    bash "$ROOT/scripts/db.sh"
}

phase_redis() {
    bash "$ROOT/scripts/redis.sh"
}

# Any gettext catalogue in a locale/ folder (project or app), outside the venv and generated dirs.
has_po_files() {
    find "$ROOT" \( -path "$ROOT/.venv" -o -path "$ROOT/.git" -o -path "$ROOT/var" \
        -o -path "$ROOT/staticfiles" -o -name node_modules \) -prune \
        -o -type f -name '*.po' -path '*/locale/*' -print -quit | grep -q .
}

# The server's secret keys (ebike_registry.keys), written once with random values, mode 0600: the
# web server refuses to start on the public development defaults unless DEBUG is on. An existing
# file is never replaced (a new certificate key would void every printed certificate). Keys given
# in the environment (SECRET_KEY, CERTIFICATE_SIGNING_KEY or their *_FILE) take precedence.
phase_keys() {
    local dir="$VAR/keys" name file
    mkdir -p "$dir"
    chmod 700 "$dir"
    # backup-passphrase encrypts the pgBackRest repository and the files archives (scripts/backup.sh):
    # keep a copy apart from the backups, without it none can be read.
    for name in secret-key certificate-key backup-passphrase; do
        file="$dir/$name"
        [[ -s "$file" ]] && continue
        (umask 077 && "$SYSTEM_PYTHON" -c 'import secrets; print(secrets.token_urlsafe(48))' >"$file.tmp")
        mv "$file.tmp" "$file"
        log "keys: wrote $file (mode 0600)"
    done
}

phase_django() {
    require_venv
    local py="$VENV/bin/python"
    mkdir -p "$VAR"
    if has_po_files; then
        log "django: compilemessages"
        "$py" manage.py compilemessages --ignore=.venv --ignore=var --ignore=node_modules -v 0
    fi
    log "django: migrate"
    "$py" manage.py migrate --noinput
    # Before any retention run: the first refresh counts every alarm and rescue call still kept.
    log "django: statistics rollups"
    "$py" manage.py stats_rollups
    log "django: collectstatic"
    "$py" manage.py collectstatic --noinput -v 0
}

main() {
    local phases=("$@")
    if ((${#phases[@]} == 0)); then
        phases=(apt venv db redis keys django)
    fi
    local phase
    for phase in "${phases[@]}"; do
        case "$phase" in
            apt | venv | db | redis | keys | django) "phase_$phase" ;;
            *) die "unknown phase '$phase' (apt venv db redis keys django)" ;;
        esac
    done
    log "done (${phases[*]})"
}

main "$@"
