#!/usr/bin/env python3
"""Baselines: the same learning problem in river and scikit-learn, on churnstream's own
labelled snapshots. Per data set and run: `churnstream replay --snapshots-out` (tick.interval
7d; its events/s and labelled snapshots/s are churnstream's figures), then river (one row at a
time) and scikit-learn (mini-batches of 256) learn prequentially from the same rows in the
same order, and a pure-Python per-event feature loop (baselines/py_features.py) runs over the
data set's events. AUCs are over the same rows (labelled, window inside the log, as in the
replay's metrics). The Python learners get churnstream's features for free; the feature loop
measures that missing cost separately, and the two combine into the events/s a river user
would see (see bench/README.md for the exact formula).
Usage: bench/baselines/run.py [--build DIR] [--runs N]  -> bench/out/baselines.json"""

import argparse
import hashlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import benchlib as bl  # noqa: E402

IMPORTS = ["river", "sklearn", "pandas", "numpy"]
HORIZON_MS = 90 * 86400000
REPLAY_FLAGS = ["--tick.interval=7d", "--label.horizon=90d"]
PY_FEATURE_EVENTS = 1000000  # first events of a data set fed to the Python feature loop


def ensure_packages():
    missing = [m for m in IMPORTS if importlib.util.find_spec(m) is None]
    if not missing:
        return
    req = os.path.join(bl.ROOT, "bench", "requirements.txt")
    bl.log("baselines: installing %s (pip -q -r %s)" % (", ".join(missing), req))
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "-r", req])
    importlib.invalidate_caches()


def versions():
    out = {"python": sys.version.split()[0]}
    for m in IMPORTS:
        out[m] = getattr(importlib.import_module(m), "__version__", "?")
    return out


def load_events(build, path, tmp):
    """Every event of a container file as a DataFrame (user_id, event_time_ms, type, amount),
    through bench/dump_events (the codec's reader)."""
    import pandas as pd

    csv = os.path.join(tmp, os.path.basename(path) + ".events.csv")
    bl.check(bl.run_measured([bl.bench_bin(build, "dump_events"), path, csv]), "dump_events")
    ev = pd.read_csv(csv, dtype={"user_id": str, "event_time_ms": "int64", "type": "int64",
                                 "amount": "float64"})
    os.remove(csv)
    return ev


def label_times(snap, ev):
    """When each snapshot's label becomes known (DESIGN.md section 4): T + H for a positive;
    for a negative, the user's first activity at or after T (an exact match from the events,
    or the bench stops)."""
    import numpy as np
    import pandas as pd

    act = ev[~ev["type"].isin([6, 9])][["user_id", "event_time_ms"]]  # refund, cancel
    act = act.sort_values("event_time_ms", kind="stable")
    neg = snap[snap["y"] == 0][["user_id", "tick_ms"]].reset_index()
    neg = neg.sort_values("tick_ms", kind="stable")
    m = pd.merge_asof(neg, act, left_on="tick_ms", right_on="event_time_ms", by="user_id",
                      direction="forward", allow_exact_matches=True)
    if m["event_time_ms"].isna().any():
        raise SystemExit("bench: %d negative snapshots have no later activity" %
                         int(m["event_time_ms"].isna().sum()))
    lt = (snap["tick_ms"] + HORIZON_MS).to_numpy(dtype=np.int64).copy()
    lt[m["index"].to_numpy()] = m["event_time_ms"].to_numpy(dtype=np.int64)
    return lt


def auc(y, s):
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def label_order_leak_auc(y, inw):
    """AUC of a running mean of the previous labels (no features at all) when rows come in
    label order: what "predict each row, then learn it" in label order would reward."""
    import numpy as np

    p = np.empty(len(y))
    m = 0.5
    for i, v in enumerate(y.tolist()):
        p[i] = m
        m += 0.1 * (v - m)
    return auc(y[inw], p[inw])


def prepare(snaps, summary, ev):
    import numpy as np
    import pandas as pd

    import learners

    df = pd.read_csv(snaps, dtype={"user_id": str})
    names = list(df.columns[4:])
    X = df[names].to_numpy(dtype=np.float32)
    y = df["y"].to_numpy(dtype=np.int64)
    tick = df["tick_ms"].to_numpy(dtype=np.int64)
    inwin = (tick + HORIZON_MS) <= summary["end_ms"]
    lt = label_times(df, ev)
    # Rows are learnt in label order (the file's order); row j counts as learnt before a tick
    # T when the latest label time among rows 0..j is before T, so no row is ever learnt
    # before its label exists.
    cum = np.maximum.accumulate(lt)
    cut = np.searchsorted(cum, tick, side="left")
    groups = list(learners.schedule(tick, cut))
    return {"X": X, "y": y, "score": df["score"].to_numpy(), "in": inwin, "groups": groups,
            "dicts": learners.river_dicts(X, names), "names": names,
            "label_delay_days": float(np.median((lt - tick) / 86400000.0)),
            "leak_auc": label_order_leak_auc(y, inwin)}


def bench_dataset(build, name, path, runs, tmp):
    import learners
    import py_features

    snaps = os.path.join(tmp, name + ".snapshots.csv")
    bl.log("baselines[%s]: dumping events (label times, Python feature loop)" % name)
    ev = load_events(build, path, tmp)
    nfeat = min(len(ev), PY_FEATURE_EVENTS)
    events = list(zip(ev["user_id"][:nfeat].tolist(), ev["event_time_ms"][:nfeat].tolist(),
                      ev["type"][:nfeat].tolist(), ev["amount"][:nfeat].tolist()))
    data = None
    rows = []
    for r in range(runs):
        summary, res = bl.replay_json(build, path, REPLAY_FLAGS + ["--snapshots-out", snaps])
        with open(snaps, "rb") as f:
            digest = hashlib.sha1(f.read()).hexdigest()
        if data is None:
            data = prepare(snaps, summary, ev)
            data["digest"] = digest
            bl.log("baselines[%s]: %d labelled snapshots (%d inside the log's window), %d "
                   "features, median label delay %.1f days" %
                   (name, len(data["y"]), int(data["in"].sum()), len(data["names"]),
                    data["label_delay_days"]))
        elif digest != data["digest"]:
            raise SystemExit("bench: replay wrote different snapshots on run %d" % (r + 1))
        n, inw, y = len(data["y"]), data["in"], data["y"]
        cs = {"events": summary["events_read"], "seconds": summary["seconds"],
              "eps": summary["events_read"] / summary["seconds"],
              "snapshots_per_s": n / summary["seconds"], "scored": summary["scored"],
              "auc": auc(y[inw], data["score"][inw]), "replay_auc": summary["model"]["auc"],
              "recency_auc": summary["recency_baseline"]["auc"]}
        rv_s, rv_p = learners.river_prequential(data["dicts"], y, data["groups"])
        sk_s, sk_p = learners.sklearn_prequential(data["X"], y, data["groups"])
        ft_s, ft_users, _ = py_features.run(events)
        row = {"churnstream": cs,
               "river": {"eps": n / rv_s, "auc": auc(y[inw], rv_p[inw])},
               "sklearn": {"eps": n / sk_s, "auc": auc(y[inw], sk_p[inw])},
               "py_features": {"eps": len(events) / ft_s}}
        # A river user's events/s: per event the feature loop, plus the learner's work for
        # the share of a labelled snapshot each event carries in this data set.
        per_event_s = 1 / row["py_features"]["eps"] + (n / cs["events"]) / row["river"]["eps"]
        row["river_pipeline_eps"] = 1 / per_event_s
        row["ratio_vs_river_pipeline"] = cs["eps"] / row["river_pipeline_eps"]
        row["ratio_snapshots_vs_river"] = cs["snapshots_per_s"] / row["river"]["eps"]
        rows.append(row)
        bl.log("baselines[%s] run %d/%d: churnstream %.0f ev/s %.0f snap/s AUC %.4f | river "
               "%.0f ex/s AUC %.4f | sklearn %.0f ex/s AUC %.4f | py features %.0f ev/s | "
               "river pipeline %.0f ev/s -> %.0fx" %
               (name, r + 1, runs, cs["eps"], cs["snapshots_per_s"], cs["auc"],
                row["river"]["eps"], row["river"]["auc"], row["sklearn"]["eps"],
                row["sklearn"]["auc"], row["py_features"]["eps"], row["river_pipeline_eps"],
                row["ratio_vs_river_pipeline"]))
    out = {"path": path, "events": int(len(ev)), "snapshots": int(n),
           "in_window": int(inw.sum()), "positive_rate": float(y[inw].mean()),
           "py_feature_events": nfeat, "label_delay_days_median": data["label_delay_days"],
           "label_order_leak_auc": data["leak_auc"], "runs": rows}
    for who in ("churnstream", "river", "sklearn", "py_features"):
        out[who] = {k: bl.stats([x[who][k] for x in rows]) for k in rows[0][who]
                    if isinstance(rows[0][who][k], float)}
    for k in ("river_pipeline_eps", "ratio_vs_river_pipeline", "ratio_snapshots_vs_river"):
        out[k] = bl.stats([x[k] for x in rows])
    cs_auc = out["churnstream"]["auc"]["median"]
    rv_auc = out["river"]["auc"]["median"]
    speed = out["ratio_vs_river_pipeline"]["median"] >= 100
    out["target"] = {"speed_met": speed, "auc_met": cs_auc >= rv_auc,
                     "met": speed and cs_auc >= rv_auc}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--datasets", default="online-retail,generated")
    a = ap.parse_args()
    ensure_packages()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    build = bl.build_dir(a.build)
    out = {"versions": versions(), "replay_flags": REPLAY_FLAGS, "datasets": {},
           "py_feature_events": PY_FEATURE_EVENTS, "sklearn_batch": 256}
    with tempfile.TemporaryDirectory(prefix="churnstream-bench-baselines.") as tmp:
        for name in a.datasets.split(","):
            if name == "generated":
                path = bl.gen_file(build, bl.GEN_5M)
            elif name == "online-retail":
                path = bl.online_retail_avro(build)
                if not path:
                    out["datasets"][name] = {"missing": "online_retail.csv.gz not found"}
                    continue
            else:
                raise SystemExit("unknown data set %s" % name)
            out["datasets"][name] = bench_dataset(build, name, path, a.runs, tmp)
    bl.write_json("baselines", out)


if __name__ == "__main__":
    main()
