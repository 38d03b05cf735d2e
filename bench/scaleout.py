#!/usr/bin/env python3
"""Scale-out benchmark (issue 15): `churnstream run` with 1, 2 and 3 instances in one
consumer group sharing one model (model.sync_interval), against one instance that owns its
model (the default), on the same 6-partition topic. Per configuration: events/s from start
to every stored offset at the topic's end, Redis commands and bytes written per event (INFO
commandstats, total_net_input_bytes), the instances' CPU time per event (rusage), and in
shared mode the model journals committed (one entry per partition and batch; bytes from the
debug log). Starts its own Redis and Kafka (tests/services/*.sh, free ports) and stops them by pid
at the end, even on failure. Writes bench/out/scaleout.json and prints a Markdown table."""

import argparse
import os
import re
import subprocess
import sys
import time

import benchlib as bl
import live
import report

PARTITIONS = 6


def ends_of(broker, topic):
    live.PARTITIONS = PARTITIONS
    return live.end_offsets(broker, topic)


def net_in(r):
    txt = r.cmd("INFO", "stats").decode()
    return int(re.search(r"total_net_input_bytes:(\d+)", txt).group(1))


def one(a, build, broker, topic, r, ends, n, shared, run_no, tmp):
    """n instances (shared model or one owner); returns the configuration's figures."""
    tag = "%s%d-%d" % ("s" if shared else "o", n, run_no)
    prefix, group = "so-%s:" % tag, "so-%s" % tag
    events = sum(ends.values())
    extra = ["--model.sync_interval=" + a.sync, "--log.level=debug"] if shared else []
    c0, b0 = live.commandstats(r), net_in(r)
    t0 = time.monotonic()
    procs, logs = [], []
    for i in range(n):
        logs.append(os.path.join(tmp, "%s-%d.log" % (tag, i)))
        cmd = [bl.churnstream(build), "run", "--kafka.bootstrap.servers=" + broker,
               "--topic.events=" + topic, "--topic.alerts=" + topic + ".alerts",
               "--topic.dlq=" + topic + ".dlq", "--kafka.group.id=" + group,
               "--state.prefix=" + prefix, "--redis.port=%d" % r.port, "--metrics.port=0",
               "--tick.idle_advance=1h"] + extra + a.run_arg
        procs.append(subprocess.Popen(cmd, stdout=open(logs[-1], "wb"),
                                      stderr=subprocess.STDOUT))
    deadline = t0 + a.timeout
    while True:
        if live.offsets(r, prefix) == ends:
            break
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError("%s: not caught up (see %s)" % (tag, logs[0]))
        time.sleep(0.05)
    secs = time.monotonic() - t0
    c1, b1 = live.commandstats(r), net_in(r)
    cpu = 0.0
    for p in procs:  # SIGTERM (a shared model merges at stop), then the instance's rusage
        p.send_signal(15)
        _, _, ru = os.wait4(p.pid, 0)
        p.returncode = 0
        cpu += ru.ru_utime + ru.ru_stime
    cmds = sum(c1.values()) - sum(c0.values()) - 2  # minus this script's INFO calls
    entries = [int(m.group(1)) for path in logs
               for m in re.finditer(rb"committed \(\d+ rows, (\d+) bytes\)", open(path, "rb").read())]
    merges = sum(len(re.findall(rb"merged \d+ journal entries", open(p, "rb").read()))
                 for p in logs)
    model_len = r.cmd("STRLEN", prefix + "model")
    return {"config": ("shared" if shared else "owner"), "instances": n, "run": run_no,
            "seconds": secs, "eps": events / secs, "cmds_per_event": cmds / events,
            "bytes_in_per_event": (b1 - b0) / events, "cpu_us_per_event": 1e6 * cpu / events,
            "journal_entries": len(entries),
            "journal_bytes_per_event": sum(entries) / events if entries else None,
            "journal_entry_bytes_mean": sum(entries) / len(entries) if entries else None,
            "merges_logged": merges, "model_bytes": model_len}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=None)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--instances", default="1,2,3")
    ap.add_argument("--sync", default="1s", help="model.sync_interval of the shared runs")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per catch-up")
    ap.add_argument("--run-arg", action="append", default=[],
                    help="extra `run` option for every instance (repeatable)")
    ap.add_argument("--splice", action="store_true",
                    help="also rewrite the scale-out section of bench/RESULTS.md")
    a = ap.parse_args()
    build = bl.build_dir(a.build)
    subprocess.run(["make", "-C", bl.ROOT, "--no-print-directory", "-s",
                    "build/tests/tools/eo_tool"], check=True)
    eo = os.path.join(bl.ROOT, "build", "tests", "tools", "eo_tool")
    when = {"date_start_utc": live.utc_now(), "nproc": os.cpu_count(),
            "loadavg_start": open("/proc/loadavg").read().split()[:3]}
    with live.redis_and_kafka("scaleout") as (tmp, rport, broker):
        topic = "scaleout-events"
        subprocess.run([eo, "create-topic", broker, topic, str(PARTITIONS)], check=True)
        bl.check(bl.run_measured([bl.churnstream(build), "gen", "--users", str(a.users),
                                  "--days", str(a.days), "--seed", "1", "--topic", topic,
                                  "--quiet", "--kafka.bootstrap.servers=" + broker]),
                 "gen --topic")
        ends = ends_of(broker, topic)
        r = live.Redis(rport)
        r.port = rport
        rows = []
        counts = [int(x) for x in a.instances.split(",")]
        # Warm-up, discarded: the broker's first consumer group creates __consumer_offsets.
        one(a, build, broker, topic, r, ends, 1, False, 0, tmp)
        for run_no in range(1, a.runs + 1):  # interleaved: drift hits every configuration
            for shared, n in [(False, 1)] + [(True, k) for k in counts]:
                res = one(a, build, broker, topic, r, ends, n, shared, run_no, tmp)
                bl.log("%s x%d run %d: %.0f events/s, %.2f Redis cmds/event, %.0f bytes in/event"
                       % (res["config"], n, run_no, res["eps"], res["cmds_per_event"],
                          res["bytes_in_per_event"]))
                rows.append(res)
        when["date_end_utc"] = live.utc_now()
        when["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        out = {"params": {"users": a.users, "days": a.days, "partitions": PARTITIONS,
                          "events": sum(ends.values()), "sync_interval": a.sync,
                          "runs": a.runs, "run_args": a.run_arg},
               "when": when, "rows": rows}
        bl.write_json("scaleout", out)
        if a.splice:
            report.splice_section("scaleout")
        print("\n".join(report.section_scaleout(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
