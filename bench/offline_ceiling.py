#!/usr/bin/env python3
"""How far can a batch model go on churnstream's own features? (issue 12: Online Retail's
second-half AUC target of 0.77.) Reads `replay --snapshots-out` (labelled snapshots with the
features), keeps the complete ticks the replay measures (--ticks N: the summary's
model.ticks), trains on the first half of them and scores the second half with: a logistic
regression on the features, the same with recency bins, bins x lifetime days, recency-to-
rhythm bins and products, and gradient-boosted trees. Offline and with hindsight (it trains
on every first-half label at once), so an upper reference for the streaming regression, not
a competitor.

  churnstream replay --preset online-retail --tick.interval=7d online_retail.csv.gz \\
      --snapshots-out snaps.csv --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["model"]["ticks"])'
  python3 bench/offline_ceiling.py snaps.csv --ticks 41

Needs numpy, pandas and scikit-learn.
"""
import argparse

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler


def extended(df, feats, which):
    X = df[feats].copy()
    rec = np.expm1(df.days_since_activity)  # the file holds log1p(days)
    lifetime = df.active_days_lifetime
    ratio = np.expm1(df.recency_gap_ratio)
    if "bins" in which:
        for b in (7, 14, 30, 60, 120):
            X["rec_gt_%d" % b] = (rec > b).astype(float)
    if "bins_x_lifetime" in which:
        for b in (7, 14, 30, 60, 120):
            X["rec_gt_%d_x_lt" % b] = (rec > b) * lifetime
    if "ratio" in which:
        for b in (1, 2, 4):
            X["ratio_gt_%d" % b] = (ratio > b).astype(float)
            X["ratio_gt_%d_x_lt" % b] = (ratio > b) * lifetime
    if "products" in which:
        X["rec_x_lt"] = df.days_since_activity * lifetime
        X["ratio_x_lt"] = df.recency_gap_ratio * lifetime
    return X


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("snapshots")
    ap.add_argument("--ticks", type=int, required=True, help="complete ticks (summary model.ticks)")
    a = ap.parse_args()
    d = pd.read_csv(a.snapshots)
    ticks = sorted(d.tick_ms.unique())[: a.ticks]
    d = d[d.tick_ms.isin(ticks)]
    half = ticks[len(ticks) // 2]
    train, test = d[d.tick_ms < half], d[d.tick_ms >= half]
    feats = list(d.columns[4:])
    print("| model (trained on the first half) | AUC, second half |")
    print("|---|---|")
    print("| churnstream's published score (streaming) | %.4f |" % roc_auc_score(test.y, test.score))
    variants = [("logistic regression, the features", ()), ("+ recency bins", ("bins",)),
                ("+ recency bins and bins x lifetime days", ("bins", "bins_x_lifetime")),
                ("+ recency-to-rhythm bins", ("ratio",)), ("+ products", ("products",)),
                ("+ all of the above", ("bins", "bins_x_lifetime", "ratio", "products"))]
    for name, which in variants:
        x1, x2 = extended(train, feats, which), extended(test, feats, which)
        sc = StandardScaler().fit(x1)
        m = LogisticRegression(C=1.0, max_iter=3000).fit(sc.transform(x1), train.y)
        print("| %s | %.4f |" % (name, roc_auc_score(test.y, m.predict_proba(sc.transform(x2))[:, 1])))
    g = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                       min_samples_leaf=100).fit(train[feats], train.y)
    print("| gradient-boosted trees, the features | %.4f |"
          % roc_auc_score(test.y, g.predict_proba(test[feats])[:, 1]))


if __name__ == "__main__":
    main()
