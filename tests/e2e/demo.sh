#!/usr/bin/env bash
# `make demo`: the whole pipeline on one machine with no broker to install. Starts a
# throwaway redis-server, librdkafka's mock Kafka cluster (`churnstream mock-kafka`), the
# daemon (`churnstream run`) and `churnstream tail`, feeds synthetic events with planted
# churners (`churnstream gen`), shows the alerts as they arrive, prints a summary scored
# against gen's ground truth, and stops everything it started (by pid; also on Ctrl-C).
#   tests/e2e/demo.sh BIN            (DEMO_LIMIT_S caps the wait for alerts, default 120;
#                                     DEMO_LLM=1 adds retention messages by a local model)
# Exit status 0 when alerts arrived; 1 when something failed (its log tail is printed).
set -uo pipefail

[ $# -eq 1 ] || { echo "usage: $0 path/to/churnstream" >&2; exit 2; }
BIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -x "$BIN" ] || { echo "demo: $1 is not an executable (run make first)" >&2; exit 2; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../services/redis.sh
. "$ROOT/tests/services/redis.sh"

USERS=${DEMO_USERS:-800}
DAYS=${DEMO_DAYS:-200}
SEED=${DEMO_SEED:-42}
LIMIT_S=${DEMO_LIMIT_S:-120}
SETTLE_S=${DEMO_SETTLE_S:-6}
# The closed loop (README: Alerts, Outcomes): `churnstream respond` makes treated planted
# churners come back with probability EFFECT; half the alerted users are held out so the
# uplift has a usable interval; gen is paced so a return arrives while its window is open.
EFFECT=${DEMO_EFFECT:-0.2}
HOLDOUT=${DEMO_HOLDOUT:-50}
RATE=${DEMO_RATE:-20000}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/churnstream-demo.XXXXXX")
START_MS=$(svc_now_ms)

# Colours only on a terminal.
if [ -t 1 ]; then B=$'\e[1m' D=$'\e[2m' N=$'\e[0m'; else B='' D='' N=''; fi
say() { printf '%s==> %s%s\n' "$B" "$*" "$N"; }
note() { printf '%s    %s%s\n' "$D" "$*" "$N"; }

mock_pid='' run_pid='' tail_pid='' show_pid='' gen_pid='' status=0
# Every pid this script started, for tests/e2e/test_demo.sh (it checks none outlives us).
echo $$ >"$DIR/pids"

stop_all() {
    trap - EXIT INT TERM
    # Newest first: the viewer, the producer of events, the daemon (it commits and flushes
    # on SIGTERM), then the services it needs.
    local p
    for p in "$gen_pid" "$tail_pid" "$run_pid"; do
        [ -n "$p" ] && svc_stop_pid "$p" 20 churnstream
    done
    # The display follows the alert file until its writer is gone; give it a moment to print
    # the last lines, then stop it.
    [ -n "$show_pid" ] && { sleep 0.3; svc_stop_pid "$show_pid" 5 tail; }
    [ -n "${llm_pid:-}" ] && svc_stop_pid "$llm_pid" 10 llama_cpp.server
    [ -n "$mock_pid" ] && svc_stop_pid "$mock_pid" 10 mock-kafka
    redis_stop "$DIR/redis" >/dev/null 2>&1 || true
    if [ "$status" -eq 0 ] && [ -z "${DEMO_KEEP:-}" ]; then
        rm -rf "$DIR"
    else
        echo "(logs kept in $DIR)"
    fi
}
trap 'stop_all; exit $status' EXIT
trap 'echo; echo "demo: interrupted, stopping everything it started"; status=130; exit 130' INT
trap 'status=143; exit 143' TERM

# fail WHAT LOG: print the last lines of LOG and exit 1.
fail() {
    status=1
    echo "demo: FAILED: $1" >&2
    if [ -n "${2:-}" ] && [ -f "$2" ]; then
        echo "--- last lines of $2:" >&2
        tail -n 25 "$2" >&2
    fi
    exit 1
}

metric() { # NAME: the sum of a metric over its labels on the daemon's /metrics, or nothing
    curl -fsS --max-time 2 "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null |
        awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2; n++ } END { if (n) printf "%d\n", s }'
}

cat <<EOF
${B}churnstream demo${N}: the full streaming pipeline on this machine, no broker to install.
  1. a throwaway redis-server holds per-user features, the model and the alert outbox;
  2. an in-process mock Kafka cluster (librdkafka's, in \`churnstream mock-kafka\`) plays
     the broker: topics events, churn-alerts and events.dlq;
  3. \`churnstream run\` consumes events, updates time-decayed features per user, segments
     users (k-means), learns churn online (logistic regression) and produces alerts;
  4. \`churnstream tail\` prints every alert the daemon produces, one line each.
Working directory: $DIR
EOF

# --- services ---
say "starting redis-server"
redis_start "$DIR/redis" >"$DIR/redis.start" 2>&1 || fail "redis-server did not start" "$DIR/redis.start"
echo "$(cat "$DIR/redis/pid")" >>"$DIR/pids"
REDIS_PORT=$(cat "$DIR/redis/port")
note "$(cat "$DIR/redis.start")"

say "starting the mock Kafka cluster"
"$BIN" mock-kafka --port-file "$DIR/bootstrap" >"$DIR/mock.log" 2>&1 &
mock_pid=$!
echo "$mock_pid" >>"$DIR/pids"
for ((i = 0; i < 100; i++)); do
    [ -s "$DIR/bootstrap" ] && break
    svc_pid_alive "$mock_pid" || fail "mock-kafka exited" "$DIR/mock.log"
    sleep 0.1
done
[ -s "$DIR/bootstrap" ] || fail "mock-kafka gave no address in 10 s" "$DIR/mock.log"
BOOT=$(cat "$DIR/bootstrap")
note "mock broker on $BOOT (pid $mock_pid)"

# The demo's settings: event time follows the events only (tick.idle_advance=1h: the events
# are from 2024, and letting an idle stream follow the 2026 wall clock would make every user
# look gone), the model alerts after 300 labelled examples, short batches, warnings only, and
# a shorter group session for the mock's slow first join.
METRICS_PORT=$(svc_free_ports 1)
COMMON=(--kafka.bootstrap.servers="$BOOT")
RUN_ARGS=("${COMMON[@]}" --log.level=warn --redis.host=127.0.0.1 --redis.port="$REDIS_PORT"
    --state.prefix=demo: --tick.idle_advance=1h --model.min_examples=300
    --batch.max_wait=200ms --metrics.port="$METRICS_PORT" --kafka.session.timeout.ms=6000
    --alert.holdout_percent="$HOLDOUT" --alert.cooldown=32d)

say "starting the daemon: churnstream run"
"$BIN" run "${RUN_ARGS[@]}" >"$DIR/run.log" 2>&1 &
run_pid=$!
echo "$run_pid" >>"$DIR/pids"
# Ready when it holds the four partitions of topic events (the group join takes ~3 s).
for ((i = 0; i < 300; i++)); do
    svc_pid_alive "$run_pid" || fail "churnstream run exited" "$DIR/run.log"
    [ "$(metric churnstream_assigned_partitions)" = 4 ] && break
    sleep 0.1
done
[ "$(metric churnstream_assigned_partitions)" = 4 ] ||
    fail "churnstream run did not get its partitions in 30 s" "$DIR/run.log"
note "consumer group joined, 4 partitions assigned (pid $run_pid, metrics on 127.0.0.1:$METRICS_PORT)"

say "starting the alert viewer: churnstream tail"
: >"$DIR/alerts.txt"
"$BIN" tail "${COMMON[@]}" --log.level=warn --from-beginning >"$DIR/alerts.txt" 2>"$DIR/tail.log" &
tail_pid=$!
echo "$tail_pid" >>"$DIR/pids"
# The viewer's lines reach the screen through a follower of its output file, so the script
# keeps the file for the summary and the screen shows each line as it is written.
tail -n +1 -f "$DIR/alerts.txt" &
show_pid=$!
echo "$show_pid" >>"$DIR/pids"
sleep 0.5
svc_pid_alive "$tail_pid" || fail "churnstream tail exited" "$DIR/tail.log"

say "generating $DAYS days of events for $USERS users (seed $SEED)"
cat <<EOF
    Each user browses, searches, carts, buys, uses coupons, asks support; about 30% are
    planted churners whose activity fades over a few weeks before they go silent (some
    cancel first). gen writes the truth (who churns, when) to a file the daemon never sees.
    \`churnstream respond\` plays the customers: a treatment-arm alert of a planted churner
    brings the user back within a day with probability $EFFECT (the planted effect);
    holdout alerts ($HOLDOUT% of users) get nothing. The daemon measures whether each
    alerted user was active again within 30 days (the outcome) and the uplift.
    Event time runs from 2024-01-01; the daemon's clock follows the events, so 200 days
    pass in seconds. The model alerts once it has 300 labelled examples (a user's label is
    known only after the label horizon): the first alerts are rough guesses about new
    users, later ones follow the fading activity of the planted churners.

${B}Alerts below${N}: each line is one ChurnAlert the daemon produced to topic churn-alerts:
    DATE USER p=PROBABILITY BUCKET KIND TRIGGER seg SEGMENT "name (what its centre looks like)"
      (KIND: at_risk = still in their own rhythm but slipping, lapsed = quiet past it;
       TRIGGER: tick = the daily sweep, event = a cancel, refund or support ticket)
      -> RECOMMENDED ACTION [ARM: treatment = act, holdout = measure uplift]
      top: the features that pushed the score up most: high/low against the population,
           the user's value, the log-odds contribution
    (BUCKET: low/medium/high by alert.buckets; the action follows the bucket, the kind and
     the segment's name: see \`churnstream help actions\`)
EOF
# The truth first (same seed, same users): the responder needs to know the planted churners.
"$BIN" gen --users "$USERS" --days "$DAYS" --seed "$SEED" --out "$DIR/events.avro" \
    --truth "$DIR/truth.csv" --quiet >"$DIR/gen-truth.log" 2>&1 ||
    fail "churnstream gen (truth) failed" "$DIR/gen-truth.log"
rm -f "$DIR/events.avro"
# After its last alert the responder moves event time to the log's end + outcome.window + 1
# day, so every alert made before the end gets its outcome.
ADVANCE=$(date -u -d "2024-01-01 + $((DAYS + 31)) days" +%F)
"$BIN" respond "${COMMON[@]}" --log.level=warn --truth "$DIR/truth.csv" --effect "$EFFECT" \
    --seed "$SEED" --delay-days 1 --from-beginning --timeout $((SETTLE_S + 2)) \
    --advance-to "$ADVANCE" >"$DIR/respond.log" 2>&1 &
respond_pid=$!
echo "$respond_pid" >>"$DIR/pids"
"$BIN" gen "${COMMON[@]}" --users "$USERS" --days "$DAYS" --seed "$SEED" --topic events \
    --rate "$RATE" --truth "$DIR/truth-topic.csv" --quiet >"$DIR/gen.log" 2>&1 &
gen_pid=$!
echo "$gen_pid" >>"$DIR/pids"
wait "$gen_pid" || { gen_pid=''; fail "churnstream gen failed" "$DIR/gen.log"; }
gen_pid=''
EVENTS=$(sed -n 's/.*done: \([0-9]*\) events.*/\1/p' "$DIR/gen.log" | tail -n 1)
[ -n "$EVENTS" ] || fail "churnstream gen did not report its event count" "$DIR/gen.log"

# --- wait: every event consumed, then no new alert for SETTLE_S seconds ---
deadline_ms=$(($(svc_now_ms) + LIMIT_S * 1000))
last_n=-1
quiet_since=$(svc_now_ms)
consumed=0
while :; do
    now=$(svc_now_ms)
    [ "$now" -gt "$deadline_ms" ] && { note "(time limit of ${LIMIT_S}s reached)"; break; }
    svc_pid_alive "$run_pid" || fail "churnstream run died" "$DIR/run.log"
    svc_pid_alive "$tail_pid" || fail "churnstream tail died" "$DIR/tail.log"
    consumed=$(metric churnstream_events_in_total)
    n=$(wc -l <"$DIR/alerts.txt")
    if [ "$n" != "$last_n" ]; then
        last_n=$n
        quiet_since=$now
    fi
    if [ "${consumed:-0}" -ge "$EVENTS" ] && [ $((now - quiet_since)) -ge $((SETTLE_S * 1000)) ]; then
        break
    fi
    sleep 0.5
done
sleep 0.3

# --- the loop's end: the responder's last returns, then event time past every window ---
for ((i = 0; i < 120; i++)); do
    svc_pid_alive "$respond_pid" || break
    sleep 0.5
done
wait "$respond_pid" || fail "churnstream respond failed" "$DIR/respond.log"
advance_ms=$(($(date -u -d "$ADVANCE" +%s) * 1000))
last_o=-1
stable_since=$(svc_now_ms)
for ((i = 0; i < 120; i++)); do
    lag_s=$(curl -fsS --max-time 2 "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null |
        awk '$1 == "churnstream_watermark_lag_seconds" { printf "%d\n", $2 }')
    o=$(metric churnstream_alert_outcomes_total)
    [ "$o" != "$last_o" ] && { last_o=$o; stable_since=$(svc_now_ms); }
    if [ -n "$lag_s" ] && [ $(($(svc_now_ms) - lag_s * 1000)) -ge $((advance_ms - 7200000)) ] &&
        [ $(($(svc_now_ms) - stable_since)) -ge 2000 ]; then
        break
    fi
    sleep 0.5
done
curl -fsS --max-time 2 "http://127.0.0.1:$METRICS_PORT/metrics" >"$DIR/metrics.txt" 2>/dev/null || true

# --- summary ---
ALERTS_IN=$(metric churnstream_alerts_total)
say "summary after $(svc_elapsed "$START_MS") s"
"${SVC_PYTHON}" - "$DIR/alerts.txt" "$DIR/truth.csv" "$EVENTS" "${consumed:-0}" "${ALERTS_IN:-?}" \
    "$DIR/metrics.txt" "$EFFECT" "$DIR/respond.log" "$DAYS" <<'PY'
import csv, math, sys, datetime as dt
alerts_path, truth_path, events, consumed, produced, metrics_path, effect, resp_log, days = \
    sys.argv[1:10]
end_date = (dt.date(2024, 1, 1) + dt.timedelta(days=int(days))).isoformat()
churn = {}
with open(truth_path) as f:
    for row in csv.DictReader(f):
        churn[row["user_id"]] = int(row["churn_time_ms"]) if row["churn_time_ms"] else None
all_lines = [l.split() for l in open(alerts_path) if l.strip()]
# Alerts dated after the log's end come from the days the responder's --advance-to moves
# event time through (to close the outcome windows), when every user looks quiet: the
# counts by bucket, arm, kind and action are of every alert on the screen; precision,
# recall and lead time are about the log's own alerts.
lines = [w for w in all_lines if w[0] < end_date]
buckets, arms, kinds, actions, first = {}, {}, {}, {}, {}
for line in open(alerts_path):
    if " -> " in line and " [" in line:
        act = line.split(" -> ", 1)[1].rsplit(" [", 1)[0]
        actions[act] = actions.get(act, 0) + 1
for w in all_lines:
    date, user, bucket, kind = w[0], w[1], w[3], w[4]
    kinds[kind] = kinds.get(kind, 0) + 1
    arm = next((x.strip("[]") for x in w if x.startswith("[") and x.endswith("]")), "?")
    buckets[bucket] = buckets.get(bucket, 0) + 1
    arms[arm] = arms.get(arm, 0) + 1
    if date < end_date:
        first.setdefault(user, date)
users = len(first)
planted = sum(1 for v in churn.values() if v is not None)
hits = [u for u in first if churn.get(u) is not None]
print(f"    events: {int(events):,} generated, {int(consumed):,} consumed by the daemon")
print(f"    alerts: {len(all_lines)} printed ({produced} produced by the daemon); "
      f"{len(lines)} for {users} users up to the log's end ({end_date}), "
      f"{len(all_lines) - len(lines)} after it (event time moved on to close the outcome windows)")
print("    by bucket: " + ", ".join(f"{k} {v}" for k, v in sorted(buckets.items())) +
      "; by arm: " + ", ".join(f"{k} {v}" for k, v in sorted(arms.items())) +
      "; by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
print(f"    by action ({len(actions)}): " +
      ", ".join(f"{k} {v}" for k, v in sorted(actions.items(), key=lambda kv: -kv[1])))
if users:
    print(f"    precision: {len(hits)}/{users} alerted users are planted churners "
          f"({100 * len(hits) / users:.0f}%; {100 * planted / len(churn):.0f}% of all users are)")
    print(f"    recall: {len(hits)}/{planted} planted churners got an alert "
          f"({100 * len(hits) / max(planted, 1):.0f}%)")
    # gen's default start is 2024-01-01: day 100 is 2024-04-10
    late = [u for u, d in first.items() if d >= "2024-04-10"]
    if late:
        lh = sum(1 for u in late if churn.get(u) is not None)
        print(f"    precision of users first alerted after 100 days (a trained model): "
              f"{lh}/{len(late)} ({100 * lh / len(late):.0f}%)")
    leads = []
    for u in hits:
        d = dt.datetime.strptime(first[u], "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
        leads.append((churn[u] / 1000 - d.timestamp()) / 86400)
    leads.sort()
    if leads:
        ahead = sum(1 for x in leads if x > 0)
        med = leads[len(leads) // 2]
        when = f"{med:.0f} days before" if med >= 0.5 else (
            f"{-med:.0f} days after" if med <= -0.5 else "on the day of")
        print(f"    lead time: the first alert came before the planted churn time for "
              f"{ahead}/{len(leads)} of them (median: {when} it)")
# The closed loop, from the daemon's /metrics (outcomes it decided, exactly once).
n = {"treatment": [0, 0], "holdout": [0, 0]}
for line in open(metrics_path):
    if line.startswith("churnstream_alert_outcomes_total{"):
        key, v = line.rsplit(" ", 1)
        arm = "holdout" if 'arm="holdout"' in key else "treatment"
        if 'outcome="retained"' in key:
            n[arm][0] += int(float(v)); n[arm][1] += int(float(v))
        elif 'outcome="not_retained"' in key:
            n[arm][1] += int(float(v))
resp = [l.strip() for l in open(resp_log) if l.startswith("respond:")]
if resp:
    print("    closed loop: " + resp[-1][len("respond: "):])
(r1, n1), (r0, n0) = n["treatment"], n["holdout"]
if n1 and n0:
    p1, p0 = r1 / n1, r0 / n0
    se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    u, lo, hi = p1 - p0, p1 - p0 - 1.959964 * se, p1 - p0 + 1.959964 * se
    k = 1 - p0
    ok = "yes" if lo / k <= float(effect) <= hi / k else "NO"
    print(f"    outcomes (active again within 30 days): treatment {100 * p1:.1f}% of {n1}, "
          f"holdout {100 * p0:.1f}% of {n0}")
    print(f"    uplift: {100 * u:+.1f} points [95% interval {100 * lo:+.1f}, {100 * hi:+.1f}]; "
          f"planted effect {effect} on users who would not come back: estimated "
          f"{u / k:.2f} [{lo / k:.2f}, {hi / k:.2f}], recovered: {ok}")
else:
    print(f"    outcomes: treatment {n1}, holdout {n0} decided: no uplift yet")
PY
N_ALERTS=$(wc -l <"$DIR/alerts.txt")
if [ "$N_ALERTS" -eq 0 ]; then
    fail "no alert arrived in ${LIMIT_S}s" "$DIR/run.log"
fi
# DEMO_LLM=1: retention messages for a few of the alerts, written by the local test model
# (the venv `make deps` builds) behind compose's guardrails. Off by default: the model
# venv takes minutes to build the first time and each message a few seconds.
if [ "${DEMO_LLM:-0}" = 1 ]; then
    # shellcheck source=../services/llm.sh
    . "$ROOT/tests/services/llm.sh"
    say "DEMO_LLM=1: starting the local model server (SmolLM2-135M-Instruct, llama.cpp)"
    llm_start "$DIR/llm" >"$DIR/llm.start" 2>&1 ||
        fail "the model server did not start (its venv comes from 'make deps')" "$DIR/llm.start"
    llm_pid=$(cat "$DIR/llm/pid")
    echo "$llm_pid" >>"$DIR/pids"
    note "$(cat "$DIR/llm.start")"
    say "churnstream compose: retention messages for ${DEMO_LLM_ALERTS:-5} alerts"
    "$BIN" compose "${COMMON[@]}" --log.level=warn --llm.url="$(llm_url "$DIR/llm")" \
        --topic.messages=demo-retention-messages --max "${DEMO_LLM_ALERTS:-5}" --timeout 60 \
        --print >"$DIR/compose.out" 2>"$DIR/compose.log" ||
        fail "churnstream compose failed" "$DIR/compose.log"
    "$SVC_PYTHON" - "$DIR/compose.out" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if line.startswith("{"):
        m = json.loads(line)
        why = " (" + m["fallback_reason"] + ")" if m["fallback_reason"] else ""
        print(f"    {m['user_id']} [{m['source']}{why}, {m['latency_ms']} ms]\n"
              f"      to the customer: {m['message']}\n"
              f"      to the manager:  {m['explanation'][:160]}...")
    elif line.startswith("compose:"):
        print("    " + line.rstrip())
PY
    llm_stop "$DIR/llm"
fi
say "stopping everything the demo started"
