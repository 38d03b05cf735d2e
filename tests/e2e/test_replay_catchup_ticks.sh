#!/usr/bin/env bash
# replay sweeps each tick before the event that moves the watermark past it, whatever the
# batch boundaries: with batch.max_messages=1 every event is the first of its batch, the case
# the rule once skipped (the tick was then swept after that event). Two 200-day logs that are
# the same until the first event past day 80's tick, user "e" coming back, in one of them
# (tests/e2e/catchup_log.py); every tick alerts (alert.threshold=0, no cooldown,
# model.min_examples=0); quiet user a's tick alerts up to day 80 must carry the same
# probability in both replays, and some after it must differ; at the default batch size too.
# Needs CS_BIN, CS_ROOT (tests/run-all.sh).
set -euo pipefail
: "${CS_BIN:?}" "${CS_ROOT:?}"
tmp=$(mktemp -d "${CS_TMP:-/tmp}/replay-catchup.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
LOG="python3 $CS_ROOT/tests/e2e/catchup_log.py"
die() { echo "test_replay_catchup_ticks: FAIL: $*" >&2; exit 1; }

$LOG csv "$tmp/plain.csv" plain
$LOG csv "$tmp/returns.csv" returns
for batch in 1 1000; do
    for kind in plain returns; do
        "$CS_BIN" replay --quiet --json --batch.max_messages="$batch" --alert.threshold=0 \
            --alert.cooldown=0d --alert.holdout_percent=0 --model.min_examples=0 \
            --alerts-out "$tmp/$kind-$batch.jsonl" "$tmp/$kind.csv" >"$tmp/$kind-$batch.json" ||
            die "replay of the $kind log (batch.max_messages=$batch) failed"
    done
    echo "  batch.max_messages=$batch:"
    $LOG compare "$tmp/plain-$batch.jsonl" "$tmp/returns-$batch.jsonl" ||
        die "user a's scores up to day 80 depend on a later event (batch.max_messages=$batch)"
done
echo "test_replay_catchup_ticks: ok"
