#!/usr/bin/env python3
"""Generalization check of the churn score (issue 12): replays every shape of log we can make
with the default configuration and prints one Markdown table of the published score beside
each expert (recency, BG/NBD, logistic regression) on the same snapshots.

Shapes: the two shared logs whole, and seeded user subsamples of each (every event of each
kept user), which change the population size and the cold start without changing the shop.
Nothing is tuned here: the point is to see the same default configuration on every shape.

Usage: python3 bench/generalization.py [--churnstream ./churnstream] [--shared ../shared]
                                       [--users 1500] [--seeds 1,2,3] [--out DIR] [--tick 7d]
"""
import argparse
import csv
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile

CJ2_MAP = "user_id=user_id,event_time=event_time:iso,event_type=event_type,amount=amount"


def subsample_csv(src, dst, user_col, users, seed):
    """Writes the rows of `users` randomly chosen users (seeded) of a gzip CSV to dst."""
    with gzip.open(src, "rt", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    col = header.index(user_col)
    ids = sorted({r[col] for r in body if r[col]})
    rng = random.Random(seed)
    keep = set(rng.sample(ids, min(users, len(ids))))
    with gzip.open(dst, "wt", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(r for r in body if r[col] in keep)


def replay(binary, args, path, tick):
    cmd = [binary, "replay", "--json", "--quiet", "--tick.interval=" + tick, *args, path]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def row(name, s):
    m, ex = s["model"], s["experts"]
    cells = [name, str(s["labelled"]), "%.3f" % m["positive_rate"]]
    for key in ("auc", "auc_second_half"):
        cells.append(
            "**%.3f** / %.3f / %.3f / %.3f"
            % (m[key], ex["bgnbd"][key], ex["logreg"][key], s["recency_baseline"][key])
        )
    cells.append("%.3f" % s["auc_first_quarter"])
    cells.append("%.3f" % s["auc_early_warning"])
    cells.append("%.3f / %.3f" % (m["logloss"], ex["bgnbd"]["logloss"]))
    return "| " + " | ".join(cells) + " |"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--churnstream", default=os.path.join(here, "..", "churnstream"))
    ap.add_argument("--shared", default=os.path.join(here, "..", "..", "shared"))
    ap.add_argument("--users", type=int, default=1500)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--out", default=None, help="keep the subsample files here")
    ap.add_argument("--tick", default="7d",
                    help="tick.interval (7d: the shared protocol; 1d: churnstream's default)")
    a = ap.parse_args()
    data = os.path.join(a.shared, "data")
    logs = [
        ("Online Retail", os.path.join(data, "online_retail.csv.gz"), ["--preset", "online-retail"], "CustomerID"),
        ("completejourney2", os.path.join(data, "completejourney2", "completejourney2.csv.gz"), ["--map", CJ2_MAP], "user_id"),
    ]
    out = a.out or tempfile.mkdtemp(prefix="cs-gen-")
    os.makedirs(out, exist_ok=True)
    print("| log | labelled | positive rate | AUC pooled: score / BG/NBD / LR / recency | AUC 2nd half: score / BG/NBD / LR / recency | 1st-quarter AUC | early-warning AUC | log-loss: score / BG/NBD |")
    print("|---|---|---|---|---|---|---|---|")
    for name, path, args, ucol in logs:
        print(row(name, replay(a.churnstream, args, path, a.tick)))
        sys.stdout.flush()
        for seed in [int(s) for s in a.seeds.split(",") if s]:
            sub = os.path.join(out, "%s-%d-%d.csv.gz" % (ucol, a.users, seed))
            subsample_csv(path, sub, ucol, a.users, seed)
            print(row("%s, %d users, seed %d" % (name, a.users, seed),
                      replay(a.churnstream, args, sub, a.tick)))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
