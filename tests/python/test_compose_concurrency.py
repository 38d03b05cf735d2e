"""`churnstream compose` with several requests in flight (llm.concurrency) and the privacy
option (llm.facts), against a small fake OpenAI-compatible server in this process: it answers
every chat completion after a delay, counts the requests in flight at once and keeps every
request body. The fake server is for the mechanics only (timing, bodies, commits); the real
model's test is test_compose_llm.py.

- dry run: 8 alerts, 0.5 s per request, 4 in flight -> well under the 8 s one at a time
  takes (two requests per alert), every alert answered once, 4 requests seen in flight;
- llm.facts=segment: no request body holds a user id, a probability, a factor name or a
  factor value (llm.facts=user, the default, names the factors and still no id or number);
- live mode (needs the broker of tests/run-all.sh, CS_KAFKA_BROKERS; skipped otherwise):
  12 alerts over 4 partitions, the first alert of partition 0 slow, the others answered and
  produced before it; compose is killed (SIGKILL) while the slow one is in flight: the other
  partitions were committed to their end, partition 0 not past the slow alert, so a second
  run answers exactly partition 0's alerts again, a third run answers none.

Run: python3 -m pytest -s tests/python/test_compose_concurrency.py (CS_BIN, else
build/churnstream; CS_KAFKA_BROKERS and CS_TMP for the live part).
"""

import collections
import http.server
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CS_BIN = os.environ.get("CS_BIN") or str(ROOT / "build" / "churnstream")
BROKERS = os.environ.get("CS_KAFKA_BROKERS")

GOOD = ("We have missed you lately and would be delighted to welcome you back whenever you "
        "are ready.")


class FakeLLM:
    """An OpenAI-compatible /v1/chat/completions on a free loopback port. delay(body) gives the
    seconds to wait before answering a request."""

    def __init__(self, delay=lambda body: 0.5):
        self.delay = delay
        self.lock = threading.Lock()
        self.bodies = []
        self.in_flight = 0
        self.max_in_flight = 0
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                with fake.lock:
                    fake.bodies.append(body)
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    time.sleep(fake.delay(body))
                finally:
                    with fake.lock:
                        fake.in_flight -= 1
                out = json.dumps({"id": "x", "object": "chat.completion", "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": GOOD},
                     "finish_reason": "stop"}]}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (killed, or its timeout passed)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d/v1/chat/completions" % self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_llm():
    servers = []

    def make(delay=lambda body: 0.5):
        s = FakeLLM(delay)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def alert_json(i, action="win-back coupon"):
    return {"alert_id": "%032x" % (0xABC000 + i), "user_id": "cust-%04d" % (7000 + i),
            "event_time": 1294392060000, "churn_probability": 0.8123 + 0.001 * i,
            "risk_bucket": "high", "segment_id": 3, "segment_label": "hibernating",
            "recommended_action": action, "kind": "lapsed", "arm": "treatment",
            "top_factors": [{"feature": "revenue_90d", "contribution": 0.4321, "value": 187.25,
                             "direction": "low"},
                            {"feature": "days_since_activity", "contribution": 0.2109,
                             "value": 41.0, "direction": "high"}]}


def dry_run(tmp, alerts, url, *flags):
    src, out = tmp / "alerts.jsonl", tmp / "messages.jsonl"
    src.write_text("".join(json.dumps(a) + "\n" for a in alerts))
    t0 = time.monotonic()
    r = subprocess.run([CS_BIN, "compose", "--dry-run", "--alerts-in", str(src), "--out",
                        str(out), "--llm.url=" + url, "--llm.timeout=10s", *flags],
                       capture_output=True, text=True, timeout=120)
    wall = time.monotonic() - t0
    assert r.returncode == 0, r.stdout + r.stderr
    return [json.loads(x) for x in out.read_text().splitlines()], wall, r.stdout


def test_dry_run_four_in_flight(fake_llm, tmp_path):
    llm = fake_llm(lambda body: 0.5)
    alerts = [alert_json(i) for i in range(8)]
    rows, wall, out = dry_run(tmp_path, alerts, llm.url, "--llm.concurrency=4")
    print(out, "wall %.2f s, max in flight %d" % (wall, llm.max_in_flight))
    ids = [r["alert_id"] for r in rows]
    assert sorted(ids) == sorted(a["alert_id"] for a in alerts), "every alert answered once"
    assert all(r["source"] == "llm" for r in rows), rows
    assert len(llm.bodies) == 16  # a message and an explanation per alert
    assert llm.max_in_flight == 4
    # one at a time: 16 x 0.5 s = 8 s; four at a time: 4 rounds of 0.5 s
    assert wall < 4.0, wall
    assert "compose: 8 alerts, 8 llm, 0 template" in out, out

    # the same alerts one at a time: never two requests at once, and the time shows it
    llm1 = fake_llm(lambda body: 0.2)
    rows, wall1, out = dry_run(tmp_path, alerts, llm1.url)
    assert llm1.max_in_flight == 1 and len(rows) == 8
    assert wall1 >= 16 * 0.2, wall1


def test_facts_segment_sends_no_user_values(fake_llm, tmp_path):
    alerts = [alert_json(i) for i in range(3)]
    user_specific = []
    for a in alerts:
        user_specific += [a["user_id"], a["alert_id"], str(a["churn_probability"]),
                          "%.2f" % a["churn_probability"], "81"]
        for f in a["top_factors"]:
            user_specific += [f["feature"], f["feature"].replace("_", " "),
                              str(f["value"]), "187", "41", str(f["contribution"])]
    llm = fake_llm(lambda body: 0)
    rows, _, _ = dry_run(tmp_path, alerts, llm.url, "--llm.facts=segment",
                         "--llm.concurrency=2")
    assert len(rows) == 3 and len(llm.bodies) == 6
    for body in llm.bodies:
        prompt = " ".join(m["content"] for m in json.loads(body)["messages"])
        for s in user_specific:
            assert s not in prompt, (s, prompt)
        assert not re.search(r"\d", prompt), prompt  # no number at all
    explanation = [json.loads(b)["messages"][1]["content"] for b in llm.bodies
                   if "segment" in b]
    assert explanation and all("hibernating" in p and "lapsed" not in p and
                               "no recent visit" in p for p in explanation), explanation
    assert all(r["prompt_version"] == "compose-v1-segment" for r in rows)
    # the message still states the numbers, filled in by churnstream
    assert all("81%" in r["explanation"] for r in rows), rows[0]

    # the default names this alert's factors, and still no id and no number
    llm_user = fake_llm(lambda body: 0)
    rows, _, _ = dry_run(tmp_path, alerts, llm_user.url)
    joined = " ".join(llm_user.bodies)
    assert "revenue" in joined and "days since activity" in joined
    assert "cust-" not in joined and "0.81" not in joined and "187" not in joined
    assert all(r["prompt_version"] == "compose-v1" for r in rows)


# ---- live mode: commits only over the done prefix -----------------------------------------

@pytest.mark.skipif(not BROKERS, reason="CS_KAFKA_BROKERS is unset: needs the Kafka broker of "
                    "tests/run-all.sh")
def test_live_commit_waits_for_the_slow_first_alert(fake_llm):
    import test_compose_llm as kafka_helpers  # encode, produce, dump of the real-model test

    tmp = Path(os.environ.get("CS_TMP") or tempfile.mkdtemp()) / ("compose-conc-%d" % os.getpid())
    tmp.mkdir(parents=True)
    fixture = kafka_helpers.feature_names()[0]
    base = {k: fixture[k] for k in ("event_time", "model_version", "features")}
    alerts = []
    for i in range(12):
        a = kafka_helpers.make_alert(i, base)
        a["alert_id"] = "%032x" % (0xD00D000 + i)
        # the first alert's action marks its requests for the fake server
        a["recommended_action"] = "slow lane call" if i == 0 else "win-back campaign"
        alerts.append(a)
    suffix = "%d-%d" % (os.getpid(), time.monotonic_ns() % 100000)
    alerts_topic, messages_topic = "alerts-conc-" + suffix, "messages-conc-" + suffix
    # alert i on partition i % 4 (the test broker creates topics with 4): the slow alert 0
    # leads partition 0, partitions 1..3 hold only fast ones
    for part in range(4):
        files = []
        for i in range(part, len(alerts), 4):
            f = tmp / ("alert-%d.bin" % i)
            f.write_bytes(kafka_helpers.encode(alerts[i], "plain"))
            files.append(str(f))
        subprocess.run(["kcat", "-P", "-b", BROKERS, "-t", alerts_topic, "-p", str(part)] + files,
                       check=True, timeout=60)
    partition0 = [a["alert_id"] for a in alerts[0::4]]  # the slow one first

    slow = fake_llm(lambda body: 30.0 if "slow lane" in body else 0.3)
    cmd = [CS_BIN, "compose", "--kafka.bootstrap.servers=" + BROKERS,
           "--topic.alerts=" + alerts_topic, "--topic.messages=" + messages_topic,
           "--compose.group_id=compose-" + suffix, "--llm.timeout=60s",
           "--llm.concurrency=4",
           # the killed member's partition moves to the next run after its session times out
           "--kafka.session.timeout.ms=6000"]
    proc = subprocess.Popen(cmd + ["--llm.url=" + slow.url], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        while len(kafka_helpers.dump(messages_topic)) < 11:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() - t0 < 60, "11 fast alerts not answered in 60 s"
            time.sleep(0.5)
        fast_s = time.monotonic() - t0
        # 11 alerts x 2 requests x 0.3 s = 6.6 s one at a time, about 2 s with 3 slots free
        print("11 fast alerts produced in %.1f s beside the slow one" % fast_s)
        assert slow.in_flight == 1  # the slow alert is still being asked
        time.sleep(1.5)  # a commit past the slow alert, if there were one, is done by now
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    got = [kafka_helpers.decode_message(v)["alert_id"] for _, v in kafka_helpers.dump(messages_topic)]
    assert sorted(got) == sorted(a["alert_id"] for a in alerts[1:]), got

    # partitions 1..3 were committed to their end, partition 0 not past the slow alert: a
    # second run answers partition 0's three alerts again (two at-least-once repeats and the
    # slow one), nothing of the other partitions
    fast = fake_llm(lambda body: 0.05)
    r = subprocess.run(cmd + ["--llm.url=" + fast.url, "--timeout", "15"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "compose: 3 alerts, 3 llm" in r.stdout, r.stdout
    got = [kafka_helpers.decode_message(v)["alert_id"] for _, v in kafka_helpers.dump(messages_topic)]
    # (the messages topic has 4 partitions too: count, the dump's order means nothing)
    count = collections.Counter(got)
    assert sorted(count) == sorted(a["alert_id"] for a in alerts)
    assert count[alerts[0]["alert_id"]] == 1
    assert sorted(i for i, n in count.items() if n == 2) == partition0[1:], count
    # ... and this time the whole partition was committed: a third run answers none
    r = subprocess.run(cmd + ["--llm.url=" + fast.url, "--timeout", "6"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "compose: 0 alerts" in r.stdout, r.stdout
