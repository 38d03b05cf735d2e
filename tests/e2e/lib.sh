# Shared start of the e2e scripts that drive `run` against the test services: sourced, not
# run (tests/run-all.sh runs test_*.sh only). e2e_begin NAME checks the environment and sets
# B (brokers), tmp (kept on failure), pids (killed at exit), die, t_start and EO (the
# exactly-once tool, built on demand).
# Needs CS_BIN, CS_ROOT, CS_KAFKA_BROKERS, CS_REDIS_HOST, CS_REDIS_PORT (tests/run-all.sh).

e2e_begin() {
    : "${CS_BIN:?}" "${CS_ROOT:?}" "${CS_KAFKA_BROKERS:?set by tests/run-all.sh}"
    : "${CS_REDIS_HOST:?}" "${CS_REDIS_PORT:?set by tests/run-all.sh}"
    B=$CS_KAFKA_BROKERS
    tmp=$(mktemp -d "${CS_TMP:-/tmp}/$1.XXXXXX")
    pids=()
    keep=0
    trap e2e_cleanup EXIT
    t_start=$(date +%s%3N)
    make -C "$CS_ROOT" --no-print-directory build/tests/tools/eo_tool >"$tmp/make.out" 2>&1 ||
        { cat "$tmp/make.out"; die "cannot build build/tests/tools/eo_tool"; }
    EO=$CS_ROOT/build/tests/tools/eo_tool
}

e2e_cleanup() {
    local p
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    if [ "$keep" -eq 1 ]; then echo "(logs kept in $tmp)"; else rm -rf "$tmp"; fi
}

die() {
    keep=1
    echo "FAIL: $*" >&2
    exit 1
}
