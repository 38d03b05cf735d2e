"""The BTYD expert's shape is chosen by labels (processor/models/experts.h, EX_SHAPES): on a
log of regular buyers (bench/regular_gen.py, Gamma(12) gaps between purchases) it leaves
BG/NBD (k = 1) for an Erlang shape k > 1, whose graded log-loss is the lowest, and the score
then ranks at least as well as recency (which BG/NBD alone does not reach there); on a log
simulated from BG/NBD itself (Poisson purchases) it keeps k = 1. Checked through
`replay --json` (bgnbd_shape, model and experts AUC).
Run: python3 -m pytest tests/python/test_btyd_shapes.py (CS_BIN, else build/churnstream).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CS_BIN = os.environ.get("CS_BIN") or str(ROOT / "build" / "churnstream")


def replay(log):
    out = subprocess.run([CS_BIN, "replay", str(log), "--json", "--quiet",
                          "--tick.interval=7d"],
                         check=True, capture_output=True, text=True, timeout=300).stdout
    return json.loads(out)


def test_regular_buyers_leave_bgnbd(tmp_path):
    if not os.path.exists(CS_BIN):
        subprocess.run(["make", "--no-print-directory", "-s"], cwd=ROOT, check=True)
    log = tmp_path / "regular.csv"
    subprocess.run([sys.executable, str(ROOT / "bench" / "regular_gen.py"), str(log),
                    "--users", "3000", "--k", "12", "--seed", "1"],
                   check=True, capture_output=True, timeout=120)
    j = replay(log)
    shape = j["bgnbd_shape"]
    assert shape["k"] > 1, shape
    losses = shape["mean_logloss"]
    assert losses["k%d" % shape["k"]] == min(losses.values()), shape
    assert losses["k%d" % shape["k"]] < losses["k1"] - 0.05, shape
    # BG/NBD alone ranks below recency on this shop; the score with the shape does not.
    recency = j["experts"]["recency"]["auc"]
    assert j["model"]["auc"] >= recency, (j["model"]["auc"], recency)
    assert j["model"]["auc_second_half"] > j["experts"]["recency"]["auc_second_half"] + 0.02


def test_poisson_buyers_keep_bgnbd(tmp_path):
    if not os.path.exists(CS_BIN):
        subprocess.run(["make", "--no-print-directory", "-s"], cwd=ROOT, check=True)
    log = tmp_path / "bgnbd.avro"
    # completejourney2's fit (notes/bgnbd.md, alpha in days): frequent buyers, many labels
    subprocess.run([CS_BIN, "gen", "--process", "bgnbd", "--users", "3000", "--days", "546",
                    "--seed", "1", "--r", "1.3989", "--alpha", "9.548", "--a", "0.02395",
                    "--b", "18.95", "--out", str(log), "--quiet"],
                   check=True, capture_output=True, timeout=120)
    shape = replay(log)["bgnbd_shape"]
    assert shape["k"] == 1, shape
