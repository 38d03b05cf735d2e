#!/usr/bin/env bash
# replay --state redis against the real redis-server of the run: the same summary and the
# same scores file, byte for byte, as the in-memory replay; the committed offset, index and
# records; then inspect (user, model) and forget on what it left. Prints Redis commands per
# event (INFO commandstats), MEMORY USAGE of one user and both replays' events/s.
# Needs CS_BIN, CS_REDIS_HOST, CS_REDIS_PORT; run by tests/run-all.sh.
set -euo pipefail
: "${CS_BIN:?set CS_BIN to the churnstream binary}"
: "${CS_REDIS_HOST:?set CS_REDIS_HOST}" "${CS_REDIS_PORT:?set CS_REDIS_PORT}"
tmp=$(mktemp -d)
prefix="e2e-replay-$$-$(date +%s%N):"
rcli() { redis-cli -h "$CS_REDIS_HOST" -p "$CS_REDIS_PORT" "$@"; }
cleanup() {
    rcli --scan --pattern "${prefix}*" | while IFS= read -r k; do rcli DEL "$k" >/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
redis=(--redis.host="$CS_REDIS_HOST" --redis.port="$CS_REDIS_PORT" --state.prefix="$prefix")

"$CS_BIN" gen --users 300 --days 120 --seed 7 --out "$tmp/f.avro" 2>/dev/null
"$CS_BIN" replay --json --scores-out "$tmp/mem.csv" "$tmp/f.avro" > "$tmp/mem.json"

stats() { rcli INFO commandstats | tr -d '\r' | grep '^cmdstat_'; }
stats > "$tmp/before.txt"
"$CS_BIN" replay --json --state redis "${redis[@]}" --scores-out "$tmp/red.csv" "$tmp/f.avro" \
    > "$tmp/red.json"
stats > "$tmp/after.txt"

python3 - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
mem, red = (json.load(open(f"{d}/{n}.json")) for n in ("mem", "red"))
ms, rs = mem.pop("seconds"), red.pop("seconds")
if mem != red:
    diff = {k: (mem.get(k), red.get(k)) for k in set(mem) | set(red) if mem.get(k) != red.get(k)}
    sys.exit(f"summaries differ: {diff}")
if open(f"{d}/mem.csv", "rb").read() != open(f"{d}/red.csv", "rb").read():
    sys.exit("scores files differ")
assert mem["users"] == 299 and mem["scored"] > 1000, mem

def calls(path):
    out = {}
    for line in open(path):
        name, rest = line.strip().split(":", 1)
        out[name[len("cmdstat_"):]] = int(rest.split("calls=")[1].split(",")[0])
    return out
b, a = calls(f"{d}/before.txt"), calls(f"{d}/after.txt")
delta = {k: a[k] - b.get(k, 0) for k in a if a[k] - b.get(k, 0) > 0 and k != "info"}
total = sum(delta.values())
ev = red["events_read"]
print(f"redis commands: {total} for {ev} events = {total / ev:.3f} per event; "
      + ", ".join(f"{k} {v}" for k, v in sorted(delta.items(), key=lambda kv: -kv[1])))
print(f"events/s: memory {ev / ms:.0f}, redis {ev / rs:.0f}")
# One MGET round per batch (plus range loads), one MULTI/EXEC per batch. A batch ends at
# batch.max_messages (1000) events, and before an event that moves the watermark (max event
# time - 1 h of allowed lateness) past a daily tick (replay.c, read_all), even an empty one
# (the event follows a batch.max_messages end): counted here from the events themselves
# (the log is in time order and has no rejects).
import datetime as dt, fastavro
DAY, LATE = 86_400_000, 3_600_000
batches, in_batch, max_t = 0, 0, None
with open(f"{d}/f.avro", "rb") as f:
    for e in fastavro.reader(f):
        t = e["event_time"]
        t = int(t.timestamp() * 1000) if isinstance(t, dt.datetime) else int(t)
        wm = None if max_t is None else max_t - LATE
        wm_next = (t if max_t is None else max(t, max_t)) - LATE
        if wm is not None and (wm_next // DAY) * DAY > wm:
            batches, in_batch = batches + 1, 0
        max_t = t if max_t is None else max(t, max_t)
        in_batch += 1
        if in_batch == 1000:
            batches, in_batch = batches + 1, 0
batches += in_batch > 0
assert batches > -(-ev // 1000), "the log should have batches cut at ticks"
assert delta.get("exec") == batches and delta.get("multi") == batches, (batches, delta)
assert total / ev < 1.0, "more than one Redis command per event"
PY

# What the commits left: the offset (events read), one record per user, the index.
events=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["events_read"])' "$tmp/red.json")
[ "$(rcli HGET "${prefix}offsets" 0)" = "$events" ] || { echo "offset != $events"; exit 1; }
users=$(rcli --scan --pattern "${prefix}u:*" | wc -l)
[ "$users" -eq 299 ] || { echo "expected 299 user records, got $users"; exit 1; }
# Every indexed user has a record; users with no activity at all (only refunds or
# cancellations) have a record but no index entry.
rcli ZRANGE "${prefix}seen:0" 0 -1 | sed "s/^/EXISTS ${prefix}u:/" | rcli > "$tmp/exists.txt"
indexed=$(wc -l < "$tmp/exists.txt")
[ "$indexed" -ge 290 ] && [ "$indexed" -le 299 ] && ! grep -qv '^1$' "$tmp/exists.txt" \
    || { echo "seen:0: $indexed members, or some without a record"; exit 1; }
len=$(rcli STRLEN "${prefix}u:u000020")
[ "$len" -ge 18 ] && [ "$len" -le 153 ] || { echo "record of u000020 is $len bytes, outside 18..153"; exit 1; }
ttl=$(rcli PTTL "${prefix}u:u000020")
[ "$ttl" -gt 0 ] || { echo "no TTL on a record (state.ttl default 400d): $ttl"; exit 1; }
# The memory budget (DESIGN.md section 3): MEMORY USAGE of a user key <= 200 bytes. This
# test's prefix is long (unique per run) and the key length counts, so each record is copied
# to the default layout's key (cs:u:<id>, in a scratch db) and measured there.
python3 - "$CS_REDIS_HOST" "$CS_REDIS_PORT" "$prefix" <<'PY'
import socket, statistics, sys
host, port, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
s = socket.create_connection((host, port)); f = s.makefile("rb")
def cmd(*args):
    s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
    return read()
def read():
    line = f.readline().rstrip(b"\r\n"); t, rest = line[:1], line[1:]
    if t in (b"+", b"-"): return rest
    if t == b":": return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0: return None
        data = f.read(n + 2)[:-2]; return data
    if t == b"*": return [read() for _ in range(int(rest))]
members = cmd(b"ZRANGE", prefix + b"seen:0", b"0", b"-1")
sizes, lens = [], []
for uid in members:
    val = cmd(b"GET", prefix + b"u:" + uid)
    cmd(b"SELECT", b"9")
    cmd(b"SET", b"cs:u:" + uid, val)
    sizes.append(cmd(b"MEMORY", b"USAGE", b"cs:u:" + uid)); lens.append(len(val))
    cmd(b"DEL", b"cs:u:" + uid)
    cmd(b"SELECT", b"0")
print(f"record bytes: median {statistics.median(lens)} max {max(lens)}; MEMORY USAGE of cs:u:<id>: "
      f"median {statistics.median(sizes)} max {max(sizes)} over {len(sizes)} users")
assert max(sizes) <= 200, f"memory budget exceeded: {max(sizes)} bytes"
PY

# The same prefix again: refused, it already holds state.
if "$CS_BIN" replay --state redis "${redis[@]}" "$tmp/f.avro" 2> "$tmp/again.err" >/dev/null; then
    echo "a second replay into the same prefix was not refused"; exit 1
fi
grep -q "already holds state" "$tmp/again.err"

# inspect user: feature names, activity times, probability and segment under the model.
"$CS_BIN" inspect user u000020 --at 2024-04-29 "${redis[@]}" > "$tmp/inspect.txt"
for want in "first activity  2024-" "last activity   2024-" days_since_activity revenue_90d \
    "churn probability" "segment " "experts           recency" "BTYD summary"; do
    grep -q -- "$want" "$tmp/inspect.txt" || { echo "inspect user lacks \"$want\""; cat "$tmp/inspect.txt"; exit 1; }
done
[ "$(grep -cE '^[a-z0-9_]+ +(days|count|currency|ratio) ' "$tmp/inspect.txt")" -eq 24 ] \
    || { echo "inspect user: expected 24 feature lines"; cat "$tmp/inspect.txt"; exit 1; }
"$CS_BIN" inspect model "${redis[@]}" > "$tmp/model.txt"
grep -q "^segments" "$tmp/model.txt" && grep -q "^weights" "$tmp/model.txt" &&
    grep -q "^experts" "$tmp/model.txt" && grep -qE "^  BG/NBD +r [0-9]" "$tmp/model.txt" \
    || { echo "inspect model output incomplete"; cat "$tmp/model.txt"; exit 1; }

# forget: removes the record and the index entry; inspect then says unknown (exit 1).
"$CS_BIN" forget u000020 "${redis[@]}" > "$tmp/forget.txt"
grep -q 'forgotten: record deleted, latest score absent, 1 seen index entry' "$tmp/forget.txt" \
    || { cat "$tmp/forget.txt"; exit 1; }
[ "$(rcli EXISTS "${prefix}u:u000020")" -eq 0 ] && [ -z "$(rcli ZSCORE "${prefix}seen:0" u000020)" ]
set +e
"$CS_BIN" inspect user u000020 "${redis[@]}" > /dev/null 2> "$tmp/unknown.err"
rc=$?
set -e
[ "$rc" -eq 1 ] && grep -q "unknown user" "$tmp/unknown.err" || { echo "inspect after forget: rc $rc"; exit 1; }
"$CS_BIN" forget u000020 "${redis[@]}" | grep -q "nothing to forget"
echo "replay --state redis: same summary and scores as memory; inspect and forget work"
