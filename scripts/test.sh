#!/usr/bin/env bash
# The pytest suite against the real PostgreSQL+PostGIS and Redis that `scripts/setup.sh` prepared
# (`make test` runs setup, lint, then this).
#
# PYTEST_ARGS is passed to pytest, split like shell words: PYTEST_ARGS='-x -k "plate and not slow"'.
set -euo pipefail
LOG_PREFIX="[test]"
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_venv
pytest_args=()
if [[ -n "${PYTEST_ARGS:-}" ]]; then
    # Shell-word splitting so quoted -k/-m expressions survive; the value comes from the caller.
    eval "pytest_args=(${PYTEST_ARGS})"
fi

log "pytest ${pytest_args[*]}"
rc=0
"$VENV/bin/pytest" "${pytest_args[@]}" || rc=$?
case "$rc" in
    0) log "pytest passed" ;;
    5) printf '%s ERROR: pytest collected no tests (exit 5); the suite must not be empty\n' \
        "$LOG_PREFIX" >&2 ;;
    *) printf '%s pytest failed (exit %s)\n' "$LOG_PREFIX" "$rc" >&2 ;;
esac
exit "$rc"
