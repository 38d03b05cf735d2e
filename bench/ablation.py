#!/usr/bin/env python3
"""Ablation of the churn score (issue 12): the same replay with each way of making the score
(config model.experts): hedge (the default), equal weights, BG/NBD alone, the logistic
regression alone, the recency prior alone, hedge with BG/NBD in calendar days instead of
open days (model.open_days=false), and hedge with every open day counting 1 instead of lulls
counting as part days (model.lull_days=false), and hedge with the BTYD expert held to BG/NBD's
shape (model.btyd_shapes=false); on both shared logs and, when given, on the logs
bench/btyd_sim.py simulated (--sim DIR). One Markdown table: AUC pooled / second half.

Usage: python3 bench/ablation.py [--churnstream ./churnstream] [--shared ../shared] [--sim DIR]
                                 [--tick 7d]
"""
import argparse
import json
import os
import subprocess

CJ2_MAP = "user_id=user_id,event_time=event_time:iso,event_type=event_type,amount=amount"
# (column, config overrides)
MODES = [("hedge", ["--model.experts=hedge"]), ("equal", ["--model.experts=equal"]),
         ("bgnbd", ["--model.experts=bgnbd"]), ("logreg", ["--model.experts=logreg"]),
         ("recency", ["--model.experts=recency"]),
         ("hedge, calendar days", ["--model.open_days=false"]),
         ("hedge, no lull days", ["--model.lull_days=false"]),
         ("hedge, BG/NBD shape only", ["--model.btyd_shapes=false"])]


def replay(binary, mode, args, path, tick):
    cmd = [binary, "replay", "--json", "--quiet", "--tick.interval=" + tick, *mode, *args, path]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--churnstream", default=os.path.join(here, "..", "churnstream"))
    ap.add_argument("--shared", default=os.path.join(here, "..", "..", "shared"))
    ap.add_argument("--sim", default=None, help="folder of bench/btyd_sim.py --out (its *.avro)")
    ap.add_argument("--tick", default="7d",
                    help="tick.interval (7d: the shared protocol; 1d: churnstream's default)")
    a = ap.parse_args()
    data = os.path.join(a.shared, "data")
    logs = [("Online Retail", ["--preset", "online-retail"], os.path.join(data, "online_retail.csv.gz")),
            ("completejourney2", ["--map", CJ2_MAP],
             os.path.join(data, "completejourney2", "completejourney2.csv.gz"))]
    if a.sim:
        for name in ("sparse", "retail", "grocery"):
            path = os.path.join(a.sim, name + ".avro")
            if os.path.exists(path):
                logs.append(("simulated BG/NBD, " + name, [], path))
    print("| log | " + " | ".join(name for name, _ in MODES) + " |")
    print("|---|" + "---|" * len(MODES))
    for name, args, path in logs:
        cells = []
        for _, mode in MODES:
            m = replay(a.churnstream, mode, args, path, a.tick)["model"]
            cells.append("%.3f / %.3f" % (m["auc"], m["auc_second_half"]))
        print("| %s | %s |" % (name, " | ".join(cells)), flush=True)


if __name__ == "__main__":
    main()
