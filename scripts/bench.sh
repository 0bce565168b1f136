#!/usr/bin/env bash
# Run every bench/*.py with the venv's python and collect the JSON object each prints as its last
# stdout line. Output per script: bench/out/NAME.log (full stdout); all results: bench/out/results.jsonl.
#
# BENCH_SCALE=small|full is passed as --scale (the scripts default to full when it is unset).
# A script that fails or whose last line is not JSON makes the run fail, after the others ran.
set -euo pipefail
LOG_PREFIX="[bench]"
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_venv
PY="$VENV/bin/python"
OUT="$ROOT/bench/out"
mkdir -p "$OUT"
# Scripts run as `python bench/NAME.py`; let them import the project without path tricks.
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-ebike_registry.settings}"

scale_args=()
if [[ -n "${BENCH_SCALE:-}" ]]; then
    scale_args=(--scale "$BENCH_SCALE")
fi

shopt -s nullglob
scripts=(bench/*.py)
if ((${#scripts[@]} == 0)); then
    log "no bench/*.py scripts yet"
    exit 0
fi

results="$OUT/results.jsonl"
: >"$results"
failed=()
for script in "${scripts[@]}"; do
    name="$(basename "$script" .py)"
    [[ "$name" == _* ]] && continue   # bench/_common.py and the like are helpers, not benchmarks
    log "$name ${scale_args[*]}"
    rc=0
    "$PY" "$script" "${scale_args[@]}" | tee "$OUT/$name.log" || rc=$?
    if ((rc != 0)); then
        failed+=("$name (exit $rc)")
        continue
    fi
    last="$(tail -n 1 "$OUT/$name.log")"
    if ! "$PY" -c 'import json, sys; assert isinstance(json.loads(sys.argv[1]), dict)' "$last" 2>/dev/null; then
        failed+=("$name (last stdout line is not a JSON object)")
        continue
    fi
    printf '%s\n' "$last" >>"$results"
done

log "results ($results):"
cat "$results"
if ((${#failed[@]})); then
    printf '%s FAILED: %s\n' "$LOG_PREFIX" "${failed[*]}" >&2
    exit 1
fi
