#!/usr/bin/env python3
"""Machine facts and the RESULTS.md renderer.
  bench/report.py machine start|end   record the machine, date, commit, load and the busiest
                                      other processes into bench/out/machine.json
  bench/report.py render [--total-seconds S] [--out FILE]
                                      bench/out/*.json -> bench/RESULTS.md
Figures that a step did not produce are printed as "not measured", never invented."""

import argparse
import datetime
import json
import os
import re
import platform
import subprocess
import sys
import time

import benchlib as bl
from compose_summary import section_compose



def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                              cwd=bl.ROOT).stdout.strip()
    except OSError:
        return ""


def busy_processes():
    """Other processes using CPU right now (ps's %CPU is a lifetime average, so take two
    /proc samples 1 s apart instead)."""
    def ticks():
        out = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    s = f.read()
                name = s[s.index("(") + 1:s.rindex(")")]
                fields = s[s.rindex(")") + 2:].split()
                out[int(pid)] = (name, int(fields[11]) + int(fields[12]))
            except (OSError, ValueError):
                pass
        return out

    a = ticks()
    time.sleep(1.0)
    b = ticks()
    hz = os.sysconf("SC_CLK_TCK")
    me = os.getpid()
    busy = []
    for pid, (name, t) in b.items():
        if pid in a and pid != me and pid != os.getppid():
            pct = 100.0 * (t - a[pid][1]) / hz
            if pct >= 5:
                busy.append({"pid": pid, "name": name, "cpu_percent": round(pct)})
    return sorted(busy, key=lambda x: -x["cpu_percent"])[:8]


def cpu_busy_s():
    """Machine-wide non-idle CPU seconds since boot (/proc/stat; idle and iowait excluded)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def parent_children_cpu_s():
    """CPU seconds of the parent's reaped children (fields cutime, cstime of /proc/PPID/stat)."""
    with open("/proc/%d/stat" % os.getppid()) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def machine(phase):
    path = os.path.join(bl.OUT_DIR, "machine.json")
    m = {}
    if phase == "end" and os.path.exists(path):
        with open(path) as f:
            m = json.load(f)
    snap = {"date_utc": datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC"), "loadavg": open("/proc/loadavg").read().split()[:3],
        "busy_processes": busy_processes()}
    m[phase] = snap
    # CPU time of everything else on the machine: busy time from /proc/stat minus what this
    # run's processes used. report.py runs as a direct child of run.sh, whose cutime/cstime
    # hold the CPU time of every step it has waited for (and of their children).
    busy_s = cpu_busy_s()
    if phase == "start":
        m["cpu_busy_start_s"] = busy_s
        m["own_cpu_start_s"] = parent_children_cpu_s()
        m["wall_start"] = time.time()
    elif "cpu_busy_start_s" in m:
        own = parent_children_cpu_s() - m["own_cpu_start_s"]
        busy = busy_s - m["cpu_busy_start_s"]
        wall = time.time() - m["wall_start"]
        m["other_cpu"] = {"busy_s": busy, "own_s": own, "other_s": max(0.0, busy - own),
                          "available_s": wall * (os.cpu_count() or 1)}
    if phase == "start":
        cpu = "unknown"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        mem_kib = 0
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kib = int(line.split()[1])
        m.update({
            "cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(mem_kib / 1048576, 1),
            "kernel": platform.release(), "compiler": sh("${CC:-cc} --version | head -1"),
            "commit": sh("git rev-parse HEAD"), "commit_subject": sh("git log -1 --format=%s"),
            "dirty": bool(sh("git status --porcelain --untracked-files=no")),
            "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "(unset)"),
            "cflags": os.environ.get("BENCH_CFLAGS", "-O2 -g (Makefile default)")})
    bl.write_json("machine", m)


# ---- rendering ----

def load(name):
    path = os.path.join(bl.OUT_DIR, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def eps(s):
    if not s:
        return "not measured"
    return "{:,.0f} ({:,.0f} – {:,.0f})".format(s["median"], s["min"], s["max"])


def ratio(s, digits=2):
    if not s:
        return "not measured"
    f = "{:.%df} ({:.%df} – {:.%df})" % (digits, digits, digits)
    return f.format(s["median"], s["min"], s["max"])


def mib(s):
    if not s:
        return "not measured"
    return "{:.1f} ({:.1f} – {:.1f})".format(s["median"] / 1024, s["min"] / 1024, s["max"] / 1024)


def met(flag):
    return "**met**" if flag else "**missed**"


def runs_of(s):
    return s["n"] if s else 0


def section_machine(m, total_s):
    L = ["## Machine and method", ""]
    if not m:
        return L + ["machine facts not recorded", ""]
    st, en = m.get("start", {}), m.get("end", {})
    L += ["| | |", "|---|---|",
          "| CPU | %s |" % m["cpu"],
          "| cores (online) | %d |" % m["cores"],
          "| RAM | %.1f GiB |" % m["ram_gib"],
          "| kernel | %s |" % m["kernel"],
          "| compiler | %s, %s, OPENBLAS_NUM_THREADS %s |" % (m["compiler"], m["cflags"],
                                                            m["openblas_threads"]),
          "| date | %s (start) – %s (end) |" % (st.get("date_utc", "?"), en.get("date_utc", "?")),
          "| git commit | `%s` %s%s |" % (m["commit"][:12], m["commit_subject"],
                                         " (with uncommitted changes)" if m["dirty"] else ""),
          "| load average (1/5/15 min) | start %s, end %s |" % (
              " ".join(st.get("loadavg", [])), " ".join(en.get("loadavg", []))),
          ]
    for phase, snap in (("start", st), ("end", en)):
        procs = snap.get("busy_processes")
        if procs is not None:
            txt = ", ".join("%s (pid %d, %d%% CPU)" % (p["name"], p["pid"], p["cpu_percent"])
                            for p in procs) or "none above 5% CPU"
            L.append("| other busy processes at %s | %s |" % (phase, txt))
    oc = m.get("other_cpu")
    if oc:
        L.append("| CPU used by other processes during the run | %.0f s of %.0f core-seconds "
                 "available (%.0f%%); the benchmark itself used %.0f s |" % (
                     oc["other_s"], oc["available_s"], 100 * oc["other_s"] / oc["available_s"],
                     oc["own_s"]))
    if total_s is not None:
        L.append("| total `make bench` time | %.0f s (%.1f min) |" % (total_s, total_s / 60))
    L += ["",
          "\"Other busy processes\" are those above 5% CPU in a 1 s sample; the CPU line counts "
          "everything else that ran during the benchmark (machine busy time from /proc/stat "
          "minus the benchmark's own processes). "
          "Every figure is the median of the runs shown in its row, with (min – max). A ratio "
          "is computed within each run (both sides measured back to back in that run) and "
          "then summarized the same way. Throughputs are events (or examples) per second of "
          "wall-clock time. Other processes running at the same time (see above) share the "
          "machine's cores and lower every figure.", ""]
    return L


def section_decode(d):
    L = ["## 1. Decode", ""]
    if not d:
        return L + ["not measured (bench/decode.py did not run)", ""]
    n = len(d["runs"])
    L += ["`build/bench/bench_decode`: %s generated events (mean Avro body %.1f bytes), each "
          "format decoded for >= 1 s per run by the codec (`ev_decode` with the explicit wire "
          "format; `ev_file_reader_next` for the container file) and, in the same process on "
          "the same bytes, by the raw Avro-C loop (`avro_value_read` into a generic value of "
          "the schema: framing skipped, no resolution, no validation, no extraction into "
          "`ev_event_t`; `avro_file_reader_read_value` for the container file). %d runs."
          % ("{:,}".format(d["events"]), d["mean_body_bytes"], n), "",
          "| format | codec events/s | raw Avro-C events/s | codec / raw |",
          "|---|---|---|---|"]
    for f in ("confluent", "single-object", "plain", "container"):
        e = d["formats"][f]
        L.append("| %s | %s | %s | %s |" % (f, eps(e["codec_eps"]), eps(e["raw_eps"]),
                                           ratio(e["ratio"])))
    return L + [""]


def section_replay(r):
    L = ["## 2. Replay", ""]
    if not r:
        return L + ["not measured (bench/replay.py did not run)", ""]
    gp = r["gen_params"]
    L += ["Target (DESIGN.md section 10): replay with memory state >= 0.5 x the rate at which "
          "Avro-C alone decodes the same file. Each run: a decode-only pass over the container "
          "file with Avro-C alone and with the codec (`bench_decode --file`), `churnstream "
          "replay --json` at `tick.interval` 1d (the default) and 7d (other settings default: "
          "horizon and lookback 90d, batch 1000, k 8), then the decode-only passes again; the "
          "faster of the two decode-only passes of a run is its reference (shown below). Replay events/s = events read / the "
          "replay's own `seconds` (the whole run after argument parsing: open, decode, engine, "
          "models, metrics).", ""]
    names = {"generated": "generated (`gen --users %d --days %d --seed %d`)" % (
        gp["users"], gp["days"], gp["seed"]), "online-retail": "Online Retail (imported Avro)"}
    for key, ds in r["datasets"].items():
        n = runs_of(ds["decode_raw_eps"])
        L += ["### %s: %s events, %s users, %d runs" % (
            names.get(key, key), "{:,}".format(ds["events"]), "{:,}".format(ds["users"]), n), "",
            "| measurement | events/s | replay / Avro-C alone | replay / codec | target >= 0.5 "
            "| peak RSS MiB | snapshots scored / labelled |",
            "|---|---|---|---|---|---|---|",
            "| decode only, Avro-C alone | %s | | | | | |" % eps(ds["decode_raw_eps"]),
            "| decode only, codec (replay's reader) | %s | | | | | |" % eps(ds["decode_codec_eps"])]
        for label, t in ds["ticks"].items():
            L.append("| replay, memory state, ticks %s | %s | %s | %s | %s | %s | %s / %s |" % (
                label, eps(t["eps"]), ratio(t["ratio_raw"]), ratio(t["ratio_codec"]),
                met(t["target_met"]), mib(t["maxrss_kib"]), "{:,}".format(t["scored"]),
                "{:,}".format(t["labelled"])))
        L.append("")
    if "online_retail_csv" in r:
        c = r["online_retail_csv"]
        L += ["Online Retail straight from `online_retail.csv.gz` (`replay --preset "
              "online-retail`, ticks 1d; includes gunzip and CSV parsing, so no decode-only "
              "counterpart): %s events/s, peak RSS %s MiB, %d runs." % (
                  eps(c["eps"]), mib(c["maxrss_kib"]), runs_of(c["eps"])), ""]
    if "online_retail_missing" in r:
        L += ["Online Retail: not measured (%s)." % r["online_retail_missing"], ""]
    red = r.get("redis", {})
    L += ["### Replay with Redis state", ""]
    if red.get("status") == "measured":
        L += ["| measurement | events/s | peak RSS MiB |", "|---|---|---|",
              "| replay, Redis state (generated file) | %s | %s |" % (eps(red["eps"]),
                                                                    mib(red["maxrss_kib"])), ""]
    else:
        L += ["| measurement | events/s |", "|---|---|",
              "| replay, Redis state | %s |" % red.get("status", "not measured"), ""]
    return L


def section_models(m):
    L = ["## 3. Models", ""]
    if not m:
        return L + ["not measured (bench/models.py did not run)", ""]
    L += ["`build/bench/bench_models`: random standard-normal rows (already standardized), dim "
          "= FEAT_DIM = %d, k = %d, cycling through 65,536 distinct rows; each measurement "
          ">= 1 s per run. k-means: `km_partial_fit` + `km_assign` per batch (BLAS sgemm "
          "distances); `km_assign` (BLAS) beside `km_assign_scalar` (plain loops). Logistic "
          "regression, prequential per batch: `lr_predict` then `lr_update` (fixed-order loops; "
          "sgemv before 2026-12-07; AdaGrad "
          "steps of %d rows inside a batch) beside a scalar loop in the bench doing the same "
          "maths, checked to end on the same weights (largest weight difference shown)." % (
              m["dim"], m["k"], m["lr_minibatch_rows"]), "",
          "| batch | k-means update+assign ex/s | assign BLAS ex/s | assign scalar ex/s | "
          "BLAS / scalar | logreg lr_* ex/s | logreg scalar ex/s | lr_* / scalar | "
          "max weight diff |",
          "|---|---|---|---|---|---|---|---|---|"]
    for b, e in m["batches"].items():
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %.1e |" % (
            b, eps(e["kmeans_update_assign_eps"]), eps(e["kmeans_assign_blas_eps"]),
            eps(e["kmeans_assign_scalar_eps"]), ratio(e["kmeans_assign_ratio"]),
            eps(e["logreg_lib_eps"]), eps(e["logreg_scalar_eps"]), ratio(e["logreg_ratio"]),
            e["logreg_max_weight_diff"]))
    L += ["", "%d runs. BLAS and scalar assignments agreed on %.2f%% of a batch's rows (ties "
          "aside they must agree)." % (len(m["runs"]),
                                      100 * min(e["kmeans_assign_agree_min"]
                                                for e in m["batches"].values())), ""]
    return L


RESOURCES_TITLE = "## 4. Resources"


def section_resources(rss):
    L = [RESOURCES_TITLE, "",
         "Peak RSS of each replay of section 2: the peak RSS column of its tables.", ""]
    if not rss or "cases" not in rss:
        return L + ["RSS growth with the log: not measured (bench/rss.py did not run)", ""]
    cs = rss["cases"]
    L += ["Memory growth with the log (bench/rss.py): `churnstream replay` (memory state, "
          "default config, ticks 1d) of three generated files, one run of each per round, "
          "side by side; VmRSS from /proc/PID/status every second; start = first sample at or "
          "after 1 s, peak = the larger of the samples' maximum and ru_maxrss, end = last "
          "sample before exit; the ratio is each round's peak over the base's peak. "
          "%d rounds. Target: a 10M-event replay's peak within 1.5x a 1M-event one's." %
          runs_of(cs["base"]["peak_kib"]), "",
          "| file | events | users | labelled snapshots | events/s | start MiB | peak MiB | "
          "end MiB | peak / base |", "|---|---|---|---|---|---|---|---|---|"]
    names = {"base": "base", "longer": "10x longer, same users",
             "more_users": "10x users, same days"}
    for key in ("base", "longer", "more_users"):
        c = cs[key]
        gp = c["gen_params"]
        peak_ratio = rss["ratios"].get(key)
        L.append("| %s: `gen --users %d --days %d --seed %d` | %s | %s | %s | %s | %s | %s | %s "
                 "| %s |" % (names[key], gp["users"], gp["days"], gp["seed"],
                             "{:,}".format(c["events"]), "{:,}".format(c["users"]),
                             "{:,}".format(c["labelled"]), eps(c["eps"]), mib(c["start_kib"]),
                             mib(c["peak_kib"]), mib(c["end_kib"]),
                             ratio(peak_ratio, 2) if peak_ratio else "1"))
    L.append("")
    # A coarse profile of the longer log's median-speed run: RSS at each tenth of the run.
    run = sorted(cs["longer"]["runs"], key=lambda x: x["eps"])[len(cs["longer"]["runs"]) // 2]
    s = run["samples"]
    if len(s) >= 10:
        picks = [s[min(len(s) - 1, round(i * (len(s) - 1) / 10))] for i in range(11)]
        L += ["RSS over time in the 10x longer log's median-speed run: " +
              ", ".join("%.0f s %.0f MiB" % (t, kib / 1024) for t, kib in picks) + ".", ""]
    return L


def section_baselines(b):
    L = ["## 5. Baselines: river and scikit-learn", ""]
    if not b:
        return L + ["not measured (bench/baselines/run.py did not run)", ""]
    v = b["versions"]
    L += ["Same snapshots, same features: `churnstream replay %s --snapshots-out` writes every "
          "labelled snapshot (features as the models see them before standardization, "
          "churnstream's prequential score, label) in label order; river %s "
          "(`preprocessing.StandardScaler() | linear_model.LogisticRegression()` plus "
          "`cluster.KMeans(n_clusters=8)` on the standardized row, one row at a time) and "
          "scikit-learn %s (`StandardScaler.partial_fit`, `SGDClassifier(loss=\"log_loss\")"
          ".partial_fit`, `MiniBatchKMeans(n_clusters=8).partial_fit`, mini-batches of %d) "
          "learn from those rows. Python %s, numpy %s, pandas %s." % (
              " ".join(b["replay_flags"]), v["river"], v["sklearn"], b["sklearn_batch"],
              v["python"], v["numpy"], v["pandas"]), "",
          "**Protocol.** Every learner follows churnstream's own prequential protocol (DESIGN.md "
          "section 4): a snapshot is scored at its tick with the model as it stands, and learnt "
          "when its label arrives (a positive at T + 90d, a negative at the user's next "
          "activity, taken from the events), in label order. Scoring each row just before "
          "learning it in label order was tried first and rejected: labels arrive in bursts "
          "(all positives of a tick at one sweep), so the order gives the label away. A running "
          "mean of the previous labels, with no features, reaches the AUC shown as \"label-order "
          "leak\" below on that order. AUC is over the labelled snapshots whose window lies "
          "inside the log (the replay's metric set); churnstream's AUC is that of the `score` "
          "column of the same file.", "",
          "**What is timed.** churnstream: the whole replay (decode, features, labels, models, "
          "metrics, writing the CSV), as events/s and labelled snapshots/s. river and "
          "scikit-learn: only their predict and learn calls on the prepared rows (the Python "
          "learners get churnstream's features for free). Python features: a pure-Python loop "
          "over the data set's events (first %s) keeping one dict of user states with 4 lazily "
          "decayed counters (sessions and page views 30d, purchases and revenue 90d) and first/"
          "last activity, recomputing a 6-value feature vector per event (bench/baselines/"
          "py_features.py; churnstream keeps 16 counters, distinct days and gaps, so this is "
          "a lower bound of the Python cost). river pipeline events/s = 1 / (1 / Python-"
          "features events/s + (labelled snapshots / events) / river examples/s): the feature "
          "loop per event plus river's learning for the share of a snapshot each event "
          "carries; it leaves out decoding and scoring the censored snapshots, so it flatters "
          "river." % "{:,}".format(b["py_feature_events"]), ""]
    names = {"generated": "generated ~5M-event file", "online-retail": "Online Retail"}
    for key, ds in b["datasets"].items():
        if "missing" in ds:
            L += ["### %s: not measured (%s)" % (names.get(key, key), ds["missing"]), ""]
            continue
        n = runs_of(ds["river"]["eps"])
        L += ["### %s: %s events, %s labelled snapshots (%s in the metric window, positive rate "
              "%.3f), median label delay %.1f days, %d runs" % (
                  names.get(key, key), "{:,}".format(ds["events"]),
                  "{:,}".format(ds["snapshots"]), "{:,}".format(ds["in_window"]),
                  ds["positive_rate"], ds["label_delay_days_median"], n), "",
              "| learner | examples/s | events/s | AUC |", "|---|---|---|---|",
              "| churnstream (whole replay) | %s snapshots/s | %s | %s |" % (
                  eps(ds["churnstream"]["snapshots_per_s"]), eps(ds["churnstream"]["eps"]),
                  ratio(ds["churnstream"]["auc"], 4)),
              "| river, learner only | %s | | %s |" % (eps(ds["river"]["eps"]),
                                                     ratio(ds["river"]["auc"], 4)),
              "| scikit-learn, learner only | %s | | %s |" % (eps(ds["sklearn"]["eps"]),
                                                            ratio(ds["sklearn"]["auc"], 4)),
              "| Python features only | | %s | |" % eps(ds["py_features"]["eps"]),
              "| river pipeline (features + river) | | %s | |" % eps(ds["river_pipeline_eps"]),
              "| recency baseline (days since last activity, replay's metric) | | | %.4f |" %
              ds["churnstream"]["recency_auc"]["median"],
              "| label-order leak (running mean of previous labels) | | | %.4f |" %
              ds["label_order_leak_auc"], "",
              "churnstream events/s / river pipeline events/s = %s; churnstream snapshots/s / "
              "river examples/s = %s. The replay's own AUC (histogram metrics) was %.4f." % (
                  ratio(ds["ratio_vs_river_pipeline"], 1), ratio(ds["ratio_snapshots_vs_river"], 1),
                  ds["churnstream"]["replay_auc"]["median"]), "",
              "Target (churnstream >= 100x river's events/s, AUC no worse than river's on the "
              "same snapshots): speed %s, AUC %s: %s." % (
                  met(ds["target"]["speed_met"]), met(ds["target"]["auc_met"]),
                  met(ds["target"]["met"])), ""]
    return L


LIVE_TITLE = "## Live path (Kafka -> churnstream -> Redis -> alerts)"


def section_live(d):
    L = [LIVE_TITLE, ""]
    if not d:
        return L + ["not measured (bench/live.py did not run or failed)", ""]
    p, w, lat = d["params"], d.get("when", {}), d["latency"]
    L += ["Measured by bench/live.py on %s (load %s at start, %s at end), commit `%s`, "
          "%s cores; Redis, a single-node Kafka 3.9 broker (tests/services) and churnstream "
          "all on this machine. Topic of %s partitions filled once by `gen --users %d "
          "--days %d --seed %d --start %s --topic` (%s messages: the events plus one non-event that "
          "created the topic and is counted as a DLQ reject). Per run (%d runs, median (min "
          "– max)): `kcat -C -e -q -o beginning` drains the topic to /dev/null (whole "
          "process wall time), then `churnstream run` (default config; fresh group id and "
          "state.prefix, tick.idle_advance 1h) consumes it from the start; its rate is "
          "taken from the first moment /metrics shows events_in_total > 0 (process start "
          "and group join excluded) until the offsets stored in Redis (HGETALL "
          "<prefix>offsets, polled every 10 ms) reach the topic's end offsets." % (
              w.get("date_utc", "?"), " ".join(w.get("loadavg_start", [])),
              " ".join(w.get("loadavg_end", [])), w.get("commit", "?")[:12],
              w.get("cores", "?"), p["partitions"], p["users"], p["days"], p["seed"],
              p.get("fill_start", "2024-01-01"), "{:,}".format(p["messages"]),
              runs_of(d["ratio"])), "",
          "| figure | value |", "|---|---|",
          "| kcat drain, messages/s | %s |" % eps(d["kcat_eps"]),
          "| churnstream run, events/s (from the first batch) | %s |" % eps(d["run_eps"]),
          "| ratio churnstream / kcat (within a run; target >= 0.5) | %s %s |" % (
              ratio(d["ratio"]), met(d["ratio"]["median"] >= 0.5)),
          "| Redis commands per event (INFO commandstats delta, MULTI/EXEC counted, the "
          "bench's own polls subtracted) | %s |" % ratio(d["cmds_per_event"], 3),
          "| Redis round trips per event (churnstream_redis_round_trips_total) | %s |" %
          ratio(d["round_trips_per_event"], 4),
          "| bytes per user (MEMORY USAGE of %d `<prefix>u:*` keys per run): median, max | "
          "%s, %d |" % (d["runs"][0]["user_keys_sampled"], ratio(d["user_bytes_median"], 0),
                        d["user_bytes_max"])]
    ps = d.get("phase_share")
    if ps:
        L.append("| the catch-up's wall time by phase of the daemon's main thread "
                 "(`churnstream_batch_phase_seconds_total`; median of the runs): %s; of "
                 "that, blocked on Redis replies (`churnstream_redis_wait_seconds_total`) "
                 "%.0f%% |" % (", ".join("%s %.0f%%" % (k, 100 * ps[k]["median"]) for k in (
                     "collect", "decode", "apply", "commit", "report")),
                     100 * ps["redis_wait"]["median"]))
    L.append("")
    phases = [x for x in (d.get("latency_wall"), lat) if x]
    if phases:
        L += ["Latency (last run, after it caught up), in two phases of %d + %d s each while `run` "
              "keeps up: `gen --rate R` (R = half the run's sustained rate, seed 2) produces "
              "fresh events, first with `--wall-clock` (each event's time is the wall clock "
              "when it is produced: event time runs at the real pace of a live shop, and a "
              "daily tick's sweep comes once a day, at midnight UTC; the fill ends "
              "yesterday), then from tomorrow on in the process's own days, compressed (the "
              "same rate covers 10-35 event-time days a second, so the daily sweep over all "
              "users runs many times a second: a stress, not a live shop). Measured per "
              "sampled message (evenly spread over the produce order): the time from its "
              "Kafka CreateTime (stamped by gen's producer at produce(), so gen's linger.ms "
              "20 is included) until the first 10 ms poll of the offsets stored in Redis "
              "that covers it, i.e. the event is in the committed Redis state (features, "
              "model, alert outbox). Alerts go to Kafka right after that commit; their "
              "delivery is not included. Resolution 10 ms. The first %d s of each phase (by "
              "produce time) are a warm-up, measured apart: the jump of event time into the "
              "phase (a tick's sweep over every user and BG/NBD's refit) and gen's producer "
              "starting. Target (issue 16): p99 <= 50 ms at half load." % (
                  lat.get("warmup_s", 0), lat["seconds"], lat.get("warmup_s", 0)), "",
              "| event time | rate, messages/s | messages | samples (not covered in 60 s) "
              "| p50 ms | p99 ms | max ms | warm-up p99 / max ms | batches | alerts | "
              "batch_seconds p50 / p99 (histogram bucket bounds) |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
        for x in phases:
            L.append("| %s | %s | %s | %d (%d) | %.0f | %.0f %s | %.0f | %s / %s | %d | %d | "
                     "%s / %s s |" % (
                         "wall clock" if x.get("clock") == "wall" else "compressed",
                         "{:,.0f}".format(x["produced_eps"] or 0), "{:,}".format(x["produced"]),
                         x["samples"], x["not_covered"], x["p50_ms"], x["p99_ms"],
                         met(x["p99_ms"] <= 50), x["max_ms"],
                         "%.0f" % x["warmup_p99_ms"] if x.get("warmup_p99_ms") else "-",
                         "%.0f" % x["warmup_max_ms"] if x.get("warmup_max_ms") else "-",
                         x["batches"], x["alerts"], x["batch_p50_s"], x["batch_p99_s"]))
        L.append("")
    return L


READABLE_TITLE = "## Readable scores (GET /v1/users/{id}, the score hash)"


def section_readable(d):
    L = [READABLE_TITLE, ""]
    if not d:
        return L + ["not measured (bench/readable.py did not run or failed)", ""]
    p, w, m = d["params"], d["when"], d["memory"]
    L += ["Measured by bench/readable.py from %s to %s (load %s at start, %s at end), commit "
          "`%s`, %s (%s cores); Redis, a single-node Kafka 3.9 broker (tests/services) and "
          "`churnstream run` on this machine. `gen --users %d --days %d --seed %d --topic` "
          "(%s messages) consumed by `run` (tick.idle_advance 1h), then, with the daemon "
          "idle (model version unchanged for 5 s), per run (%d runs, median (min – max)): %s "
          "requests `GET /v1/users/{id}` on one keep-alive connection and %s `HGETALL "
          "<prefix>score:<id>` on one hiredis connection, from a C client "
          "(build/bench/bench_users), users drawn at random (100 warm-up requests not "
          "counted). Latency is the client's wall time per request (request written to "
          "response read). Target (issue 14): p99 <= 1 ms." % (
              w["date_utc"], w.get("date_end_utc", "?"), " ".join(w["loadavg_start"]),
              " ".join(w.get("loadavg_end", [])), w["commit"][:12], w.get("cpu", "?"),
              w["cores"], p["users"], p["days"], p["seed"], "{:,}".format(p["messages"]),
              p["runs"], "{:,}".format(p["requests"]), "{:,}".format(p["requests"])), "",
          "| request | p50 ms | p99 ms | max ms | p99 <= 1 ms |", "|---|---|---|---|---|",
          "| GET /v1/users/{id} | %s | %s | %s | %s |" % (
              ratio(d["http_p50_ms"], 3), ratio(d["http_p99_ms"], 3),
              ratio(d["http_max_ms"], 2), met(d["http_p99_ms"]["max"] <= 1.0)),
          "| HGETALL score hash | %s | %s | %s | %s |" % (
              ratio(d["hgetall_p50_ms"], 3), ratio(d["hgetall_p99_ms"], 3),
              ratio(d["hgetall_max_ms"], 2), met(d["hgetall_p99_ms"]["max"] <= 1.0)), ""]
    ld = d.get("loaded")
    if ld:
        L += ["While `run` consumes a paced stream (`gen --rate %.0f`, half the rate it "
              "consumed the fill; one run, the same request counts; the daemon, Redis, the "
              "broker and the client share the %s cores):" % (ld["rate_eps"], w["cores"]), "",
              "| request under load | p50 ms | p99 ms | max ms | p99 <= 1 ms |",
              "|---|---|---|---|---|"]
        for name, k in (("GET /v1/users/{id}", "http"), ("HGETALL score hash", "hgetall")):
            L.append("| %s | %.3f | %.3f | %.2f | %s |" % (
                name, ld[k]["p50_ms"], ld[k]["p99_ms"], ld[k]["max_ms"],
                met(ld[k]["p99_ms"] <= 1.0)))
        L.append("")
    wc = d.get("write_cost")
    if wc:
        on = [x for x in wc if x["scores"]]
        off = [x for x in wc if not x["scores"]]

        def st(xs, k):
            return bl.stats([x[k] for x in xs])
        L += ["Write cost: the same topic consumed again by `run` from the start (fresh group "
              "and prefix, metrics off), `state.scores` off and on alternately, %d runs each; "
              "events/s from the first to the last stored offset, Redis commands per event "
              "from INFO commandstats:" % len(on), "",
              "| state.scores | run events/s | Redis commands per event |", "|---|---|---|",
              "| false | %s | %s |" % (eps(st(off, "eps")), ratio(st(off, "cmds_per_event"), 3)),
              "| true | %s | %s |" % (eps(st(on, "eps")), ratio(st(on, "cmds_per_event"), 3)),
              ""]
    L += ["Memory of the hashes (after the runs): %s users with a hash (%s records); INFO "
          "memory used_memory %s bytes before and %s after `DEL` of every "
          "`<prefix>score:*` key: **%.0f bytes per user** (key, hash, expiry entry); "
          "`MEMORY USAGE` of a hash: median %d, max %d bytes (a record `<prefix>u:*`: median "
          "%d)." % ("{:,}".format(m["hashes"]), "{:,}".format(m["records"]),
                    "{:,}".format(m["used_memory_before"]), "{:,}".format(m["used_memory_after"]),
                    m["bytes_per_user"], m["memory_usage_median"], m["memory_usage_max"],
                    m["record_usage_median"]), ""]
    return L


SCALEOUT_TITLE = "## Scale-out (instances sharing one model)"


def section_scaleout(d):
    L = [SCALEOUT_TITLE, ""]
    if not d:
        return L + ["not measured (bench/scaleout.py did not run or failed)", ""]
    p, w = d["params"], d["when"]
    L += ["Measured by bench/scaleout.py from %s to %s (load %s at start, %s at end), %s "
          "cores; Redis (single node), a single-node Kafka 3.9 broker and every instance on "
          "this machine. `gen --users %d --days %d --seed 1 --topic` (%s events, %d "
          "partitions); per configuration and run (%d runs, interleaved, after a discarded "
          "warm-up), a fresh group and prefix consume the whole topic: events/s from the "
          "instances' start to every stored offset at the end (group join included), Redis "
          "commands and bytes received per event (INFO commandstats, total_net_input_bytes), "
          "the instances' CPU time per event (rusage, all instances summed), and in shared "
          "mode (model.sync_interval %s) the model journals committed (bytes per event, "
          "and per entry: one entry per partition and batch). Medians:" % (w["date_start_utc"], w.get("date_end_utc", "?"),
                        " ".join(w["loadavg_start"]), " ".join(w.get("loadavg_end", [])),
                        w["nproc"], p["users"], p["days"], "{:,}".format(p["events"]),
                        p["partitions"], p["runs"], p["sync_interval"]), "",
          "| configuration | instances | events/s | Redis commands/event | bytes in/event | "
          "CPU us/event | journal bytes/event | journal bytes/entry |",
          "|---|---|---|---|---|---|---|---|"]
    keys = []
    for x in d["rows"]:
        if (x["config"], x["instances"]) not in keys:
            keys.append((x["config"], x["instances"]))
    for cfg, n in keys:
        sel = [x for x in d["rows"] if x["config"] == cfg and x["instances"] == n]

        def med(k):
            return bl.stats([x[k] for x in sel])["median"]
        shared = cfg == "shared"
        L.append("| %s | %d | %.0f | %.3f | %.0f | %.1f | %s | %s |" % (
            "shared model" if shared else "one model owner", n, med("eps"),
            med("cmds_per_event"), med("bytes_in_per_event"), med("cpu_us_per_event"),
            "%.1f" % med("journal_bytes_per_event") if shared else "-",
            "%.0f" % med("journal_entry_bytes_mean") if shared else "-"))
    L += ["", "What bounds it here: the %s cores, shared by every instance, Redis and the "
          "broker. One instance leaves part of them idle while it waits on Redis and the "
          "broker, which a second instance uses; beyond that instances only contend. Sharing "
          "costs CPU per event (each merge re-runs the merged rows' learning, each instance "
          "keeps its own model) and bytes: a catch-up's batches are large, so the model one "
          "owner writes per batch is spread over many events, while journals grow with the "
          "labelled rows." % w["nproc"], ""]
    return L


DATED_NOTE = re.compile(r"^### .*\b\d{4}-\d{2}-\d{2}\)\s*$")


def dated_notes(lines):
    """The hand-written subsections of a results file ("### Title (..., YYYY-MM-DD)" up to the next
    ### or ## heading), by the ## heading they sit under, in order."""
    notes, section, cur = {}, None, None
    for line in lines:
        if line.startswith("## ") or line.startswith("### "):
            cur = None
        if line.startswith("## "):
            section = line
        elif DATED_NOTE.match(line):
            cur = [line]
            notes.setdefault(section, []).append(cur)
            continue
        if cur is not None:
            cur.append(line)
    return notes


def keep_dated_notes(old_lines, new_lines):
    """new_lines with the dated subsections of old_lines put back at the end of their ##
    section (a section gone from the new text keeps them at the end): a re-run rewrites the
    measured tables, not the notes of what changed and when."""
    notes = dated_notes(old_lines)
    have = set(new_lines)
    out, section = [], None

    def flush(sec):
        for block in notes.pop(sec, []):
            if block[0] in have:
                continue
            if out and out[-1] != "":
                out.append("")
            out.extend(block)

    for line in new_lines:
        if line.startswith("## "):
            flush(section)
            section = line
        out.append(line)
    flush(section)
    for sec in list(notes):
        if sec and sec not in have:
            out += ["", sec, ""]
        flush(sec)
    return out


def splice_section(name):
    """Rewrites one section of RESULTS.md from its JSON (a step run on its own, e.g.
    bench/readable.py --splice): the section is replaced where it is, else appended."""
    title, render_one = {"readable": (READABLE_TITLE, section_readable),
                         "scaleout": (SCALEOUT_TITLE, section_scaleout),
                         "rss": (RESOURCES_TITLE, section_resources),
                         "live": (LIVE_TITLE, section_live)}[name]
    path = os.path.join(bl.ROOT, "bench", "RESULTS.md")
    with open(path) as f:
        lines = f.read().split("\n")
    old_lines = list(lines)
    new = render_one(load(name))
    if title in lines:
        i = lines.index(title)
        j = i + 1
        while j < len(lines) and not lines[j].startswith("## "):
            j += 1
        lines[i:j] = new
    else:
        if lines and lines[-1] != "":
            lines.append("")
        lines += new
    lines = keep_dated_notes(old_lines, lines)
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines))
    os.replace(path + ".tmp", path)
    bl.log("rewrote the %s section of %s" % (name, os.path.relpath(path, bl.ROOT)))


def render(total_s, out_path):
    m = load("machine")
    L = ["# churnstream benchmark results", "",
         "Written by `make bench` (bench/run.sh, bench/report.py); do not edit by hand, except "
         "for subsections whose \"###\" heading ends in a date, \"(YYYY-MM-DD)\", which a re-run keeps under their "
         "section. How each figure is measured: bench/README.md.", ""]
    L += section_machine(m, total_s)
    L += section_decode(load("decode"))
    r = load("replay")
    L += section_replay(r)
    L += section_models(load("models"))
    L += section_resources(load("rss"))
    L += section_baselines(load("baselines"))
    L += section_live(load("live"))
    L += section_readable(load("readable"))
    L += section_scaleout(load("scaleout"))
    L += section_compose(load("compose"))
    if os.path.exists(out_path):
        with open(out_path) as f:
            L = keep_dated_notes(f.read().split("\n"), L)
    with open(out_path + ".tmp", "w") as f:
        f.write("\n".join(L))
    os.replace(out_path + ".tmp", out_path)
    bl.log("wrote %s" % os.path.relpath(out_path, bl.ROOT))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["machine", "render"])
    ap.add_argument("phase", nargs="?", default="start", choices=["start", "end"])
    ap.add_argument("--total-seconds", type=float, default=None)
    ap.add_argument("--out", default=os.path.join(bl.ROOT, "bench", "RESULTS.md"))
    a = ap.parse_args()
    if a.what == "machine":
        machine(a.phase)
    else:
        render(a.total_seconds, a.out)


if __name__ == "__main__":
    sys.exit(main())
