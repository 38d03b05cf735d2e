#!/usr/bin/env python3
"""Messages for tests/e2e/test_run_catchup_ticks.sh: user "a" buys on days 0-9 and goes
quiet, "e" buys on days 0-5, "b" and "c" keep event time moving for 200 days; in the
"returns" log "e" comes back on days 80 and 81. Avro events (schemas/event.avsc, Confluent
framing, schema id 1) produced with kcat, one file per message, in time order to partition 0.
Before day 80 the two logs are the same, so every score of a tick before it must be too;
e's return changes the BG/NBD population (and so a's scores) from day 80 on. A daemon that
swept early ticks after applying later events would see e's return there (and b's and c's
later activity, which takes them out of the early ticks' populations).

  catchup_log.py produce BROKERS TOPIC returns|plain
  catchup_log.py compare A.jsonl B.jsonl    `churnstream tail --json` of both runs: user
                                            a's tick alerts before day 80 must be the same
                                            in both, and some after it must differ
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
RETURN_MS = T0 + 80 * DAY_MS + 12 * 3_600_000


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


def tick_alerts(path):
    """user a's tick alerts: {event_time: churn_probability}."""
    got = {}
    with open(path) as f:
        for line in f:
            a = json.loads(line)
            if a["user_id"] == "a" and a["trigger"] == "tick":
                got[a["event_time"]] = a["churn_probability"]
    return got


def compare(path_a, path_b):
    a, b = tick_alerts(path_a), tick_alerts(path_b)
    before = sorted(t for t in a if t <= RETURN_MS)
    after = sorted(t for t in a if t > RETURN_MS and t in b)
    if len(before) < 30 or len(after) < 5:
        print(f"compare: too few tick alerts of a: {len(before)} before e's return, "
              f"{len(after)} after it in both runs")
        return 1
    diff = [t for t in before if b.get(t) != a[t]]
    if diff:
        t = diff[0]
        print(f"compare: {len(diff)} of {len(before)} tick alerts of a before e's return "
              f"differ; first at day {(t - T0) / DAY_MS:.0f}: p {a[t]} without it, "
              f"{b.get(t)} with it (a look-ahead: a later event reached an earlier tick)")
        return 1
    changed = sum(1 for t in after if b[t] != a[t])
    if changed == 0:
        print("compare: no tick alert of a after e's return differs: the check cannot fail")
        return 1
    print(f"  user a: {len(before)} tick alerts before e's return identical in both runs; "
          f"{changed} of {len(after)} after it differ")
    return 0


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "produce":
        produce(sys.argv[2], sys.argv[3], sys.argv[4] == "returns")
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "compare":
        return compare(sys.argv[2], sys.argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
