#!/usr/bin/env bash
# Exactly-once of `churnstream run` against the real broker and real Redis. ~200,000 generated
# events on a 4-partition topic; after each scenario the stored offsets must equal the topic's
# end offsets and every user's record (event-derived part, feat_event_part_equal) must equal
# an uninterrupted in-memory replay of the same events (tests/tools/eo_tool.c verify):
#   daemon  - the daemon SIGKILLed at 5 random moments mid-run and restarted each time
#   redis   - redis-server (AOF, fsync everysec, its own port) SIGKILLed mid-run and restarted;
#             then killed again and restarted from an AOF copy taken ~0.5 s earlier, so Redis
#             lost acknowledged commits and the daemon must seek back to the stored offsets
#   group   - two instances in one group while the events are produced; one SIGKILLed
#   sigterm - SIGTERM during load: exit 0 within 10 s; a restart finishes the topic
# EO_SCENARIOS="daemon redis" selects; EO_SEED fixes the random kill moments (printed).
# EO_RUN_ARGS adds `run` options to every instance (test_run_exactly_once_shared.sh: a shared
# model, whose journals must then all be merged at the end).
# The topics are created with retention.ms=-1: gen stamps messages with 2024 event times,
# which the broker's default 7-day retention would delete at its next check.
# Needs CS_BIN, CS_ROOT, CS_KAFKA_BROKERS, CS_REDIS_PORT (tests/run-all.sh sets them).
set -euo pipefail
: "${CS_BIN:?}" "${CS_ROOT:?}" "${CS_KAFKA_BROKERS:?set by tests/run-all.sh}" "${CS_REDIS_PORT:?}"
# shellcheck source=../services/redis.sh
. "$CS_ROOT/tests/services/redis.sh"

USERS=2000 DAYS=61 GEN_SEED=11 # 198,148-ish events (exact count checked against the topic)
SCENARIOS=${EO_SCENARIOS:-daemon redis group sigterm}
SEED=${EO_SEED:-$((($(date +%s) ^ $$) % 32768))}
RANDOM=$SEED
echo "test_run_exactly_once: scenarios [$SCENARIOS], random seed $SEED (EO_SEED=$SEED repeats it)"

tmp=$(mktemp -d "${CS_TMP:-/tmp}/exactly-once.XXXXXX")
run_pids=()
own_redis=""
keep=0
cleanup() {
    local p
    for p in "${run_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    for p in "${run_pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
    [ -n "$own_redis" ] && { kill -CONT "$(cat "$own_redis/pid" 2>/dev/null)" 2>/dev/null || true; redis_stop "$own_redis" || true; }
    [ -f "$tmp/FAILED" ] && keep=1 # die ran in a subshell
    if [ "$keep" -eq 1 ]; then echo "(logs kept in $tmp)"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
die() {
    keep=1
    touch "$tmp/FAILED"
    echo "FAIL [$scenario]: $*" >&2
    local f
    for f in "$tmp"/*.log; do
        [ -f "$f" ] || continue
        echo "--- last lines of $f (warnings and errors):" >&2
        grep -E 'level=(warn|error)' "$f" | tail -n 8 >&2 || true
    done
    exit 1
}
now_ms() { date +%s%3N; }
scenario=setup

make -C "$CS_ROOT" --no-print-directory build/tests/tools/eo_tool >"$tmp/make.out" 2>&1 ||
    { cat "$tmp/make.out"; die "cannot build build/tests/tools/eo_tool"; }
EO=$CS_ROOT/build/tests/tools/eo_tool
B=$CS_KAFKA_BROKERS
topic="eo-$$-$RANDOM"
# The topic is created with the admin API (4 partitions), so it holds only generated events.
"$EO" create-topic "$B" "$topic" 4 || die "cannot create topic $topic"
"$CS_BIN" gen --users $USERS --days $DAYS --seed $GEN_SEED --out "$tmp/events.avro" --quiet 2>/dev/null
"$CS_BIN" gen --users $USERS --days $DAYS --seed $GEN_SEED --topic "$topic" --kafka.bootstrap.servers="$B" \
    --quiet 2>/dev/null || die "gen to $topic failed"
total=$("$EO" end-offsets "$B" "$topic")
echo "topic $topic: $total events on 4 partitions"
[ "$total" -ge 150000 ] || die "expected ~200,000 events, the topic holds $total"

# start_run NAME PREFIX REDIS_PORT TOPIC [GROUP]: one `churnstream run` in the background;
# its pid in $run_pid, its log in $tmp/NAME.log (appended across restarts).
run_pid=""
start_run() {
    local name=$1 prefix=$2 port=$3 t=$4 group=${5:-g-$2$4}
    "$CS_BIN" run --kafka.bootstrap.servers="$B" --topic.events="$t" --topic.dlq="$t.dlq" \
        --topic.alerts="$t.alerts" --kafka.group.id="$group" --state.prefix="$prefix" \
        --redis.port="$port" --redis.connect_timeout=1s --metrics.port=0 \
        --kafka.session.timeout.ms=6000 --kafka.heartbeat.interval.ms=500 \
        --tick.idle_advance=1h --batch.max_messages=100 --batch.catchup_factor=1 \
        ${EO_RUN_ARGS:-} >>"$tmp/$name.log" 2>&1 &
    run_pid=$!
    run_pids+=("$run_pid")
}
# stored_sum PREFIX PORT: the sum of the stored next offsets (0 when none, -1 when Redis is down).
stored_sum() {
    local out
    out=$(redis-cli -h 127.0.0.1 -p "$2" HVALS "${1}offsets" 2>/dev/null) || { echo -1; return; }
    echo "$out" | awk '{ s += $1 } END { print s + 0 }'
}
# wait_progress PREFIX PORT ABOVE PID...: until the stored sum exceeds ABOVE (60 s at most);
# fails when a daemon died meanwhile. Prints the sum.
wait_progress() {
    local prefix=$1 port=$2 above=$3 i s p
    shift 3
    for ((i = 0; i < 1200; i++)); do
        s=$(stored_sum "$prefix" "$port")
        [ "$s" -gt "$above" ] && { echo "$s"; return 0; }
        for p in "$@"; do kill -0 "$p" 2>/dev/null || die "churnstream run (pid $p) exited early"; done
        sleep 0.05
    done
    die "no progress past $above stored offsets in 60 s"
}
# random_sleep MAX_MS
random_sleep() { sleep "$(awk -v r=$((RANDOM % ($1 + 1))) 'BEGIN { printf "%.3f", r / 1000 }')"; }
# stop_run PID NAME: SIGTERM; must exit 0 within 10 s.
stop_run() {
    local pid=$1 t0 rc=0 i
    t0=$(now_ms)
    kill -TERM "$pid"
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && die "$2 (pid $pid) still running 10 s after SIGTERM"
    wait "$pid" || rc=$?
    [ "$rc" -eq 0 ] || die "$2 (pid $pid) exited $rc after SIGTERM, want 0"
    echo "  $2: SIGTERM -> exit 0 in $(($(now_ms) - t0)) ms"
}
# finish PREFIX PORT TOPIC PID NAME: wait until caught up, SIGTERM, verify against the replay.
finish() {
    "$EO" wait-offsets "$B" "$3" 127.0.0.1 "$2" "$1" 90 || die "never caught up"
    stop_run "$4" "$5"
    local dlq
    # A failed read is a failure, not "nothing rejected"; the rejected count comes from the
    # daemon's own log too, so an absent DLQ topic (never created: nothing produced) is
    # told apart from an unreadable one.
    dlq=$("$EO" end-offsets "$B" "$3.dlq" 2>"$tmp/dlq.err") ||
        { cat "$tmp/dlq.err" >&2; die "cannot read the end offsets of the DLQ $3.dlq"; }
    [[ "$dlq" =~ ^[0-9]+$ ]] || die "end-offsets of $3.dlq printed \"$dlq\", not a count"
    [ "$dlq" -eq 0 ] || die "$dlq events went to the DLQ $3.dlq (all generated events are valid)"
    "$EO" verify "$tmp/events.avro" "$B" "$3" 127.0.0.1 "$2" "$1" || die "the final state differs"
    if [[ "${EO_RUN_ARGS:-}" == *model.sync_interval* ]]; then
        local st
        st=$("$CS_BIN" inspect model --redis.port="$2" --state.prefix="$1" | grep '^shared ') ||
            die "inspect model shows no shared-model state"
        [[ "$st" == *", 0 entries waiting"* ]] || die "journals left unmerged: $st"
        echo "  $st"
    fi
}

# --- 1. the daemon SIGKILLed at 5 random moments, restarted each time ---
scenario_daemon() {
    local prefix="eo$$d:" sum=0 k
    start_run daemon "$prefix" "$CS_REDIS_PORT" "$topic"
    for k in 1 2 3 4 5; do
        sum=$(wait_progress "$prefix" "$CS_REDIS_PORT" "$sum" "$run_pid")
        random_sleep 400
        kill -KILL "$run_pid"
        wait "$run_pid" 2>/dev/null || true
        sum=$(stored_sum "$prefix" "$CS_REDIS_PORT")
        echo "  kill $k: SIGKILL at $sum of $total stored"
        [ "$sum" -lt "$total" ] || die "kill $k came after the end: the crash was not mid-run"
        start_run daemon "$prefix" "$CS_REDIS_PORT" "$topic"
    done
    finish "$prefix" "$CS_REDIS_PORT" "$topic" "$run_pid" daemon
}

# --- 2. redis-server SIGKILLed mid-run (AOF everysec), then a restart that lost commits ---
scenario_redis() {
    local prefix="eo$$r:" dir="$tmp/redis" port sum snap pid
    redis_start "$dir" --aof >/dev/null || die "cannot start a redis with AOF"
    own_redis=$dir
    port=$(cat "$dir/port")
    start_run redis "$prefix" "$port" "$topic"
    pid=$run_pid
    sum=$(wait_progress "$prefix" "$port" 0 "$pid")
    random_sleep 400
    redis_kill "$dir" || die "cannot kill redis"
    echo "  redis SIGKILLed (daemon had $sum+ stored); restarting in 1 s"
    sleep 1
    redis_restart "$dir" >/dev/null || die "redis did not restart"
    sum=$(stored_sum "$prefix" "$port")
    echo "  redis restarted from its AOF: $sum stored"
    sum=$(wait_progress "$prefix" "$port" "$sum" "$pid")
    # Redis loses acknowledged commits: a copy of the AOF taken now is what it restarts from
    # after the daemon has committed more. The daemon's consumer is past the stored offsets.
    kill -STOP "$(cat "$dir/pid")"
    rm -rf "$tmp/aof-copy"
    cp -a "$dir/appendonlydir" "$tmp/aof-copy"
    kill -CONT "$(cat "$dir/pid")"
    sum=$(wait_progress "$prefix" "$port" $((sum + 3000)) "$pid")
    # The daemon is frozen across the swap (for well under its 6 s session timeout), so what
    # the restarted Redis holds is read before the daemon touches it again.
    kill -STOP "$pid"
    sum=$(stored_sum "$prefix" "$port")
    redis_kill "$dir" || die "cannot kill redis"
    rm -rf "$dir/appendonlydir"
    mv "$tmp/aof-copy" "$dir/appendonlydir"
    redis_restart "$dir" >/dev/null || die "redis did not restart from the AOF copy"
    snap=$(stored_sum "$prefix" "$port")
    kill -CONT "$pid"
    echo "  redis SIGKILLed at $sum stored, restarted from an older AOF copy: $snap stored"
    [ "$snap" -lt "$sum" ] || die "the AOF copy holds $snap stored offsets, not fewer than $sum"
    finish "$prefix" "$port" "$topic" "$pid" redis
    grep -q "Redis lost acknowledged writes" "$tmp/redis.log" ||
        die "the daemon did not notice that Redis lost commits"
    grep -q "resuming from stored offset" "$tmp/redis.log" ||
        die "the daemon never sought back to the stored offsets after Redis lost commits"
    redis_stop "$dir" || true
    own_redis=""
}

# --- 3. two instances in one group, one SIGKILLed while the events are produced ---
scenario_group() {
    local prefix="eo$$g:" t="$topic-g" a b sum
    "$EO" create-topic "$B" "$t" 4 || die "cannot create topic $t"
    start_run group-a "$prefix" "$CS_REDIS_PORT" "$t" "g-$t"
    a=$run_pid
    start_run group-b "$prefix" "$CS_REDIS_PORT" "$t" "g-$t"
    b=$run_pid
    local i
    for ((i = 0; i < 200; i++)); do
        grep -q "assigned partition" "$tmp/group-a.log" 2>/dev/null &&
            grep -q "assigned partition" "$tmp/group-b.log" 2>/dev/null && break
        sleep 0.1
    done
    [ "$i" -lt 200 ] || die "the two instances were not both assigned partitions in 20 s"
    sleep 1 # the rebalance that gave B its share also reassigned A
    "$CS_BIN" gen --users $USERS --days $DAYS --seed $GEN_SEED --topic "$t" --kafka.bootstrap.servers="$B" \
        --rate 40000 --quiet 2>/dev/null &
    local gen_pid=$!
    sum=$(wait_progress "$prefix" "$CS_REDIS_PORT" 20000 "$a" "$b")
    random_sleep 1000
    kill -KILL "$a"
    wait "$a" 2>/dev/null || true
    echo "  instance A SIGKILLed at $(stored_sum "$prefix" "$CS_REDIS_PORT") stored (B goes on)"
    wait "$gen_pid" || die "gen to $t failed"
    [ "$("$EO" end-offsets "$B" "$t")" -eq "$total" ] || die "topic $t does not hold $total events"
    finish "$prefix" "$CS_REDIS_PORT" "$t" "$b" group-b
    # B must have taken over partitions after A died (more than its first share).
    [ "$(grep -c "assigned partition" "$tmp/group-b.log")" -gt 2 ] ||
        die "instance B never took over A's partitions"
}

# --- 4. SIGTERM during load, then a restart that finishes ---
scenario_sigterm() {
    local prefix="eo$$t:" sum
    start_run sigterm "$prefix" "$CS_REDIS_PORT" "$topic"
    sum=$(wait_progress "$prefix" "$CS_REDIS_PORT" 0 "$run_pid")
    random_sleep 400
    stop_run "$run_pid" sigterm
    sum=$(stored_sum "$prefix" "$CS_REDIS_PORT")
    [ "$sum" -lt "$total" ] || die "SIGTERM came after the end: not during load"
    echo "  stopped at $sum of $total stored; restarting"
    start_run sigterm "$prefix" "$CS_REDIS_PORT" "$topic"
    finish "$prefix" "$CS_REDIS_PORT" "$topic" "$run_pid" sigterm
}

for scenario in $SCENARIOS; do
    t0=$(now_ms)
    echo "== $scenario"
    "scenario_$scenario"
    echo "== $scenario: ok in $((($(now_ms) - t0) / 1000)) s"
done
echo "test_run_exactly_once: ok ($SCENARIOS)"
