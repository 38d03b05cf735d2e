#!/usr/bin/env python3
"""Model benchmark: build/bench/bench_models on random standardized rows (dim = FEAT_DIM,
k = 8), batch sizes 256 and 4096: k-means update+assign, assign through BLAS vs the scalar
assign, logistic regression predict+update (logreg.c: fixed-order loops since 2026-12-07,
sgemv before) vs a plain scalar loop of the same maths. Ratios are taken within a run.
Usage: bench/models.py [--build DIR] [--runs N]  -> bench/out/models.json"""

import argparse
import json

import benchlib as bl

KEYS = ["kmeans_update_assign_eps", "kmeans_assign_blas_eps", "kmeans_assign_scalar_eps",
        "logreg_lib_eps", "logreg_scalar_eps"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--min-seconds", type=float, default=1.0)
    a = ap.parse_args()
    build = bl.build_dir(a.build)
    bl.log("models: %d runs, >= %.1f s per measurement" % (a.runs, a.min_seconds))
    res = bl.check(bl.run_measured(
        [bl.bench_bin(build, "bench_models"), "--runs", str(a.runs),
         "--min-seconds", str(a.min_seconds)]), "bench_models")
    raw = json.loads(res["stdout"])
    out = {"dim": raw["dim"], "k": raw["k"], "lr_minibatch_rows": raw["lr_minibatch_rows"],
           "runs": raw["runs"], "batches": {}}
    for b in sorted(raw["runs"][0], key=int):
        rows = [r[b] for r in raw["runs"]]
        e = {k: bl.stats([r[k] for r in rows]) for k in KEYS}
        e["kmeans_assign_ratio"] = bl.stats(
            [r["kmeans_assign_blas_eps"] / r["kmeans_assign_scalar_eps"] for r in rows])
        e["logreg_ratio"] = bl.stats([r["logreg_lib_eps"] / r["logreg_scalar_eps"] for r in rows])
        e["kmeans_assign_agree_min"] = min(r["kmeans_assign_agree"] for r in rows)
        e["logreg_max_weight_diff"] = max(r["logreg_max_weight_diff"] for r in rows)
        out["batches"][b] = e
        bl.log("models: batch %s: kmeans update+assign %.0f/s, assign BLAS/scalar %.2fx, "
               "logreg lr_* %.0f/s, lr_*/scalar %.2fx" %
               (b, e["kmeans_update_assign_eps"]["median"], e["kmeans_assign_ratio"]["median"],
                e["logreg_lib_eps"]["median"], e["logreg_ratio"]["median"]))
    bl.write_json("models", out)


if __name__ == "__main__":
    main()
