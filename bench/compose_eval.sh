#!/usr/bin/env bash
# Evaluation of `churnstream compose` (issue 17): alerts from a replay of generated events,
# answered by the test model (SmolLM2-135M-Instruct on llama-cpp-python's server, cached venv
# of `make deps`) through `compose --dry-run`; prints compose's summary (LLM vs template,
# fallbacks by reason, latency p50/p99) and the first messages. Step 8 of bench/run.sh when
# the model venv is cached (`make deps` builds it; `make bench` does not). Usage:
#   bench/compose_eval.sh [BUILD_DIR] [N_ALERTS]     (default build, 100)
# LLM_URL=... points it at another endpoint instead (no local server is started then);
# LLM_MODEL and CHURNSTREAM_LLM_API_KEY as for compose; LLM_CONCURRENCY sets llm.concurrency
# (default 1: the local server runs one request at a time). EVAL_JSON=FILE also writes the
# figures as JSON (bench/compose_summary.py; run.sh uses bench/out/compose.json).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-build}
N=${2:-100}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
BIN=$BUILD/churnstream
[ -x "$BIN" ] || { echo "compose_eval: $BIN not built (make)" >&2; exit 2; }
# shellcheck source=../tests/services/llm.sh
. "$ROOT/tests/services/llm.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/compose-eval.XXXXXX")
cleanup() {
    llm_stop "$tmp/llm" || true
    rm -rf "$tmp"
}
trap cleanup EXIT

"$BIN" gen --users 2000 --days 365 --seed 7 --out "$tmp/events.avro" --quiet
"$BIN" replay "$tmp/events.avro" --alerts-out "$tmp/alerts-all.jsonl" >/dev/null
# N alerts spread over the whole replay (every k-th), not the first tick's only.
total=$(wc -l <"$tmp/alerts-all.jsonl")
[ "$total" -gt 0 ] || { echo "compose_eval: the replay fired no alert" >&2; exit 1; }
awk -v n="$N" -v t="$total" 'BEGIN { k = t > n ? t / n : 1 } (NR - 1) % k < 1 && c < n { print; c++ }' \
    "$tmp/alerts-all.jsonl" >"$tmp/alerts.jsonl"
echo "compose_eval: $(wc -l <"$tmp/alerts.jsonl") of $total alerts"

model_desc="SmolLM2-135M-Instruct Q4_1 on llama-cpp-python's server (one thread, GGML_NATIVE=OFF)"
if [ -z "${LLM_URL:-}" ]; then
    llm_start "$tmp/llm"
    LLM_URL=$(llm_url "$tmp/llm")
else
    # never the URL itself in the figures: it may carry a key
    model_desc="${LLM_MODEL:-the llm.model default} at an endpoint given by LLM_URL"
fi
args=(--llm.url="$LLM_URL" --llm.concurrency="${LLM_CONCURRENCY:-1}")
[ -n "${LLM_MODEL:-}" ] && args+=(--llm.model="$LLM_MODEL")
start_ms=$(svc_now_ms)
"$BIN" compose --dry-run --alerts-in "$tmp/alerts.jsonl" --out "$tmp/messages.jsonl" "${args[@]}" |
    tee "$tmp/compose.out"
wall_s=$(svc_elapsed "$start_ms")
echo "compose_eval: wall time ${wall_s}s"
if [ -n "${EVAL_JSON:-}" ]; then
    python3 "$ROOT/bench/compose_summary.py" write "$tmp/messages.jsonl" "$tmp/compose.out" \
        --wall-s "$wall_s" --alerts-total "$total" --concurrency "${LLM_CONCURRENCY:-1}" \
        --model "$model_desc" --out "$EVAL_JSON" >/dev/null
fi
python3 - "$tmp/messages.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for src in ("llm", "template"):
    ex = [r for r in rows if r["source"] == src][:2]
    for r in ex:
        print("example %s%s:\n  message: %s\n  explanation: %s" % (
            src, " (" + r["fallback_reason"] + ")" if r["fallback_reason"] else "",
            r["message"], r["explanation"][:300]))
PY
