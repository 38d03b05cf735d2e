#!/usr/bin/env bash
# Everything `make test` runs, in order: unit tests; then a real Redis, a real Kafka broker
# and a 3-master Redis Cluster on free loopback ports for the integration binaries, the e2e scripts and the Python tests;
# then the services are stopped by pid (on failure and Ctrl-C too). Usage:
#   tests/run-all.sh BUILD_DIR        (e.g. build or build-san)
# Last line: "TOTAL: N passed, N failed"; exit status 1 on any failure.
set -uo pipefail

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD=$(cd "$1" && pwd) || exit 2
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
# shellcheck source=services/redis.sh
. tests/services/redis.sh
# shellcheck source=services/kafka.sh
. tests/services/kafka.sh
# shellcheck source=services/redis-cluster.sh
. tests/services/redis-cluster.sh

TIMEOUT_S=${CS_TEST_TIMEOUT_S:-900}
total_passed=0
total_failed=0
CS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/churnstream-test.XXXXXX")
SVC_DIR=$CS_TMP/services
out=$CS_TMP/suite.out

cleanup() {
    # Runs on every exit path, so no broker or redis outlives the run.
    trap - EXIT INT TERM
    kafka_stop "$SVC_DIR/kafka" || true
    redis_stop "$SVC_DIR/redis" || true
    redis_cluster_stop "$SVC_DIR/redis-cluster" || true
    if [ "$total_failed" -eq 0 ]; then
        rm -rf "$CS_TMP"
    else
        echo "(logs and service data kept in $CS_TMP)"
    fi
}
# e2e scripts and pytest run in the background under `timeout`, which gives them their own
# process group: `wait` returns at once on a signal and stopping `timeout` stops the group.
child=""
stop_child() {
    [ -n "$child" ] && kill -TERM "$child" 2>/dev/null
    [ -n "$child" ] && wait "$child" 2>/dev/null
    child=""
}
trap cleanup EXIT
trap 'echo "interrupted"; stop_child; exit 130' INT
trap 'echo "terminated"; stop_child; exit 143' TERM

# run_bounded CMD...: run under the per-test timeout, interruptible; returns its status.
run_bounded() {
    local rc
    timeout --kill-after=10 "$TIMEOUT_S" "$@" &
    child=$!
    wait "$child"
    rc=$?
    child=""
    return "$rc"
}

# Add the counts of the last "WORD: N passed, N failed" line in $out to the totals.
add_counts() {
    local line p f
    line=$(grep -E '^[a-z0-9-]+: [0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    if [ -z "$line" ]; then
        echo "!! no summary line from $1: counting one failure"
        total_failed=$((total_failed + 1))
        return
    fi
    p=$(echo "$line" | sed -E 's/^[^:]+: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
}

# The executables among DIR/test_* (the compiler leaves test_*.d dependency files beside them).
test_binaries() {
    local f
    for f in "$1"/test_*; do
        [ -f "$f" ] && [ -x "$f" ] && echo "$f"
    done
}

# The project's shared folder (DESIGN.md, tools/backtest_score.py, data/): beside the clone
# in the workplace layout, else where CS_SHARED points.
if [ -z "${CS_SHARED:-}" ]; then
    for d in "$ROOT/../shared" /work/shared; do
        [ -f "$d/tools/backtest_score.py" ] && { CS_SHARED=$(cd "$d" && pwd); break; }
    done
fi
if [ -z "${CS_SHARED:-}" ] || [ ! -f "$CS_SHARED/tools/backtest_score.py" ]; then
    echo "!! the shared folder (tools/backtest_score.py, data/) was not found: set CS_SHARED" >&2
    exit 1
fi
export CS_SHARED

# --- unit ---
# shellcheck disable=SC2046 # one word per binary path
bash tests/run-tests.sh unit $(test_binaries "$BUILD/tests/unit") 2>&1 | tee "$out"
add_counts unit

# --- services ---
if ! redis_start "$SVC_DIR/redis" || ! kafka_start "$SVC_DIR/kafka" ||
    ! redis_cluster_start "$SVC_DIR/redis-cluster"; then
    echo "!! could not start the test services: integration, e2e and python tests not run"
    total_failed=$((total_failed + 1))
    echo "TOTAL: $total_passed passed, $total_failed failed"
    exit 1
fi
export CS_ROOT=$ROOT CS_TMP CS_BIN=$BUILD/churnstream
export CS_REDIS_HOST=127.0.0.1 CS_REDIS_PORT
export CS_KAFKA_BROKERS
CS_REDIS_PORT=$(cat "$SVC_DIR/redis/port")
CS_KAFKA_BROKERS=127.0.0.1:$(cat "$SVC_DIR/kafka/port")
# For tests that stop, kill or restart a service (tests/services/{redis,kafka}.sh DIR).
export CS_REDIS_DIR=$SVC_DIR/redis CS_KAFKA_DIR=$SVC_DIR/kafka
# A 3-master Redis Cluster (tests/services/redis-cluster.sh): a seed port and its directory.
export CS_REDIS_CLUSTER_PORT CS_REDIS_CLUSTER_DIR=$SVC_DIR/redis-cluster
CS_REDIS_CLUSTER_PORT=$(cat "$SVC_DIR/redis-cluster/port")

# --- integration ---
# shellcheck disable=SC2046
bash tests/run-tests.sh integration $(test_binaries "$BUILD/tests/integration") 2>&1 | tee "$out"
add_counts integration

# --- e2e: one script per test, its exit status is the verdict ---
p=0
f=0
for t in tests/e2e/test_*.sh; do
    [ -f "$t" ] || continue
    echo "== e2e: $t"
    run_bounded bash "$t"
    rc=$?
    if [ "$rc" -eq 0 ]; then
        p=$((p + 1))
    else
        echo "!! e2e: $t failed (exit status $rc)"
        f=$((f + 1))
    fi
done
echo "e2e: $p passed, $f failed" | tee "$out"
add_counts e2e

# --- python ---
if compgen -G "tests/python/test_*.py" >/dev/null; then
    echo "== python: pytest tests/python"
    run_bounded python3 -m pytest -q -rs tests/python >"$CS_TMP/pytest.out" 2>&1
    rc=$?
    cat "$CS_TMP/pytest.out"
    summary=$(grep -E '[0-9]+ (passed|failed|error|errors|skipped|deselected)' "$CS_TMP/pytest.out" | tail -n 1)
    p=$(echo "$summary" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || echo 0)
    f=$(echo "$summary" | grep -oE '[0-9]+ (failed|errors?)' | grep -oE '[0-9]+' | awk '{ s += $1 } END { print s + 0 }')
    # Any non-zero status without counted failures is one failure: a crash, a timeout, a
    # usage error, and exit 5, "no tests collected" (test files that collect nothing mean a
    # broken import or a renamed function, never success).
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "!! python: pytest exit status $rc$([ "$rc" -eq 5 ] && echo ' (no tests collected)')"
        f=1
    fi
    s=$(echo "$summary" | grep -oE '[0-9]+ skipped' | grep -oE '[0-9]+' || echo 0)
    echo "python: $p passed, $f failed, $s skipped (reasons above with -rs)" | tee "$out"
    add_counts python
fi

echo "TOTAL: $total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
