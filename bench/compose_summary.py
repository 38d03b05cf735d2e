#!/usr/bin/env python3
"""The compose evaluation's figures (bench step 8) and their RESULTS.md section.
  bench/compose_summary.py write MESSAGES.jsonl COMPOSE_STDOUT --wall-s S --alerts-total N
                                   [--concurrency C] [--model M] [--out FILE]
      one run of bench/compose_eval.sh -> bench/out/compose.json (LLM vs template, fallbacks
      by reason, the endpoint's latency p50/p99 per alert as compose printed it, wall time)
  bench/compose_summary.py skipped REASON
      bench/out/compose.json saying why the step did not run (no model venv)
section_compose(d) renders it for bench/report.py. Nothing is invented: a figure compose did
not print is "not measured"."""

import argparse
import collections
import datetime
import json
import os
import re
import subprocess
import sys

import benchlib as bl

TITLE = "## 8. Retention messages by a language model (compose)"


def summarize(messages_path, stdout_path, wall_s, alerts_total, concurrency, model):
    rows = [json.loads(x) for x in open(messages_path) if x.strip()]
    out = open(stdout_path).read()
    reasons = collections.Counter(r["fallback_reason"].split(":")[0] for r in rows
                                  if r["source"] == "template")
    lat = re.search(r"latency per alert \((\d+) asked\): p50 (\d+) ms, p99 (\d+) ms", out)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            cwd=bl.ROOT).stdout.strip()
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "commit": commit, "loadavg_end": load, "cores": os.cpu_count(),
        "alerts": len(rows), "alerts_total": alerts_total,
        "llm": sum(1 for r in rows if r["source"] == "llm"),
        "template": sum(1 for r in rows if r["source"] == "template"),
        "by_reason": dict(sorted(reasons.items())),
        "asked": int(lat.group(1)) if lat else None,
        "p50_ms": int(lat.group(2)) if lat else None,
        "p99_ms": int(lat.group(3)) if lat else None,
        "wall_s": wall_s, "concurrency": concurrency, "model": model,
        "prompt_version": rows[0]["prompt_version"] if rows else None,
    }


def section_compose(d):
    L = [TITLE, ""]
    if not d:
        return L + ["not measured (bench/compose_eval.sh did not run or failed)", ""]
    if d.get("skipped"):
        return L + ["not measured: %s" % d["skipped"], ""]
    lat = ("p50 %d ms, p99 %d ms (%d alerts asked)" % (d["p50_ms"], d["p99_ms"], d["asked"])
           if d.get("p50_ms") is not None else "not measured")
    reasons = ", ".join("%s %d" % kv for kv in d["by_reason"].items()) or "none"
    L += ["Measured by bench/compose_eval.sh on %s, commit `%s`, %s cores (load %s at the "
          "end): %d alerts spread over the replay of `gen --users 2000 --days 365 --seed 7` "
          "(%d alerts in all), answered by `compose --dry-run` (llm.concurrency %d, prompts "
          "%s) against %s, temperature 0. One run: the wording is deterministic at temperature 0, only the "
          "latency varies. Latency is the endpoint's wall time per alert (its message and "
          "explanation requests), nearest rank." % (
              d["date_utc"], d["commit"][:12], d["cores"], " ".join(d["loadavg_end"]),
              d["alerts"], d["alerts_total"], d["concurrency"], d["prompt_version"],
              d["model"]), "",
          "| alerts | llm | template | fallbacks by reason | latency per alert | wall |",
          "|---|---|---|---|---|---|",
          "| %d | %d (%.0f%%) | %d | %s | %s | %.0f s |" % (
              d["alerts"], d["llm"], 100.0 * d["llm"] / max(d["alerts"], 1), d["template"],
              reasons, lat, d["wall_s"]), ""]
    return L


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    w = sub.add_parser("write")
    w.add_argument("messages")
    w.add_argument("stdout")
    w.add_argument("--wall-s", type=float, required=True)
    w.add_argument("--alerts-total", type=int, required=True)
    w.add_argument("--concurrency", type=int, default=1)
    w.add_argument("--model", required=True, help="what answered, in words (no URL)")
    w.add_argument("--out", default=os.path.join(bl.OUT_DIR, "compose.json"))
    s = sub.add_parser("skipped")
    s.add_argument("reason")
    a = ap.parse_args()
    if a.what == "skipped":
        bl.write_json("compose", {"skipped": a.reason})
        return 0
    d = summarize(a.messages, a.stdout, a.wall_s, a.alerts_total, a.concurrency, a.model)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out + ".tmp", "w") as f:
        json.dump(d, f, indent=1, sort_keys=True)
    os.replace(a.out + ".tmp", a.out)
    bl.log("wrote %s" % a.out)
    print("\n".join(section_compose(d)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
