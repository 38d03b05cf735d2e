#!/usr/bin/env python3
"""churnstream against the true-parameter BG/NBD oracle on simulated buy-till-you-die logs.

For each parameter set (time unit days; weeks x 7 for the published fits):
  1. `churnstream gen --process bgnbd` writes the log (Avro) and, with the same seed, the same
     events as CSV (the events format of backtest_score.py) plus the truth file;
  2. `churnstream replay LOG.avro --tick.interval=7d --scores-out S.csv --json` scores it
     (--tick 1d: daily ticks, churnstream's default, for the replay and the snapshots);
  3. the snapshots and labels are built by ../shared/tools/backtest_score.py (imported, not
     reimplemented: build_snapshots, evaluate, auc), which also checks the replay's coverage;
  4. on exactly the snapshots churnstream scored, AUC (pooled, second half of the ticks) of:
     churnstream's score; the oracle P(no activity in [T, T+H)) of BG/NBD with the TRUE
     population parameters from each snapshot's day-level (x, t_x, T) (x = distinct active
     UTC days before T - 1, t_x = last - first active day, T = tick day - first active day);
     the recency baseline; and the individual-truth bound (each user's own lambda and true
     alive state at T from the truth file: 1 if gone, else exp(-lambda H));
  5. an independent BG/NBD maximum-likelihood fit (scipy L-BFGS-B on log-parameters, rows
     with identical (x, t_x, T) collapsed) at the last weekly tick, on the day-level summary
     (what a streaming engine sees) and on the exact one (every purchase, continuous time:
     checks the generator itself), standard errors from the inverse Hessian of the negative
     log-likelihood (numerical, in log-parameters, delta method), each parameter within 2 SE
     of the truth or not, and the likelihood-ratio test of the true parameters (2 x (LL
     fitted - LL at truth) against chi-square with 4 df), which stays meaningful where the
     surface is flat in (a, b) and the Hessian gives no SE (n/a).
Writes DIR/btyd_sim.md (the Markdown tables, also printed) and DIR/btyd_sim.json.

  python3 bench/btyd_sim.py --churnstream ./churnstream --out DIR [--users 5000] [--days 546]
      [--seed 1] [--sets sparse,retail,grocery] [--shared ../shared]

Needs numpy, scipy and pandas only.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, gammaln
from scipy.stats import chi2

DAY_MS = 86_400_000
TICK_MS = 7 * DAY_MS
H_DAYS = 90  # label.horizon and label.lookback: churnstream's defaults, backtest_score's too

# (name, description, r, alpha_weeks, a, b): the published CDNOW fit (FHL 2005) and the two
# fits of ../shared/notes/bgnbd.md; alpha is converted to days (x 7) below.
SETS = [
    ("sparse", "FHL 2005 CDNOW fit", 0.243, 4.414, 0.793, 2.426),
    ("retail", "Online Retail fit (notes/bgnbd.md)", 0.7195, 9.4310, 0.000485, 124.45),
    ("grocery", "completejourney2 fit (notes/bgnbd.md)", 1.3989, 1.3640, 0.02395, 18.950),
]
PARAM_NAMES = ("r", "alpha", "a", "b")


# ---- BG/NBD (Fader, Hardie & Lee 2005), vectorized -------------------------------------

def bgnbd_ll(params, x, tx, T):
    """Per-row log-likelihood (eq. 6), the bracket by log-sum-exp."""
    r, alpha, a, b = params
    x = np.asarray(x, dtype=float)
    base = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    t1 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        t2 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                      - (r + x) * np.log(alpha + tx), -np.inf)
    return base + np.logaddexp(t1, t2)


def bgnbd_p_alive(params, x, tx, T):
    """P(alive | x, t_x, T) (eq. 11), in logs so it cannot overflow."""
    r, alpha, a, b = params
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds_dead = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                                 + (r + x) * (np.log(alpha + T) - np.log(alpha + tx)), -np.inf)
    return np.exp(-np.logaddexp(0.0, log_odds_dead))


def bgnbd_p_no_purchase(params, x, tx, T, h):
    """P(no purchase in (T, T + h]) = 1 - P(alive) + P(alive) ((alpha+T)/(alpha+T+h))^(r+x)."""
    r, alpha, _, _ = params
    pa = bgnbd_p_alive(params, x, tx, T)
    return 1.0 - pa + pa * np.exp((r + np.asarray(x, float)) * (np.log(alpha + T)
                                                                 - np.log(alpha + T + h)))


def self_check():
    """The per-customer values of ../shared/notes/bgnbd.md (weeks), so a broken formula here
    can never produce a table."""
    p = (0.243, 4.414, 0.793, 2.426)
    rows = [(0, 0.0, 38.86, -0.554713, 1.0, 0.938163), (1, 1.0, 38.86, -4.346507, 0.187631, 0.947733),
            (2, 30.43, 38.86, -9.458606, 0.726579, 0.676509),
            (5, 36.0, 38.86, -17.906027, 0.849897, 0.364511),
            (10, 10.0, 38.86, -18.924371, 0.000185, 0.999827),
            (2, 2.0, 10.0, -6.427102, 0.412687, 0.684903), (0, 0.0, 1.0, -0.049622, 1.0, 0.742701),
            (20, 37.0, 38.0, -38.488280, 0.943404, 0.060806)]
    x, tx, T, ll, pa, pn = (np.array(c, dtype=float) for c in zip(*rows))
    assert np.allclose(bgnbd_ll(p, x, tx, T), ll, atol=2e-6), bgnbd_ll(p, x, tx, T)
    assert np.allclose(bgnbd_p_alive(p, x, tx, T), pa, atol=2e-6)
    assert np.allclose(bgnbd_p_no_purchase(p, x, tx, T, 13.0), pn, atol=2e-6)


def collapse(x, tx, T):
    """Identical (x, t_x, T) rows -> unique rows and weights."""
    df = pd.DataFrame({"x": x, "tx": tx, "T": T})
    g = df.groupby(["x", "tx", "T"], sort=True).size().reset_index(name="w")
    return g.x.values.astype(float), g.tx.values, g["T"].values, g.w.values.astype(float)


def fit_bgnbd(x, tx, T, start=(1.0, 10.0, 1.0, 1.0)):
    """Maximum likelihood on log-parameters; returns the fit, SEs and the total LLs."""
    xu, txu, Tu, w = collapse(x, tx, T)

    def nll(theta):
        return -float(np.sum(w * bgnbd_ll(np.exp(theta), xu, txu, Tu)))

    theta0 = np.log(np.asarray(start, dtype=float))
    best = None
    # Two starts: the likelihood is flat in (a, b) when drop-outs are rare, and L-BFGS-B
    # can stop on that plateau from one side.
    for t0 in (theta0, np.log([0.5, 30.0, 0.1, 10.0])):
        res = minimize(nll, t0, method="L-BFGS-B", bounds=[(-12, 12)] * 4,
                       options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-7})
        if best is None or res.fun < best.fun:
            best = res
    theta = best.x
    hess = numerical_hessian(nll, theta)
    try:
        cov = np.linalg.inv(hess)
        se_log = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
    except np.linalg.LinAlgError:
        se_log = np.full(4, np.nan)
    params = np.exp(theta)
    return {"params": params, "se": params * se_log, "se_log": se_log, "ll": -best.fun,
            "converged": bool(best.success), "users": int(len(x)), "rows": int(len(xu))}


def numerical_hessian(f, theta, eps=1e-4):
    n = len(theta)
    h = np.zeros((n, n))
    f0 = f(theta)
    for i in range(n):
        for j in range(i, n):
            ei, ej = np.eye(n)[i] * eps, np.eye(n)[j] * eps
            if i == j:
                v = (f(theta + ei) - 2 * f0 + f(theta - ei)) / eps ** 2
            else:
                v = (f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej)
                     + f(theta - ei - ej)) / (4 * eps ** 2)
            h[i, j] = h[j, i] = v
    return h


# ---- summaries per snapshot ------------------------------------------------------------

class ActiveDays:
    """Distinct active UTC days per user, for (x, t_x, T) and recency at any tick."""

    def __init__(self, ev, bs):
        act = ev[~ev.event_type.isin(bs.NOT_ACTIVITY)]
        d = pd.DataFrame({"user_id": act.user_id.values, "day": act.ts_ms.values // DAY_MS,
                          "ts": act.ts_ms.values})
        days = d.groupby(["user_id", "day"], sort=True).ts.max().reset_index()
        self.uid, self.codes = np.unique(days.user_id.values, return_inverse=True)
        self.day = days.day.values.astype(np.int64)
        self.last_ts = days.ts.values  # last event of that day: recency in ms
        self.start = np.searchsorted(self.codes, np.arange(len(self.uid)), side="left")
        self.key = self.codes.astype(np.int64) * 10**7 + self.day

    def at(self, user_ids, tick_ms):
        """(x, t_x, T) in days and ms since the last activity, for snapshots before tick_ms."""
        code = np.searchsorted(self.uid, user_ids)
        assert np.all(self.uid[code] == user_ids), "a snapshot's user has no activity"
        tick_day = tick_ms // DAY_MS
        assert np.all(tick_ms % DAY_MS == 0)
        end = np.searchsorted(self.key, code.astype(np.int64) * 10**7 + tick_day, side="left")
        first = self.start[code]
        n = end - first
        assert np.all(n >= 1), "eligible snapshots have activity before T"
        x = (n - 1).astype(float)
        tx = (self.day[end - 1] - self.day[first]).astype(float)
        T = (tick_day - self.day[first]).astype(float)
        recency_ms = tick_ms - self.last_ts[end - 1]
        return x, tx, T, recency_ms


def exact_summary(ev, t_ms):
    """Every purchase before t_ms in continuous time (days): x = purchases - 1."""
    e = ev[ev.ts_ms < t_ms]
    g = e.groupby("user_id").ts_ms.agg(["min", "max", "size"])
    return ((g["size"] - 1).values.astype(float), (g["max"] - g["min"]).values / DAY_MS,
            (t_ms - g["min"]).values / DAY_MS)


# ---- one parameter set -----------------------------------------------------------------

def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return p.stdout


def one_set(a, bs, name, desc, r, alpha_w, pa, pb):
    true = np.array([r, round(7.0 * alpha_w, 9), pa, pb])
    out = Path(a.out)
    log, csv, truth = out / f"{name}.avro", out / f"{name}.csv", out / f"{name}.truth.csv"
    scores = out / f"{name}.scores.csv"
    gen = [a.churnstream, "gen", "--process", "bgnbd", "--users", str(a.users), "--days",
           str(a.days), "--seed", str(a.seed), "--r", repr(float(true[0])), "--alpha",
           repr(float(true[1])), "--a", repr(float(true[2])), "--b", repr(float(true[3])), "--quiet"]
    t0 = time.time()
    run(gen + ["--out", str(log), "--truth", str(truth)])
    run(gen + ["--out", str(csv), "--truth", str(out / f"{name}.truth2.csv")])
    if truth.read_bytes() != (out / f"{name}.truth2.csv").read_bytes():
        raise SystemExit(f"{name}: gen is not deterministic (two truth files differ)")
    os.remove(out / f"{name}.truth2.csv")
    summary = json.loads(run([a.churnstream, "replay", str(log), "--tick.interval=" + a.tick,
                              "--scores-out", str(scores), "--json", "--quiet"]))
    replay_s = time.time() - t0

    ev = bs.load_events(str(csv))
    if summary["events_read"] != len(ev):
        raise SystemExit(f"{name}: replay read {summary['events_read']} events, the CSV has "
                         f"{len(ev)}")
    snaps = bs.build_snapshots(ev, bs.duration_ms(a.tick), H_DAYS * DAY_MS, H_DAYS * DAY_MS)
    sc = pd.read_csv(scores, dtype={"user_id": str})
    sc = pd.DataFrame({"user_id": bs.norm_uid(sc.user_id), "tick_ms": sc.tick_ms.astype(np.int64),
                       "score": pd.to_numeric(sc.score, errors="coerce")})
    metrics = bs.evaluate(snaps, sc)

    # The snapshots churnstream scored (coverage is 1.0 when the replay is right), with the
    # same second-half split as backtest_score.evaluate.
    sc = sc[~sc.duplicated(["user_id", "tick_ms"], keep="first")]
    m = snaps.merge(sc[np.isfinite(sc.score.values)], on=["user_id", "tick_ms"], how="inner")
    ticks = np.sort(snaps.tick_ms.unique())
    second = m.tick_ms.values >= ticks[len(ticks) // 2]

    days = ActiveDays(ev, bs)
    x, tx, T, rec_ms = days.at(m.user_id.values, m.tick_ms.values)
    oracle = bgnbd_p_no_purchase(true, x, tx, T, float(H_DAYS))

    tr = pd.read_csv(truth, dtype={"user_id": str}).set_index("user_id")
    churn = tr.churn_time_ms.reindex(m.user_id.values).values
    lam = tr.lambda_per_day.reindex(m.user_id.values).values
    gone = ~np.isnan(churn) & (churn <= m.tick_ms.values)
    bound = np.where(gone, 1.0, np.exp(-lam * H_DAYS))

    y = m.y.values
    scores_by = {"churnstream": m.score.values, "oracle": oracle, "recency": rec_ms.astype(float),
                 "bound": bound}
    aucs = {k: {"pooled": bs.auc(y, s), "second_half": bs.auc(y[second], s[second])}
            for k, s in scores_by.items()}

    # Fits at the last weekly tick whose day the log covers (all users active before it).
    end_ms = ev.ts_ms.max() // DAY_MS * DAY_MS + DAY_MS
    t_fit = end_ms // TICK_MS * TICK_MS
    ev_before = ev[ev.ts_ms < t_fit]
    users_fit = np.unique(ev_before.user_id.values)
    fx, ftx, fT, _ = days.at(users_fit, np.full(len(users_fit), t_fit, dtype=np.int64))
    fit_day = fit_bgnbd(fx, ftx, fT)
    fit_day["ll_true"] = float(np.sum(bgnbd_ll(true, fx, ftx, fT)))
    ex, etx, eT = exact_summary(ev_before, t_fit)
    fit_exact = fit_bgnbd(ex, etx, eT)
    fit_exact["ll_true"] = float(np.sum(bgnbd_ll(true, ex, etx, eT)))

    return {"name": name, "desc": desc, "true": true.tolist(), "replay_seconds": replay_s,
            "events": int(len(ev)), "users": a.users, "days": a.days, "seed": a.seed,
            "snapshots": int(len(m)), "ticks": int(len(ticks)),
            "positive_rate": float(y.mean()), "coverage": metrics["coverage"],
            "extra_rows": metrics["extra_rows_in_labelled_ticks"],
            "duplicate_rows": metrics["duplicate_rows"],
            "backtest_score": {k: metrics.get(k) for k in ("auc", "auc_second_half")},
            "replay_model": {k: summary["model"].get(k) for k in ("auc", "auc_second_half")},
            "replay_experts": {e: {k: v.get(k) for k in ("auc", "auc_second_half")}
                               for e, v in summary.get("experts", {}).items()},
            "auc": aucs, "fit_tick_ms": int(t_fit),
            "fit_day": {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                        for k, v in fit_day.items()},
            "fit_exact": {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                          for k, v in fit_exact.items()}}


# ---- report ----------------------------------------------------------------------------

def fmt(v, nd=3):
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{nd}f}"


def sig(v):
    return "n/a" if v is None or np.isnan(v) else f"{v:.4g}"


def render(results, a):
    lines = [f"# churnstream vs the true-parameter BG/NBD oracle (simulated logs)", "",
             f"`python3 bench/btyd_sim.py --churnstream {a.churnstream} --out {a.out} "
             f"--users {a.users} --days {a.days} --seed {a.seed}`: per set `churnstream gen "
             f"--process bgnbd --users {a.users} --days {a.days} --seed {a.seed}` (alpha in days "
             f"= 7 x weeks), `replay --tick.interval={a.tick}`, labels by backtest_score.py (H = L = "
             f"{H_DAYS} d). AUC on the snapshots churnstream scored; gap = oracle - churnstream.",
             "",
             "| set | r, alpha (d), a, b | events | snapshots (ticks, pos. rate) | coverage "
             "| churnstream AUC pooled / 2nd half | oracle AUC pooled / 2nd half "
             "| gap pooled / 2nd half | recency 2nd half | individual-truth bound 2nd half "
             "| replay's BG/NBD / LR 2nd half |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for res in results:
        c, o = res["auc"]["churnstream"], res["auc"]["oracle"]
        t = res["true"]
        lines.append(
            f"| {res['name']} ({res['desc']}) | {t[0]:g}, {t[1]:.3f}, {t[2]:g}, {t[3]:g} "
            f"| {res['events']:,} | {res['snapshots']:,} ({res['ticks']}, "
            f"{res['positive_rate']:.3f}) | {res['coverage']:.3f} "
            f"| {fmt(c['pooled'])} / **{fmt(c['second_half'])}** "
            f"| {fmt(o['pooled'])} / **{fmt(o['second_half'])}** "
            f"| {fmt(o['pooled'] - c['pooled'], 3)} / {fmt(o['second_half'] - c['second_half'], 3)} "
            f"| {fmt(res['auc']['recency']['second_half'])} "
            f"| {fmt(res['auc']['bound']['second_half'])} "
            f"| {fmt(res['replay_experts'].get('bgnbd', {}).get('auc_second_half'))} / "
            f"{fmt(res['replay_experts'].get('logreg', {}).get('auc_second_half'))} |")
    lines += ["", "Independent BG/NBD fit (L-BFGS-B on log-parameters) at the last weekly tick; "
              "SE from the inverse Hessian (delta method); within 2 SE of the truth?", "",
              "| set | summary | users | param | true | fitted | SE | (fit - true) / SE "
              "| within 2 SE | LL fitted | LL at truth | LR test p (4 df) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for res in results:
        for kind, label in (("fit_day", "day-level (engine's view)"),
                            ("fit_exact", "exact (every purchase)")):
            f = res[kind]
            for i, pn in enumerate(PARAM_NAMES):
                tv, fv, se = res["true"][i], f["params"][i], f["se"][i]
                z = (fv - tv) / se if se and not np.isnan(se) and se > 0 else float("nan")
                within = "n/a" if np.isnan(z) else ("yes" if abs(z) <= 2 else "**no**")
                head = (f"| {res['name']} | {label} | {f['users']:,} " if i == 0 else "| | | ")
                lr_p = chi2.sf(max(2 * (f["ll"] - f["ll_true"]), 0.0), 4)
                tail = (f"| {f['ll']:.1f} | {f['ll_true']:.1f} | {lr_p:.3f} |" if i == 0
                        else "| | | |")
                lines.append(f"{head}| {pn} | {tv:.5g} | {sig(fv)} | {sig(se)} | {fmt(z, 2)} "
                             f"| {within} {tail}")
    return "\n".join(lines) + "\n"


def find_shared(arg):
    root = Path(__file__).resolve().parents[1]
    for d in [arg, os.environ.get("CS_SHARED"), root.parent / "shared", "/work/shared"]:
        if d and (Path(d) / "tools" / "backtest_score.py").is_file():
            return Path(d)
    raise SystemExit("the shared folder (tools/backtest_score.py) was not found: --shared DIR "
                     "or CS_SHARED")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--churnstream", default="./churnstream", help="the binary")
    ap.add_argument("--out", required=True, help="folder for logs, scores and the report")
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--days", type=int, default=546, help="default 78 weeks, as CDNOW's")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tick", default="7d", help="the replay's tick.interval (and the "
                    "snapshots'); the independent fits stay at the last weekly tick")
    ap.add_argument("--sets", default=",".join(s[0] for s in SETS),
                    help="comma-separated subset of " + ", ".join(s[0] for s in SETS))
    ap.add_argument("--shared", help="the project's shared folder (default ../shared, "
                    "$CS_SHARED or /work/shared)")
    a = ap.parse_args()
    self_check()
    sys.path.insert(0, str(find_shared(a.shared) / "tools"))
    import backtest_score as bs  # noqa: E402 (the protocol's single implementation)

    want = a.sets.split(",")
    unknown = set(want) - {s[0] for s in SETS}
    if unknown:
        raise SystemExit(f"--sets: unknown {sorted(unknown)}")
    Path(a.out).mkdir(parents=True, exist_ok=True)
    results = []
    for s in SETS:
        if s[0] in want:
            print(f"btyd_sim: {s[0]} ...", file=sys.stderr, flush=True)
            results.append(one_set(a, bs, *s))
    md = render(results, a)
    Path(a.out, "btyd_sim.md").write_text(md)
    Path(a.out, "btyd_sim.json").write_text(json.dumps(results, indent=1) + "\n")
    print(md)
    bad = [r["name"] for r in results if r["coverage"] != 1.0 or r["extra_rows"] or
           r["duplicate_rows"]]
    if bad:
        print(f"btyd_sim: replay coverage is not exact for {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
