"""Shared helpers of the bench scripts (stdlib only): paths, progress lines, cached input
files, child processes measured with wait4 (peak RSS) and optional VmRSS sampling, and
median/min/max summaries. Every script writes its figures to bench/out/<name>.json, which
bench/report.py turns into bench/RESULTS.md."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "bench", "out")
CACHE_DIR = os.path.join(
    os.environ.get("CHURNSTREAM_CACHE", os.path.expanduser("~/.cache/churnstream")), "bench")
_T0 = time.monotonic()

# The generated data sets. Sizes chosen so gen's output lands near 5M / 10M events
# (gen --users 11450 --days 270 gives 5.0M events; the event count is reported exactly).
GEN_5M = {"users": 11450, "days": 270, "seed": 1}
GEN_10M = {"users": 22900, "days": 270, "seed": 1}


def log(msg):
    """Progress line on stderr with the time since this script started."""
    sys.stderr.write("[bench %6.1fs] %s\n" % (time.monotonic() - _T0, msg))
    sys.stderr.flush()


def build_dir(arg=None):
    d = arg or os.environ.get("BUILD") or "build"
    if not os.path.isabs(d):
        d = os.path.join(ROOT, d)
    return d


def churnstream(build):
    path = os.path.join(build, "churnstream")
    if not os.access(path, os.X_OK):
        sys.exit("bench: %s not found: run `make` (or `make bench`) first" % path)
    return path


def bench_bin(build, name):
    path = os.path.join(build, "bench", name)
    if not os.access(path, os.X_OK):
        sys.exit("bench: %s not found: run `make %s`" % (path, os.path.relpath(path, ROOT)))
    return path


def stats(values):
    """Median, min and max of a list of numbers (the median of an even count is the mean of
    the middle two)."""
    v = sorted(values)
    n = len(v)
    if n == 0:
        return None
    med = v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
    return {"median": med, "min": v[0], "max": v[-1], "n": n}


def write_json(name, obj):
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, name + ".json")
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)
    log("wrote %s" % os.path.relpath(path, ROOT))


def _file_hash(paths):
    h = hashlib.sha1()
    for p in paths:
        with open(os.path.join(ROOT, p), "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:10]


def run_measured(cmd, sample_interval_s=None, stdout_path=None):
    """Runs cmd, returns wall time, peak RSS (wait4's ru_maxrss, KiB), exit status, stdout
    text (unless redirected to stdout_path) and, with sample_interval_s, VmRSS samples
    [(seconds since start, KiB)] read from /proc every interval (one right after start)."""
    out = open(stdout_path, "wb") if stdout_path else subprocess.PIPE
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE)
    samples = []
    chunks = []

    # Drain the pipes in threads so a chatty child never blocks on a full pipe.
    def drain(stream, sink):
        for chunk in iter(lambda: stream.read(65536), b""):
            sink.append(chunk)

    err_chunks = []
    threads = [threading.Thread(target=drain, args=(p.stderr, err_chunks))]
    if not stdout_path:
        threads.append(threading.Thread(target=drain, args=(p.stdout, chunks)))
    for t in threads:
        t.start()
    status = None
    rusage = None
    next_sample = t0
    while True:
        if sample_interval_s and time.monotonic() >= next_sample:
            rss = _vmrss_kib(p.pid)
            if rss is not None:
                samples.append((round(time.monotonic() - t0, 3), rss))
            next_sample += sample_interval_s
        pid, st, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            status, rusage = st, ru
            break
        time.sleep(0.02 if not sample_interval_s else min(0.02, sample_interval_s))
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    for t in threads:
        t.join()
    if stdout_path:
        out.close()
    return {
        "wall_s": wall,
        "maxrss_kib": rusage.ru_maxrss,
        "rc": p.returncode,
        "stdout": b"".join(chunks).decode("utf-8", "replace"),
        "stderr": b"".join(err_chunks).decode("utf-8", "replace"),
        "samples": samples,
    }


def _vmrss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def check(res, what):
    if res["rc"] != 0:
        sys.stderr.write(res["stderr"][-4000:])
        sys.exit("bench: %s failed with status %d" % (what, res["rc"]))
    return res


def gen_file(build, params):
    """The generated container file for params (users, days, seed), cached under
    CACHE_DIR keyed by the parameters and a hash of the generator's source, so a changed
    generator makes a new file instead of silently reusing old data."""
    key = "gen-u%d-d%d-s%d-%s" % (params["users"], params["days"], params["seed"],
                                 _file_hash(["processor/import/gen.c", "processor/codec/codec_encode.c"]))
    path = os.path.join(CACHE_DIR, key + ".avro")
    if os.path.exists(path):
        log("using cached %s" % path)
        return path
    os.makedirs(CACHE_DIR, exist_ok=True)
    tmp = path + ".tmp.%d.avro" % os.getpid()
    log("generating %s (gen --users %d --days %d --seed %d; takes a minute or two)" %
        (path, params["users"], params["days"], params["seed"]))
    check(run_measured([churnstream(build), "gen", "--users", str(params["users"]),
                        "--days", str(params["days"]), "--seed", str(params["seed"]),
                        "--out", tmp, "--truth", tmp + ".truth.csv", "--quiet"]), "gen")
    os.replace(tmp, path)
    os.remove(tmp + ".truth.csv")
    return path


def online_retail_csv():
    """The shared Online Retail file: $CS_SHARED/data/online_retail.csv.gz, else the default
    shared folder. None when absent (the rows are then reported as not measured)."""
    cands = []
    if os.environ.get("CS_SHARED"):
        cands.append(os.path.join(os.environ["CS_SHARED"], "data", "online_retail.csv.gz"))
    cands.append("/work/shared/data/online_retail.csv.gz")
    cands.append(os.path.join(ROOT, "..", "shared", "data", "online_retail.csv.gz"))
    for c in cands:
        if os.path.exists(c):
            return os.path.abspath(c)
    return None


def online_retail_avro(build):
    """Online Retail imported once with `import --preset online-retail`, cached by the
    CSV's content and the importer's source."""
    csv = online_retail_csv()
    if not csv:
        return None
    h = hashlib.sha1()
    with open(csv, "rb") as f:
        h.update(f.read())
    key = "online-retail-%s-%s" % (h.hexdigest()[:10], _file_hash(
        ["processor/import/csv_import.c", "processor/import/csv_map.c", "processor/import/csv_reader.c",
         "processor/codec/codec_encode.c"]))
    path = os.path.join(CACHE_DIR, key + ".avro")
    if os.path.exists(path):
        log("using cached %s" % path)
        return path
    os.makedirs(CACHE_DIR, exist_ok=True)
    tmp = path + ".tmp.%d.avro" % os.getpid()
    log("importing %s -> %s" % (csv, path))
    check(run_measured([churnstream(build), "import", "--preset", "online-retail", csv, tmp]),
          "import")
    os.replace(tmp, path)
    return path


def replay_json(build, path, extra=(), stdout_path=None, sample_interval_s=None):
    """One `churnstream replay --json --quiet` run: the summary JSON plus wall time and peak
    RSS of the process."""
    cmd = [churnstream(build), "replay", "--json", "--quiet"] + list(extra) + [path]
    res = check(run_measured(cmd, sample_interval_s=sample_interval_s), "replay " + path)
    summary = json.loads(res["stdout"])
    return summary, res


def which(name):
    return shutil.which(name)
