#!/usr/bin/env python3
"""Readable scores benchmark (issue 14 part 3): latency of GET /v1/users/{id} and of HGETALL
<prefix>score:<id> over loopback (p50/p99/max of N requests per run from a C client,
bench_users.c: one keep-alive connection each, users drawn at random), the write cost of the
hashes (run events/s and Redis commands per event with state.scores off and on), and the
memory they cost per user (INFO memory used_memory before and after deleting every hash,
MEMORY USAGE per key). Starts its own Redis and Kafka broker (tests/services/*.sh), fills a topic with `gen`, lets
`churnstream run` consume it (tick.idle_advance 1h: event time stays in the generated
year), measures with the daemon idle (the model version unchanged for 5 s) and again while
it consumes a paced stream (`gen --rate`), and stops everything it started by pid. Writes
bench/out/readable.json; `--splice` also rewrites the section of bench/RESULTS.md."""

import argparse
import datetime
import json
import os
import subprocess
import sys
import time

import benchlib as bl
from live import (Redis, commandstats, end_offsets, free_port, metrics, offsets, redis_and_kafka,
                  stop_pid, utc_now)

def quantiles(ns):
    v = sorted(ns)
    q = lambda f: v[min(len(v) - 1, int(f * len(v)))] / 1e6  # ms
    return {"p50_ms": q(0.50), "p99_ms": q(0.99), "max_ms": v[-1] / 1e6, "n": len(v)}


def latency(build, mport, rport, prefix, users_file, n, seed):
    """bench_users (C client): n GET /v1/users/{id} on one keep-alive connection, then n
    HGETALL on one hiredis connection; p50/p99/max ms of each."""
    out = subprocess.run([bl.bench_bin(build, "bench_users"), str(mport), str(rport), prefix,
                          users_file, str(n), str(seed)], capture_output=True, text=True,
                         timeout=600)
    if out.returncode != 0:
        raise RuntimeError("bench_users: %s" % out.stderr[-2000:])
    return json.loads(out.stdout)


def info_used_memory(r):
    txt = r.cmd("INFO", "memory").decode()
    for line in txt.splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    raise RuntimeError("INFO memory: no used_memory")


def scan_keys(r, pattern):
    keys, cursor = [], b"0"
    while True:
        cursor, batch = r.cmd("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
        keys += batch
        if cursor == b"0":
            return keys


def memory_cost(rport, prefix):
    """Bytes per user of the hashes: used_memory before - after deleting them all, / users;
    and MEMORY USAGE of each hash and each record."""
    r = Redis(rport)
    hashes = scan_keys(r, prefix + "score:*")
    records = scan_keys(r, prefix + "u:*")
    usage = sorted(r.cmd("MEMORY", "USAGE", k) for k in hashes)
    rec_usage = sorted(r.cmd("MEMORY", "USAGE", k) for k in records)
    before = info_used_memory(r)
    for i in range(0, len(hashes), 500):
        r.cmd("DEL", *hashes[i:i + 500])
    after = info_used_memory(r)
    r.close()
    n = len(hashes)
    return {"hashes": n, "records": len(records), "used_memory_before": before,
            "used_memory_after": after, "bytes_per_user": (before - after) / n,
            "memory_usage_median": usage[n // 2], "memory_usage_max": usage[-1],
            "record_usage_median": rec_usage[len(rec_usage) // 2]}


def consume(build, broker, topic, rport, ends, prefix, group, scores, tmp):
    """One `run` from the start of the topic with state.scores on or off: events/s (from the
    first stored offset to the last), Redis commands per event (INFO commandstats delta)."""
    r = Redis(rport)
    before = sum(commandstats(r).values())
    calls0 = r.calls
    p = subprocess.Popen(
        [bl.churnstream(build), "run", "--kafka.bootstrap.servers=" + broker,
         "--topic.events=" + topic, "--topic.alerts=" + topic + ".alerts",
         "--topic.dlq=" + topic + ".dlq", "--kafka.group.id=" + group,
         "--state.prefix=" + prefix, "--redis.port=%d" % rport, "--metrics.port=0",
         "--tick.idle_advance=1h", "--log.level=warn",
         "--state.scores=" + ("true" if scores else "false")],
        stdout=open(os.path.join(tmp, group + ".log"), "wb"), stderr=subprocess.STDOUT)
    try:
        t0 = t_first = None
        t_start = time.monotonic()
        while True:
            o = offsets(r, prefix)
            now = time.monotonic()
            if o and t_first is None:
                t_first = now
            if o == ends:
                break
            if p.poll() is not None or now - t_start > 600:
                raise RuntimeError("run (state.scores=%s) did not finish" % scores)
            time.sleep(0.01)
        t0 = t_first
        seconds = time.monotonic() - t0
    finally:
        stop_pid(p)
    total = sum(ends.values())
    cmds = sum(commandstats(r).values()) - before - (r.calls - calls0)
    r.close()
    return {"scores": scores, "eps": total / seconds, "cmds_per_event": cmds / total}


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--splice", action="store_true",
                    help="rewrite the readable-scores section of bench/RESULTS.md")
    a = ap.parse_args()
    build = bl.build_dir(a.build)
    when = {"date_utc": utc_now(), "loadavg_start": open("/proc/loadavg").read().split()[:3],
            "cores": os.cpu_count(), "cpu": cpu_model(),
            "commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True,
                                     text=True, cwd=bl.ROOT).stdout.strip()}
    run = None
    with redis_and_kafka("readable") as (tmp, rport, broker):
        try:
            topic, prefix = "rd-events", "rd:"
            subprocess.run(["kcat", "-P", "-b", broker, "-t", topic, "-p", "0"],
                           input=b"not an event\n", check=True)
            bl.check(bl.run_measured([bl.churnstream(build), "gen", "--users", str(a.users),
                                      "--days", str(a.days), "--seed", "1", "--topic", topic,
                                      "--quiet", "--kafka.bootstrap.servers=" + broker]),
                     "gen --topic")
            ends = end_offsets(broker, topic)
            mport = free_port()
            run = subprocess.Popen(
                [bl.churnstream(build), "run", "--kafka.bootstrap.servers=" + broker,
                 "--topic.events=" + topic, "--topic.alerts=" + topic + ".alerts",
                 "--topic.dlq=" + topic + ".dlq", "--kafka.group.id=rd", "--state.prefix=" + prefix,
                 "--redis.port=%d" % rport, "--metrics.port=%d" % mport, "--tick.idle_advance=1h",
                 "--log.level=warn"],
                stdout=open(os.path.join(tmp, "run.log"), "wb"), stderr=subprocess.STDOUT)
            r = Redis(rport)
            t0 = time.monotonic()
            while offsets(r, prefix) != ends:
                if run.poll() is not None or time.monotonic() - t0 > 600:
                    raise RuntimeError("run did not consume the topic (log %s)" % tmp)
                time.sleep(0.2)
            consumed_s = time.monotonic() - t0
            bl.log("run consumed %d messages in %.1f s" % (sum(ends.values()), consumed_s))
            # Idle: the sweeps of the last ticks go on in the idle calls after the topic is
            # consumed, and every model change makes the endpoint reload its copy; wait until the
            # model version holds for 5 s.
            t1, last, since = time.monotonic(), None, time.monotonic()
            while time.monotonic() - since < 5 and time.monotonic() - t1 < 300:
                m = metrics(mport) or {}
                v = m.get("churnstream_model_version")
                if v != last:
                    last, since = v, time.monotonic()
                time.sleep(0.5)
            bl.log("model version %s held for 5 s (%.1f s after the topic was consumed)" %
                   (last, time.monotonic() - t1))
            users = sorted(k.decode()[len(prefix) + 6:] for k in scan_keys(r, prefix + "score:*"))
            r.close()
            users_file = os.path.join(tmp, "users.txt")
            with open(users_file, "w") as f:
                f.write("\n".join(users) + "\n")
            runs = []
            for i in range(a.runs):
                x = latency(build, mport, rport, prefix, users_file, a.requests, i + 1)
                h, g = x["http"], x["hgetall"]
                bl.log("run %d: GET /v1/users p50 %.3f p99 %.3f ms; HGETALL p50 %.3f p99 %.3f ms" %
                       (i + 1, h["p50_ms"], h["p99_ms"], g["p50_ms"], g["p99_ms"]))
                runs.append(x)
            # Write cost: the same topic consumed again from the start, state.scores off and on
            # alternately (fresh group and prefix each), so both see the same machine load.
            cost = []
            for i in range(a.runs):
                for on in (False, True):
                    c = consume(build, broker, topic, rport, ends, "wc%d%d:" % (i, on),
                                "wc-%d-%d" % (i, on), on, tmp)
                    bl.log("write cost: state.scores=%s %.0f events/s, %.3f Redis commands/event" %
                           (on, c["eps"], c["cmds_per_event"]))
                    cost.append(c)
            # Under load: the same requests while `run` consumes a paced stream at half the rate
            # it consumed the fill (fresh days after the fill, like bench/live.py's latency).
            rate = 0.5 * sum(ends.values()) / consumed_s
            after = (datetime.date(2024, 1, 1) + datetime.timedelta(days=a.days)).isoformat()
            g = subprocess.Popen([bl.churnstream(build), "gen", "--users", str(a.users), "--days",
                                  str(3 * a.days), "--seed", "2", "--start", after, "--rate",
                                  "%.0f" % rate, "--topic", topic, "--quiet",
                                  "--kafka.bootstrap.servers=" + broker],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(2)
                loaded = latency(build, mport, rport, prefix, users_file, a.requests, 99)
                loaded["rate_eps"] = rate
            finally:
                stop_pid(g)
            bl.log("under load (%.0f events/s): GET p50 %.3f p99 %.3f ms; HGETALL p50 %.3f p99 "
                   "%.3f ms" % (rate, loaded["http"]["p50_ms"], loaded["http"]["p99_ms"],
                                loaded["hgetall"]["p50_ms"], loaded["hgetall"]["p99_ms"]))
            stop_pid(run)
            mem = memory_cost(rport, prefix)
            bl.log("memory: %d hashes, %.0f bytes per user (used_memory delta), MEMORY USAGE "
                   "median %d" % (mem["hashes"], mem["bytes_per_user"], mem["memory_usage_median"]))
            out = {"params": {"users": a.users, "days": a.days, "seed": 1, "requests": a.requests,
                              "runs": a.runs, "messages": sum(ends.values())},
                   "runs": runs, "memory": mem, "loaded": loaded, "write_cost": cost,
                   "http_p50_ms": bl.stats([x["http"]["p50_ms"] for x in runs]),
                   "http_p99_ms": bl.stats([x["http"]["p99_ms"] for x in runs]),
                   "http_max_ms": bl.stats([x["http"]["max_ms"] for x in runs]),
                   "hgetall_p50_ms": bl.stats([x["hgetall"]["p50_ms"] for x in runs]),
                   "hgetall_p99_ms": bl.stats([x["hgetall"]["p99_ms"] for x in runs]),
                   "hgetall_max_ms": bl.stats([x["hgetall"]["max_ms"] for x in runs])}
            when["date_end_utc"] = utc_now()
            when["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
            out["when"] = when
            bl.write_json("readable", out)
        finally:
            if run is not None:
                stop_pid(run)
    if a.splice:
        import report
        report.splice_section("readable")
    return 0


if __name__ == "__main__":
    sys.exit(main())
