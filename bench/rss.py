#!/usr/bin/env python3
"""Memory growth with the log: `churnstream replay` (memory state, default config) of three
generated files, each run once per round, side by side: a ~1M-event base (gen --users 2290
--days 270), a log ten times longer of the same users (--days 2700), and one with ten times
the users over the same days (--users 22900). VmRSS is read from /proc/PID/status every
second; per replay the RSS at the first sample after 1 s (start), the peak (the larger of the
samples' maximum and wait4's ru_maxrss) and the last sample before exit (end); per round the
peak ratios longer / base and more users / base.
Usage: bench/rss.py [--build DIR] [--runs N] [--splice]  -> bench/out/rss.json; --splice also
rewrites the Resources section of bench/RESULTS.md."""

import argparse

import benchlib as bl

CASES = [("base", {"users": 2290, "days": 270, "seed": 1}),
         ("longer", {"users": 2290, "days": 2700, "seed": 1}),
         ("more_users", bl.GEN_10M)]


def one(build, path):
    summary, res = bl.replay_json(build, path, sample_interval_s=1.0)
    s = [x for x in res["samples"] if x[0] >= 1.0] or res["samples"]
    return {"events": summary["events_read"], "users": summary["users"],
            "labelled": summary["labelled"], "seconds": summary["seconds"],
            "eps": summary["events_read"] / summary["seconds"],
            "start_kib": s[0][1], "end_kib": s[-1][1],
            "peak_kib": max(max(x[1] for x in s), res["maxrss_kib"]),
            "maxrss_kib": res["maxrss_kib"], "samples": res["samples"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--splice", action="store_true",
                    help="rewrite the Resources section of bench/RESULTS.md")
    a = ap.parse_args()
    build = bl.build_dir(a.build)
    paths = {name: bl.gen_file(build, params) for name, params in CASES}
    runs = {name: [] for name, _ in CASES}
    ratios = {"longer": [], "more_users": []}
    for r in range(a.runs):
        for name, _ in CASES:
            row = one(build, paths[name])
            runs[name].append(row)
            bl.log("rss run %d/%d %s: %d events, %d users, %.0f ev/s; RSS start %.1f MiB, peak "
                   "%.1f MiB, end %.1f MiB" %
                   (r + 1, a.runs, name, row["events"], row["users"], row["eps"],
                    row["start_kib"] / 1024, row["peak_kib"] / 1024, row["end_kib"] / 1024))
        for name in ratios:
            ratios[name].append(runs[name][-1]["peak_kib"] / runs["base"][-1]["peak_kib"])
    out = {"cases": {}, "ratios": {k: bl.stats(v) for k, v in ratios.items()}}
    for name, params in CASES:
        rs = runs[name]
        c = {"path": paths[name], "gen_params": params, "events": rs[0]["events"],
             "users": rs[0]["users"], "labelled": rs[0]["labelled"], "runs": rs}
        for k in ("eps", "start_kib", "peak_kib", "end_kib"):
            c[k] = bl.stats([x[k] for x in rs])
        out["cases"][name] = c
    bl.write_json("rss", out)
    if a.splice:
        import report
        report.splice_section("rss")


if __name__ == "__main__":
    main()
