#!/usr/bin/env bash
# `run` catching up on a backlog scores each tick with what was known at that tick, as a
# replay does (churn_batch.c: a batch ends before a message that moves event time past a
# tick). Two 200-day logs that are the same until day 80, when user "e" comes back in one
# of them (tests/e2e/catchup_log.py), each already in its topic (one partition) when a
# fresh daemon starts, so the log arrives in large batches. Every tick alerts
# (alert.threshold=0, no cooldown, model.min_examples=0); every alert of users a, b and c up
# to e's return must carry the same probability in both runs, and some of quiet user a's
# after it must differ.
# Before the rule the first batch held the whole log and then swept its ticks: e's return
# (and the others' later activity) reached the BG/NBD refits of the early ticks.
# Needs CS_BIN, CS_ROOT, CS_KAFKA_BROKERS, CS_REDIS_HOST, CS_REDIS_PORT (tests/run-all.sh).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
e2e_begin catchup
LOG="python3 $CS_ROOT/tests/e2e/catchup_log.py"

one_run() { # NAME plain|returns: produce the log, catch up on it, dump the alerts
    local name=$1 kind=$2 topic="cu-$$-$1-$RANDOM" prefix="cu$$$1:"
    "$EO" create-topic "$B" "$topic" 1 || die "cannot create topic $topic"
    "$EO" create-topic "$B" "$topic.alerts" 1 || die "cannot create topic $topic.alerts"
    $LOG produce "$B" "$topic" "$kind" || die "cannot produce the $kind log"
    "$CS_BIN" run --kafka.bootstrap.servers="$B" --topic.events="$topic" \
        --topic.dlq="$topic.dlq" --topic.alerts="$topic.alerts" --kafka.group.id="g-$topic" \
        --state.prefix="$prefix" --redis.host="$CS_REDIS_HOST" --redis.port="$CS_REDIS_PORT" \
        --metrics.port=0 --kafka.session.timeout.ms=6000 --tick.idle_advance=1h \
        --alert.threshold=0 --alert.cooldown=0d --alert.holdout_percent=0 --model.min_examples=0 \
        --kafka.auto.offset.reset=earliest >"$tmp/run-$name.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    "$EO" wait-offsets "$B" "$topic" "$CS_REDIS_HOST" "$CS_REDIS_PORT" "$prefix" 60 >/dev/null ||
        die "the $kind run never caught up (tmp/run-$name.log)"
    kill -TERM "$pid"
    wait "$pid" || die "the $kind run exited $? after SIGTERM"
    pids=()
    "$CS_BIN" tail --topic="$topic.alerts" --from-beginning --json --timeout 5 \
        --kafka.bootstrap.servers="$B" >"$tmp/alerts-$name.jsonl" 2>"$tmp/tail-$name.err" ||
        die "tail of $topic.alerts failed: $(cat "$tmp/tail-$name.err")"
    local batches
    batches=$(grep -c . "$tmp/alerts-$name.jsonl" || true)
    echo "  $kind: $batches alerts"
    redis-cli -h "$CS_REDIS_HOST" -p "$CS_REDIS_PORT" --scan --pattern "$prefix*" |
        xargs -r redis-cli -h "$CS_REDIS_HOST" -p "$CS_REDIS_PORT" DEL >/dev/null
}
one_run p plain
one_run r returns
$LOG compare "$tmp/alerts-p.jsonl" "$tmp/alerts-r.jsonl" ||
    die "scores up to e's return depend on later events"
echo "test_run_catchup_ticks: ok in $(($(date +%s%3N) - t_start)) ms"
