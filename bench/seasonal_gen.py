#!/usr/bin/env python3
"""Seasonal BG/NBD log generator (a shop with a rush and a lull every year) for bench/shapes.py.

The BG/NBD process (Fader, Hardie & Lee 2005: purchase rate lambda ~ Gamma(r, alpha) per user,
drop-out probability p ~ Beta(a, b) after every repeat purchase) runs in "shop time": a
calendar day counts s(day) days of it, where s is 1 except for a rush of --rush-days at
--rush-level followed by a lull of --lull-days at --lull-level, once a year (the log starts
with the rush, as a log cut at December 1 does). Every customer buys less in the lull and
more in the rush at once; nobody's drop-out depends on it. Customers arrive uniformly over
the --history-days before the log starts and the --arrive-days after it, so the log opens
on a shop with existing customers (their history before the log is cut away, as in any real
export); only purchases inside the log are written, and users without one are not in it.

This is the shape model.lull_days is for (README, "Lulls"): the shared silence of the lull
is not drop-out, and a BG/NBD in plain open days reads it as such.

Writes CSV user_id,ts_ms,event_type,amount (event_type purchase; ts_ms epoch ms) in time
order: the header maps itself in `churnstream replay`. Deterministic by seed (numpy's
default_rng).

Usage: python3 bench/seasonal_gen.py OUT.csv [--users 5000] [--days 546] [--seed 1]
           [--r 0.7195 --alpha 66.017 --a 0.000485 --b 124.45]   (Online Retail's fit,
           ../shared/notes/bgnbd.md, time unit days)
           [--rush-days 21 --rush-level 1.5 --lull-days 28 --lull-level 0.3]
           [--history-days 365 --arrive-days 300]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import regular_gen  # noqa: E402

DAY_MS = 86_400_000
START_MS = 1_733_011_200_000  # 2024-12-01T00:00:00Z: the log opens with the rush


def shop_time(days, history, rush_days, rush_level, lull_days, lull_level):
    """Cumulative shop time at each calendar day boundary from -history to days: (grid, S)."""
    grid = np.arange(-history, days + 1, dtype=float)
    level = np.ones(len(grid) - 1)
    day_of_year = np.mod(grid[:-1], 365.0)
    level[day_of_year < rush_days] = rush_level
    level[(day_of_year >= rush_days) & (day_of_year < rush_days + lull_days)] = lull_level
    return grid, np.concatenate([[0.0], np.cumsum(level)])


def generate(path, users=5000, days=546, seed=1, r=0.7195, alpha=66.017, a=0.000485, b=124.45,
             rush_days=21, rush_level=1.5, lull_days=28, lull_level=0.3, history_days=365,
             arrive_days=300):
    """Writes the log to path; returns (events, users with at least one purchase)."""
    rng = np.random.default_rng(seed)
    grid, S = shop_time(days, history_days, rush_days, rush_level, lull_days, lull_level)
    s_end = S[-1]
    rows = []
    for u in range(1, users + 1):
        uid = "s%06d" % u
        arrive = rng.uniform(-float(history_days), float(arrive_days))
        lam = rng.gamma(r, 1.0 / alpha)
        p = rng.beta(a, b)
        amount_median = 25.0 * np.exp(0.5 * rng.standard_normal())
        t = float(np.interp(arrive, grid, S))  # in shop time
        first = True
        while t < s_end:
            day = float(np.interp(t, S, grid))  # back to calendar days
            if day >= 0:
                amount = amount_median * np.exp(0.3 * rng.standard_normal())
                rows.append((START_MS + int(day * DAY_MS), uid, round(float(amount), 2)))
            if not first and rng.random() < p:
                break
            first = False
            t += rng.exponential(1.0 / lam)
    return regular_gen.write_purchases(path, rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="the CSV to write")
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--days", type=int, default=546)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--r", type=float, default=0.7195)
    ap.add_argument("--alpha", type=float, default=66.017, help="days")
    ap.add_argument("--a", type=float, default=0.000485)
    ap.add_argument("--b", type=float, default=124.45)
    ap.add_argument("--rush-days", type=int, default=21)
    ap.add_argument("--rush-level", type=float, default=1.5)
    ap.add_argument("--lull-days", type=int, default=28)
    ap.add_argument("--lull-level", type=float, default=0.3)
    ap.add_argument("--history-days", type=int, default=365,
                    help="customers arrive this many days before the log starts too")
    ap.add_argument("--arrive-days", type=int, default=300,
                    help="... and over these first days of the log")
    x = ap.parse_args()
    n, u = generate(x.out, x.users, x.days, x.seed, x.r, x.alpha, x.a, x.b, x.rush_days,
                    x.rush_level, x.lull_days, x.lull_level, x.history_days, x.arrive_days)
    print("seasonal_gen: %d events, %d users -> %s" % (n, u, x.out))


if __name__ == "__main__":
    main()
