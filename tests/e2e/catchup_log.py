#!/usr/bin/env python3
"""Logs for tests/e2e/test_run_catchup_ticks.sh and test_replay_catchup_ticks.sh: user "a"
buys on days 0-9 and goes quiet, "e" buys on days 0-5, "b" and "c" keep event time moving for
200 days; in the "returns" log "e" comes back on days 80 and 81, at 02:00, the first event
past day 80's tick and its hour of allowed lateness (so e's return is the event that moves
the watermark past that tick). Avro events (schemas/event.avsc, Confluent framing, schema id
1) produced with kcat, one file per message, in time order to partition 0; or the same rows
as CSV (user_id,ts_ms,event_type,amount) for replay. Up to day 80's tick the two logs are the
same, so every score of a tick up to it must be too; e's return changes the BG/NBD
population (and so a's scores) after it. A daemon or replay that swept a tick after applying
later events would see e's return there (and b's and c's later activity, which takes them
out of the early ticks' populations).

  catchup_log.py produce BROKERS TOPIC returns|plain
  catchup_log.py csv PATH returns|plain
  catchup_log.py compare A.jsonl B.jsonl    alerts as JSON lines (`churnstream tail --json`,
                                            `replay --alerts-out`) of both: every alert of
                                            a, b and c up to e's return must be the same in
                                            both, and some of a's after it must differ
"""

import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile_msgs import confluent, event  # noqa: E402  (the hand-made Avro encoder)

DAY_MS = 86_400_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00Z
TYPES = {"session_start": 0, "page_view": 1, "purchase": 5}
RETURN_MS = T0 + 80 * DAY_MS + 2 * 3_600_000


def rows(returns):
    out = [("a", T0 + d * DAY_MS + 10 * 3_600_000, "purchase", 20.0) for d in range(10)]
    out += [("e", T0 + d * DAY_MS + 11 * 3_600_000, "purchase", 30.0) for d in range(6)]
    if returns:
        out.append(("e", RETURN_MS, "purchase", 30.0))
        out.append(("e", RETURN_MS + DAY_MS, "purchase", 30.0))
    for d in range(200):
        out.append(("b", T0 + d * DAY_MS + 9 * 3_600_000, "page_view", 0.0))
        if d % 3 == 0:
            out.append(("c", T0 + d * DAY_MS + 15 * 3_600_000, "session_start", 0.0))
    return sorted(out, key=lambda r: r[1])


def produce(brokers, topic, returns):
    with tempfile.TemporaryDirectory() as d:
        files = []
        for i, (u, t, kind, amount) in enumerate(rows(returns)):
            p = os.path.join(d, f"{i:04d}.bin")
            with open(p, "wb") as f:
                f.write(confluent(event(u.encode(), t, TYPES[kind], amount)))
            files.append(p)
        subprocess.run(["kcat", "-P", "-b", brokers, "-t", topic, "-p", "0", "-k", "catchup"]
                       + files, check=True, timeout=120)


def write_csv(path, returns):
    with open(path, "w") as f:
        f.write("user_id,ts_ms,event_type,amount\n")
        for u, t, kind, amount in rows(returns):
            f.write(f"{u},{t},{kind},{amount}\n")


def load_alerts(path):
    """{(user, trigger, event_time): churn_probability} of every user but e."""
    got = {}
    with open(path) as f:
        for line in f:
            a = json.loads(line)
            if a["user_id"] != "e":
                got[(a["user_id"], a["trigger"], a["event_time"])] = a["churn_probability"]
    return got


def compare(path_a, path_b):
    a, b = load_alerts(path_a), load_alerts(path_b)
    before = sorted(k for k in a if k[2] <= RETURN_MS)
    after = sorted(k for k in a if k[2] > RETURN_MS and k[0] == "a" and k[1] == "tick" and k in b)
    quiet_before = sum(1 for k in before if k[0] == "a" and k[1] == "tick")
    if quiet_before < 30 or len(after) < 5:
        print(f"compare: too few tick alerts of a: {quiet_before} before e's return, "
              f"{len(after)} after it in both runs")
        return 1
    diff = [k for k in before if b.get(k) != a[k]]
    if diff:
        k = diff[0]
        print(f"compare: {len(diff)} of {len(before)} alerts up to e's return differ; first: "
              f"user {k[0]}, {k[1]} at day {(k[2] - T0) / DAY_MS:g}: p {a[k]} without it, "
              f"{b.get(k)} with it (a look-ahead: a later event reached an earlier tick)")
        return 1
    changed = sum(1 for k in after if b[k] != a[k])
    if changed == 0:
        print("compare: no tick alert of a after e's return differs: the check cannot fail")
        return 1
    print(f"  {len(before)} alerts of a, b and c up to e's return identical in both; "
          f"{changed} of a's {len(after)} tick alerts after it differ")
    return 0


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "produce":
        produce(sys.argv[2], sys.argv[3], sys.argv[4] == "returns")
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "csv":
        write_csv(sys.argv[2], sys.argv[3] == "returns")
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "compare":
        return compare(sys.argv[2], sys.argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
