#!/usr/bin/env bash
# `make demo` as CI runs it: tests/e2e/demo.sh under a time limit must print alerts in the
# one-line form and its summary, exit 0, and leave none of the processes it started
# (redis-server, mock-kafka, run, tail, the display) behind. Needs CS_BIN (tests/run-all.sh).
set -euo pipefail
: "${CS_BIN:?set CS_BIN to the churnstream binary}"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$(mktemp)
trap 'rm -f "$out"' EXIT

start=$(date +%s)
rc=0
DEMO_KEEP=1 timeout --kill-after=10 170 bash "$ROOT/tests/e2e/demo.sh" "$CS_BIN" >"$out" 2>&1 || rc=$?
elapsed=$(($(date +%s) - start))
dir=$(sed -n 's/^(logs kept in \(.*\))$/\1/p' "$out" | tail -n 1)
fail() { echo "FAIL: $*" >&2; cat "$out" >&2; exit 1; }

[ "$rc" -eq 0 ] || fail "demo.sh exited $rc after ${elapsed}s"
[ -n "$dir" ] && [ -f "$dir/pids" ] || fail "demo.sh did not report its working directory"
# Every pid it started is gone (the first line is the script itself, which has exited).
n=0
while read -r pid; do
    n=$((n + 1))
    if kill -0 "$pid" 2>/dev/null; then
        fail "pid $pid ($(ps -o args= -p "$pid" || true)) outlived the demo"
    fi
done <"$dir/pids"
[ "$n" -ge 8 ] || fail "only $n pids recorded in $dir/pids (want script, redis, mock, run, tail, display, respond, gen)"

# At least a handful of alerts in the documented one-line form.
re='^20[0-9][0-9]-[0-9][0-9]-[0-9][0-9] u[0-9]{6} p=[01]\.[0-9]{2} (low|medium|high) (at_risk|lapsed) (tick|event) seg [-0-9]'
re+='.* -> .+ \[(treatment|holdout)\]'
alerts=$(grep -cE "$re" "$out" || true)
[ "$alerts" -ge 20 ] || fail "only $alerts alert lines"
grep -q '^==> summary after' "$out" || fail "no summary"
grep -qE '^    events: [0-9,]+ generated, [0-9,]+ consumed' "$out" || fail "no event counts"
grep -qE "^    alerts: $alerts printed" "$out" || fail "summary count differs from the $alerts lines shown"
grep -qE '^    precision: [0-9]+/[0-9]+ alerted users are planted churners' "$out" || fail "no precision"
grep -q 'Alerts below' "$out" || fail "no explanation of what the viewer sees"
# Issue 14: alerts in at least two buckets and three distinct actions, on screen and in the
# summary (the action is what sits between " -> " and the arm).
buckets=$(grep -E "$re" "$out" | awk '{print $4}' | sort -u | wc -l)
[ "$buckets" -ge 2 ] || fail "alerts in $buckets risk bucket(s), want at least 2"
actions=$(grep -E "$re" "$out" | sed -E 's/.* -> (.*) \[(treatment|holdout)\].*/\1/' | sort -u | wc -l)
[ "$actions" -ge 3 ] || fail "$actions distinct recommended actions, want at least 3"
grep -qE "^    by action \($actions\): " "$out" || fail "the summary does not count the $actions actions"
grep -qE '^    by bucket: .*medium [0-9]+.*; by arm: .*; by kind: ' "$out" ||
    fail "the summary does not break alerts down by bucket (with medium), arm and kind"
# Issue 14, part 5: the closed loop's uplift recovers the planted effect within its interval.
grep -qE '^    closed loop: [0-9]+ alerts, [0-9]+ treatment, [0-9]+ eligible, [0-9]+ returned' "$out" ||
    fail "no closed-loop line from churnstream respond"
grep -qE '^    uplift: [-+][0-9.]+ points \[95% interval [-+][0-9.]+, [-+][0-9.]+\]; planted effect .* recovered: yes$' "$out" ||
    fail "the measured uplift does not recover the planted effect"
[ "$elapsed" -lt 180 ] || fail "took ${elapsed}s (budget: under 3 minutes)"
rm -rf "$dir"
echo "test_demo: ok ($alerts alerts, $buckets buckets, $actions actions in ${elapsed}s)"
