"""Prequential learners on churnstream's labelled snapshots (--snapshots-out rows), under
churnstream's own protocol (DESIGN.md section 4): every row is scored at its tick with the
model as it stands then, and learnt from when its label arrives (rows in label order).
river goes one row at a time (StandardScaler | LogisticRegression, and KMeans on the
standardized row); scikit-learn learns in mini-batches (StandardScaler.partial_fit,
SGDClassifier(loss="log_loss").partial_fit, MiniBatchKMeans.partial_fit) and scores the
rows of a tick together. Only the learner calls are timed, not the data preparation.

Why not "predict a row, then learn it" in label order: labels arrive in bursts (positives
all at the sweep H after their tick), so the order itself gives the label away; run.py
reports how far a running mean of the previous labels gets on that order."""

import time

import numpy as np


def schedule(tick_ms, learn_cut):
    """Groups rows by tick in time order: yields (cut, rows of that tick), cut = how many
    rows (label order) are learnt before the tick is scored. learn_cut[i] is the number of
    rows learnt before time tick_ms[i] (see run.py)."""
    order = np.argsort(tick_ms, kind="stable")
    ticks = tick_ms[order]
    bounds = np.flatnonzero(np.diff(ticks)) + 1
    for grp in np.split(order, bounds):
        yield int(learn_cut[grp[0]]), grp


def river_dicts(X, names):
    """Rows as the dicts river takes (built before timing: data conversion, not learning)."""
    return [dict(zip(names, row)) for row in X.tolist()]


def river_prequential(rows, y, groups):
    from river import cluster, linear_model, preprocessing

    pipe = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    scaler = pipe["StandardScaler"]
    km = cluster.KMeans(n_clusters=8, seed=1)
    p = np.empty(len(rows))
    yb = [bool(v) for v in y]
    learned = 0
    t0 = time.perf_counter()
    for cut, grp in groups:
        for j in range(learned, cut):
            x = rows[j]
            pipe.learn_one(x, yb[j])
            km.learn_one(scaler.transform_one(x))
        learned = max(learned, cut)
        for i in grp.tolist():
            x = rows[i]
            p[i] = pipe.predict_proba_one(x).get(True, 0.5)
            km.predict_one(scaler.transform_one(x))
    for j in range(learned, len(rows)):  # labels that arrive after the last tick
        pipe.learn_one(rows[j], yb[j])
        km.learn_one(scaler.transform_one(rows[j]))
    return time.perf_counter() - t0, p


def sklearn_prequential(X, y, groups, batch=256):
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.linear_model import SGDClassifier
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    sgd = SGDClassifier(loss="log_loss", random_state=1)
    km = MiniBatchKMeans(n_clusters=8, random_state=1, n_init=1, batch_size=batch)
    p = np.full(len(X), 0.5)
    learned = 0

    def learn(lo, hi):
        xb = X[lo:hi]
        scaler.partial_fit(xb)
        z = scaler.transform(xb)
        sgd.partial_fit(z, y[lo:hi], classes=np.array([0, 1]))
        km.partial_fit(z)

    t0 = time.perf_counter()
    for cut, grp in groups:
        # Full mini-batches only, like a streaming learner: a partial one waits for more.
        while learned + batch <= cut:
            learn(learned, learned + batch)
            learned += batch
        if learned:
            z = scaler.transform(X[grp])
            p[grp] = sgd.predict_proba(z)[:, 1]
            km.predict(z)
    for lo in range(learned, len(X), batch):
        if len(X) - lo >= 8:  # MiniBatchKMeans needs at least n_clusters rows
            learn(lo, min(lo + batch, len(X)))
    return time.perf_counter() - t0, p
