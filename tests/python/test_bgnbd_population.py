"""BG/NBD is refitted on the whole cohort by default (model.bgnbd_population = all): on a log
simulated from the sparse published fit (CDNOW, Fader, Hardie & Lee 2005; alpha in days),
the engine's last refit recovers the drop-out process, while the bounded `recent` population
(users active in the last H + L) leaves the drop-outs out of the fit and finds almost nobody
dropping out. Checked through `replay --json`'s bgnbd_params.
Run: python3 -m pytest tests/python/test_bgnbd_population.py (CS_BIN, else build/churnstream).
"""

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CS_BIN = os.environ.get("CS_BIN") or str(ROOT / "build" / "churnstream")
TRUE = {"r": 0.243, "alpha_days": 30.898, "a": 0.793, "b": 2.426}  # bench/btyd_sim.py "sparse"


def fit(log, *extra):
    out = subprocess.run([CS_BIN, "replay", str(log), "--json", "--quiet",
                          "--tick.interval=7d", *extra],
                         check=True, capture_output=True, text=True, timeout=300).stdout
    return json.loads(out)["bgnbd_params"]


def test_the_whole_cohort_recovers_the_drop_out(tmp_path):
    if not os.path.exists(CS_BIN):
        subprocess.run(["make", "--no-print-directory", "-s"], cwd=ROOT, check=True)
    log = tmp_path / "sparse.avro"
    subprocess.run([CS_BIN, "gen", "--process", "bgnbd", "--users", "3000", "--days", "546",
                    "--seed", "3", "--r", str(TRUE["r"]), "--alpha", str(TRUE["alpha_days"]),
                    "--a", str(TRUE["a"]), "--b", str(TRUE["b"]), "--out", str(log), "--quiet"],
                   check=True, capture_output=True, timeout=120)
    drop = TRUE["a"] / (TRUE["a"] + TRUE["b"])  # mean drop-out probability after a purchase
    rate = TRUE["r"] / TRUE["alpha_days"]  # mean purchase rate while alive, per day

    p = fit(log)
    assert abs(p["a"] / (p["a"] + p["b"]) - drop) < 0.25 * drop, p
    assert abs(p["r"] / p["alpha_days"] - rate) < 0.25 * rate, p

    recent = fit(log, "--model.bgnbd_population=recent")
    assert recent["a"] / (recent["a"] + recent["b"]) < 0.25 * drop, recent
