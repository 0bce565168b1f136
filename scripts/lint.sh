#!/usr/bin/env bash
# Static checks: ruff, mypy on the app packages (pyproject.toml [tool.mypy]), missing migrations,
# docker-compose.yml validity, untranslated or fuzzy entries in our catalogues
# (scripts/check_translations.py). Runs all of them and fails when any failed. Expects
# `scripts/setup.sh` to have run (`make lint` does both).
set -euo pipefail
LOG_PREFIX="[lint]"
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_venv
failed=()

check() {
    local name="$1"
    shift
    log "$name"
    if ! "$@"; then
        failed+=("$name")
    fi
}

check "ruff check" "$VENV/bin/ruff" check .
# Imports the settings (django-stubs reads the models): DATABASE_URL etc. come from lib.sh, as for makemigrations.
check "mypy" "$VENV/bin/mypy"
check "makemigrations --check" "$VENV/bin/python" manage.py makemigrations --check --dry-run
check "docker-compose config" docker-compose -f docker-compose.yml config -q
check "translations complete" "$VENV/bin/python" scripts/check_translations.py

if ((${#failed[@]})); then
    printf '%s FAILED: %s\n' "$LOG_PREFIX" "${failed[*]}" >&2
    exit 1
fi
log "all checks passed"
