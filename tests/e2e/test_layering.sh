#!/usr/bin/env bash
# The layering rule (tests/tools/layering.py) holds on the tree, and the check fails on a
# planted upward include, on a header of state/ reaching into the engine, on a folder that
# has no rank, on an unknown header and on a Kafka handle created outside daemon/kafka.c: a
# check that cannot fail proves nothing.
set -euo pipefail
: "${CS_ROOT:?}"
check="$CS_ROOT/tests/tools/layering.py"
python3 "$check" "$CS_ROOT"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cs-layering.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fresh() { rm -rf "$tmp/t"; mkdir -p "$tmp/t"; cp -r "$CS_ROOT/processor" "$CS_ROOT/state" "$tmp/t/"; }
expect_fail() { # WHAT PATTERN: the check must exit 1 and name the violation
    local out rc=0
    out=$(python3 "$check" "$tmp/t" 2>&1) || rc=$?
    [ "$rc" -eq 1 ] || { echo "FAIL: $1: layering.py exited $rc, want 1" >&2; exit 1; }
    grep -q -- "$2" <<<"$out" || { echo "FAIL: $1: no '$2' in: $out" >&2; exit 1; }
}

fresh
sed -i '0,/#include "log.h"/s//#include "log.h"\n#include "pipeline.h"/' "$tmp/t/processor/core/log.c"
expect_fail "core includes engine" 'processor/core/log.c:[0-9]*: #include "pipeline.h": goes up'

fresh
sed -i '0,/#include "store.h"/s//#include "store.h"\n#include "model.h"/' "$tmp/t/state/store_mem.h"
expect_fail "state includes models" 'state/store_mem.h:[0-9]*: #include "model.h": state/ may include only'

fresh
mkdir "$tmp/t/processor/extra" && printf '#include "log.h"\n' >"$tmp/t/processor/extra/x.c"
expect_fail "unranked folder" 'processor/extra/: sources in a folder with no rank'

fresh
printf '#include "nowhere.h"\n' >>"$tmp/t/processor/engine/engine.c"
expect_fail "unknown header" '"nowhere.h": no such header'
fresh
printf 'static void *k(void) { return rd_kafka_new(0, 0, 0, 0); }\n' >>"$tmp/t/processor/replay/replay.c"
expect_fail "a Kafka handle outside kafka.c" 'processor/replay/replay.c:[0-9]*: rd_kafka_new() outside processor/daemon/kafka.c'
echo "test_layering: ok (5 planted violations caught)"
