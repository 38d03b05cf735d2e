#!/usr/bin/env python3
"""Memory growth over a long replay: `churnstream replay` (memory state, default config) of a
generated ~10M-event file, VmRSS read from /proc/PID/status every second; reports the RSS at
the first sample after 1 s (start), the peak (the larger of the samples' maximum and wait4's
ru_maxrss) and the last sample before exit (end), per run.
Usage: bench/rss.py [--build DIR] [--runs N]  -> bench/out/rss.json"""

import argparse

import benchlib as bl


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=None)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    build = bl.build_dir(a.build)
    path = bl.gen_file(build, bl.GEN_10M)
    runs = []
    for r in range(a.runs):
        summary, res = bl.replay_json(build, path, sample_interval_s=1.0)
        s = [x for x in res["samples"] if x[0] >= 1.0] or res["samples"]
        row = {"events": summary["events_read"], "users": summary["users"],
               "seconds": summary["seconds"], "eps": summary["events_read"] / summary["seconds"],
               "start_kib": s[0][1], "end_kib": s[-1][1],
               "peak_kib": max(max(x[1] for x in s), res["maxrss_kib"]),
               "maxrss_kib": res["maxrss_kib"], "samples": res["samples"]}
        bl.log("rss run %d/%d: %d events, %d users, %.0f ev/s; RSS start %.1f MiB, peak %.1f "
               "MiB, end %.1f MiB (%d samples)" %
               (r + 1, a.runs, row["events"], row["users"], row["eps"], row["start_kib"] / 1024,
                row["peak_kib"] / 1024, row["end_kib"] / 1024, len(s)))
        runs.append(row)
    out = {"path": path, "gen_params": bl.GEN_10M, "events": runs[0]["events"],
           "users": runs[0]["users"], "runs": runs}
    for k in ("eps", "start_kib", "peak_kib", "end_kib"):
        out[k] = bl.stats([x[k] for x in runs])
    bl.write_json("rss", out)


if __name__ == "__main__":
    main()
