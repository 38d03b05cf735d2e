"""Readable scores (issue 14 part 3) against the real services: `churnstream run` consumes
`gen`'s events from a real Kafka broker into a real redis-server; then every user's latest
score hash is read with redis-cli, GET /v1/users/{id} with a plain HTTP client (urllib) and
`churnstream inspect user ID --json`, and they must agree: the same JSON bytes from the
endpoint and inspect, the hash inside it as redis-cli reads it, the hash consistent with the
record (the tick it was scored at), the alert ids in hashes present on the alerts topic with
the same user and time, the TTL of the record, 404/400 answers with a JSON body, and
`forget` removing the hash.

Needs the services of tests/run-all.sh (CS_KAFKA_BROKERS, CS_REDIS_HOST/PORT, CS_BIN);
skipped otherwise. Run: python3 -m pytest -q tests/python/test_readable_scores.py
"""

import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from test_run_alerts import (BROKERS, Run, config_command, decode_alerts, end_offsets,
                             kafka_dump, ms, partitions_of)

pytestmark = pytest.mark.skipif(
    not BROKERS, reason="CS_KAFKA_BROKERS is unset: needs the Kafka and Redis of tests/run-all.sh")

USERS, DAYS, SEED = 300, 200, 23
DAY_MS = 86_400_000
TTL_MS = 400 * DAY_MS  # state.ttl default
FIELDS = ["score", "bucket", "segment", "segment_name", "kind", "trigger", "time_ms", "alert_id"]
ARCHETYPES = {"unsegmented", "new", "discount seekers", "slipping regulars", "champions",
              "loyal", "one-time buyers", "hibernating", "occasional"}
AT = "1720000000000"  # 2024-07-03, inside the generated year: features and score at a fixed time


def rcli(*args):
    return subprocess.run(["redis-cli", "-h", os.environ["CS_REDIS_HOST"], "-p",
                           os.environ["CS_REDIS_PORT"], "--raw", *args], capture_output=True,
                          check=True, text=True, timeout=30).stdout


def hgetall(key):
    out = rcli("HGETALL", key).split("\n")
    if out and out[-1] == "":
        out.pop()
    return {out[i]: out[i + 1] for i in range(0, len(out) - 1, 2)}


def scan(pattern):
    return [k for k in rcli("--scan", "--pattern", pattern).split("\n") if k]


def http_get(port, path):
    """(status, content type, body bytes) with urllib: a plain HTTP client."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("readable")
    tag = f"{os.getpid()}-{int(time.time() * 1000) % 10**9}"
    w = {"dir": d, "bin": os.environ["CS_BIN"], "topic": f"rs-events-{tag}"}
    subprocess.run(["kcat", "-P", "-b", BROKERS, "-t", w["topic"], "-p", "0"], input=b"not avro",
                   check=True, timeout=30)
    config_command(w["topic"], "retention.ms=-1")  # 2024 timestamps: keep them
    subprocess.run([w["bin"], "gen", "--users", str(USERS), "--days", str(DAYS), "--seed",
                    str(SEED), "--quiet", "--topic", w["topic"],
                    f"--kafka.bootstrap.servers={BROKERS}"],
                   check=True, capture_output=True, timeout=120)
    w["ends"] = end_offsets(w["topic"], partitions_of(w["topic"]))
    w["prefix"], w["alerts"] = f"rs-{tag}:", f"rs-alerts-{tag}"
    w["redis"] = [f"--redis.host={os.environ['CS_REDIS_HOST']}",
                  f"--redis.port={os.environ['CS_REDIS_PORT']}", f"--state.prefix={w['prefix']}"]
    run = Run(w, f"rs-{tag}", w["prefix"], w["alerts"], "a")
    try:
        run.wait_done(w, w["prefix"])
        w["port"] = run.port
        yield w, run
    finally:
        if run.proc.poll() is None:
            run.term()


def inspect_json(w, uid):
    out = subprocess.run([w["bin"], "inspect", "user", uid, "--json", "--at", AT, *w["redis"]],
                         capture_output=True, check=True, timeout=30).stdout
    assert out.endswith(b"\n") and out.count(b"\n") == 1, "inspect --json: one line"
    return out[:-1]


def test_every_scored_user_has_a_readable_hash(world):
    w, _ = world
    p = w["prefix"]
    users = [k[len(p) + 2:] for k in scan(p + "u:*")]
    hashes = [k[len(p) + 6:] for k in scan(p + "score:*")]
    assert 0.95 * USERS <= len(users) <= USERS  # gen may leave a user without events
    assert set(hashes) <= set(users)
    assert len(hashes) >= 0.9 * USERS, f"only {len(hashes)} of {USERS} users have a score hash"
    alert_ids = {a["alert_id"]: a for _, _, a, _ in decode_alerts(kafka_dump(w["alerts"]))}
    n_alerted = 0
    for uid in hashes:
        h = hgetall(p + "score:" + uid)
        assert list(h) == FIELDS, f"{uid}: fields {list(h)}"
        s = float(h["score"])
        assert 0.0 <= s <= 1.0
        if abs(s - 0.5) > 1e-6 and abs(s - 0.85) > 1e-6:  # alert.buckets default 0.5,0.85
            assert h["bucket"] == ("high" if s >= 0.85 else "medium" if s >= 0.5 else "low"), uid
        assert int(h["segment"]) >= -1
        assert h["segment_name"] in ARCHETYPES
        assert h["kind"] in ("at_risk", "lapsed") and h["trigger"] in ("tick", "event")
        if h["trigger"] == "tick":
            assert int(h["time_ms"]) % DAY_MS == 0, f"{uid}: a tick is a multiple of 1d"
        # Same expiry as the record: both written by the commit of this scoring (the record
        # may have been written again since, never the hash without it).
        ttl_h, ttl_u = int(rcli("PTTL", p + "score:" + uid)), int(rcli("PTTL", p + "u:" + uid))
        assert 0 < ttl_h <= TTL_MS and ttl_h <= ttl_u + 1000, f"{uid}: PTTL {ttl_h} vs {ttl_u}"
        if h["alert_id"]:
            n_alerted += 1
            a = alert_ids.get(h["alert_id"])
            assert a is not None, f"{uid}: alert {h['alert_id']} is not on the alerts topic"
            assert a["user_id"] == uid and ms(a["event_time"]) == int(h["time_ms"])
            assert abs(a["churn_probability"] - s) < 1e-6 and a["risk_bucket"] == h["bucket"]
            assert a["segment_id"] == int(h["segment"]) and a["kind"] == h["kind"]
    print(f"\n{len(hashes)} hashes, {n_alerted} carry the alert of their scoring, "
          f"{len(alert_ids)} alerts")


def test_endpoint_equals_inspect_json_and_redis(world):
    w, _ = world
    p = w["prefix"]
    uids = sorted(k[len(p) + 6:] for k in scan(p + "score:*"))[:25]
    assert uids
    for uid in uids:
        for _ in range(3):  # the endpoint's model copy may trail a commit by up to 1 s
            status, ctype, body = http_get(w["port"], f"/v1/users/{uid}?at={AT}")
            cli = inspect_json(w, uid)
            if body == cli:
                break
            time.sleep(1.2)
        assert status == 200 and ctype == "application/json"
        assert body == cli, f"{uid}: endpoint and inspect --json differ"
        j = json.loads(body)
        assert j["user_id"] == uid and j["at_ms"] == int(AT)
        assert len(j["features"]) == 24 and 0.0 <= j["score"] <= 1.0
        assert j["bucket"] in ("low", "medium", "high")
        assert set(j["segment"]) == {"id", "name", "label"}
        assert j["segment"]["label"].startswith(j["segment"]["name"])
        for f in j["top_factors"]:
            assert set(f) == {"feature", "value", "direction", "contribution"}
            assert f["feature"] in j["features"] and f["direction"] in (
                "high", "low", "rising", "falling")
        # The stored hash, as redis-cli reads it, typed.
        h = hgetall(p + "score:" + uid)
        ls = j["last_score"]
        assert list(ls) == list(h)
        assert abs(ls["score"] - float(h["score"])) < 1e-12
        assert ls["segment"] == int(h["segment"]) and ls["time_ms"] == int(h["time_ms"])
        for k in ("bucket", "segment_name", "kind", "trigger", "alert_id"):
            assert ls[k] == h[k]
        if ls["trigger"] == "tick":  # the record says the same tick was its last scoring
            assert j["activity"]["scored_tick_ms"] >= ls["time_ms"]


def test_bad_and_unknown_ids(world):
    w, _ = world
    cases = [("/v1/users/nobody-here", 404, "unknown user"),
             ("/v1/users/a%00b", 400, "NUL"),
             ("/v1/users/%ff%fe", 400, "UTF-8"),
             ("/v1/users/%zz", 400, "escape"),
             ("/v1/users/", 400, "empty"),
             ("/v1/users/" + "x" * 257, 400, "longer than 256"),
             ("/v1/users/u000001?at=soon", 400, "bad at")]
    for path, want, text in cases:
        status, ctype, body = http_get(w["port"], path)
        assert status == want, f"{path[:40]}: {status} {body[:100]!r}"
        assert ctype == "application/json"
        assert text in json.loads(body)["error"], body
    req = urllib.request.Request(f"http://127.0.0.1:{w['port']}/v1/users/u000001", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 405
    # /metrics and /healthz still answer beside the user API
    assert http_get(w["port"], "/healthz")[0] == 200


def test_forget_deletes_the_hash(world):
    w, _ = world
    p = w["prefix"]
    uid = sorted(k[len(p) + 6:] for k in scan(p + "score:*"))[-1]
    out = subprocess.run([w["bin"], "forget", uid, *w["redis"]], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    assert "record deleted, latest score deleted" in out, out
    assert rcli("EXISTS", p + "score:" + uid).strip() == "0"
    assert http_get(w["port"], f"/v1/users/{uid}")[0] == 404


def test_state_scores_false_writes_no_hash(world):
    w, _ = world
    tag = w["prefix"].rstrip(":") + "-off"
    off = dict(w, prefix=tag + ":")
    run = Run(off, tag, off["prefix"], tag + "-alerts", "off", extra=["--state.scores=false"])
    try:
        run.wait_done(off, off["prefix"])
    finally:
        run.term()
    assert len(scan(off["prefix"] + "u:*")) >= 0.95 * USERS
    assert scan(off["prefix"] + "score:*") == []
