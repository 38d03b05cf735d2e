"""Closed loop (issue 14, part 5): the daemon's measured uplift recovers a planted treatment
effect, against the real Kafka broker and Redis of tests/run-all.sh.

gen (every user a planted churner) -> `churnstream run` -> alerts -> `churnstream respond`
(treatment-arm alerts of planted churners come back with probability EFFECT, a return visit
within a day of the alert) -> events -> the same daemon, which decides each alert's outcome.
The three run at once, gen paced by --rate, so a return reaches the daemon while its alert's
outcome window is still open in event time (a return after the window closed would count
for nothing). Then the responder stops and one "clock" event per partition, outcome.window
+ 1 day after the log's end, moves the watermark so every window of an alert made before the end closes:
without it the retained outcomes (decided at the return) would be counted while the not
retained ones (decided when the window closes) still waited, which biases the share up.
The responder produces that event itself (respond --advance-to), after its last return.

alert.cooldown (32d) > outcome.window (30d), so every alert opens its own outcome (no
repeat shares a window with another alert's coin). The planted effect acts on users who
would not have come back: retained share = r0 + EFFECT * (1 - r0), so the effect is
estimated as uplift / (1 - holdout share) = 1 - (1 - p1) / (1 - p0), its interval the delta
method's 99% interval of that ratio, both arms' sampling errors counted. (Until 2026-12-07
the uplift's 95% Wald interval scaled by a holdout share taken as known: too narrow, and
it failed a CI run with the estimate at 0.2375 [0.2008, 0.2743]. That run and five local
ones that day, with alert.cooldown 32d and 365d, estimated 0.209-0.249 while respond
returned 0.20-0.22 of the eligible alerts: the estimate sits a little above the planted
effect, by 0.5-2 standard errors, for a reason not found yet.) The likely reason (found
after a second CI failure, 2026-12-07, at 0.249 [0.204, 0.293]): respond's coins are hashes
of the alert ids, and the runs alert nearly the same users under the same ids, so every run
draws nearly the same coins: the share of eligible alerts that came back was 0.213-0.231 in
five local runs, every time above 0.2 (independent coins would do so once in 32), and the
estimates (0.213, 0.214, 0.224, 0.228, 0.240) followed it within 0.01. So the interval must
contain the effect the coins realized (returned / eligible, from respond's summary), which
must itself lie within 99.9% binomial bounds of the planted one. A control with EFFECT = 0
must give an uplift interval that contains 0.

Run: tests/run-all.sh build, or python3 -m pytest -q tests/python/test_closed_loop.py with
the CS_* variables of tests/services set.
"""

import datetime as dt
import math
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BROKERS = os.environ.get("CS_KAFKA_BROKERS")
pytestmark = pytest.mark.skipif(
    not BROKERS, reason="CS_KAFKA_BROKERS is unset: needs the Kafka and Redis of tests/run-all.sh")

DAY_MS = 86_400_000
START_MS = 1_704_067_200_000  # 2024-01-01, gen's default --start
USERS, DAYS, SEED, RATE = 1500, 150, 5, 20000
END_MS = START_MS + DAYS * DAY_MS
WINDOW_DAYS = 30
DEADLINE_S = 180


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    """/metrics as {series line without value: value}; None when unreachable."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    except OSError:
        return None
    body = data.partition(b"\r\n\r\n")[2].decode()
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def outcome_counts(m):
    """{arm: [retained, decided]} from churnstream_alert_outcomes_total."""
    n = {"treatment": [0, 0], "holdout": [0, 0]}
    for k, v in m.items():
        if not k.startswith("churnstream_alert_outcomes_total{"):
            continue
        arm = "holdout" if 'arm="holdout"' in k else "treatment"
        if 'outcome="retained"' in k:
            n[arm][0] += int(v)
            n[arm][1] += int(v)
        elif 'outcome="not_retained"' in k:
            n[arm][1] += int(v)
    return n


def lag(m):
    return sum(v for k, v in m.items() if k.startswith("churnstream_consumer_lag{"))


def watermark_ms(m):
    """The event-time watermark, from the wall clock minus its lag."""
    return time.time() * 1000 - m.get("churnstream_watermark_lag_seconds", 1e18) * 1000


def wait_for(pred, what, port, log):
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        m = scrape(port)
        if m is not None and pred(m):
            return m
        time.sleep(0.5)
    pytest.fail(f"{what}: not within {DEADLINE_S} s (log {log})")


def loop(tmp, effect, tag):
    """One closed loop; returns the decided outcomes by arm and the responder's summary."""
    b = os.environ["CS_BIN"]
    topic = f"cl-{tag}-events"
    common = [f"--kafka.bootstrap.servers={BROKERS}", f"--topic.events={topic}",
              f"--topic.alerts=cl-{tag}-alerts", f"--topic.dlq=cl-{tag}-dlq"]
    port = free_port()
    run_log = tmp / f"run-{tag}.log"
    run = subprocess.Popen(
        [b, "run", *common, f"--redis.host={os.environ['CS_REDIS_HOST']}",
         f"--redis.port={os.environ['CS_REDIS_PORT']}", f"--state.prefix=cl-{tag}:",
         f"--kafka.group.id=cl-{tag}", f"--metrics.port={port}", "--model.min_examples=200",
         "--tick.interval=1d", "--tick.idle_advance=1h", "--alert.holdout_percent=50",
         "--alert.cooldown=32d", f"--outcome.window={WINDOW_DAYS}d", "--log.level=warn"],
        stdout=open(run_log, "w"), stderr=subprocess.STDOUT)
    resp_log = tmp / f"respond-{tag}.log"
    try:
        truth = tmp / f"truth-{tag}.csv"
        gen = [b, "gen", *common, "--users", str(USERS), "--days", str(DAYS), "--seed", str(SEED),
               "--churn-rate", "1", "--quiet"]
        # The truth file first (same seed, same users), so the responder knows the churners.
        subprocess.run(gen + ["--out", str(tmp / f"ev-{tag}.avro"), "--truth", str(truth)],
                       check=True, timeout=120, capture_output=True)
        clock_ms = END_MS + (WINDOW_DAYS + 1) * DAY_MS
        clock = dt.datetime.fromtimestamp(clock_ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d")
        resp = subprocess.Popen(
            [b, "respond", *common, "--truth", str(truth), "--effect", str(effect), "--seed", "1",
             "--delay-days", "1", "--from-beginning", "--timeout", "8", "--advance-to", clock],
            stdout=open(resp_log, "w"), stderr=subprocess.STDOUT)
        subprocess.run(gen + ["--topic", topic, "--rate", str(RATE)], check=True, timeout=300,
                       capture_output=True)
        # The responder exits 8 s after the last alert, its returns all produced, and then
        # moves the watermark (--advance-to: one event per partition after the returns).
        assert resp.wait(timeout=DEADLINE_S) == 0, f"respond failed: {resp_log}"
        last = {"n": None, "since": time.monotonic()}

        def settled(m):
            n = outcome_counts(m)
            if lag(m) != 0 or n != last["n"] or watermark_ms(m) < clock_ms - 2 * 3600_000:
                last["n"], last["since"] = n, time.monotonic()
                return False
            return time.monotonic() - last["since"] > 3

        m = wait_for(settled, "the outcomes settled", port, run_log)
    finally:
        run.terminate()
        run.wait(timeout=30)
    return outcome_counts(m), resp_log.read_text().strip().splitlines()[-1]


def interval(n):
    (r1, n1), (r0, n0) = n["treatment"], n["holdout"]
    p1, p0 = r1 / n1, r0 / n0
    se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    u = p1 - p0
    return p0, u, u - 1.959964 * se, u + 1.959964 * se


def effect_interval(n, z=2.575829):
    """The effect estimate 1 - q1 / q0 (q = 1 - retained share) and its delta-method interval:
    Var(q1 / q0) ~ (q1 / q0)^2 (p1 / (n1 q1) + p0 / (n0 q0))."""
    (r1, n1), (r0, n0) = n["treatment"], n["holdout"]
    p1, p0 = r1 / n1, r0 / n0
    q1, q0 = 1 - p1, 1 - p0
    ratio = q1 / q0
    se = ratio * math.sqrt(p1 / (n1 * q1) + p0 / (n0 * q0))
    return 1 - ratio, 1 - ratio - z * se, 1 - ratio + z * se


def test_uplift_recovers_planted_effect(tmp_path):
    effect = 0.2
    tag = f"{os.getpid()}-{int(time.time()) % 100000}"
    n, summary = loop(tmp_path, effect, tag)
    p0, u, lo, hi = interval(n)
    est, elo, ehi = effect_interval(n)
    print(f"\nplanted effect {effect}: outcomes {n}; {summary}\n"
          f"uplift {u:+.3f} [{lo:+.3f}, {hi:+.3f}]; holdout retained {p0:.3f}; "
          f"effect estimate {est:.3f} [{elo:.3f}, {ehi:.3f}] (99%)")
    assert n["treatment"][1] >= 400 and n["holdout"][1] >= 400, n
    m = re.search(r"(\d+) eligible, (\d+) returned", summary)
    assert m, summary
    eligible, returned = int(m[1]), int(m[2])
    realized = returned / eligible
    print(f"realized effect {realized:.3f} ({returned} of {eligible} eligible alerts returned)")
    assert abs(realized - effect) <= 3.29 * math.sqrt(effect * (1 - effect) / eligible), summary
    assert elo <= realized <= ehi, (est, elo, ehi, realized)
    assert lo > 0.05, "the uplift must be clearly positive"


def test_no_effect_gives_interval_around_zero(tmp_path):
    tag = f"{os.getpid()}-{int(time.time()) % 100000}-0"
    n, summary = loop(tmp_path, 0.0, tag)
    p0, u, lo, hi = interval(n)
    print(f"\ncontrol (effect 0): outcomes {n}; {summary}\n"
          f"uplift {u:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    assert "0 returned" in summary, summary
    assert lo <= 0 <= hi, (u, lo, hi)
