"""`churnstream gen --process bgnbd|paretonbd` end to end: gen -> replay -> backtest_score.

Runs the real binary ($CS_BIN, set by tests/run-all.sh; else build/churnstream when built):
the CSV and the Avro outputs of one seed hold the same events and the same truth; replay
reads all of them and scores every eligible snapshot exactly once (the shared
backtest_score.py, which builds the snapshots from the protocol's definition, finds no
missing, extra or duplicate row); the truth file is consistent with the events (first
purchase, no purchase at or after the drop-out time); the oracle with the true parameters
(bench/btyd_sim.py's formulas) beats recency; the harness itself runs on a small log and
writes its table. Bad flag combinations exit 2 naming the flag. About 5 s.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
CS_BIN = os.environ.get("CS_BIN") or str(ROOT / "build" / "churnstream")
DAY_MS = 86_400_000

pytestmark = pytest.mark.skipif(
    not (os.path.isfile(CS_BIN) and os.access(CS_BIN, os.X_OK)),
    reason="no churnstream binary: set CS_BIN or run make")


def shared_dir():
    for d in [os.environ.get("CS_SHARED"), ROOT.parent / "shared", "/work/shared"]:
        if d and (Path(d) / "tools" / "backtest_score.py").is_file():
            return Path(d)
    pytest.skip("the shared folder (tools/backtest_score.py) was not found: set CS_SHARED")


@pytest.fixture(scope="module")
def bs():
    sys.path.insert(0, str(shared_dir() / "tools"))
    import backtest_score
    return backtest_score


@pytest.fixture(scope="module")
def sim():
    sys.path.insert(0, str(ROOT / "bench"))
    import btyd_sim
    return btyd_sim


def gen(args, check=True):
    return subprocess.run([CS_BIN, "gen", "--quiet"] + args, capture_output=True, text=True,
                          check=check)


@pytest.mark.parametrize("process,params", [
    ("bgnbd", ["--r", "0.7195", "--alpha", "66.017", "--a", "0.5", "--b", "6"]),
    ("paretonbd", ["--r", "1.2", "--alpha", "20", "--s", "0.8", "--beta", "150"]),
])
def test_gen_replay_end_to_end(tmp_path, bs, sim, process, params):
    common = ["--process", process, "--users", "1500", "--days", "365", "--seed", "5"] + params
    gen(common + ["--out", str(tmp_path / "ev.avro")])
    gen(common + ["--out", str(tmp_path / "ev.csv")])
    truth_avro = (tmp_path / "ev.truth.csv").read_bytes()  # FILE.csv's default truth path
    gen(common + ["--out", str(tmp_path / "ev2.avro"), "--truth", str(tmp_path / "t2.csv")])
    assert truth_avro == (tmp_path / "t2.csv").read_bytes()  # deterministic per seed

    ev = bs.load_events(str(tmp_path / "ev.csv"))
    assert set(ev.event_type) == {"purchase"}
    raw = pd.read_csv(tmp_path / "ev.csv")
    assert list(raw.columns) == ["user_id", "ts_ms", "event_type", "amount"]
    assert (raw.amount >= 0.01).all() and 5 < raw.amount.median() < 80  # lognormal, median ~20
    out = subprocess.run([CS_BIN, "replay", str(tmp_path / "ev.avro"), "--tick.interval=7d",
                          "--scores-out", str(tmp_path / "s.csv"), "--json", "--quiet"],
                         capture_output=True, text=True, check=True)
    summary = json.loads(out.stdout)
    assert summary["events_read"] == len(ev) and summary["events_applied"] == len(ev)
    assert summary["users"] == 1500  # every user makes a first purchase

    snaps = bs.build_snapshots(ev, 7 * DAY_MS, 90 * DAY_MS, 90 * DAY_MS)
    sc = pd.read_csv(tmp_path / "s.csv", dtype={"user_id": str})
    res = bs.evaluate(snaps, sc)
    assert res["coverage"] == 1.0
    assert res["extra_rows_in_labelled_ticks"] == 0 and res["duplicate_rows"] == 0
    assert summary["model"]["snapshots"] == res["snapshots"]
    assert abs(summary["model"]["auc"] - res["auc"]) < 0.005

    tr = pd.read_csv(tmp_path / "ev.truth.csv", dtype={"user_id": str}).set_index("user_id")
    assert list(tr.columns) == ["churn_time_ms", "first_purchase_ms", "lambda_per_day", "p",
                                "mu_per_day"]
    g = ev.groupby("user_id").ts_ms.agg(["min", "max", "size"]).reindex(tr.index)
    assert (g["min"] == tr.first_purchase_ms).all()
    dropped = tr.churn_time_ms.notna()
    assert (g["max"][dropped] < tr.churn_time_ms[dropped]).all()
    assert 0.1 < dropped.mean() < 0.9
    start = 1704067200000
    assert tr.first_purchase_ms.max() < start + 365 // 4 * DAY_MS  # default cohort
    if process == "bgnbd":
        assert tr.mu_per_day.isna().all() and tr.p.between(0, 1).all()
        assert (g["max"][dropped] == tr.churn_time_ms[dropped] - 1).all()
        # The oracle with the true population parameters ranks better than recency.
        m = snaps.merge(sc.assign(user_id=bs.norm_uid(sc.user_id)), on=["user_id", "tick_ms"])
        x, tx, T, rec = sim.ActiveDays(ev, bs).at(m.user_id.values, m.tick_ms.values)
        oracle = sim.bgnbd_p_no_purchase((0.7195, 66.017, 0.5, 6.0), x, tx, T, 90.0)
        assert bs.auc(m.y.values, oracle) > bs.auc(m.y.values, rec.astype(float)) + 0.02
    else:
        assert tr.p.isna().all() and (tr.mu_per_day > 0).all()


def test_harness_runs(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "btyd_sim.py"), "--churnstream",
                          CS_BIN, "--out", str(tmp_path), "--users", "800", "--days", "300",
                          "--sets", "sparse,grocery"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    md = (tmp_path / "btyd_sim.md").read_text()
    assert md == out.stdout.rstrip("\n") + "\n"
    res = json.loads((tmp_path / "btyd_sim.json").read_text())
    assert [r["name"] for r in res] == ["sparse", "grocery"]
    for r in res:
        assert r["coverage"] == 1.0
        # The AUC on the snapshots equals backtest_score.evaluate's on the same scores.
        assert abs(r["auc"]["churnstream"]["pooled"] - r["backtest_score"]["auc"]) < 1e-12
        assert r["auc"]["oracle"]["pooled"] > 0.6
        assert r["fit_exact"]["converged"] and len(r["fit_exact"]["params"]) == 4
    assert md.count("| sparse ") == 3 and "| grocery " in md


@pytest.mark.parametrize("args,want", [
    (["--r", "1"], "--process bgnbd or paretonbd"),
    (["--process", "bgnbd", "--churn-rate", "0.2"], "--churn-rate applies to --process planted"),
    (["--process", "bg"], "--process: expected planted, bgnbd or paretonbd"),
    (["--process", "paretonbd", "--a", "1"], "--a and --b apply to --process bgnbd"),
    (["--process", "bgnbd", "--beta", "1"], "--s and --beta to --process paretonbd"),
    (["--process", "bgnbd", "--alpha", "0"], "--alpha: expected a number"),
    (["--process", "bgnbd", "--days", "30", "--cohort-days", "31"], "--cohort-days: expected 1..30"),
])
def test_gen_rejects(tmp_path, args, want):
    p = gen(args + ["--out", str(tmp_path / "x.avro")], check=False)
    assert p.returncode == 2
    assert want in p.stderr
