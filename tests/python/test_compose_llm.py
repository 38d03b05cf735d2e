"""`churnstream compose` end to end (issue 17) against the real broker of tests/run-all.sh and a
real language model: llama-cpp-python's OpenAI-compatible server with SmolLM2-135M-Instruct
(tests/services/llm.sh, venv cached by `make deps`). Alerts in (old schema in three framings,
the newer schema of the retention branch through alerts.schemas_dir, a duplicate, a garbage
message), one RetentionMessage per alert out, read back with fastavro; guardrail rejections
counted; the model server killed mid-run -> template fallbacks (endpoint_error, then the
open breaker), restarted -> the endpoint answers again; a second run of the same consumer
group answers nothing twice.

Needs CS_KAFKA_BROKERS, CS_BIN, CS_TMP (tests/run-all.sh); skipped with that reason
otherwise. Under run-all a missing model venv is a failure, not a skip.
CS_COMPOSE_CONCURRENCY=N runs compose with llm.concurrency N (default 1, what run-all uses;
the local server answers one request at a time, so more only queues there).
Run: tests/run-all.sh build (or python3 -m pytest -s tests/python/test_compose_llm.py with
the CS_* variables set).
"""

import io
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import fastavro
import pytest

ROOT = Path(__file__).resolve().parents[2]
BROKERS = os.environ.get("CS_KAFKA_BROKERS")
pytestmark = pytest.mark.skipif(
    not BROKERS, reason="CS_KAFKA_BROKERS is unset: needs the Kafka broker of tests/run-all.sh")

LLM_SH = ROOT / "tests" / "services" / "llm.sh"
V3_DIR = ROOT / "tests" / "fixtures" / "alert-schemas"


def load_schema(path):
    with open(path) as f:
        return fastavro.parse_schema(json.load(f))


ALERT_V1 = load_schema(ROOT / "schemas" / "alert.avsc")
ALERT_V3 = load_schema(V3_DIR / "3.avsc")
MESSAGE = load_schema(ROOT / "schemas" / "retention_message.avsc")
FEATURES = None  # filled from a fixture alert (names the built-in decoder requires)


def fingerprint(schema):
    from fastavro.schema import fingerprint as fp, to_parsing_canonical_form
    return bytes.fromhex(fp(to_parsing_canonical_form(schema), "CRC-64-AVRO"))  # LE, as on the wire


def feature_names():
    # The decoder requires every feature of this build; `inspect` is not needed: the alert
    # JSON of replay lists them, and a tiny replay is cheap.
    tmp = Path(os.environ["CS_TMP"]) / "compose-llm-features"
    tmp.mkdir(parents=True, exist_ok=True)
    subprocess.run([os.environ["CS_BIN"], "gen", "--users", "300", "--days", "200", "--seed", "3",
                    "--out", str(tmp / "e.avro"), "--quiet"], check=True, timeout=120)
    subprocess.run([os.environ["CS_BIN"], "replay", str(tmp / "e.avro"), "--tick.interval=7d",
                    "--model.min_examples=50", "--alerts-out", str(tmp / "a.jsonl")],
                   check=True, timeout=300, capture_output=True)
    lines = (tmp / "a.jsonl").read_text().splitlines()
    assert lines, "the replay fired no alert"
    return [json.loads(x) for x in lines]


# Alert shapes: with temperature 0 the model's answer is a function of the prompt, so these
# cover both answers the guardrails reject and answers they pass.
SHAPES = [
    ("medium", 6, "hibernating (falling activity_trend_7d_30d, high mean_gap_days)",
     "win-back campaign", ["active_days_lifetime", "revenue_90d", "purchases_90d"]),
    ("medium", 2, "new (low tenure_days, high active_days_per_week)", "onboarding nudge",
     ["tenure_days", "active_days_30d", "sessions_30d"]),
    ("high", 1, "loyal (high revenue_90d)", "personal outreach with a retention offer",
     ["days_since_activity", "sessions_30d", "revenue_90d"]),
    ("medium", 0, "casual (low sessions_30d)", "re-engagement email with a recommendation",
     ["days_since_activity", "active_days_30d", "carts_30d"]),
    # the model answers these "as a customer care writer": the echo guardrail rejects them
    ("high", 3, "falling activity_trend_7d_30d", "price drop alert",
     ["days_since_activity", "sessions_30d", "carts_30d"]),
    ("medium", 4, "high refunds_90d", "gift card", ["refunds_90d", "revenue_90d", "tenure_days"]),
]


def make_alert(i, base):
    bucket, seg, label, action, factors = SHAPES[i % len(SHAPES)]
    a = dict(base)
    a.update(alert_id="%032x" % (0xC0FFEE000 + i), user_id="user-%03d" % i,
             risk_bucket=bucket, segment_id=seg, segment_label=label, recommended_action=action,
             churn_probability=0.75 + 0.01 * (i % 20), arm="treatment")
    a["top_factors"] = [{"feature": f, "contribution": 0.5 - 0.1 * k}
                        for k, f in enumerate(factors)]
    return a


def encode(alert, framing):
    buf = io.BytesIO()
    if framing == "v3":
        v3 = dict(alert, kind="lapsed", trigger="tick", created_at=1)
        v3["top_factors"] = [dict(f, value=1.0, direction="high") for f in alert["top_factors"]]
        buf.write(b"\xc3\x01" + fingerprint(ALERT_V3))
        fastavro.schemaless_writer(buf, ALERT_V3, v3)
        return buf.getvalue()
    if framing == "confluent":
        buf.write(b"\x00\x00\x00\x00\x02")
    elif framing == "single-object":
        buf.write(b"\xc3\x01" + fingerprint(ALERT_V1))
    fastavro.schemaless_writer(buf, ALERT_V1, alert)
    return buf.getvalue()


def produce(topic, payloads, tmp):
    """One message per payload, binary-safe: kcat sends each file as one message."""
    files = []
    for n, p in enumerate(payloads):
        f = tmp / ("msg-%d-%d.bin" % (time.monotonic_ns(), n))
        f.write_bytes(p)
        files.append(str(f))
    subprocess.run(["kcat", "-P", "-b", BROKERS, "-t", topic, "-p", "0"] + files, check=True,
                   timeout=60)


def dump(topic):
    """Every message of topic as (key, value), binary-safe; [] while it does not exist."""
    r = subprocess.run(["kcat", "-C", "-b", BROKERS, "-t", topic, "-o", "beginning", "-e", "-q",
                        "-f", "%K %S\n%k%s"], capture_output=True, timeout=60)
    if r.returncode != 0:
        return []
    raw, out, i = r.stdout, [], 0
    while i < len(raw):
        j = raw.index(b"\n", i)
        klen, vlen = (int(x) for x in raw[i:j].split())
        klen = max(klen, 0)
        out.append((raw[j + 1:j + 1 + klen], raw[j + 1 + klen:j + 1 + klen + vlen]))
        i = j + 1 + klen + vlen
    return out


def decode_message(value):
    assert value[:2] == b"\xc3\x01", value[:10]
    assert value[2:10] == fingerprint(MESSAGE), "RetentionMessage fingerprint"
    return fastavro.schemaless_reader(io.BytesIO(value[10:]), MESSAGE)


def wait_messages(topic, n, proc, deadline_s=240):
    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline_s:
        got = dump(topic)
        if len(got) >= n:
            return got
        assert proc.poll() is None, "compose exited early (status %s)" % proc.returncode
        time.sleep(1)
    raise AssertionError("only %d of %d messages after %ds" % (len(dump(topic)), n, deadline_s))


def llm(cmd, d):
    r = subprocess.run(["bash", str(LLM_SH), cmd, str(d)], capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, "llm.sh %s: %s%s" % (cmd, r.stdout, r.stderr)
    return r.stdout.strip()


def test_compose_real_model_kill_restart():
    venv = Path(os.environ.get("CHURNSTREAM_CACHE", Path.home() / ".cache" / "churnstream"))
    assert (venv / "llm-venv" / ".complete").exists(), \
        "no model server venv in %s/llm-venv: run `make deps`" % venv
    tmp = Path(os.environ["CS_TMP"]) / ("compose-llm-%d" % os.getpid())
    tmp.mkdir(parents=True)
    fixtures = feature_names()
    base = {k: fixtures[0][k] for k in ("event_time", "model_version", "features")}
    suffix = "%d-%d" % (os.getpid(), time.monotonic_ns() % 100000)
    alerts_topic, messages_topic = "alerts-llm-" + suffix, "messages-llm-" + suffix
    llm_dir = tmp / "llm"
    print(llm("start", llm_dir))
    url = llm("url", llm_dir)
    cmd = [os.environ["CS_BIN"], "compose", "--kafka.bootstrap.servers=" + BROKERS,
           "--topic.alerts=" + alerts_topic, "--topic.messages=" + messages_topic,
           "--compose.group_id=compose-" + suffix, "--llm.url=" + url,
           "--llm.timeout=20s", "--llm.breaker_failures=2", "--llm.breaker_cooldown=2s",
           "--alerts.schemas_dir=" + str(V3_DIR),
           "--llm.concurrency=" + os.environ.get("CS_COMPOSE_CONCURRENCY", "1"),
           "--timeout", "120"]
    framings = ["plain", "confluent", "single-object", "v3"]
    alerts = [make_alert(i, base) for i in range(24)]
    batches = [alerts[0:8], alerts[8:16], alerts[16:24]]
    log = open(tmp / "compose.log", "w")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        # A: model up. The duplicate and the garbage message are answered never / skipped.
        produce(alerts_topic, [encode(a, framings[i % 4]) for i, a in enumerate(batches[0])]
                + [encode(batches[0][0], "plain"), b"not an alert"], tmp)
        got = wait_messages(messages_topic, 8, proc)
        # B: model killed mid-run: every answer is the template, first by endpoint errors,
        # then by the open breaker.
        llm("kill", llm_dir)
        produce(alerts_topic, [encode(a, framings[i % 4]) for i, a in enumerate(batches[1])], tmp)
        got = wait_messages(messages_topic, 16, proc)
        # C: model back on the same port; the breaker's cool-down passes and it is asked again.
        print(llm("restart", llm_dir))
        time.sleep(2.5)
        produce(alerts_topic, [encode(a, framings[i % 4]) for i, a in enumerate(batches[2])], tmp)
        got = wait_messages(messages_topic, 24, proc)
        time.sleep(3)  # a doubled answer would show up now
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        llm("stop", llm_dir)
    print(out)
    print((tmp / "compose.log").read_text()[-3000:])
    assert proc.returncode == 0, proc.returncode

    got = dump(messages_topic)
    msgs = [(k.decode(), decode_message(v)) for k, v in got]
    ids = [m["alert_id"] for _, m in msgs]
    assert sorted(ids) == sorted(a["alert_id"] for a in alerts), "every alert answered once"
    by_id = {m["alert_id"]: m for _, m in msgs}
    for k, m in msgs:
        assert k == m["user_id"], (k, m["user_id"])
        assert m["prompt_version"] == "compose-v1" and m["model"]
        assert m["message"] and m["explanation"]
        if m["source"] == "llm":
            assert m["fallback_reason"] == "" and m["latency_ms"] > 0
            # the model's words carry no digit, the offer is churnstream's
            wording = m["message"].split(" Our suggestion for you: ")[0]
            assert not re.search(r"[0-9$%]|https?://|www\.", wording), wording
        else:
            assert m["fallback_reason"], m
    reasons = [by_id[a["alert_id"]]["fallback_reason"] for a in alerts]
    sources = [by_id[a["alert_id"]]["source"] for a in alerts]
    endpoint = {"endpoint_error", "timeout", "breaker_open"}
    # A: the model answered every alert (LLM or a guardrail rejection, never an endpoint error)
    assert all(r.split(":")[0] not in endpoint for r in reasons[0:8]), reasons[0:8]
    # B: all templates; the first failures are endpoint errors, then the breaker is open
    assert all(s == "template" for s in sources[8:16]), sources[8:16]
    assert all(r.split(":")[0] in endpoint for r in reasons[8:16]), reasons[8:16]
    assert "endpoint_error" in reasons[8:16] and "breaker_open" in reasons[8:16], reasons[8:16]
    # C: asked again after the restart and the cool-down
    assert all(r.split(":")[0] not in endpoint for r in reasons[17:24]), reasons[16:24]
    assert "llm" in sources[0:8] and "llm" in sources[16:24], sources
    # guardrails: the 135M model's answers are rejected for reasons the summary counts
    guard = [r for r in reasons if r and r.split(":")[0] not in endpoint]
    assert guard, "no guardrail rejection: the test lost its teeth"
    m = re.search(r"compose: (\d+) alerts, (\d+) llm, (\d+) template", out)
    assert m and int(m.group(1)) == 24, out
    assert int(m.group(2)) == sources.count("llm") and int(m.group(3)) == sources.count("template")
    for reason in set(r.split(":")[0] for r in reasons if r):
        n = sum(1 for r in reasons if r.split(":")[0] == reason)
        assert re.search(r"\b%s=%d\b" % (reason, n), out), (reason, n, out)
    assert "1 undecodable alerts skipped, 1 duplicate alert ids skipped" in out, out
    assert re.search(r"p50 \d+ ms, p99 \d+ ms", out), out

    # Offsets were committed: the same group, run again, answers nothing twice.
    r = subprocess.run(cmd[:-2] + ["--timeout", "8", "--llm.url=http://127.0.0.1:9/v1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "compose: 0 alerts" in r.stdout, r.stdout
    assert len(dump(messages_topic)) == 24
