#!/usr/bin/env bash
# `make bench`: every benchmark in order, then bench/RESULTS.md from their figures (step 9,
# the compose evaluation, only when the model venv is cached). Usage:
#   bench/run.sh [BUILD_DIR]      (default build; never a sanitizer build)
# BENCH_RUNS (default 3, at least 3 for RESULTS.md) sets the runs per figure. Each step is a
# script that also runs on its own (bench/README.md); a failed step is reported as not
# measured and makes the exit status 1, the other steps still run.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
RUNS=${BENCH_RUNS:-3}
PYTHON=${PYTHON:-python3}
cd "$ROOT" || exit 2

if [ ! -x "$BUILD/churnstream" ]; then
    echo "bench: $BUILD/churnstream not built (run make bench)" >&2
    exit 2
fi
# Sanitizers make every figure meaningless: refuse such a build outright.
if grep -q -a -e __asan_init -e __ubsan_handle "$BUILD/churnstream"; then
    echo "bench: $BUILD/churnstream is a sanitizer build; benchmark the plain -O2 build" >&2
    exit 2
fi
if [ "$RUNS" -lt 3 ]; then
    echo "bench: BENCH_RUNS=$RUNS: RESULTS.md needs at least 3 runs per figure" >&2
    exit 2
fi

start_s=$(date +%s)
failed=()
# Old figures must never be rendered as new ones.
mkdir -p bench/out
rm -f bench/out/*.json

step() {
    local n=$1 name=$2
    shift 2
    local t0
    t0=$(date +%s)
    echo "== bench $n/9: $name (load $(cut -d' ' -f1-3 /proc/loadavg)) =="
    if ! "$@"; then
        echo "== bench $n/9: $name FAILED =="
        failed+=("$name")
    fi
    echo "== bench $n/9: $name done in $(($(date +%s) - t0)) s, $(($(date +%s) - start_s)) s in all =="
}

export BUILD
"$PYTHON" bench/report.py machine start || failed+=("machine")
step 1 decode "$PYTHON" bench/decode.py --build "$BUILD" --runs "$RUNS"
step 2 models "$PYTHON" bench/models.py --build "$BUILD" --runs "$RUNS"
step 3 replay "$PYTHON" bench/replay.py --build "$BUILD" --runs "$RUNS"
step 4 "rss (10M-event replay)" "$PYTHON" bench/rss.py --build "$BUILD" --runs "$RUNS"
step 5 "baselines (river, scikit-learn)" "$PYTHON" bench/baselines/run.py --build "$BUILD" --runs "$RUNS"
step 6 "live path (Kafka, Redis)" "$PYTHON" bench/live.py --build "$BUILD" --runs "$RUNS"
step 7 "readable scores (GET /v1/users, HGETALL)" "$PYTHON" bench/readable.py --build "$BUILD" --runs "$RUNS"
step 8 "scale-out (1-3 instances sharing a model)" "$PYTHON" bench/scaleout.py --build "$BUILD" --runs "$RUNS"
# Step 9 needs the test model's server venv, which `make deps` builds (~6 min the first time)
# and `make bench` does not: without it the step is skipped, said here and in RESULTS.md.
LLM_VENV=$(bash -c '. tests/services/llm-venv.sh && echo "$LLM_VENV"')
if [ -f "$LLM_VENV/.complete" ]; then
    step 9 "compose (LLM messages, ${BENCH_COMPOSE_ALERTS:-60} alerts)" \
        env EVAL_JSON=bench/out/compose.json bench/compose_eval.sh "$BUILD" "${BENCH_COMPOSE_ALERTS:-60}"
else
    why="no model server venv in $LLM_VENV (make deps builds it, about 6 minutes the first time)"
    echo "== bench 9/9: compose SKIPPED: $why =="
    "$PYTHON" bench/compose_summary.py skipped "$why" || failed+=("compose")
fi
"$PYTHON" bench/report.py machine end || failed+=("machine")
total=$(($(date +%s) - start_s))
"$PYTHON" bench/report.py render --total-seconds "$total" || failed+=("report")
echo "bench: RESULTS.md written in $total s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "bench: failed steps: ${failed[*]}" >&2
    exit 1
fi
