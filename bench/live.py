#!/usr/bin/env python3
"""Live path benchmark (DESIGN.md section 10): Kafka -> churnstream run -> Redis, against
the rate at which kcat alone drains the same topic; end-to-end latency at about half the
sustained rate, twice: event time at the wall clock's pace (gen --wall-clock: a live shop,
daily ticks at midnight only) and compressed (the process's days squeezed into seconds, a
daily tick's sweep several times a second: a stress); Redis commands per event and bytes per
user. Starts its own Redis and Kafka
broker (tests/services/*.sh, free ports) and stops them by pid at the end, even on failure.
Writes bench/out/live.json."""

import argparse
import contextlib
import datetime
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import benchlib as bl

SERVICES = os.path.join(bl.ROOT, "tests", "services")
PARTITIONS = 4


# ---- a minimal RESP client (stdlib only, like the other bench scripts) ----

class Redis:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.f = self.s.makefile("rb")
        self.calls = 0  # commands this client sent, subtracted from commandstats

    def cmd(self, *args):
        self.calls += 1
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self._read()

    def _read(self):
        line = self.f.readline()
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError("redis: " + rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RuntimeError("redis: bad reply %r" % line)

    def close(self):
        self.s.close()


def commandstats(r):
    """Total calls over all commands (INFO commandstats), and per command."""
    txt = r.cmd("INFO", "commandstats").decode()
    per = {}
    for line in txt.splitlines():
        if line.startswith("cmdstat_"):
            name, rest = line[8:].split(":", 1)
            kv = dict(x.split("=") for x in rest.split(","))
            per[name] = int(kv["calls"])
    return per


def offsets(r, prefix):
    v = r.cmd("HGETALL", prefix + "offsets") or []
    return {int(v[i]): int(v[i + 1]) for i in range(0, len(v), 2)}


# ---- services ----

def svc(script, action, d):
    res = subprocess.run(["bash", os.path.join(SERVICES, script), action, d],
                         capture_output=True, text=True)
    if res.returncode != 0:
        sys.stderr.write(res.stderr[-3000:])
        raise RuntimeError("%s %s failed" % (script, action))
    bl.log(res.stdout.strip())
    with open(os.path.join(d, "port")) as f:
        return int(f.read())


@contextlib.contextmanager
def redis_and_kafka(name):
    """A throwaway Redis and Kafka broker (tests/services, free ports) in a temporary folder:
    yields (folder, Redis port, broker address); stops both by pid at the end, also on
    failure, and removes the folder unless the block failed (kept for inspection then)."""
    tmp = tempfile.mkdtemp(prefix="cs-%s-" % name)
    started, ok = [], False
    try:
        rdir, kdir = os.path.join(tmp, "redis"), os.path.join(tmp, "kafka")
        rport = svc("redis.sh", "start", rdir)
        started.append(("redis.sh", rdir))
        kport = svc("kafka.sh", "start", kdir)
        started.append(("kafka.sh", kdir))
        yield tmp, rport, "127.0.0.1:%d" % kport
        ok = True
    finally:
        for script, d in reversed(started):
            try:
                subprocess.run(["bash", os.path.join(SERVICES, script), "stop", d],
                               check=False)
            except Exception as e:  # keep stopping the others
                bl.log("stopping %s: %s" % (script, e))
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            bl.log("kept %s for inspection" % tmp)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def end_offsets(broker, topic):
    cmd = ["kcat", "-b", broker, "-Q"]
    for p in range(PARTITIONS):
        cmd += ["-t", "%s:%d:-1" % (topic, p)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    ends = {}
    for line in out.splitlines():
        # "topic [p] offset N"
        parts = line.split()
        if len(parts) >= 4 and parts[2] == "offset":
            ends[int(parts[1].strip("[]"))] = int(parts[3])
    if len(ends) != PARTITIONS:
        raise RuntimeError("kcat -Q: %r" % out)
    return ends


def metrics(port):
    try:
        txt = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=1).read()
    except OSError:
        return None
    m = {}
    for line in txt.decode().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                m[k] = float(v)
            except ValueError:
                continue
            if "{" in k and "_bucket{" not in k:  # labelled series: also their sum
                base = k.split("{")[0]
                m[base] = m.get(base, 0.0) + float(v)
    return m


def hist_quantile(m, name, q):
    """Quantile from a Prometheus histogram's cumulative buckets (upper bound of the bucket
    holding the q-th observation)."""
    buckets = []
    for k, v in m.items():
        if k.startswith(name + "_bucket{") and 'le="' in k:
            le = k.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), v))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return None
    target = q * buckets[-1][1]
    for le, c in buckets:
        if c >= target:
            return le
    return None


def stop_pid(p, timeout_s=15):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


RUN_ARGS = []  # --run-arg: extra `run` options (e.g. --batch.catchup_factor=1)


def proc_cpu_s(pid):
    """CPU seconds (user + system, every thread) the process has used so far."""
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def start_run(build, broker, topic, rport, prefix, group, mport, log_path):
    cmd = [bl.churnstream(build), "run",
           "--kafka.bootstrap.servers=" + broker, "--topic.events=" + topic,
           "--topic.alerts=" + topic + ".alerts", "--topic.dlq=" + topic + ".dlq",
           "--kafka.group.id=" + group, "--state.prefix=" + prefix,
           "--redis.port=%d" % rport, "--metrics.port=%d" % mport,
           "--tick.idle_advance=1h"] + RUN_ARGS
    return subprocess.Popen(cmd, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)


def one_run(a, build, broker, topic, rport, ends, run_no, tmp):
    total = sum(ends.values())
    res = {}
    # Baseline: kcat drains the whole topic.
    t0 = time.monotonic()
    subprocess.run(["kcat", "-C", "-b", broker, "-t", topic, "-e", "-q", "-o", "beginning"],
                   stdout=subprocess.DEVNULL, check=True)
    res["kcat_s"] = time.monotonic() - t0
    res["kcat_eps"] = total / res["kcat_s"]
    bl.log("run %d: kcat drained %d messages in %.2f s: %.0f msg/s" %
           (run_no, total, res["kcat_s"], res["kcat_eps"]))

    prefix = "lb%d:" % run_no
    mport = free_port()
    r = Redis(rport)
    before = commandstats(r)
    calls0 = r.calls
    log_path = os.path.join(tmp, "run%d.log" % run_no)
    p = start_run(build, broker, topic, rport, prefix, "lb-%d-%d" % (os.getpid(), run_no),
                  mport, log_path)
    try:
        t_start = time.monotonic()
        t1 = e1 = None
        deadline = t_start + a.timeout
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise RuntimeError("churnstream run exited %d; see %s" % (p.returncode, log_path))
            m = metrics(mport)
            if m and m.get("churnstream_events_in_total", 0) > 0:
                t1 = time.monotonic()
                m_first = m
                cpu1 = proc_cpu_s(p.pid)
                e1 = sum(offsets(r, prefix).values())
                break
            time.sleep(0.01)
        if t1 is None:
            raise RuntimeError("no events processed in %d s" % a.timeout)
        prof = None
        if a.perf_record and run_no == 1:
            # A profile of the daemon during the catch-up (not of the measured figures: perf
            # costs a few percent while it samples).
            prof = subprocess.Popen(["perf", "record", "-q", "-p", str(p.pid), "--call-graph",
                                     "dwarf,16384", "-F", "300", "-o", a.perf_record, "--",
                                     "sleep", str(a.perf_seconds)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while time.monotonic() < deadline:
            if sum(offsets(r, prefix).values()) >= total:
                break
            if p.poll() is not None:
                raise RuntimeError("churnstream run exited %d" % p.returncode)
            time.sleep(0.01)
        else:
            raise RuntimeError("churnstream did not catch up in %d s" % a.timeout)
        t2 = time.monotonic()
        res["run_cpu_s"] = proc_cpu_s(p.pid) - cpu1
        if prof:
            prof.wait()
        res["run_s"] = t2 - t1
        res["start_to_first_s"] = t1 - t_start
        res["run_events"] = total - e1
        res["run_eps"] = (total - e1) / (t2 - t1)
        res["ratio"] = res["run_eps"] / res["kcat_eps"]
        res["run_cpu_us_per_event"] = 1e6 * res["run_cpu_s"] / res["run_events"]
        m = metrics(mport) or {}
        # Where the main thread's time went over the catch-up (the first batch excluded, as
        # in the rate): /metrics phase counters, as shares of the catch-up's wall time.
        res["phase_share"] = {
            ph: (m.get('churnstream_batch_phase_seconds_total{phase="%s"}' % ph, 0.0) -
                 m_first.get('churnstream_batch_phase_seconds_total{phase="%s"}' % ph, 0.0)) /
            (t2 - t1) for ph in ("collect", "decode", "apply", "commit", "report")}
        res["phase_share"]["redis_wait"] = (
            m.get("churnstream_redis_wait_seconds_total", 0.0) -
            m_first.get("churnstream_redis_wait_seconds_total", 0.0)) / (t2 - t1)
        res["events_in"] = m.get("churnstream_events_in_total")
        res["rejected"] = m.get("churnstream_events_rejected_total")
        res["round_trips"] = m.get("churnstream_redis_round_trips_total")
        res["batches"] = m.get("churnstream_batches_total")
        res["alerts"] = m.get("churnstream_alerts_total")
        res["batch_p50_s"] = hist_quantile(m, "churnstream_batch_seconds", 0.5)
        res["batch_p99_s"] = hist_quantile(m, "churnstream_batch_seconds", 0.99)
        after = commandstats(r)
        own = r.calls - calls0  # our HGETALL/INFO polls, all on this connection
        delta = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
        cmds = sum(delta.values()) - own
        res["redis_commands"] = cmds
        res["redis_commands_by_name"] = delta
        res["redis_own_polls"] = own
        res["redis_cmds_per_event"] = cmds / total
        bl.log("run %d: churnstream %d events in %.2f s from the first batch: %.0f ev/s, "
               "ratio %.2f; %.2f Redis commands/event; %.2f CPU s (%.2f us/event); time: %s" %
               (run_no, res["run_events"], res["run_s"], res["run_eps"], res["ratio"],
                res["redis_cmds_per_event"], res["run_cpu_s"], res["run_cpu_us_per_event"],
                ", ".join("%s %.0f%%" % (k, 100 * v) for k, v in res["phase_share"].items())))
        # Bytes per user over a sample of user keys.
        keys, cursor = [], b"0"
        while True:
            cursor, ks = r.cmd("SCAN", cursor, "MATCH", prefix + "u:*", "COUNT", 1000)
            keys += ks
            if cursor == b"0" or len(keys) >= a.sample_users:
                break
        sizes = [r.cmd("MEMORY", "USAGE", k) for k in keys[:a.sample_users]]
        res["user_keys_sampled"] = len(sizes)
        res["user_bytes"] = bl.stats(sizes)
        res["users_total"] = r.cmd("EVAL", "return #redis.call('KEYS', ARGV[1])", 0,
                                   prefix + "u:*")
        if run_no == a.runs:
            # Wall clock first: the compressed phase moves event time days ahead of it.
            res["latency_wall"] = latency_phase(a, build, broker, topic, r, prefix, mport, p,
                                                res["run_eps"], True)
            res["latency"] = latency_phase(a, build, broker, topic, r, prefix, mport, p,
                                           res["run_eps"], False)
    finally:
        stop_pid(p)
        r.close()
    return res


def fill_start(a):
    """The fill's first day: its last day is yesterday (UTC), so the wall-clock latency phase
    continues its event time instead of jumping over years of ticks."""
    today = datetime.datetime.now(datetime.timezone.utc).date()
    return today - datetime.timedelta(days=a.days)


def _produce_paced(a, build, broker, topic, start, rate, polls, wall):
    """gen --rate for a.latency_seconds, then waits (at most 60 s) until the polls show every
    produced message covered. Returns the end offsets and the message count produced.
    wall: gen --wall-clock (event time = the wall clock: a live shop's pace, daily ticks only
    at midnight); else the process's own days from tomorrow on, compressed into seconds."""
    today = datetime.datetime.now(datetime.timezone.utc).date()
    after = (today + datetime.timedelta(days=1)).isoformat()
    # Days enough for twice the events the phase produces at this rate (the fill's events per
    # day as the measure), at least 3 x the fill's, so gen never runs out before it is stopped.
    per_day = max(1.0, a._fill_messages / float(a.days))
    days = max(3 * a.days, int(2 * rate * a.latency_seconds / per_day) + 1)
    g = subprocess.Popen([bl.churnstream(build), "gen", "--users", str(a.users), "--days",
                          str(days), "--seed", "2", "--start", after, "--rate",
                          "%.0f" % rate, "--topic", topic, "--quiet",
                          "--kafka.bootstrap.servers=" + broker] +
                         (["--wall-clock"] if wall else []),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    bl.log("latency (%s): gen --rate %.0f for %d + %d s" %
           ("wall clock" if wall else "compressed event time", rate, a.latency_warmup,
            a.latency_seconds))
    time.sleep(a.latency_warmup + a.latency_seconds)
    g.send_signal(signal.SIGTERM)  # gen delivers what it generated, then exits
    err = g.communicate(timeout=30)[1].decode("utf-8", "replace")
    if "interrupted (what was generated is delivered)" not in err:
        raise RuntimeError("gen --rate failed (status %d): %s" % (g.returncode, err[-2000:]))
    ends = end_offsets(broker, topic)
    produced = sum(ends.values()) - sum(start.values())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
            not polls or any(polls[-1][1].get(pp, 0) < ends[pp] for pp in ends)):
        time.sleep(0.05)
    time.sleep(0.05)
    return ends, produced


def latency_phase(a, build, broker, topic, r, prefix, mport, p, sustained_eps, wall):
    """gen --rate (half the sustained rate) while run is caught up; per sampled message,
    produce timestamp (Kafka CreateTime) -> first 10 ms poll whose stored offset in Redis
    covers it."""
    rate = a.latency_rate if a.latency_rate > 0 else sustained_eps / 2
    start = end_offsets(broker, topic)
    m0 = metrics(mport) or {}
    polls = []
    stop = threading.Event()
    r2 = Redis(int(a._redis_port))

    def poller():
        while not stop.is_set():
            polls.append((time.time(), offsets(r2, prefix)))
            time.sleep(0.01)

    th = threading.Thread(target=poller)
    th.start()
    try:
        ends, produced = _produce_paced(a, build, broker, topic, start, rate, polls, wall)
    finally:
        stop.set()
        th.join()
        r2.close()
    m1 = metrics(mport) or {}
    # Timestamps of the new messages: partition, offset, CreateTime (ms).
    msgs = []
    for pp in range(PARTITIONS):
        out = subprocess.run(["kcat", "-C", "-b", broker, "-t", topic, "-p", str(pp), "-o",
                              str(start[pp]), "-e", "-q", "-f", "%p %o %T\n"],
                             capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            q, o, ts = line.split()
            msgs.append((int(q), int(o), int(ts)))
    msgs.sort(key=lambda x: x[2])
    span_s = (msgs[-1][2] - msgs[0][2]) / 1000.0 if len(msgs) > 1 else 0.0

    def latencies(sel):
        """Per sampled message of sel: produce time -> first poll covering its offset."""
        step = max(1, len(sel) // a.latency_samples)
        lats, missing = [], 0
        for q, o, ts in sel[::step]:
            hit = None
            for t, offs in polls:  # polls are in time order; first one covering offset o
                if offs.get(q, 0) > o:
                    hit = t
                    break
            if hit is None:
                missing += 1
            else:
                lats.append((hit - ts / 1000.0) * 1000.0)
        return sorted(lats), missing

    def pct(v, q):
        return v[min(len(v) - 1, int(q * len(v)))] if v else None

    # The first latency_warmup seconds of the phase (by produce time) are not measured: the
    # jump of event time into the phase (a tick's sweep and BG/NBD refit), gen's producer
    # starting. Their own figures are kept (warmup_*) so nothing is hidden.
    cut = msgs[0][2] + 1000 * a.latency_warmup if msgs else 0
    warm, _ = latencies([m for m in msgs if m[2] < cut])
    lats, missing = latencies([m for m in msgs if m[2] >= cut])

    dm = {k: v - m0.get(k, 0.0) for k, v in m1.items()}
    batches = m1.get("churnstream_batches_total", 0) - m0.get("churnstream_batches_total", 0)
    out = {"rate_target_eps": rate, "produced": produced,
           "seconds": a.latency_seconds, "produce_span_s": span_s,
           "produced_eps": produced / span_s if span_s > 0 else None,
           "samples": len(lats), "not_covered": missing,
           "p50_ms": pct(lats, 0.5), "p99_ms": pct(lats, 0.99), "max_ms": lats[-1] if lats
           else None, "warmup_s": a.latency_warmup, "warmup_p99_ms": pct(warm, 0.99),
           "warmup_max_ms": warm[-1] if warm else None,
           "batches": batches, "polls": len(polls),
           "alerts": m1.get("churnstream_alerts_total", 0) - m0.get("churnstream_alerts_total", 0),
           # the histogram's increase over this phase only
           "batch_p50_s": hist_quantile(dm, "churnstream_batch_seconds", 0.5),
           "batch_p99_s": hist_quantile(dm, "churnstream_batch_seconds", 0.99)}
    out["clock"] = "wall" if wall else "compressed"
    bl.log("latency (%s): %d produced at %.0f/s, %d samples after %d s: p50 %.1f ms, p99 %.1f "
           "ms (the warm-up's p99 %.1f ms, max %.1f ms)" %
           (out["clock"], produced, out["produced_eps"], len(lats), a.latency_warmup,
            out["p50_ms"] or -1, out["p99_ms"] or -1, out["warmup_p99_ms"] or -1,
            out["warmup_max_ms"] or -1))
    return out


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--timeout", type=int, default=600, help="seconds per catch-up")
    ap.add_argument("--latency-seconds", type=int, default=20,
                    help="measured seconds of each latency phase")
    ap.add_argument("--latency-warmup", type=int, default=2,
                    help="seconds at the start of each latency phase not measured (reported "
                         "apart)")
    ap.add_argument("--latency-rate", type=float, default=0,
                    help="events/s of the latency phase (default: half the sustained rate), "
                         "to compare builds or settings at one rate")
    ap.add_argument("--latency-samples", type=int, default=2000)
    ap.add_argument("--sample-users", type=int, default=200)
    ap.add_argument("--splice", action="store_true",
                    help="rewrite the live-path section of bench/RESULTS.md")
    ap.add_argument("--perf-record", default=None, metavar="FILE",
                    help="perf record the daemon for --perf-seconds of the first catch-up "
                         "into FILE (perf report -i FILE)")
    ap.add_argument("--perf-seconds", type=int, default=5)
    ap.add_argument("--run-arg", action="append", default=[],
                    help="an extra `churnstream run` option (repeatable), e.g. "
                         "--run-arg=--batch.catchup_factor=1")
    a = ap.parse_args()
    RUN_ARGS.extend(a.run_arg)
    build = bl.build_dir(a.build)
    for tool in ("kcat", "redis-server", "java"):
        if not bl.which(tool):
            sys.exit("bench: %s not found" % tool)
    when = {"date_utc": utc_now(), "loadavg_start": open("/proc/loadavg").read().split()[:3],
            "cores": os.cpu_count(),
            "commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True,
                                     text=True, cwd=bl.ROOT).stdout.strip()}
    with redis_and_kafka("live") as (tmp, rport, broker):
        a._redis_port = rport
        topic = "live-events"
        # Auto-create (4 partitions, broker retention -1) with one message that is not an
        # event: churnstream counts it as a DLQ reject.
        subprocess.run(["kcat", "-P", "-b", broker, "-t", topic, "-p", "0"],
                       input=b"not an event\n", check=True)
        t0 = time.monotonic()
        gen = bl.check(bl.run_measured([bl.churnstream(build), "gen", "--users", str(a.users),
                                        "--days", str(a.days), "--seed", "1", "--start",
                                        fill_start(a).isoformat(), "--topic", topic,
                                        "--quiet", "--kafka.bootstrap.servers=" + broker]),
                      "gen --topic")
        ends = end_offsets(broker, topic)
        total = sum(ends.values())
        a._fill_messages = total
        bl.log("topic %s: %d messages (%d events + 1 non-event) in %.1f s; ends %s" %
               (topic, total, total - 1, time.monotonic() - t0, ends))
        runs = []
        for i in range(1, a.runs + 1):
            runs.append(one_run(a, build, broker, topic, rport, ends, i, tmp))
        lat = runs[-1].pop("latency")
        lat_wall = runs[-1].pop("latency_wall")
        ub = [x for run in runs for x in ([run["user_bytes"]["median"]] if run["user_bytes"]
                                          else [])]
        out = {
            "params": {"users": a.users, "days": a.days, "seed": 1, "partitions": PARTITIONS,
                       "fill_start": fill_start(a).isoformat(),
                       "messages": total, "runs": a.runs},
            "gen_stderr_tail": gen["stderr"][-500:],
            "runs": runs,
            "kcat_eps": bl.stats([x["kcat_eps"] for x in runs]),
            "run_eps": bl.stats([x["run_eps"] for x in runs]),
            "ratio": bl.stats([x["ratio"] for x in runs]),
            "cmds_per_event": bl.stats([x["redis_cmds_per_event"] for x in runs]),
            "round_trips_per_event": bl.stats([x["round_trips"] / total for x in runs
                                               if x["round_trips"] is not None]),
            "user_bytes_median": bl.stats(ub),
            "phase_share": {k: bl.stats([x["phase_share"][k] for x in runs])
                            for k in runs[0]["phase_share"]},
            "user_bytes_max": max(x["user_bytes"]["max"] for x in runs if x["user_bytes"]),
            "latency": lat,
            "latency_wall": lat_wall,
        }
        out["when"] = when
        out["when"]["date_end_utc"] = utc_now()
        out["when"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        bl.write_json("live", out)
    if a.splice:
        import report
        report.splice_section("live")
    return 0


if __name__ == "__main__":
    sys.exit(main())
