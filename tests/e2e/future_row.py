#!/usr/bin/env python3
"""For test_hostile_daemon.sh's replay_future case: writes an Avro event log as JSON lines
three times: as is, with one row dated FUTURE_ISO inserted in the middle (issue 11, item
10), and with a genuine quiet spell (every event after the middle 60 days later: the log
really moves on, nothing may be rejected).
  future_row.py IN.avro CLEAN.jsonl DIRTY.jsonl GAP.jsonl FUTURE_ISO"""
import json
import sys
from datetime import datetime, timezone

import fastavro


def main():
    src, clean, dirty, gap, future = sys.argv[1:6]
    with open(src, "rb") as f:
        rows = list(fastavro.reader(f))
    t_future = int(datetime.fromisoformat(future.replace("Z", "+00:00"))
                   .astimezone(timezone.utc).timestamp() * 1000)

    def line(r, shift_ms=0):
        t = r["event_time"]
        ms = int(t.timestamp() * 1000) if hasattr(t, "timestamp") else int(t)
        return json.dumps({"user_id": r["user_id"], "event_time": ms + shift_ms,
                           "event_type": r["event_type"], "amount": r["amount"],
                           "item_id": r.get("item_id"), "category": r.get("category"),
                           "channel": r.get("channel")}) + "\n"
    mid = len(rows) // 2
    with open(clean, "w") as c, open(dirty, "w") as d, open(gap, "w") as g:
        for i, r in enumerate(rows):
            g.write(line(r, 60 * 86_400_000 if i >= mid else 0))
            if i == mid:
                d.write(json.dumps({"user_id": "time-traveller", "event_time": t_future,
                                    "event_type": "purchase", "amount": 1.0}) + "\n")
            c.write(line(r))
            d.write(line(r))


if __name__ == "__main__":
    main()
