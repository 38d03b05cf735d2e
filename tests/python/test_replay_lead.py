"""Lead time in the replay summary (issue 14), recomputed independently: a generated log,
`churnstream replay --alerts-out --json`, and from the events themselves (fastavro) and the
alerts file: every alerted user whose last activity (any event but refund and
subscription_cancel) is at least a label horizon before the end went silent there; their first
alert came before the silence when it precedes that last activity. The counts must match
exactly, the median to the printed precision.
Run: python3 -m pytest tests/python/test_replay_lead.py (CS_BIN, else build/churnstream).
"""

import collections
import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import fastavro

ROOT = Path(__file__).resolve().parents[2]
CS_BIN = os.environ.get("CS_BIN") or str(ROOT / "build" / "churnstream")
NOT_ACTIVITY = {"refund", "subscription_cancel"}
DAY_MS = 86_400_000
H_MS = 90 * DAY_MS  # label.horizon default


def ms(t):
    if isinstance(t, dt.datetime):
        return int(t.timestamp() * 1000)
    return int(t)


def test_lead_time_matches_an_independent_count(tmp_path):
    if not os.path.exists(CS_BIN):
        subprocess.run(["make", "--no-print-directory", "-s"], cwd=ROOT, check=True)
    events = tmp_path / "events.avro"
    subprocess.run([CS_BIN, "gen", "--users", "400", "--days", "240", "--seed", "11", "--out",
                    str(events), "--quiet"], check=True, capture_output=True, timeout=120)
    alerts = tmp_path / "alerts.jsonl"
    out = subprocess.run([CS_BIN, "replay", str(events), "--model.min_examples=200",
                          "--alerts-out", str(alerts), "--json"], check=True,
                         capture_output=True, text=True, timeout=300).stdout
    summary = json.loads(out)
    end_ms = summary["end_ms"]

    last = {}
    with open(events, "rb") as f:
        for e in fastavro.reader(f):
            if e["event_type"] in NOT_ACTIVITY:
                continue
            t = ms(e["event_time"])
            if t > last.get(e["user_id"], -2**63):
                last[e["user_id"]] = t
    first = {}
    n_alerts = 0
    for line in alerts.read_text().splitlines():
        a = json.loads(line)
        n_alerts += 1
        u, t = a["user_id"], a["event_time"]
        first[u] = min(t, first.get(u, t))
    assert n_alerts == summary["alerts"]["total"] > 50

    leads = sorted((last[u] - t) / DAY_MS for u, t in first.items()
                   if u in last and end_ms - last[u] >= H_MS)
    assert len(leads) >= 20, "too few silent alerted users for a meaningful check"
    assert summary["alerts"]["lead_silent"] == len(leads)
    assert summary["alerts"]["lead_before"] == sum(1 for x in leads if x > 0)
    median = leads[(len(leads) - 1) // 2]
    assert abs(summary["alerts"]["lead_median_days"] - median) <= 1e-5 * max(1.0, abs(median))
    kinds = collections.Counter(json.loads(l)["kind"] for l in alerts.read_text().splitlines())
    assert summary["alerts"]["at_risk"] == kinds["at_risk"]
    assert summary["alerts"]["lapsed"] == kinds["lapsed"]
