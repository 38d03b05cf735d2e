#!/usr/bin/env bash
# Hostile conditions for `churnstream run`, `gen --topic` and `forget` against the real broker
# and real Redis (issue 11: items 4, 8, 9, 11, 12, 13 and the DLQ-reason mutation). Each case
# failed before its fix:
#   sigterm_broker   - SIGTERM while the broker is frozen (SIGSTOP): exit 0 within the
#                      watchdog, which is below systemd's TimeoutStopSec (item 8)
#   sigterm_redis    - SIGTERM while Redis is frozen mid-batch: exit 0, and the logged stop
#                      time is the true one, counted from the signal (item 8)
#   dlq_reasons      - one message per DLQ reason through the default (churn) handler: each
#                      arrives on the DLQ with its own reason code and a readable detail (a
#                      wrong magic byte is named; no INT64_MIN watermark) (item 13, mutation b)
#   missing_topic    - run on a topic that does not exist: SIGTERM exits 0 (UBSan build: no
#                      null pointer passed to memmove) (item 11)
#   gen_new_topic    - gen --topic NEW on a broker that auto-creates topics works the first
#                      time (item 12)
#   gen_outage       - gen --topic through a 20 s broker outage (SIGSTOP): every event is
#                      delivered, exit 0 (item 12)
#   health_unreachable - kafka.bootstrap.servers unreachable or empty: /healthz turns 503
#                      with the reason after session.timeout.ms + 10 s, and a warning is
#                      logged (item 9)
#   redis_lost_idle  - Redis loses its data (FLUSHALL; a restart without persistence) while
#                      the only partition is idle: it is re-read without a new message (item 9)
#   commit_lost_idle - a batch's transaction goes unanswered (CLIENT PAUSE WRITE longer than
#                      redis.command_timeout) while its commit overlaps collecting, and no
#                      message follows: the batch is retried by itself and committed once
#                      (batch.overlap_commit; its first version kept the batch waiting for a
#                      next message)
#   forget_outbox    - alerts pile up in the outbox while the broker throttles the producer;
#                      `forget USER` reports them removed, and none of them reaches the topic
#                      once it accepts writes again (only those forget reported as already
#                      handed to Kafka, or already on the topic, may) (item 4)
#   replay_future    - one row dated 2026 in a 2024 log is rejected by replay (bounded by the
#                      log's own event time, counted in the summary) and changes no figure;
#                      a genuine 60-day quiet spell is kept (item 10)
# HOSTILE_CASES="dlq_reasons sigterm_redis" selects. Needs CS_BIN, CS_ROOT, CS_KAFKA_BROKERS,
# CS_REDIS_PORT, CS_KAFKA_DIR (tests/run-all.sh sets them). Every process it starts is
# stopped by pid; a frozen service is thawed on every exit path.
set -euo pipefail
: "${CS_BIN:?}" "${CS_ROOT:?}" "${CS_KAFKA_BROKERS:?set by tests/run-all.sh}" "${CS_REDIS_PORT:?}"
: "${CS_KAFKA_DIR:?set by tests/run-all.sh}"
# shellcheck source=../services/redis.sh
. "$CS_ROOT/tests/services/redis.sh"

CASES=${HOSTILE_CASES:-replay_future dlq_reasons missing_topic gen_new_topic forget_outbox health_unreachable redis_lost_idle commit_lost_idle sigterm_redis sigterm_broker gen_outage}
B=$CS_KAFKA_BROKERS
KAFKA_PID=$(cat "$CS_KAFKA_DIR/pid")
tmp=$(mktemp -d "${CS_TMP:-/tmp}/hostile-daemon.XXXXXX")
pids=()
own_redis=""
failed=0
passed=0
cleanup() {
    local p
    kill -CONT "$KAFKA_PID" 2>/dev/null || true
    for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    if [ -n "$own_redis" ]; then
        kill -CONT "$(cat "$own_redis/pid" 2>/dev/null)" 2>/dev/null || true
        redis_stop "$own_redis" || true
    fi
    if [ "$failed" -eq 0 ]; then rm -rf "$tmp"; else echo "(logs kept in $tmp)"; fi
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
EO=$CS_ROOT/build/tests/tools/eo_tool
make -C "$CS_ROOT" --no-print-directory build/tests/tools/eo_tool >"$tmp/make.out" 2>&1 ||
    { cat "$tmp/make.out"; echo "FAIL: cannot build $EO" >&2; exit 1; }

# A case runs in a subshell: `fail` ends the case, the script goes on with the next one.
fail() {
    echo "FAIL [$case]: $*" >&2
    local f p
    for f in "$tmp/$case".*.log; do
        [ -f "$f" ] || continue
        echo "--- last lines of $f:" >&2
        tail -n 12 "$f" >&2
    done
    # The case runs in a subshell: what it started (its daemons, its own Redis) is known
    # here, not to the script's EXIT trap, so it is stopped here.
    kill -CONT "$KAFKA_PID" 2>/dev/null || true
    for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    if [ -n "$own_redis" ]; then
        kill -CONT "$(cat "$own_redis/pid" 2>/dev/null)" 2>/dev/null || true
        redis_stop "$own_redis" >/dev/null 2>&1 || true
    fi
    exit 1
}

# start_run NAME ARGS...: churnstream run in the background with test defaults; sets run_pid.
start_run() {
    local name=$1
    shift
    "$CS_BIN" run --kafka.bootstrap.servers="$B" --redis.port="$CS_REDIS_PORT" \
        --redis.connect_timeout=1s --kafka.session.timeout.ms=6000 \
        --kafka.heartbeat.interval.ms=500 --tick.idle_advance=1h "$@" \
        >>"$tmp/$case.$name.log" 2>&1 &
    run_pid=$!
    pids+=("$run_pid")
}
# metric PORT NAME: the value of an unlabelled metric (empty when unreachable).
metric() {
    curl -s --max-time 2 "http://127.0.0.1:$1/metrics" 2>/dev/null |
        awk -v n="$2" '$1 == n { print $2 }'
}
# wait_for SECONDS CMD...: until CMD succeeds; 1 on timeout.
wait_for() {
    local end=$(($(date +%s) + $1))
    shift
    until "$@"; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.1
    done
}
assigned() { [ "$(metric "$1" churnstream_assigned_partitions)" = "${2:-1}" ]; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# stop_timed PID: SIGTERM, wait (60 s at most); sets stop_rc (exit status, "hung") and
# stop_ms (SIGTERM to exit). Not in $(...): only the shell that started PID can wait for it.
stop_timed() {
    local pid=$1 t0 i
    t0=$(now_ms)
    stop_rc=0
    kill -TERM "$pid"
    for ((i = 0; i < 600; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        stop_rc=hung
    else
        wait "$pid" || stop_rc=$?
    fi
    stop_ms=$(($(now_ms) - t0))
}
# stored_offset_is PREFIX N: partition 0's next offset in Redis is N.
stored_offset_is() {
    [ "$(redis-cli -p "$CS_REDIS_PORT" HGET "${1}offsets" 0 2>/dev/null)" = "$2" ]
}
new_topic() { # NAME PARTITIONS: a fresh topic (retention.ms=-1); prints its name
    local t="hd-$1-$$-$RANDOM"
    "$EO" create-topic "$B" "$t" "$2" >"$tmp/create-$t.out" 2>&1 ||
        { cat "$tmp/create-$t.out" >&2; return 1; }
    echo "$t"
}

# own_redis_topic DIR TOPIC "GEN ARGS": a redis-server of the case's own in $tmp/DIR, a fresh
# one-partition topic filled by gen; sets the caller's own_redis, rport, t and port (a free
# metrics port).
own_redis_topic() {
    own_redis=$tmp/$1
    redis_start "$own_redis" >"$tmp/$case.redis.log" 2>&1 || fail "cannot start redis"
    rport=$(cat "$own_redis/port")
    t=$(new_topic "$2" 1) || fail "cannot create a topic"
    port=$(free_port)
    # shellcheck disable=SC2086 # the gen arguments split on purpose
    "$CS_BIN" gen $3 --quiet --topic "$t" \
        --kafka.bootstrap.servers="$B" >"$tmp/$case.gen.log" 2>&1 || fail "gen failed"
}

# The watchdog and the service managers' stop timeouts, from the sources.
watchdog_s() { sed -nE 's/^#define DM_SHUTDOWN_MAX_S +([0-9]+).*/\1/p' "$CS_ROOT/processor/daemon/daemon.h"; }
timeout_stop_s() { sed -nE 's/^TimeoutStopSec=([0-9]+)$/\1/p' "$CS_ROOT/processor/churnstream.service"; }

# ---- item 8: SIGTERM while the broker is frozen ---------------------------------------------
case_sigterm_broker() {
    local t port rc ms wd tss
    t=$(new_topic term-broker 1) || fail "cannot create a topic"
    port=$(free_port)
    "$CS_BIN" gen --users 50 --days 30 --seed 3 --quiet --topic "$t" \
        --kafka.bootstrap.servers="$B" >"$tmp/$case.gen.log" 2>&1 || fail "gen failed"
    start_run a --topic.events="$t" --topic.dlq="$t.dlq" --topic.alerts="$t.alerts" \
        --kafka.group.id="g-$t" --state.prefix="hd$$b:" --metrics.port="$port" \
        --model.min_examples=0 --alert.threshold=0
    wait_for 60 assigned "$port" || fail "no partition assigned within 60 s"
    # Alerts in the producer's queue make the flush wait too: let some be produced first.
    sleep 2
    kill -STOP "$KAFKA_PID"
    sleep 1
    stop_timed "$run_pid"
    kill -CONT "$KAFKA_PID"
    rc=$stop_rc ms=$stop_ms
    wd=$(watchdog_s) tss=$(timeout_stop_s)
    [ -n "$wd" ] && [ -n "$tss" ] || fail "cannot read DM_SHUTDOWN_MAX_S or TimeoutStopSec"
    [ "$wd" -lt "$tss" ] || fail "watchdog ${wd}s is not below systemd's TimeoutStopSec=${tss}s"
    [ "$rc" = 0 ] || fail "SIGTERM with the broker frozen: exit $rc after $ms ms, want 0"
    grep -q "stopped in .* exit status 0" "$tmp/$case.a.log" || fail "no 'stopped in' line"
    echo "  SIGTERM with the broker frozen: exit 0 after $ms ms (watchdog ${wd}s < TimeoutStopSec ${tss}s)"
}

# ---- item 8: SIGTERM while Redis is frozen mid-batch ----------------------------------------
case_sigterm_redis() {
    local t port rc ms logged rport
    own_redis_topic redis term-redis "--users 200 --days 60 --seed 4"
    CS_REDIS_PORT=$rport start_run a --topic.events="$t" --topic.dlq="$t.dlq" \
        --topic.alerts="$t.alerts" --kafka.group.id="g-$t" --state.prefix="hd$$r:" \
        --metrics.port="$port" --redis.command_timeout=3s --batch.max_messages=50 \
        --batch.catchup_factor=1
    wait_for 60 assigned "$port" || fail "no partition assigned within 60 s"
    # Frozen while batches flow: the daemon is inside a Redis call (or about to be).
    kill -STOP "$(cat "$own_redis/pid")"
    sleep 1
    stop_timed "$run_pid"
    kill -CONT "$(cat "$own_redis/pid")"
    rc=$stop_rc ms=$stop_ms
    [ "$rc" = 0 ] || fail "SIGTERM with Redis frozen: exit $rc after $ms ms, want 0"
    logged=$(sed -nE 's/.*stopped in ([0-9]+) ms.*/\1/p' "$tmp/$case.a.log")
    [ -n "$logged" ] || fail "no 'stopped in N ms after the stop request' line"
    # The log must tell the truth: the measured time includes process exit and polling
    # (100 ms slices), never less than what the process says it took.
    [ "$logged" -le "$ms" ] && [ $((ms - logged)) -le 1000 ] ||
        fail "log says stopped in $logged ms, the process took $ms ms from SIGTERM to exit"
    redis_stop "$own_redis" >/dev/null 2>&1 || true
    own_redis=""
    echo "  SIGTERM with Redis frozen: exit 0 after $ms ms; the log says $logged ms"
}

# ---- item 13 + mutation b: every DLQ reason through the churn handler -----------------------
case_dlq_reasons() {
    local t port
    t=$(new_topic dlq 1) || fail "cannot create a topic"
    port=$(free_port)
    python3 "$CS_ROOT/tests/e2e/hostile_msgs.py" write "$tmp/msgs.bin" || fail "cannot write the messages"
    local msgs="python3 $CS_ROOT/tests/e2e/hostile_msgs.py" want
    # Phase 1 (no watermark yet, then valid events) is committed before phase 2 is produced,
    # so phase 2 meets a watermark (the window is checked against the previous batches').
    $msgs produce "$tmp/msgs.bin" "$B" "$t" 1 || fail "cannot produce the messages"
    start_run a --topic.events="$t" --topic.dlq="$t.dlq" --topic.alerts="$t.alerts" \
        --kafka.group.id="g-$t" --state.prefix="hd$$d:" --metrics.port="$port" \
        --events.max_future=1d --events.max_past=30d
    dlq_has() { [ "$("$EO" end-offsets "$B" "$t.dlq" 2>/dev/null)" = "$want" ]; }
    want=$($msgs count-rejects "$tmp/msgs.bin" 1)
    wait_for 60 dlq_has || fail "the DLQ did not get phase 1's $want rejected messages within 60 s"
    wait_for 30 stored_offset_is "hd$$d:" 3 || fail "phase 1 not committed within 30 s"
    $msgs produce "$tmp/msgs.bin" "$B" "$t" 2 || fail "cannot produce the messages"
    want=$($msgs count-rejects "$tmp/msgs.bin")
    wait_for 60 dlq_has || fail "the DLQ did not get the $want rejected messages within 60 s"
    stop_timed "$run_pid"
    [ "$stop_rc" = 0 ] || fail "SIGTERM: exit $stop_rc"
    kcat -C -b "$B" -t "$t.dlq" -o beginning -e -q -f '%h\n' >"$tmp/dlq.headers" 2>"$tmp/kcat.err" ||
        fail "cannot read the DLQ: $(cat "$tmp/kcat.err")"
    python3 "$CS_ROOT/tests/e2e/hostile_msgs.py" check-dlq "$tmp/msgs.bin" "$tmp/dlq.headers" ||
        fail "DLQ reasons differ from the expected ones"
}

# ---- item 11: a topic that does not exist ----------------------------------------------------
case_missing_topic() {
    local port
    port=$(free_port)
    start_run a --topic.events="hd-missing-$$-$RANDOM" --kafka.group.id="g-missing-$$" \
        --state.prefix="hd$$m:" --metrics.port="$port"
    # Up and serving /metrics, never assigned anything.
    wait_for 30 curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$port/metrics" ||
        fail "no /metrics within 30 s"
    sleep 2
    stop_timed "$run_pid"
    [ "$stop_rc" = 0 ] || fail "SIGTERM on a missing topic: exit $stop_rc (sanitizer report?)"
    if grep -E "runtime error|AddressSanitizer|LeakSanitizer" "$tmp/$case.a.log"; then
        fail "sanitizer report"
    fi
}

# ---- item 10: replay bounds the future by the log's own event time --------------------------
case_replay_future() {
    local f
    "$CS_BIN" gen --users 300 --days 200 --seed 5 --quiet --out "$tmp/f.avro" \
        >"$tmp/$case.gen.log" 2>&1 || fail "gen failed"
    python3 "$CS_ROOT/tests/e2e/future_row.py" "$tmp/f.avro" "$tmp/clean.jsonl" \
        "$tmp/dirty.jsonl" "$tmp/gap.jsonl" 2026-11-01T00:00:00Z || fail "cannot write the logs"
    for f in clean dirty gap; do
        "$CS_BIN" replay "$tmp/$f.jsonl" >"$tmp/$case.$f.log" 2>&1 || fail "replay of $f exited $?"
    done
    # One row dated 2026 in a 2024 log: rejected and counted, every figure as without it.
    grep -q "^events .* 1 rejected (time_out_of_window 1)" "$tmp/$case.dirty.log" ||
        fail "the 2026 row was not rejected: $(grep '^events' "$tmp/$case.dirty.log")"
    grep -q "^future     1 events" "$tmp/$case.dirty.log" || fail "no 'future' line in the summary"
    diff <(grep -E "^(labels|  model|  recency|ticks)" "$tmp/$case.clean.log") \
        <(grep -E "^(labels|  model|  recency|ticks)" "$tmp/$case.dirty.log") ||
        fail "one future row changed the backtest"
    # A genuine 60-day quiet spell is the log moving on, not the future: nothing rejected.
    grep -q "^events .* 0 rejected" "$tmp/$case.gap.log" ||
        fail "a quiet spell was rejected as future: $(grep '^events' "$tmp/$case.gap.log")"
    echo "  replay: the 2026 row rejected (1), figures unchanged; a 60-day gap kept"
}

# ---- item 12: gen --topic on a new topic, and through a broker outage ----------------------
case_gen_new_topic() {
    local t="hd-gen-new-$$-$RANDOM" n
    # The test broker auto-creates topics (tests/services/kafka.sh): the first run must work.
    "$CS_BIN" gen --users 20 --days 10 --seed 1 --quiet --topic "$t" \
        --kafka.bootstrap.servers="$B" >"$tmp/$case.gen.log" 2>&1 ||
        fail "gen --topic NEW on a broker that auto-creates topics exited $?"
    n=$(sed -nE 's/.*done: ([0-9]+) events.*/\1/p' "$tmp/$case.gen.log")
    [ -n "$n" ] || fail "gen did not report its count: $(tail -3 "$tmp/$case.gen.log")"
    # Just after the broker resumes, a fresh client may not see the topic's partitions yet
    # ("Unknown partition"): ask again for a while; the count itself must be exact.
    end_offsets_are() { [ "$("$EO" end-offsets "$B" "$t" 2>/dev/null)" = "$n" ]; }
    wait_for 30 end_offsets_are ||
        fail "topic $t holds $("$EO" end-offsets "$B" "$t") messages, gen said $n"
    echo "  gen --topic NEW: $n events on the first run"
}

case_gen_outage() {
    local t gen_pid rc=0 n
    t=$(new_topic gen-outage 4) || fail "cannot create a topic"
    "$CS_BIN" gen --users 600 --days 60 --seed 9 --rate 15000 --quiet --topic "$t" \
        --kafka.bootstrap.servers="$B" >"$tmp/$case.gen.log" 2>&1 &
    gen_pid=$!
    pids+=("$gen_pid")
    sleep 1.5
    kill -0 "$gen_pid" 2>/dev/null || fail "gen ended before the outage (too few events?)"
    # An outage longer than librdkafka's 15 s that gen used to allow.
    kill -STOP "$KAFKA_PID"
    sleep 20
    kill -CONT "$KAFKA_PID"
    wait "$gen_pid" || rc=$?
    [ "$rc" -eq 0 ] || fail "gen exited $rc after a 20 s broker outage"
    n=$(sed -nE 's/.*done: ([0-9]+) events.*/\1/p' "$tmp/$case.gen.log")
    [ -n "$n" ] || fail "gen did not report its count: $(tail -3 "$tmp/$case.gen.log")"
    # Just after the broker resumes, a fresh client may not see the topic's partitions yet
    # ("Unknown partition"): ask again for a while; the count itself must be exact.
    end_offsets_are() { [ "$("$EO" end-offsets "$B" "$t" 2>/dev/null)" = "$n" ]; }
    wait_for 30 end_offsets_are ||
        fail "topic $t holds $("$EO" end-offsets "$B" "$t") messages, gen said $n"
    echo "  gen --topic through a 20 s broker outage: all $n events delivered"
}

# ---- item 9: health that lies ----------------------------------------------------------------
# healthz PORT: "STATUS BODY" of /healthz.
healthz() {
    curl -s --max-time 2 -o "$tmp/healthz.body" -w '%{http_code}' "http://127.0.0.1:$1/healthz" \
        2>/dev/null || true
}
healthz_is() { [ "$(healthz "$1")" = "$2" ]; }

case_health_unreachable() {
    local port servers
    for servers in "127.0.0.1:1" ""; do
        port=$(free_port)
        start_run "x${servers:+u}" --kafka.bootstrap.servers="$servers" --topic.events="hd-none-$$" \
            --kafka.group.id="g-none-$$" --state.prefix="hd$$h:" --metrics.port="$port"
        wait_for 20 curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$port/metrics" ||
            fail "no /metrics within 20 s (kafka.bootstrap.servers=\"$servers\")"
        # session.timeout.ms (6 s here) + 10 s for a group to answer; then 503 with the reason.
        wait_for 40 healthz_is "$port" 503 ||
            fail "/healthz still says $(healthz "$port") \"$(cat "$tmp/healthz.body")\" 40 s into a run that cannot reach Kafka (kafka.bootstrap.servers=\"$servers\")"
        grep -q "no partition assignment" "$tmp/healthz.body" ||
            fail "/healthz 503 without the reason: $(cat "$tmp/healthz.body")"
        grep -q "level=warn.*no partition assignment" "$tmp/$case.x${servers:+u}.log" ||
            fail "no warning in the log"
        stop_timed "$run_pid"
        [ "$stop_rc" = 0 ] || fail "SIGTERM: exit $stop_rc"
        echo "  kafka.bootstrap.servers=\"$servers\": /healthz 503: $(head -c 160 "$tmp/healthz.body")"
    done
}

# ---- item 9: Redis lost its data while a partition is idle ----------------------------------
case_redis_lost_idle() {
    local t port prefix="hd$$i:" n mode rport
    for mode in flush restart; do
        own_redis_topic "redis-$mode" "lost-$mode" "--users 100 --days 30 --seed 6"
        n=$("$EO" end-offsets "$B" "$t")
        CS_REDIS_PORT=$rport start_run "$mode" --topic.events="$t" --topic.dlq="$t.dlq" \
            --topic.alerts="$t.alerts" --kafka.group.id="g-$t" --state.prefix="$prefix" \
            --metrics.port="$port"
        CS_REDIS_PORT=$rport wait_for 60 stored_offset_is "$prefix" "$n" ||
            fail "never caught up with the $n messages"
        sleep 2 # idle now: no message will come
        if [ "$mode" = flush ]; then
            redis-cli -p "$rport" FLUSHALL >/dev/null
        else
            redis_stop "$own_redis" >/dev/null 2>&1
            redis_restart "$own_redis" >>"$tmp/$case.redis.log" 2>&1 || fail "redis restart failed"
        fi
        # No new message: the idle partition must be read again from the start by itself.
        CS_REDIS_PORT=$rport wait_for 60 stored_offset_is "$prefix" "$n" ||
            fail "[$mode] after Redis lost its data, the idle partition was not re-read within 60 s (stored offset $(redis-cli -p "$rport" HGET "${prefix}offsets" 0))"
        [ "$(redis-cli -p "$rport" ZCARD "${prefix}seen:0")" -gt 0 ] || fail "[$mode] seen:0 still empty"
        stop_timed "$run_pid"
        [ "$stop_rc" = 0 ] || fail "SIGTERM: exit $stop_rc"
        redis_stop "$own_redis" >/dev/null 2>&1 || true
        own_redis=""
        echo "  [$mode] Redis lost its data while idle: the partition was re-read ($n messages)"
    done
}

case_commit_lost_idle() {
    local t port prefix="hd$$c:" n1 n2 rport failures
    own_redis_topic redis-commit commit-lost "--users 50 --days 20 --seed 8"
    n1=$("$EO" end-offsets "$B" "$t")
    CS_REDIS_PORT=$rport start_run run --topic.events="$t" --topic.dlq="$t.dlq" \
        --topic.alerts="$t.alerts" --kafka.group.id="g-$t" --state.prefix="$prefix" \
        --metrics.port="$port" --redis.command_timeout=1s
    CS_REDIS_PORT=$rport wait_for 60 stored_offset_is "$prefix" "$n1" ||
        fail "never caught up with the first $n1 messages"
    sleep 1
    # Writes paused for 4 s: the next batch's reads are answered, its transaction is not
    # (its wait times out after 1 s, the connection is dropped, Redis discards it).
    redis-cli -p "$rport" CLIENT PAUSE 4000 WRITE >/dev/null || fail "CLIENT PAUSE failed"
    # Events after the first ones (2024-01-22, the day after they end): none is late.
    "$CS_BIN" gen --users 5 --days 1 --seed 9 --start 2024-01-22 --quiet --topic "$t" \
        --kafka.bootstrap.servers="$B" >>"$tmp/$case.gen.log" 2>&1 || fail "second gen failed"
    n2=$("$EO" end-offsets "$B" "$t")
    [ "$n2" -gt "$n1" ] || fail "the second gen added nothing ($n1 -> $n2)"
    # No message comes after these: the batch must be retried without one.
    CS_REDIS_PORT=$rport wait_for 30 stored_offset_is "$prefix" "$n2" ||
        fail "the batch whose commit went unanswered was not retried within 30 s (stored offset $(redis-cli -p "$rport" HGET "${prefix}offsets" 0), end $n2)"
    failures=$(metric "$port" churnstream_batch_failures_total)
    [ "${failures%%.*}" -ge 1 ] || fail "no batch failed: the pause did not catch a commit (failures: $failures)"
    stop_timed "$run_pid"
    [ "$stop_rc" = 0 ] || fail "SIGTERM: exit $stop_rc"
    redis_stop "$own_redis" >/dev/null 2>&1 || true
    own_redis=""
    echo "  a commit unanswered while idle: retried by itself ($failures failed attempts), $n2 messages committed"
}

# ---- item 4: forget and the daemon's outbox agree ---------------------------------------------
# client_quota CLIENT_ID --add-config K=V | --delete-config K: Kafka's own ConfigCommand.
client_quota() { # CLIENT_ID ARGS...: kafka-configs --alter on a client id's quotas
    local libs c=$1
    shift
    libs=$(. "$CS_ROOT/tests/services/common.sh" && echo "$SVC_KAFKA_LIBS")
    java -Xmx128m -XX:TieredStopAtLevel=1 -cp "$libs/*" kafka.admin.ConfigCommand \
        --bootstrap-server "$B" --alter --entity-type clients --entity-name "$c" "$@" \
        >>"$tmp/$case.config.log" 2>&1
}
case_forget_outbox() {
    local t ta port prefix="hd$$f:" n user held out removed inflight got early client
    t=$(new_topic forget 1) || fail "cannot create a topic"
    ta=$(new_topic forget-alerts 1) || fail "cannot create the alerts topic"
    # The daemon's produce requests are throttled to a trickle (a broker quota of 64 bytes/s
    # on its client id; consumers are not throttled), like a broker that barely accepts
    # alerts while events flow: the delivery window fills and the alerts after it wait
    # unclaimed in the outbox. (min.insync.replicas=2 on the single-replica alerts topic,
    # used before, does not refuse writes on this KRaft broker: the case passed by timing.)
    client="hd-forget-$$"
    client_quota "$client" --add-config producer_byte_rate=64 || fail "cannot throttle $client"
    "$CS_BIN" gen --users 100 --days 60 --seed 8 --quiet --topic "$t" \
        --kafka.bootstrap.servers="$B" >"$tmp/$case.gen.log" 2>&1 || fail "gen failed"
    n=$("$EO" end-offsets "$B" "$t")
    port=$(free_port)
    start_run a --topic.events="$t" --topic.dlq="$t.dlq" --topic.alerts="$ta" \
        --kafka.group.id="g-$t" --state.prefix="$prefix" --metrics.port="$port" \
        --alert.threshold=0 --model.min_examples=0 --kafka.client.id="$client"
    wait_for 60 stored_offset_is "$prefix" "$n" || fail "never caught up with the $n events"
    read -r user held < <(python3 "$CS_ROOT/tests/e2e/outbox_peek.py" "$CS_REDIS_PORT" "$prefix" top-user)
    [ "$user" != - ] && [ "$held" -gt 0 ] ||
        fail "no alert waiting unclaimed in the outbox ($(python3 "$CS_ROOT/tests/e2e/outbox_peek.py" "$CS_REDIS_PORT" "$prefix" count))"
    # Alerts of the user delivered before forget (the throttle lets a few bytes through) are
    # on the topic already and trimmed from the outbox, so forget can neither remove them
    # nor report them in flight. Count those first.
    kcat -C -b "$B" -t "$ta" -o beginning -e -q -f '%k\n' >"$tmp/$case.keys0" 2>"$tmp/kcat.err" ||
        fail "cannot read $ta: $(cat "$tmp/kcat.err")"
    early=$(grep -cxF -- "$user" "$tmp/$case.keys0" || true)
    out=$("$CS_BIN" forget --redis.port="$CS_REDIS_PORT" --state.prefix="$prefix" \
        --topic.alerts="$ta" "$user") || fail "forget exited $?"
    echo "$out" >"$tmp/$case.forget.out"
    removed=$(sed -nE 's/.* ([0-9]+) pending alerts? removed.*/\1/p' <<<"$out")
    inflight=$(sed -nE 's/^note: ([0-9]+) alerts? .*/\1/p' <<<"$out")
    inflight=${inflight:-0}
    [ -n "$removed" ] && [ "$removed" -gt 0 ] || fail "forget removed nothing: $out"
    # Lift the throttle: everything in flight and waiting goes out.
    client_quota "$client" --delete-config producer_byte_rate || fail "cannot unthrottle $client"
    outbox_empty() { [ "$(redis-cli -p "$CS_REDIS_PORT" HLEN "${prefix}outbox")" = 0 ]; }
    wait_for 120 outbox_empty || fail "the outbox never drained after the unblock"
    stop_timed "$run_pid"
    [ "$stop_rc" = 0 ] || fail "SIGTERM: exit $stop_rc"
    kcat -C -b "$B" -t "$ta" -o beginning -e -q -f '%k\n' >"$tmp/$case.keys" 2>"$tmp/kcat.err" ||
        fail "cannot read $ta: $(cat "$tmp/kcat.err")"
    got=$(grep -cxF -- "$user" "$tmp/$case.keys" || true)
    # What forget says must be what happens: only the alerts it reported as already handed
    # to Kafka may arrive; the ones it removed never do.
    [ "$got" -le $((inflight + early)) ] ||
        fail "forget said $removed alerts of $user removed and $inflight in flight ($early on the topic before), yet $got reached $ta"
    echo "  forget $user: $removed removed (never sent), $inflight in flight, $early sent before; $got on the topic of $(wc -l <"$tmp/$case.keys") alerts"
}

for case in $CASES; do
    echo "== $case"
    if (case_"$case"); then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
done
echo "test_hostile_daemon: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
