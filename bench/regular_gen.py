#!/usr/bin/env python3
"""Regular-buyer log generator (a subscription-like shop) for bench/shapes.py.

Each user arrives (first purchase) at a time uniform over the first --arrive-days days, then
buys at Gamma-distributed gaps of shape k (4: much more regular than Poisson's k = 1) whose
mean is drawn per user from a lognormal (median --median-gap days, log-sd --gap-sigma).
After every purchase (the first included) the user drops out with probability --p-drop, so
the number of purchases is geometric (mean 1 / p-drop) unless the log ends first. This is
the shape where "overdue relative to the user's own rhythm" says more than plain recency: a
user with a 10-day rhythm silent for 30 days has most likely left, one with a 40-day rhythm
has not. Deterministic by seed (numpy's default_rng).

Writes CSV user_id,ts_ms,event_type,amount (event_type purchase; ts_ms epoch ms; amount
lognormal per purchase around a per-user median), in time order: the header maps itself in
`churnstream replay`.

Usage: python3 bench/regular_gen.py OUT.csv [--users 3000] [--days 546] [--seed 1]
                                    [--k 4] [--median-gap 20] [--gap-sigma 0.6]
                                    [--p-drop 0.08] [--arrive-days 300]
"""
import argparse
import csv

import numpy as np

DAY_MS = 86_400_000
START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z, gen's default start


def generate(path, users=3000, days=546, seed=1, k=4.0, median_gap=20.0, gap_sigma=0.6,
             p_drop=0.08, arrive_days=300):
    """Writes the log to path; returns (events, users with at least one purchase)."""
    rng = np.random.default_rng(seed)
    end = float(days)
    rows = []
    for u in range(1, users + 1):
        uid = "r%06d" % u
        t = rng.uniform(0.0, float(arrive_days))
        mean_gap = median_gap * np.exp(gap_sigma * rng.standard_normal())
        amount_median = 25.0 * np.exp(0.5 * rng.standard_normal())
        while t < end:
            amount = amount_median * np.exp(0.3 * rng.standard_normal())
            rows.append((START_MS + int(t * DAY_MS), uid, round(float(amount), 2)))
            if rng.random() < p_drop:
                break
            t += rng.gamma(k, mean_gap / k)
    return write_purchases(path, rows)


def write_purchases(path, rows):
    """Writes (ts_ms, user_id, amount) purchases as the self-mapping CSV, in time order (ties
    by user id); returns (events, distinct users). Also seasonal_gen.py's writer."""
    rows.sort()
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "ts_ms", "event_type", "amount"])
        for ts, uid, amount in rows:
            w.writerow([uid, ts, "purchase", "%.2f" % amount])
    return len(rows), len({r[1] for r in rows})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="the CSV to write")
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--days", type=int, default=546)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--k", type=float, default=4.0, help="Gamma shape of the gaps (1 = Poisson)")
    ap.add_argument("--median-gap", type=float, default=20.0, help="median of the users' mean gaps (days)")
    ap.add_argument("--gap-sigma", type=float, default=0.6, help="log-sd of the users' mean gaps")
    ap.add_argument("--p-drop", type=float, default=0.08, help="drop-out probability after each purchase")
    ap.add_argument("--arrive-days", type=int, default=300, help="first purchases uniform over these first days")
    a = ap.parse_args()
    n, u = generate(a.out, a.users, a.days, a.seed, a.k, a.median_gap, a.gap_sigma, a.p_drop,
                    a.arrive_days)
    print("regular_gen: %d events, %d users -> %s" % (n, u, a.out))


if __name__ == "__main__":
    main()
