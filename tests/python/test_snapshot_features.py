"""`replay --snapshots-out` writes each labelled snapshot's features x(T) as scored: from the
events before T only (DESIGN.md, section 4), even when a refund or cancel (not activity, so
the label stands) arrives between T and the label. The engine's label callback recomputes
x(T) from the stored state, which by then holds that event; the replay keeps the scored rows.
The scores of those snapshots must not depend on the later events either (replay.c,
read_all: a batch ends at a tick).

The check: two logs that differ only by a refund and a cancel of one user, 40 and 60 days
after their last activity. Every row of a tick before the refund must be the same in both
files (same label, same features); rows of later ticks must show the refund (so the check
can fail). Run: python3 -m pytest tests/python/test_snapshot_features.py (CS_BIN, else
build/churnstream).
"""

import csv
import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CS_BIN = os.environ.get("CS_BIN") or str(ROOT / "build" / "churnstream")
DAY_MS = 86_400_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00Z


def write_log(path, with_refund):
    rows = []
    # "a" buys on days 0..9, then goes quiet for good (a positive label from day 10 on).
    for d in range(10):
        rows.append(("a", T0 + d * DAY_MS + 10 * 3_600_000, "purchase", 20.0))
    if with_refund:
        rows.append(("a", T0 + 49 * DAY_MS + 12 * 3_600_000, "refund", 20.0))
        rows.append(("a", T0 + 69 * DAY_MS + 12 * 3_600_000, "subscription_cancel", 0.0))
    # "b" and "c" keep event time moving past every label of "a" (T + 90 days).
    for d in range(200):
        rows.append(("b", T0 + d * DAY_MS + 9 * 3_600_000, "page_view", 0.0))
        if d % 3 == 0:
            rows.append(("c", T0 + d * DAY_MS + 15 * 3_600_000, "session_start", 0.0))
    rows.sort(key=lambda r: r[1])
    with open(path, "w") as f:
        for u, t, kind, amount in rows:
            f.write(json.dumps({"user_id": u, "event_time": t, "event_type": kind,
                                "amount": amount}) + "\n")


def snapshots(tmp_path, with_refund):
    log = tmp_path / f"log{int(with_refund)}.jsonl"
    out = tmp_path / f"snap{int(with_refund)}.csv"
    write_log(log, with_refund)
    subprocess.run([CS_BIN, "replay", str(log), "--quiet", "--snapshots-out", str(out)],
                   check=True, capture_output=True, timeout=120)
    with open(out) as f:
        return {(r["user_id"], int(r["tick_ms"])): r for r in csv.DictReader(f)}


def test_snapshot_features_use_only_events_before_the_tick(tmp_path):
    if not os.path.exists(CS_BIN):
        subprocess.run(["make", "--no-print-directory", "-s"], cwd=ROOT, check=True)
    plain = snapshots(tmp_path, False)
    refunded = snapshots(tmp_path, True)
    refund_ms = T0 + 49 * DAY_MS + 12 * 3_600_000
    before = [k for k in plain if k[0] == "a" and k[1] <= refund_ms]
    after = [k for k in refunded if k[0] == "a" and k[1] > refund_ms]
    # a's ticks: days 1..10 while active, then up to 90 days of lookback after day 9
    assert len(before) >= 40, sorted(plain)
    assert after, "no snapshot of a after the refund: the log no longer tests the rule"
    # The label, every feature and the score: a batch ends before an event that moves the
    # watermark past a tick, so each tick's sweep scores "a" with the model of that time,
    # not with one that has already learnt from the events of the following weeks (this log
    # fits in one batch.max_messages).
    feature_cols = [c for c in next(iter(plain.values())) if c not in ("user_id", "tick_ms")]
    for k in before:
        assert k in refunded, k
        for c in feature_cols:
            assert refunded[k][c] == plain[k][c], (k, c, plain[k][c], refunded[k][c])
    # positive labels: a is never active again after day 9
    assert all(plain[k]["y"] == "1" for k in before if k[1] > T0 + 10 * DAY_MS)
    # and the refund does show in the rows of the ticks after it
    assert all(float(refunded[k]["refunds_90d"]) > 0 for k in after)
