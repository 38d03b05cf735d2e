#!/usr/bin/env python3
"""Offline ceiling with RICH features from the raw UCI Online Retail log (issue 12: can any
batch model with hindsight reach a second-half AUC of 0.77 under churnstream's labelling?).

Protocol = bench/offline_ceiling.py exactly: the labelled snapshots come from
`churnstream replay --snapshots-out` (user_id, tick_ms, y; y = no purchase in [T, T+90d),
eligible = a purchase in [T-90d, T)); keep the first --ticks distinct tick_ms (the summary's
model.ticks), half = ticks[len(ticks)//2], train on tick_ms < half, score tick_ms >= half,
one pooled roc_auc_score over all second-half snapshots.

What differs: the features. For each snapshot (u, T) they are recomputed from the raw CSV
using only rows of user u with InvoiceDate < T (InvoiceDate read as UTC, as the preset does;
rows without CustomerID dropped; user id = int(CustomerID); InvoiceNo starting with 'C' =
cancellation, not activity). Windows 7/30/90/180 days and lifetime (a 365-day window equals
lifetime at every kept tick because the log starts 2010-12-01, so it is omitted).

Hyper-parameters are chosen on a validation split INSIDE the first half (inner-train: first
13 of the 20 first-half ticks, validation: the last 7); every configuration's second-half AUC
is printed anyway (no selection on the test half). Permutation importance is measured on the
validation split.

Reproduce (about 5 minutes on 2 cores; the replay itself takes 1 s):
  ./churnstream replay --preset online-retail --tick.interval=7d \\
      ../shared/data/online_retail.csv.gz --snapshots-out snaps.csv --json > summary.json
  python3 -c 'import json; print(json.load(open("summary.json"))["model"]["ticks"])'  # 41
  python3 bench/rich_ceiling.py snaps.csv --ticks 41 --raw ../shared/data/online_retail.csv.gz

Needs numpy, pandas, scikit-learn.
"""
import argparse
import time

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

DAY = 86400000
K = 10**13  # key = uid * K + ts_ms (ts_ms < 1e13), so one sorted array serves every user
WINDOWS = (7, 30, 90, 180)
TOP_COUNTRIES = ("United Kingdom", "Germany", "France", "EIRE", "Spain", "Netherlands",
                 "Belgium", "Switzerland")


def load_raw(path):
    r = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str})
    r = r[r.CustomerID.notna() & (r.CustomerID.str.len() > 0)].copy()
    r["uid"] = r.CustomerID.astype(float).astype(np.int64)
    r["ts"] = (pd.to_datetime(r.InvoiceDate, format="%Y-%m-%d %H:%M:%S", utc=True)
               .dt.as_unit("ms").astype("int64"))
    r["cancel"] = r.InvoiceNo.str.startswith("C")
    r["amt"] = r.Quantity * r.UnitPrice
    return r


class Cum:
    """Sorted (uid, ts) events with cumulative sums: sums over [T-w, T) per query by searchsorted."""

    def __init__(self, uid, ts, cols):
        key = uid.astype(np.int64) * K + ts.astype(np.int64)
        o = np.argsort(key, kind="stable")
        self.key = key[o]
        self.ts = ts.astype(np.int64)[o]
        self.cum = {c: np.concatenate([[0.0], np.cumsum(np.asarray(v, float)[o])])
                    for c, v in cols.items()}

    def idx(self, u, t):
        return np.searchsorted(self.key, u * K + t, "left")

    def sum(self, c, u, T, w_days=None):
        hi = self.idx(u, T)
        lo = self.idx(u, np.zeros_like(T)) if w_days is None else self.idx(u, T - w_days * DAY)
        return self.cum[c][hi] - self.cum[c][lo]


def features(snap, r):
    u = snap.user_id.values.astype(np.int64)
    T = snap.tick_ms.values.astype(np.int64)
    F = {}
    p = r[~r.cancel]
    c = r[r.cancel]
    # invoices (purchases)
    inv = p.groupby(["uid", "InvoiceNo"], sort=False).agg(
        ts=("ts", "min"), spend=("amt", "sum"), lines=("amt", "size"), qty=("Quantity", "sum"),
        price=("UnitPrice", "mean")).reset_index()
    dt = pd.to_datetime(inv.ts, unit="ms", utc=True)
    inv["hour"] = dt.dt.hour + dt.dt.minute / 60.0
    inv["weekend"] = (dt.dt.day_of_week >= 5).astype(float)  # (the shop trades Sun, not Sat)
    inv["sunday"] = (dt.dt.day_of_week == 6).astype(float)
    inv["one"] = 1.0
    I = Cum(inv.uid.values, inv.ts.values, {k: inv[k].values for k in
                                            ("one", "spend", "lines", "qty", "price", "hour",
                                             "sunday")})
    # distinct active (purchase) days, and the gaps between consecutive active days
    days = p[["uid"]].assign(day=p.ts // DAY).drop_duplicates().sort_values(["uid", "day"])
    days["one"] = 1.0
    gap = days.groupby("uid").day.diff()
    days["gap"] = gap.fillna(0.0).values
    days["gap2"] = days.gap ** 2
    days["hasgap"] = gap.notna().astype(float).values
    Dd = Cum(days.uid.values, days.day.values * DAY, {k: days[k].values for k in
                                                     ("one", "gap", "gap2", "hasgap")})
    # lines: Christmas items, distinct stock codes (first time the user bought each code)
    p = p.assign(xmas=p.Description.str.contains("CHRISTMAS|XMAS", na=False).astype(float))
    L = Cum(p.uid.values, p.ts.values, {"one": np.ones(len(p)), "xmas": p.xmas.values,
                                         "xmas_amt": p.xmas.values * p.amt.values})
    first = p.groupby(["uid", "StockCode"]).ts.min().reset_index()
    S = Cum(first.uid.values, first.ts.values, {"one": np.ones(len(first))})
    # cancellations (invoice level)
    cinv = c.groupby(["uid", "InvoiceNo"]).agg(ts=("ts", "min"), val=("amt", "sum")).reset_index()
    C = Cum(cinv.uid.values, cinv.ts.values, {"one": np.ones(len(cinv)),
                                              "val": -cinv.val.values})

    for w in WINDOWS + (None,):
        nm = "life" if w is None else "%dd" % w
        F["inv_" + nm] = I.sum("one", u, T, w)
        F["days_" + nm] = Dd.sum("one", u, T, w)
        F["spend_" + nm] = I.sum("spend", u, T, w)
    F["inv_90_180"] = F["inv_180d"] - F["inv_90d"]
    F["days_90_180"] = F["days_180d"] - F["days_90d"]
    # (no log-ratio trend inv_90d / inv_90_180: before 2011-03-01 every user's 90-180 d window
    # is empty because the log starts 2010-12-01, so the ratio is log1p(inv_90d) in training
    # and something else later; it wrecked the logistic regression out of time)
    F["trend_days_30_90"] = F["days_30d"] / 30 - F["days_90d"] / 90
    n = F["inv_life"]
    F["lines_per_inv"] = I.sum("lines", u, T) / n
    F["qty_per_inv"] = I.sum("qty", u, T) / n
    F["spend_per_inv"] = F["spend_life"] / n
    F["mean_unit_price"] = I.sum("price", u, T) / n
    F["mean_hour"] = I.sum("hour", u, T) / n
    F["sunday_share"] = I.sum("sunday", u, T) / n
    F["distinct_items"] = S.sum("one", u, T)
    F["items_per_line"] = F["distinct_items"] / L.sum("one", u, T)
    F["xmas_line_share"] = L.sum("xmas", u, T) / L.sum("one", u, T)
    F["xmas_spend_share"] = L.sum("xmas_amt", u, T) / np.maximum(F["spend_life"], 1e-9)
    F["cancel_inv_life"] = C.sum("one", u, T)
    F["cancel_inv_90d"] = C.sum("one", u, T, 90)
    F["cancel_val_life"] = C.sum("val", u, T)
    F["cancel_ratio"] = F["cancel_val_life"] / np.maximum(F["spend_life"], 1e-9)
    # recency, tenure, gaps (active days)
    hi = I.idx(u, T)
    assert np.all(I.key[hi - 1] // K == u), "every snapshot must have a purchase before T"
    last = I.ts[hi - 1]
    lo = I.idx(u, np.zeros_like(T))
    firstts = I.ts[lo]
    F["recency_d"] = (T - last) / DAY
    F["tenure_d"] = (T - firstts) / DAY
    ng = Dd.sum("hasgap", u, T)
    sg = Dd.sum("gap", u, T)
    F["n_gaps"] = ng
    F["gap_mean"] = np.where(ng > 0, sg / np.maximum(ng, 1), np.nan)
    var = Dd.sum("gap2", u, T) / np.maximum(ng, 1) - (sg / np.maximum(ng, 1)) ** 2
    F["gap_std"] = np.where(ng > 1, np.sqrt(np.maximum(var, 0)), np.nan)
    dhi = Dd.idx(u, T)
    dlo = Dd.idx(u, np.zeros_like(T))
    gaps_all = Dd.cum["gap"]  # cumulative; recover per-element gaps
    g_el = np.diff(gaps_all)
    F["gap_last"] = np.where(ng > 0, g_el[dhi - 1], np.nan)
    med = np.full(len(u), np.nan)
    mx = np.full(len(u), np.nan)
    for k in np.nonzero(ng > 0)[0]:
        gg = g_el[dlo[k] + 1:dhi[k]]  # first active day of a user has no gap
        med[k] = np.median(gg)
        mx[k] = gg.max()
    F["gap_median"] = med
    F["gap_max"] = mx
    rec_days = T // DAY - Dd.ts[dhi - 1] // DAY  # whole days since the last active day
    F["rec_over_meangap"] = np.where(ng > 0, rec_days / np.maximum(F["gap_mean"], 1), np.nan)
    F["rec_over_maxgap"] = np.where(ng > 0, rec_days / np.maximum(F["gap_max"], 1), np.nan)
    F["rec_over_mediangap"] = np.where(ng > 0, rec_days / np.maximum(F["gap_median"], 1), np.nan)
    F["rate_days_per_30"] = F["days_life"] / np.maximum(F["tenure_d"], 1) * 30
    F["exp_nobuy_90"] = np.exp(-90 * F["days_life"] / np.maximum(F["tenure_d"], 7))
    # country (static attribute of the customer)
    ctry = r.groupby("uid").Country.agg(lambda s: s.value_counts().index[0])
    cu = ctry.reindex(u).values
    for cn in TOP_COUNTRIES:
        F["ctry_" + cn.replace(" ", "_")] = (cu == cn).astype(float)
    X = pd.DataFrame(F, index=snap.index)
    cal = pd.DataFrame({"month": pd.to_datetime(T, unit="ms").month.values,
                        "doy": pd.to_datetime(T, unit="ms").day_of_year.values}, index=snap.index)
    return X, cal


def lr_transform(X):
    """For the logistic regression: signed log1p of every column, NaN -> 0 plus an indicator,
    and recency / rhythm bins."""
    Z = pd.DataFrame(index=X.index)
    for col in X.columns:
        v = X[col].astype(float)
        if col.startswith("ctry_"):
            Z[col] = v
            continue
        if v.isna().any():
            Z[col + "_nan"] = v.isna().astype(float)
            v = v.fillna(0.0)
        Z[col] = np.sign(v) * np.log1p(np.abs(v))
    if "recency_d" in X:
        for b in (7, 14, 30, 60):
            Z["rec_gt_%d" % b] = (X.recency_d > b).astype(float)
    if "rec_over_meangap" in X:
        for b in (1, 2, 4):
            Z["ratio_gt_%d" % b] = (X.rec_over_meangap.fillna(0) > b).astype(float)
    return Z


def fit_lr(x1, y1, C=1.0):
    sc = StandardScaler().fit(x1)
    m = LogisticRegression(C=C, max_iter=5000).fit(sc.transform(x1), y1)
    return lambda x: m.predict_proba(sc.transform(x))[:, 1]


HGB_GRID = {
    "A lr.05 leaves15 minleaf100 it200 (offline_ceiling's)":
        dict(max_iter=200, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=100),
    "B lr.03 leaves7 minleaf200 it300":
        dict(max_iter=300, learning_rate=0.03, max_leaf_nodes=7, min_samples_leaf=200),
    "C lr.03 leaves31 minleaf50 it300 l2=1":
        dict(max_iter=300, learning_rate=0.03, max_leaf_nodes=31, min_samples_leaf=50,
             l2_regularization=1.0),
    "D lr.02 leaves15 minleaf300 it500 l2=1":
        dict(max_iter=500, learning_rate=0.02, max_leaf_nodes=15, min_samples_leaf=300,
             l2_regularization=1.0),
    "E lr.1 leaves4 minleaf400 it100":
        dict(max_iter=100, learning_rate=0.1, max_leaf_nodes=4, min_samples_leaf=400),
    "F lr.03 leaves63 minleaf20 it400 l2=1":
        dict(max_iter=400, learning_rate=0.03, max_leaf_nodes=63, min_samples_leaf=20,
             l2_regularization=1.0),
}


def fit_hgb(x1, y1, params):
    m = HistGradientBoostingClassifier(early_stopping=False, random_state=0, **params).fit(x1, y1)
    return lambda x: m.predict_proba(x)[:, 1], m


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("snapshots")
    ap.add_argument("--ticks", type=int, required=True, help="complete ticks (summary model.ticks)")
    ap.add_argument("--raw", default="../shared/data/online_retail.csv.gz",
                    help="the raw Online Retail CSV (gzip)")
    ap.add_argument("--features-out", default=None, help="write the feature table (csv)")
    ap.add_argument("--boot", type=int, default=200, help="user bootstrap resamples")
    ap.add_argument("--results-out", default=None, help="write every configuration's figures (csv)")
    a = ap.parse_args()
    t0 = time.time()
    d = pd.read_csv(a.snapshots)
    ticks = sorted(d.tick_ms.unique())[: a.ticks]
    d = d[d.tick_ms.isin(ticks)].reset_index(drop=True)
    half = ticks[len(ticks) // 2]
    cs_feats = list(d.columns[4:])
    r = load_raw(a.raw)
    X, cal = features(d, r)
    # sanity: recency recomputed from the raw log agrees with churnstream's (log1p days)
    rec_cs = np.expm1(d.days_since_activity.values)
    print("# snapshots %d, ticks %d, half at %s; max |recency raw - churnstream| = %.4f d; "
          "%d raw features; features in %.1f s"
          % (len(d), len(ticks), pd.to_datetime(half, unit="ms").date(),
             np.abs(X.recency_d.values - rec_cs).max(), X.shape[1], time.time() - t0))
    if a.features_out:
        pd.concat([d[["user_id", "tick_ms", "y"]], X, cal], axis=1).to_csv(a.features_out,
                                                                         index=False)
    y = d.y.values
    uid = d.user_id.values
    tr = (d.tick_ms < half).values
    te = ~tr
    # Inner validation inside the first half: user-disjoint AND later in time. Inner-train =
    # users of group A at the first 13 first-half ticks; validation = users of group B at the
    # last 7 first-half ticks. (A time-only split shares users whose 90-day label windows
    # overlap the validation ticks: flexible trees then memorise users; see RESULT.md.)
    users = np.unique(uid)
    grpA = set(np.random.RandomState(0).permutation(users)[: len(users) // 2])
    inA = np.array([x in grpA for x in uid])
    early = (d.tick_ms < ticks[13]).values
    itr = tr & early & inA
    iva = tr & ~early & ~inA
    CS = d[cs_feats]
    sets = {"cs (churnstream's 24)": CS, "raw": X,
            "raw+cs": pd.concat([X, CS.add_prefix("cs_")], axis=1),
            "raw+calendar": pd.concat([X, cal], axis=1)}
    rows, preds, specs = [], {}, {}

    def auc_tick(p, mask):
        s = pd.DataFrame({"t": d.tick_ms.values[mask], "y": y[mask], "p": p})
        return np.mean([roc_auc_score(g.y, g.p) for _, g in s.groupby("t")])

    def report(model, fname, cfg, pred_va, pred_te, spec):
        row = dict(model=model, features=fname, config=cfg,
                   val_auc=roc_auc_score(y[iva], pred_va),
                   test_auc=roc_auc_score(y[te], pred_te),
                   test_auc_mean_per_tick=auc_tick(pred_te, te))
        rows.append(row)
        preds[(model, fname, cfg)] = pred_te
        specs[(model, fname, cfg)] = spec
        print("| %s | %s | %s | %.4f | %.4f | %.4f |" % (model, fname, cfg, row["val_auc"],
                                                        row["test_auc"],
                                                        row["test_auc_mean_per_tick"]),
              flush=True)

    def prep(fname, F):
        return F if fname.startswith("cs") else lr_transform(F)

    print("| model | features | config | val AUC (inner, user-disjoint) | second-half AUC "
          "| mean per-tick AUC |")
    print("|---|---|---|---|---|---|")
    for nm, v in (("churnstream streaming score", d.score.values),
                  ("recency (days since purchase)", X.recency_d.values)):
        print("| %s | - | - | %.4f | %.4f | %.4f |" % (nm, roc_auc_score(y[iva], v[iva]),
                                                       roc_auc_score(y[te], v[te]),
                                                       auc_tick(v[te], te)))
        preds[(nm, "-", "-")] = v[te]
    for fname, F in sets.items():
        Z = prep(fname, F)
        for C in (0.1, 1.0):
            pv = fit_lr(Z[itr], y[itr], C)(Z[iva])
            pt = fit_lr(Z[tr], y[tr], C)(Z[te])
            report("logistic regression", fname,
                   "C=%g%s" % (C, "" if fname.startswith("cs") else ", log1p+bins"), pv, pt,
                   ("lr", fname, C))
    for fname, F in sets.items():
        for cfg, params in HGB_GRID.items():
            pv, _ = fit_hgb(F[itr], y[itr], params)
            pt, _ = fit_hgb(F[tr], y[tr], params)
            report("HistGradientBoosting", fname, cfg, pv(F[iva]), pt(F[te]),
                   ("hgb", fname, params))
    res = pd.DataFrame(rows)
    if a.results_out:
        res.to_csv(a.results_out, index=False)
    print("\n# selected on the inner validation split (never on the second half):")
    sel = []
    for (mname, fname), g in res.groupby(["model", "features"], sort=False):
        b = g.loc[g.val_auc.idxmax()]
        sel.append((mname, fname, b.config))
        print("  %s / %s: %s -> val %.4f, second half %.4f" % (mname, fname, b.config, b.val_auc,
                                                              b.test_auc))
    best_raw = [k for k in sel if k[0] == "HistGradientBoosting" and k[1] == "raw"][0]
    best_all = max(rows, key=lambda r: r["test_auc"])
    best_all = (best_all["model"], best_all["features"], best_all["config"])

    # Robustness of the selected models (and the best second-half figure of the whole grid):
    # Rows: the streaming score, the reference, the validation-selected models, and every
    # configuration whose second-half AUC reached 0.77.
    #  (1) user bootstrap 95% interval of the second-half AUC and of the gain over
    #      logistic regression on churnstream's features (C=1, the 0.762 of offline_ceiling.py);
    #  (2) late second half: ticks >= last first-half tick + 90 d, whose labels no training
    #      label overlaps in time;
    #  (3) user-disjoint: fit on group A's first half, score group B's second half and the
    #      reverse; mean of the two AUCs (no user is both trained on and scored).
    ref = ("logistic regression", "cs (churnstream's 24)", "C=1")
    keys = [("churnstream streaming score", "-", "-"), ref] + sel
    for rw in sorted(rows, key=lambda r: -r["test_auc"]):  # every figure >= 0.77, best first
        k = (rw["model"], rw["features"], rw["config"])
        if (rw["test_auc"] >= 0.77 or k == best_all) and k not in keys:
            keys.append(k)
    rs = np.random.RandomState(1)
    ute = uid[te]
    uu, inv_u = np.unique(ute, return_inverse=True)
    W = [np.bincount(rs.randint(0, len(uu), len(uu)), minlength=len(uu))[inv_u]
         for _ in range(a.boot)]
    late = (d.tick_ms.values >= ticks[len(ticks) // 2 - 1] + 90 * DAY)
    lt = late[te]

    def refit(spec, trm, tem):
        kind, fname, p = spec
        F = sets[fname]
        if kind == "lr":
            Z = prep(fname, F)
            return fit_lr(Z[trm], y[trm], p)(Z[tem])
        return fit_hgb(F[trm], y[trm], p)[0](F[tem])

    print("\n| model | features | config | 2nd half AUC [95%% user bootstrap] | gain vs LR on cs "
          "[95%%] | late 2nd half (%d ticks, no label overlap) | user-disjoint halves |"
          % len(np.unique(d.tick_ms.values[late])))
    print("|---|---|---|---|---|---|---|")
    pref = preds[ref]
    for k in keys:
        p = preds[k]
        auc = roc_auc_score(y[te], p)
        bs = np.array([roc_auc_score(y[te], p, sample_weight=w) for w in W])
        bg = np.array([roc_auc_score(y[te], p, sample_weight=w)
                       - roc_auc_score(y[te], pref, sample_weight=w) for w in W])
        la = roc_auc_score(y[te][lt], p[lt])
        if k in specs:
            ud = np.mean([roc_auc_score(y[te & ~g], refit(specs[k], tr & g, te & ~g))
                          for g in (inA, ~inA)])
            uds = "%.4f" % ud
        else:
            uds = "n/a (streaming)"
        print("| %s | %s | %s | %.4f [%.4f, %.4f] | %+.4f [%+.4f, %+.4f] | %.4f | %s |"
              % (k[0], k[1], k[2], auc, *np.percentile(bs, [2.5, 97.5]), auc - roc_auc_score(
                  y[te], pref), *np.percentile(bg, [2.5, 97.5]), la, uds), flush=True)

    # permutation importance: validation-selected HGB on raw features, fitted on inner-train,
    # measured on the (user-disjoint) validation split
    params = HGB_GRID[best_raw[2]]
    _, m = fit_hgb(X[itr], y[itr], params)
    pi = permutation_importance(m, X[iva], y[iva], scoring="roc_auc", n_repeats=5,
                                random_state=0, n_jobs=1)
    imp = pd.Series(pi.importances_mean, index=X.columns).sort_values(ascending=False)
    print("\n# permutation importance (drop in validation AUC), HGB raw, %s:" % best_raw[2])
    for k, v in imp.head(15).items():
        print("  %-22s %.4f" % (k, v))
    # the same model fitted on the whole first half, importance on the second half (descriptive)
    _, m2 = fit_hgb(X[tr], y[tr], params)
    pi2 = permutation_importance(m2, X[te], y[te], scoring="roc_auc", n_repeats=3,
                                 random_state=0, n_jobs=1)
    imp2 = pd.Series(pi2.importances_mean, index=X.columns).sort_values(ascending=False)
    print("\n# (descriptive) the same, fitted on the first half, importance on the second half:")
    for k, v in imp2.head(15).items():
        print("  %-22s %.4f" % (k, v))
    print("\n# total %.1f s" % (time.time() - t0))


if __name__ == "__main__":
    main()
