#!/usr/bin/env python3
"""Shapes benchmark: the churn score beside each expert on many shapes of event logs.

The score is judged on other shops' logs we never see, so the default configuration (daily
ticks, nothing tuned here) has to hold on every shape we can make. Each shape is replayed once
with `churnstream replay --json`; from the summary: the published score's AUC (pooled and
second half of the labelled ticks), each expert's (recency, BG/NBD, logistic regression), the
log-loss (pooled) of the score and of BG/NBD, and the experts' final weights. A row whose
score is more than --margin (0.01) below the best single expert, pooled or second half, is
flagged in the last column ("worse than best expert by X").

Shapes (every one deterministic by its seed):
  1. the two shared logs whole (Online Retail via --preset online-retail; completejourney2);
  2. user subsamples of each, 300 and 1500 users, seed 1 (generalization.py's subsample_csv);
  3. time windows of each: the first 9 months only (a young log) and the last 9 months only
     (history cut at the start);
  4. Online Retail thinned: each invoice (purchase occasion) kept with probability 0.5, seed 1;
  5. `gen` planted churners (the default process): 800 users x 200 days seed 42, 3000 x 365
     seed 7;
  6. `gen --process paretonbd`, two parameter sets, 3000 users, 546 days;
  7. `gen --process bgnbd`, a frequent-buyer set, 3000 users, 546 days;
  8. regular buyers (bench/regular_gen.py): Gamma(k=4) gaps, per-user mean gap lognormal
     (median 20 d), drop-out 0.08 after each purchase, arrivals over the first 300 of 546
     days, 3000 users;
  9. a seasonal shop (bench/seasonal_gen.py): BG/NBD with Online Retail's and
     completejourney2's fits (../shared/notes/bgnbd.md), every customer buying 1.5x in a
     3-week rush and 0.3x in the 4-week lull after it, once a year, the log opening with the
     rush on a shop with a year of customers before it; 5000 users, 546 days.
Generated and cut inputs live in a temporary folder, removed at the end (--keep DIR keeps
them). --quick runs 6 of the shapes, one of most kinds (about 10 s; the full set about 40 s).

Usage: python3 bench/shapes.py [--churnstream ./churnstream] [--shared ../shared] [--quick]
                               [--only SUBSTR] [--json FILE] [--keep DIR] [--margin 0.01]
"""
import argparse
import csv
import datetime
import gzip
import json
import os
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
import generalization  # noqa: E402
import regular_gen  # noqa: E402
import seasonal_gen  # noqa: E402

EXPERTS = ("recency", "bgnbd", "logreg")
REPLAY_ARGS = []  # --replay-arg: extra options for every replay (e.g. --tick.interval=7d)

# Pareto/NBD sets (time unit days). gen's default is the CDNOW fit, and CDNOW ships with the
# lifetimes/BTYD packages, so it is not used here. These two are stylized populations chosen
# for their shape, not fitted on any data set: "occasional" = mean rate r/alpha 0.01/day
# (about 3.7 purchases a year), wide heterogeneity (r 0.5), long lives (mean drop-out rate
# s/beta 1/240 per day); "frequent" = mean rate 0.1/day (weekly-ish), mild heterogeneity
# (r 2), short lives (s/beta 1/90 per day, half the users gone within about 75 days).
# seasonal_gen.py's BG/NBD parameters (days): the fits of the two shared logs in
# ../shared/notes/bgnbd.md (published there as reference values, not tuned here).
SEASONAL_SETS = [
    ("Online Retail", {"r": 0.7195, "alpha": 66.017, "a": 0.000485, "b": 124.45}),
    ("completejourney2", {"r": 1.3989, "alpha": 9.548, "a": 0.02395, "b": 18.95}),
]
PARETO_SETS = [
    ("occasional", {"r": 0.5, "alpha": 50.0, "s": 1.5, "beta": 360.0}),
    ("frequent", {"r": 2.0, "alpha": 20.0, "s": 2.0, "beta": 180.0}),
]
# BG/NBD frequent-buyer set: the completejourney2 fit of ../shared/notes/bgnbd.md (r 1.3989,
# alpha 1.3640 weeks, a 0.02395, b 18.950), alpha in days (x 7), as bench/btyd_sim.py's
# "grocery" set: about one purchase a week, about 1 in 800 purchases followed by drop-out.
BGNBD_FREQUENT = {"r": 1.3989, "alpha": 1.3640 * 7, "a": 0.02395, "b": 18.950}


# ---- inputs ----------------------------------------------------------------------------

def shared_logs(shared):
    """(key, label, path, replay args, user column, date column, occasion column)."""
    data = os.path.join(shared, "data")
    return [
        ("or", "Online Retail", os.path.join(data, "online_retail.csv.gz"),
         ["--preset", "online-retail"], "CustomerID", "InvoiceDate", "InvoiceNo"),
        ("cj2", "completejourney2", os.path.join(data, "completejourney2", "completejourney2.csv.gz"),
         ["--map", generalization.CJ2_MAP], "user_id", "event_time", None),
    ]


def read_csv(src):
    with gzip.open(src, "rt", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def write_csv(dst, header, rows):
    with gzip.open(dst, "wt", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def add_months(d, n):
    """The same day n calendar months later (earlier for n < 0), clamped to the month's end."""
    y, m = divmod(d.month - 1 + n, 12)
    y, m = d.year + y, m + 1
    for day in range(d.day, 27, -1):
        try:
            return datetime.date(y, m, day)
        except ValueError:
            continue
    return datetime.date(y, m, min(d.day, 28))


def window_csv(src, dst, date_col, months, which):
    """Rows of the first (`which` = "first") or last `months` calendar months of the log,
    by the date (the first 10 characters, YYYY-MM-DD) of date_col. Returns the cut date."""
    header, body = read_csv(src)
    col = header.index(date_col)
    days = [r[col][:10] for r in body if r[col]]
    lo, hi = min(days), max(days)
    if which == "first":
        cut = add_months(datetime.date.fromisoformat(lo), months).isoformat()
        keep = [r for r in body if r[col][:10] < cut]
    else:
        cut = add_months(datetime.date.fromisoformat(hi), -months).isoformat()
        keep = [r for r in body if r[col][:10] >= cut]
    write_csv(dst, header, keep)
    return cut


def thin_csv(src, dst, key_col, p, seed):
    """Each value of key_col (an invoice: every line of it together) kept with probability p,
    decided in sorted order of the keys by random.Random(seed)."""
    header, body = read_csv(src)
    col = header.index(key_col)
    rng = random.Random(seed)
    keep = {k for k in sorted({r[col] for r in body}) if rng.random() < p}
    write_csv(dst, header, [r for r in body if r[col] in keep])


def gen_csv(binary, dst, params):
    cmd = [binary, "gen", "--out", dst, "--truth", dst + ".truth.csv", "--quiet"]
    for k, v in params.items():
        cmd += ["--" + k, str(v)]
    benchlib.check(benchlib.run_measured(cmd), "gen " + " ".join(cmd[2:]))


def shapes(a, tmp):
    """[(name, group, quick, make)]: make() returns (path, replay args, description)."""
    out = []
    logs = shared_logs(a.shared)
    for key, label, path, args, ucol, dcol, _ in logs:
        out.append(("%s whole" % label, 1, False,
                    lambda path=path, args=args: (path, args, "the whole log")))
    for key, label, path, args, ucol, dcol, _ in logs:
        for users in (300, 1500):
            def make(path=path, args=args, ucol=ucol, users=users, key=key):
                dst = os.path.join(tmp, "%s-u%d-s1.csv.gz" % (key, users))
                generalization.subsample_csv(path, dst, ucol, users, 1)
                return dst, args, "%d users (seed 1), every event of each" % users
            out.append(("%s, %d users" % (label, users), 2, users == 300, make))
    for key, label, path, args, ucol, dcol, _ in logs:
        for which in ("first", "last"):
            def make(path=path, args=args, dcol=dcol, which=which, key=key):
                dst = os.path.join(tmp, "%s-%s9m.csv.gz" % (key, which))
                cut = window_csv(path, dst, dcol, 9, which)
                return dst, args, ("before %s" % cut if which == "first" else "from %s" % cut)
            out.append(("%s, %s 9 months" % (label, which), 3, False, make))
    key, label, path, args, ucol, dcol, occ = logs[0]

    def make_thin():
        dst = os.path.join(tmp, "or-thin50-s1.csv.gz")
        thin_csv(path, dst, occ, 0.5, 1)
        return dst, args, "each invoice kept with p 0.5 (seed 1)"
    out.append(("%s, invoices thinned 0.5" % label, 4, False, make_thin))

    def gen_shape(name, params):
        def make():
            dst = os.path.join(tmp, name + ".csv")
            gen_csv(a.churnstream, dst, params)
            return dst, [], "gen " + " ".join("--%s %s" % kv for kv in params.items())
        return make
    out.append(("gen planted, 800 users x 200 d", 5, True,
                gen_shape("planted-800", {"users": 800, "days": 200, "seed": 42})))
    out.append(("gen planted, 3000 users x 365 d", 5, False,
                gen_shape("planted-3000", {"users": 3000, "days": 365, "seed": 7})))
    for i, (pname, p) in enumerate(PARETO_SETS):
        params = {"process": "paretonbd", "users": 3000, "days": 546, "seed": 1, **p}
        out.append(("gen Pareto/NBD %s" % pname, 6, i == 0, gen_shape("pnbd-" + pname, params)))
    params = {"process": "bgnbd", "users": 3000, "days": 546, "seed": 1, **BGNBD_FREQUENT}
    out.append(("gen BG/NBD frequent buyers", 7, True, gen_shape("bgnbd-frequent", params)))

    def make_regular():
        dst = os.path.join(tmp, "regular.csv")
        regular_gen.generate(dst, users=3000, days=546, seed=1)
        return dst, [], "regular_gen.py --users 3000 --days 546 --seed 1 (k 4, median gap 20 d, p-drop 0.08)"
    out.append(("regular buyers (Gamma k=4 gaps)", 8, True, make_regular))
    for sname, sp in SEASONAL_SETS:
        def make_seasonal(sname=sname, sp=sp):
            dst = os.path.join(tmp, "seasonal-%s.csv" % sname)
            seasonal_gen.generate(dst, users=5000, days=546, seed=1, **sp)
            return dst, [], ("seasonal_gen.py --users 5000 --days 546 --seed 1 " +
                             " ".join("--%s %s" % kv for kv in sp.items()) +
                             " (rush 21 d x 1.5, lull 28 d x 0.3, yearly)")
        out.append(("seasonal BG/NBD, %s fit" % sname, 9, False, make_seasonal))
    return out


# ---- one replay ------------------------------------------------------------------------

def measure(binary, path, args):
    """One default-config replay: the figures of the table plus the whole summary."""
    cmd = [binary, "replay", "--json", "--quiet", *args, *REPLAY_ARGS, path]
    res = benchlib.check(benchlib.run_measured(cmd), "replay " + path)
    s = json.loads(res["stdout"])
    m, ex = s["model"], s["experts"]
    r = {
        "events": s["events_read"], "users": s["users"], "labelled": s["labelled"],
        "positive_rate": m["positive_rate"], "replay_s": round(res["wall_s"], 2),
        "score": {"auc": m["auc"], "auc_second_half": m["auc_second_half"], "logloss": m["logloss"]},
        "experts": {e: {"auc": ex[e]["auc"], "auc_second_half": ex[e]["auc_second_half"],
                        "logloss": ex[e]["logloss"]} for e in EXPERTS},
        # expert_weights: replay --json since the shapes benchmark; None from older binaries.
        "weights": s.get("expert_weights"),
        "summary": s,
    }
    for key in ("auc", "auc_second_half"):
        vals = [(ex[e][key], e) for e in EXPERTS if ex[e][key] is not None]
        best, who = max(vals) if vals else (None, None)
        r["best_expert_" + key] = {"expert": who, "auc": best,
                                   "gap": None if best is None or m[key] is None else best - m[key]}
    return r


# ---- table -----------------------------------------------------------------------------

def f3(v):
    return "n/a" if v is None else "%.3f" % v


def flag(r, margin):
    parts = []
    for key, label in (("auc", "pooled"), ("auc_second_half", "2nd half")):
        b = r["best_expert_" + key]
        if b["gap"] is not None and b["gap"] > margin:
            parts.append("**%s %.3f** (%s)" % (label, b["gap"], b["expert"]))
    return "; ".join(parts) or "-"


HEADER = ("| # | shape | events | users | labelled (pos. rate) | **score** AUC pooled / 2nd "
          "| recency | BG/NBD | LR | log-loss score / BG/NBD | weights rec / BG/NBD / LR "
          "| worse than best expert by |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")


def row(name, group, r, margin):
    sc, ex, w = r["score"], r["experts"], r["weights"] or {}
    cells = [str(group), name, "{:,}".format(r["events"]), "{:,}".format(r["users"]),
             "{:,} ({:.3f})".format(r["labelled"], r["positive_rate"]),
             "**%s** / **%s**" % (f3(sc["auc"]), f3(sc["auc_second_half"]))]
    for e in EXPERTS:
        cells.append("%s / %s" % (f3(ex[e]["auc"]), f3(ex[e]["auc_second_half"])))
    cells.append("%s / %s" % (f3(sc["logloss"]), f3(ex["bgnbd"]["logloss"])))
    cells.append(" / ".join(f3(w.get(e)) for e in EXPERTS))
    cells.append(flag(r, margin))
    return "| " + " | ".join(cells) + " |"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--churnstream", default=os.path.join(here, "..", "churnstream"))
    ap.add_argument("--shared", default=os.path.join(here, "..", "..", "shared"),
                    help="the project's shared folder (data/online_retail.csv.gz, "
                    "data/completejourney2/)")
    ap.add_argument("--quick", action="store_true", help="6 of the shapes (about 10 s)")
    ap.add_argument("--only", default=None, help="only the shapes whose name contains this (case-insensitive)")
    ap.add_argument("--json", default=None, metavar="FILE", help="write the raw numbers here")
    ap.add_argument("--keep", default=None, metavar="DIR", help="keep the generated inputs here")
    ap.add_argument("--replay-arg", action="append", default=[],
                    help="an extra option for every replay (repeatable), e.g. "
                         "--replay-arg=--tick.interval=7d")
    ap.add_argument("--margin", type=float, default=0.01,
                    help="flag a row when the score's AUC is more than this below the best expert's")
    a = ap.parse_args()
    REPLAY_ARGS.extend(a.replay_arg)
    a.churnstream = os.path.abspath(a.churnstream)
    if not os.access(a.churnstream, os.X_OK):
        sys.exit("shapes: %s is not executable: run `make` or pass --churnstream" % a.churnstream)
    for _, label, path, *_ in shared_logs(a.shared):
        if not os.path.exists(path):
            sys.exit("shapes: %s not found (--shared DIR)" % path)
    tmp = a.keep or tempfile.mkdtemp(prefix="cs-shapes-")
    os.makedirs(tmp, exist_ok=True)
    t0 = time.monotonic()
    results = []
    try:
        todo = [s for s in shapes(a, tmp)
                if (not a.quick or s[2]) and (not a.only or a.only.lower() in s[0].lower())]
        config = ("options " + " ".join(REPLAY_ARGS)) if REPLAY_ARGS else \
            "Default configuration (daily ticks)"
        print("%s, `churnstream replay --json`; AUC cells are pooled / second half of the "
              "labelled ticks; flagged when the score is more than %.3f below the best expert's "
              "AUC.\n" % (config, a.margin))
        print(HEADER)
        sys.stdout.flush()
        for name, group, _, make in todo:
            benchlib.log("%s: preparing" % name)
            path, args, desc = make()
            r = measure(a.churnstream, path, args)
            benchlib.log("%s: %d events, replay %.1f s" % (name, r["events"], r["replay_s"]))
            r.update({"shape": name, "group": group, "input": desc})
            results.append(r)
            print(row(name, group, r, a.margin))
            sys.stdout.flush()
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    total = time.monotonic() - t0
    flagged = [r for r in results if flag(r, a.margin) != "-"]
    print("\n%d shapes in %.0f s; %d flagged (score more than %.3f below the best expert)."
          % (len(results), total, len(flagged), a.margin))
    print("\nInputs:\n")
    for r in results:
        print("- %s: %s" % (r["shape"], r["input"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"margin": a.margin, "total_s": round(total, 1), "quick": a.quick,
                       "pareto_sets": dict(PARETO_SETS), "bgnbd_frequent": BGNBD_FREQUENT,
                       "shapes": results}, f, indent=1)
        benchlib.log("wrote %s" % a.json)


if __name__ == "__main__":
    main()
