#!/usr/bin/env bash
# replay kafka:TOPIC against the real broker: the same events produced to a 4-partition topic
# (gen --event-timestamps: the test is over in seconds, before any segment could roll)
# replay to exactly the scores of the file they came from (event-time order restored across
# partitions); --from/--to select by message timestamp (gen sets it to the event time); a
# garbage message is counted as undecodable; no consumer group offsets are committed.
set -euo pipefail
: "${CS_BIN:?}" "${CS_KAFKA_BROKERS:?set by tests/run-all.sh}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
topic="replay-$$-$RANDOM"
K=(--kafka.bootstrap.servers="$CS_KAFKA_BROKERS")
# The first message auto-creates the topic (the test broker's num.partitions=4).
echo "not avro" | kcat -P -b "$CS_KAFKA_BROKERS" -t "$topic" -p 0 -X topic.auto.create=true 2>/dev/null ||
    echo "not avro" | kcat -P -b "$CS_KAFKA_BROKERS" -t "$topic" -p 0
"$CS_BIN" gen --users 200 --days 60 --seed 2 --topic "$topic" "${K[@]}" --event-timestamps --quiet
"$CS_BIN" gen --users 200 --days 60 --seed 2 --out "$tmp/f.avro" --quiet
parts=$(kcat -b "$CS_KAFKA_BROKERS" -L -t "$topic" | grep -c "partition ")
[ "$parts" -ge 2 ] || { echo "expected a multi-partition topic, got $parts"; exit 1; }

"$CS_BIN" replay "kafka:$topic" "${K[@]}" --tick.interval=7d --scores-out "$tmp/k.csv" --json > "$tmp/k.json"
"$CS_BIN" replay "$tmp/f.avro" --tick.interval=7d --scores-out "$tmp/f.csv" --json > "$tmp/f.json"
cmp "$tmp/k.csv" "$tmp/f.csv" || { echo "kafka replay differs from the file replay"; exit 1; }
python3 - "$tmp/k.json" "$tmp/f.json" <<'PY'
import json, sys
k, f = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert k["events_read"] == f["events_read"] + 1, (k["events_read"], f["events_read"])
assert k["rejected"]["undecodable"] == 1, k["rejected"]
assert k["scored"] == f["scored"] and k["scored"] > 500, (k["scored"], f["scored"])
PY

# A time range: only events with 2024-01-15 <= t < 2024-02-01.
"$CS_BIN" replay "kafka:$topic" "${K[@]}" --from 2024-01-15 --to 2024-02-01 --tick.interval=7d \
    --json > "$tmp/r.json"
python3 - "$tmp/r.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
lo, hi = 1705276800000, 1706745600000
assert s["events_applied"] > 1000, s["events_applied"]
assert lo <= s["first_event_ms"] and s["last_event_ms"] < hi, (s["first_event_ms"], s["last_event_ms"])
PY
# gen --wall-clock: event time is the wall clock at produce, paced by --rate.
wtopic="wall-$$-$RANDOM"
echo "not avro" | kcat -P -b "$CS_KAFKA_BROKERS" -t "$wtopic" -p 0 -X topic.auto.create=true 2>/dev/null ||
    echo "not avro" | kcat -P -b "$CS_KAFKA_BROKERS" -t "$wtopic" -p 0
t0=$(date +%s%3N)
"$CS_BIN" gen --users 30 --days 20 --seed 3 --topic "$wtopic" "${K[@]}" --wall-clock --rate 4000 \
    --quiet 2> "$tmp/wall.log"
t1=$(date +%s%3N)
"$CS_BIN" replay "kafka:$wtopic" "${K[@]}" --json > "$tmp/w.json"
python3 - "$tmp/w.json" "$tmp/wall.log" "$t0" "$t1" <<'PY'
import json, re, sys
s, log, t0, t1 = json.load(open(sys.argv[1])), open(sys.argv[2]).read(), int(sys.argv[3]), int(sys.argv[4])
n = int(re.search(r"done: (\d+) events", log).group(1))
assert s["events_applied"] == n > 500, (s["events_applied"], n)
assert t0 <= s["first_event_ms"] <= s["last_event_ms"] <= t1, (t0, s["first_event_ms"], s["last_event_ms"], t1)
# paced at 4000/s: the events span about n / 4000 seconds of wall clock
span = (s["last_event_ms"] - s["first_event_ms"]) / 1000
assert 0.8 * n / 4000 <= span <= t1 - t0, (span, n)
PY
"$CS_BIN" gen --users 3 --days 1 --out "$tmp/x.avro" --wall-clock 2> "$tmp/err" && { echo "--wall-clock with --out accepted"; exit 1; }
grep -q "applies to topics" "$tmp/err" || { cat "$tmp/err"; exit 1; }
"$CS_BIN" replay kafka:no-such-topic-$$ "${K[@]}" --json > /dev/null 2> "$tmp/err" && { echo "missing topic accepted"; exit 1; }
grep -q "no-such-topic" "$tmp/err" || { cat "$tmp/err"; exit 1; }
echo "replay kafka: equal to the file replay across partitions; time range selects; gen --wall-clock stamps the wall clock at its pace; errors named"
