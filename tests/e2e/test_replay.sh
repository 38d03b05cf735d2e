#!/usr/bin/env bash
# Replay on a hand-built log: exact snapshots, labels, counts and the recency baseline's AUC,
# then the independent scorer (shared/tools/backtest_score.py protocol) on the same scores.
# Needs CS_BIN (the binary) and CS_ROOT (the repo); run by tests/run-all.sh.
set -euo pipefail
: "${CS_BIN:?set CS_BIN to the churnstream binary}" "${CS_ROOT:?set CS_ROOT to the repo root}"
: "${CS_SHARED:?set CS_SHARED to the shared folder (DESIGN.md, tools/, data/)}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Ticks are Thursdays (multiples of 7 days since the epoch): Jan 4, 11, 18, 25, Feb 1, 8, 15.
# H = L = 14 days. Expected labelled snapshots (all before end - H = Feb 7):
#   a@Jan4 y=1 (next activity Jan 20 is >= Jan 4 + 14d), a@Jan11 y=0, a@Jan25 y=1, a@Feb1 y=1,
#   b@Jan4 y=1, b@Jan11 y=1; c only refunds (never eligible); d active Feb 20 (no tick after).
cat > "$tmp/ev.csv" <<'CSV'
user,ts,type,amount
a,2024-01-02 10:00:00,purchase,10
b,2024-01-03 10:00:00,page_view,0
c,2024-01-05 10:00:00,refund,5
a,2024-01-20 10:00:00,session_start,0
d,2024-02-20 10:00:00,purchase,20
CSV
"$CS_BIN" replay --map 'user_id=user,event_time=ts:%Y-%m-%d %H:%M:%S,event_type=type,amount=amount' \
    --tick.interval=7d --label.horizon=14d --label.lookback=14d \
    --scores-out "$tmp/scores.csv" --json "$tmp/ev.csv" > "$tmp/summary.json"

python3 - "$tmp/summary.json" "$tmp/scores.csv" <<'PY'
import json, sys, csv
s = json.load(open(sys.argv[1]))
def check(name, got, want):
    if got != want:
        sys.exit(f"{name}: got {got!r}, want {want!r}")
check("events_read", s["events_read"], 5)
check("events_applied", s["events_applied"], 5)
check("users", s["users"], 4)
check("scored", s["scored"], 6)
check("labelled", s["labelled"], 6)
check("censored", s["censored"], 0)
check("positives", s["model"]["positives"], 5)
check("ticks with labels", s["model"]["ticks"], 2 + 0 + 1 + 1)  # Jan 4, 11, 25, Feb 1
# Recency at scoring (days): a 1.58(y1) 8.58(y0) 4.58(y1) 11.58(y1), b 0.58(y1) 7.58(y1):
# one positive of five ranks above the only negative.
check("recency auc", round(s["recency_baseline"]["auc"], 9), 0.2)
# Every snapshot's user was active in the last 14 days: early warning = the pooled AUC; its
# second half (Jan 25, Feb 1: two positives of a) has one class only.
check("early-warning auc", s["auc_early_warning"], s["model"]["auc"])
check("early-warning auc, 2nd half", s["auc_early_warning_second_half"], None)
rows = sorted((r["user_id"], int(r["tick_ms"])) for r in csv.DictReader(open(sys.argv[2])))
D = 86400000
jan4 = 1704326400000
want = sorted([("a", jan4), ("a", jan4 + 7 * D), ("a", jan4 + 21 * D), ("a", jan4 + 28 * D),
               ("b", jan4), ("b", jan4 + 7 * D)])
check("scored snapshots", rows, want)
PY

# The independent scorer on the same events and scores: full coverage, nothing extra.
python3 - "$tmp/ev.csv" > "$tmp/events.csv" <<'PY'
import csv, sys, datetime
r = csv.DictReader(open(sys.argv[1]))
print("user_id,ts_ms,event_type,amount")
for row in r:
    ts = datetime.datetime.strptime(row["ts"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    print(f'{row["user"]},{int(ts.timestamp() * 1000)},{row["type"]},{row["amount"]}')
PY
python3 "$CS_SHARED/tools/backtest_score.py" --events "$tmp/events.csv" \
    --scores "$tmp/scores.csv" --tick 7d --horizon 14d --lookback 14d --json "$tmp/m.json" >/dev/null
python3 - "$tmp/m.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
assert m["snapshots"] == 6, m
assert m["coverage"] == 1.0, m
assert m["extra_rows_in_labelled_ticks"] == 0 and m["duplicate_rows"] == 0, m
PY
# The same log as JSON lines (ISO times and epoch ms mixed, one bad line) gives the same scores.
python3 - "$tmp/ev.csv" > "$tmp/ev.jsonl" <<'PY'
import csv, json, sys, datetime
for i, row in enumerate(csv.DictReader(open(sys.argv[1]))):
    t = row["ts"].replace(" ", "T") + "Z"
    if i % 2:
        t = int(datetime.datetime.fromisoformat(row["ts"]).replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
    print(json.dumps({"user_id": row["user"], "event_time": t, "event_type": row["type"],
                      "amount": float(row["amount"])}))
    if i == 2:
        print('{"user_id": "broken", "event_time": }')
PY
"$CS_BIN" replay --tick.interval=7d --label.horizon=14d --label.lookback=14d \
    --scores-out "$tmp/scores_jsonl.csv" --rejects-out "$tmp/rej.csv" --json "$tmp/ev.jsonl" > "$tmp/sj.json"
cmp "$tmp/scores.csv" "$tmp/scores_jsonl.csv" || { echo "JSON lines replay differs from CSV"; exit 1; }
python3 - "$tmp/sj.json" "$tmp/rej.csv" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["events_read"] == 6 and s["events_applied"] == 5, s
assert s["rejected"]["undecodable"] == 1, s
rej = open(sys.argv[2]).read()
assert "line 4" in rej and "undecodable" in rej, rej
PY
# Events exactly on the edges (issue 11: a label test that never puts an event on a tick or on
# T + H cannot tell >= from >). Ticks Jan 4, 11, 18, 25, Feb 1, 8 (00:00 UTC), H = L = 14 d:
#   e: Jan 3 10:00 and Jan 18 00:00 = Jan 4 + H exactly: at Jan 4 the window [Jan 4, Jan 18)
#      holds no activity, so y=1; Jan 11 y=0; Jan 18 not eligible (the event is at T, not
#      before it); Jan 25 y=1; Feb 1 eligible through Jan 18 = T - L exactly, y=1.
#   f: Jan 11 00:00 (on a tick: eligible from Jan 18) and Jan 25 00:00 (on a tick and at
#      Jan 11 + H): Jan 18 y=0; Jan 25 y=0 (the event at T is in [T, T+H)); Feb 1 y=1; Feb 8
#      eligible through Jan 25 = T - L exactly, y=1.
#   g: Mar 10, only to put the log's end after every window.
cat > "$tmp/edge.csv" <<'CSV'
user,ts,type,amount
e,2024-01-03 10:00:00,purchase,10
f,2024-01-11 00:00:00,page_view,0
e,2024-01-18 00:00:00,session_start,0
f,2024-01-25 00:00:00,purchase,5
g,2024-03-10 10:00:00,purchase,20
CSV
"$CS_BIN" replay --map 'user_id=user,event_time=ts:%Y-%m-%d %H:%M:%S,event_type=type,amount=amount' \
    --tick.interval=7d --label.horizon=14d --label.lookback=14d \
    --snapshots-out "$tmp/edge_snaps.csv" --json "$tmp/edge.csv" > "$tmp/edge.json"
python3 - "$tmp/edge.json" "$tmp/edge_snaps.csv" <<'PY'
import csv, json, sys
s = json.load(open(sys.argv[1]))
assert s["events_applied"] == 5 and s["labelled"] == 8 and s["censored"] == 0, s
D, jan4 = 86400000, 1704326400000
want = sorted([("e", jan4, 1), ("e", jan4 + 7 * D, 0), ("e", jan4 + 21 * D, 1), ("e", jan4 + 28 * D, 1),
               ("f", jan4 + 14 * D, 0), ("f", jan4 + 21 * D, 0), ("f", jan4 + 28 * D, 1),
               ("f", jan4 + 35 * D, 1)])
got = sorted((r["user_id"], int(r["tick_ms"]), int(r["y"])) for r in csv.DictReader(open(sys.argv[2])))
if got != want:
    sys.exit(f"edge log: snapshots (user, tick, y)\n got  {got}\n want {want}")
PY
# A log shorter than the label horizon: no label can be known, and the summary says why
# instead of printing NaN metrics alone.
"$CS_BIN" replay --map 'user_id=user,event_time=ts:%Y-%m-%d %H:%M:%S,event_type=type,amount=amount' \
    --tick.interval=7d --label.horizon=90d "$tmp/ev.csv" > "$tmp/short.txt"
grep -q "^ticks .* 0 labelled" "$tmp/short.txt" || { cat "$tmp/short.txt"; exit 1; }
grep -q "^note       no snapshot could be measured: a tick's label needs label.horizon (90 days) of events after it, and this log spans 49.0 days" "$tmp/short.txt" ||
    { echo "short log: no note on why nothing was measured" >&2; cat "$tmp/short.txt"; exit 1; }
"$CS_BIN" replay --map 'user_id=user,event_time=ts:%Y-%m-%d %H:%M:%S,event_type=type,amount=amount' \
    --tick.interval=7d --label.horizon=14d --label.lookback=14d "$tmp/ev.csv" > "$tmp/long.txt"
if grep -q "^note       no snapshot" "$tmp/long.txt"; then
    echo "the note printed although snapshots were measured" >&2
    exit 1
fi
# Epoch seconds under a ts_ms header: read as milliseconds (the header says so), with a
# warning naming the fix; real milliseconds get none.
printf 'user_id,ts_ms,event_type,amount\nu1,1704448800,purchase,10\nu2,1704449800,purchase,5\n' \
    > "$tmp/sec.csv"
"$CS_BIN" replay "$tmp/sec.csv" > /dev/null 2> "$tmp/sec.err"
grep -q "it looks like epoch seconds; if so, map the column as epoch_s" "$tmp/sec.err" ||
    { echo "ts_ms in seconds: no warning" >&2; cat "$tmp/sec.err" >&2; exit 1; }
printf 'user_id,ts_ms,event_type,amount\nu1,1704448800000,purchase,10\n' > "$tmp/msec.csv"
"$CS_BIN" replay "$tmp/msec.csv" > /dev/null 2> "$tmp/msec.err"
if grep -q "epoch seconds" "$tmp/msec.err"; then
    echo "ts_ms in milliseconds: a warning about seconds" >&2
    exit 1
fi
echo "replay hand-built log: exact snapshots, labels and counts; scorer coverage 1.0; JSON lines equal; tick and window edges exact; a log shorter than H says so; epoch seconds under ts_ms warned"
