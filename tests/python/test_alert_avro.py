"""ChurnAlert on the wire: the C alert encoder against fastavro and schemas/alert.avsc.

tests/python/alert_tool.c (built with `make build/tests/python/alert_tool`, done here when
missing; CS_ALERT_TOOL overrides the path) builds alerts through the real policy plus
hand-made edge cases, writes them in each framing and prints each one's JSON line
(alert_to_json). fastavro must decode every message, field by field, to exactly what the
JSON says; the single-object fingerprint must be fastavro's; and alert ids and holdout arms
are recomputed here from their definitions with an independent SipHash-2-4. Schema
evolution both ways, with fastavro and Apache avro: a reader of the previous schema
(tests/fixtures/alert/alert.v1.avsc = `git show 01ae360:schemas/alert.avsc`) reads the
alerts we write, a reader of schemas/alert.avsc reads alerts written with the previous one,
and a future writer's new enum symbols resolve to each enum's default.
Run: python3 -m pytest tests/python
"""

import datetime as dt
import io
import json
import os
import struct
import subprocess
from pathlib import Path

import avro.io
import avro.schema
import fastavro
import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form

from alert_ref import alert_id, arm_of, siphash24

ROOT = Path(__file__).resolve().parents[2]
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
with open(ROOT / "schemas" / "alert.avsc") as f:
    SCHEMA_JSON = json.load(f)
SCHEMA = fastavro.parse_schema(SCHEMA_JSON)
FIELDS = [fld["name"] for fld in SCHEMA_JSON["fields"]]
with open(ROOT / "tests" / "fixtures" / "alert" / "alert.v1.avsc") as f:
    V1_JSON = json.load(f)
V1 = fastavro.parse_schema(V1_JSON)
V1_FIELDS = [fld["name"] for fld in V1_JSON["fields"]]
NEW_FIELDS = ["kind", "trigger", "created_at"]


@pytest.fixture(scope="session")
def tool():
    path = os.environ.get("CS_ALERT_TOOL")
    if path:
        return path
    target = "build/tests/python/alert_tool"
    subprocess.run(["make", "--no-print-directory", "-s", target], cwd=ROOT, check=True)
    return str(ROOT / target)


def json_loads(s):
    # "-0" must stay a negative zero double, not the int 0
    return json.loads(s, parse_int=lambda x: -0.0 if x == "-0" else int(x))


def write(tool, tmp_path, framing, schema_id=0):
    path = tmp_path / f"{framing}.bin"
    out = subprocess.run([tool, "write", framing, str(schema_id), str(path)], cwd=ROOT,
                         check=True, capture_output=True)
    lines = out.stdout.decode("utf-8").splitlines()
    data = path.read_bytes()
    msgs, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        msgs.append(data[pos + 4:pos + 4 + n])
        pos += 4 + n
    assert len(msgs) == len(lines)
    return [json_loads(line) for line in lines], msgs


def millis(v):
    if isinstance(v, dt.datetime):
        return (v - EPOCH) // dt.timedelta(milliseconds=1)
    return v


def same_double(a, b):
    return struct.pack("<d", float(a)) == struct.pack("<d", float(b))


def assert_alert_equal(got, want, where):
    # The JSON has exactly the Avro field names, in schema order.
    assert list(want) == FIELDS, where
    assert set(got) == set(FIELDS), where
    for key in ("alert_id", "user_id", "risk_bucket", "segment_id", "segment_label",
                "recommended_action", "model_version", "arm", "kind", "trigger"):
        assert got[key] == want[key], (where, key)
        assert type(got[key]) is type(want[key]), (where, key)
    assert millis(got["event_time"]) == want["event_time"], where
    assert millis(got["created_at"]) == want["created_at"], where
    assert same_double(got["churn_probability"], want["churn_probability"]), where
    assert len(got["top_factors"]) == len(want["top_factors"]), where
    for g, w in zip(got["top_factors"], want["top_factors"]):
        assert g["feature"] == w["feature"], where
        assert g["direction"] == w["direction"], where
        assert same_double(g["contribution"], w["contribution"]), where
        assert same_double(g["value"], w["value"]), where
    assert list(got["features"]) == list(want["features"]), where  # same names, same order
    for name, value in want["features"].items():
        assert same_double(got["features"][name], value), (where, name)


def test_schema_is_the_contract():
    assert SCHEMA_JSON["name"] == "ChurnAlert"
    assert FIELDS == ["alert_id", "user_id", "event_time", "churn_probability", "risk_bucket",
                      "segment_id", "segment_label", "recommended_action", "top_factors",
                      "model_version", "arm", "features", "kind", "trigger", "created_at"]
    # version 1's fields first, unchanged; the new ones appended, each with a default
    assert FIELDS[:len(V1_FIELDS)] == V1_FIELDS
    assert FIELDS[len(V1_FIELDS):] == NEW_FIELDS
    by_name = {f["name"]: f for f in SCHEMA_JSON["fields"]}
    for name in NEW_FIELDS:
        assert "default" in by_name[name], name


def enums(node, out):
    if isinstance(node, dict):
        if node.get("type") == "enum":
            out[node["name"]] = node
        for v in node.values():
            enums(v, out)
    elif isinstance(node, list):
        for v in node:
            enums(v, out)
    return out


def test_every_enum_has_a_default_symbol():
    found = enums(SCHEMA_JSON, {})
    assert set(found) == {"RiskBucket", "Arm", "AlertKind", "AlertTrigger"}
    for name, e in found.items():
        assert e.get("default") in e["symbols"], name


def fastavro_fp():
    pcf = to_parsing_canonical_form(SCHEMA)
    return bytes.fromhex(fingerprint(pcf, "CRC-64-AVRO"))  # little-endian bytes, as on the wire


def test_fingerprint_matches_fastavro(tool):
    out = subprocess.run([tool, "fingerprint"], check=True, capture_output=True, text=True)
    assert int(out.stdout.strip(), 16) == int.from_bytes(fastavro_fp(), "little")


@pytest.mark.parametrize("framing", ["plain", "confluent", "single-object"])
def test_fastavro_reads_every_framing(tool, tmp_path, framing):
    alerts, msgs = write(tool, tmp_path, framing, schema_id=12345)
    assert len(alerts) >= 20
    for i, (want, msg) in enumerate(zip(alerts, msgs)):
        if framing == "confluent":
            assert msg[0] == 0 and struct.unpack(">I", msg[1:5])[0] == 12345
            body = msg[5:]
        elif framing == "single-object":
            assert msg[:2] == b"\xc3\x01" and msg[2:10] == fastavro_fp()
            body = msg[10:]
        else:
            body = msg
        buf = io.BytesIO(body)
        got = fastavro.schemaless_reader(buf, SCHEMA)
        assert buf.tell() == len(body), f"message {i}: trailing bytes"
        assert_alert_equal(got, want, f"{framing} message {i}")
        # fastavro writes the same record to the same bytes (one array/map block, as we do)
        out = io.BytesIO()
        fastavro.schemaless_writer(out, SCHEMA, got)
        assert out.getvalue() == body, f"{framing} message {i}: bytes differ from fastavro's"


def test_alerts_cover_the_edges(tool, tmp_path):
    alerts, _ = write(tool, tmp_path, "plain")
    assert {a["risk_bucket"] for a in alerts} == {"low", "medium", "high"}
    assert {a["arm"] for a in alerts} == {"treatment", "holdout"}
    assert {a["kind"] for a in alerts} == {"at_risk", "lapsed", "unknown"}
    assert {a["trigger"] for a in alerts} == {"tick", "event", "unknown"}
    assert any(a["segment_id"] == -1 and a["segment_label"] == "unsegmented" for a in alerts)
    assert any(len(a["user_id"].encode()) == 256 for a in alerts)
    assert any(len(a["top_factors"]) == 0 for a in alerts)
    assert any('"' in a["user_id"] and "\\" in a["user_id"] for a in alerts)
    # The tool's hand-made edge cases carry model_version >= 100; the policy's alerts carry the
    # trained model's version (1, plus one per segment the policy names: names are frozen in
    # the model per segment version).
    policy = [a for a in alerts if a["model_version"] < 100]
    assert len(policy) >= 8
    for a in policy:
        p = a["churn_probability"]
        assert p >= 0.6  # alert.threshold of the tool's policy
        assert a["risk_bucket"] == ("high" if p >= 0.85 else "medium")  # alert.buckets default
        assert 1 <= len(a["top_factors"]) <= 3
        c = [f["contribution"] for f in a["top_factors"]]
        assert c == sorted(c, reverse=True)
        assert len(a["features"]) == 24
        for f in a["top_factors"]:  # the user's own value, never a zero one
            assert f["value"] == a["features"][f["feature"]] and f["value"] != 0
            assert f["direction"] in ("high", "low", "rising", "falling")
    assert {a["risk_bucket"] for a in policy} == {"medium", "high"}


# ---- the id / arm definitions (tests/python/alert_ref.py) ---------------------------------


def test_siphash_reference_vector():
    assert siphash24(bytes(range(16)), b"") == 0x726FDB47DD0E0E31
    assert siphash24(bytes(range(16)), bytes(range(15))) == 0xA129CA6149BE45E5


def test_ids_and_arms_follow_their_definitions(tool):
    out = subprocess.run([tool, "ids"], check=True, capture_output=True).stdout.decode("utf-8")
    arms = {"treatment": 0, "holdout": 0}
    for line in out.splitlines():
        kind, rest = line.split(" ", 1)
        if kind == "tick":
            got, tick, uid = rest.split(" ", 2)
            assert got == alert_id(b"tick|" + uid.encode() + b"|" + tick.encode()), line
        elif kind == "event":
            got, part, off = rest.split(" ")
            assert got == alert_id(f"event|{part}|{off}".encode()), line
        else:
            arm, uid = rest.split(" ", 1)
            assert arm == arm_of(b"churnstream", uid, 10), line
            arms[arm] += 1
    assert arms["holdout"] > 0 and arms["treatment"] > 0
    # the values pinned in tests/unit/test_alert.c
    assert alert_id(b"tick|u-1|1700006400000") == "01f97fee437b5702d1ef839feb61b6f7"
    assert alert_id(b"event|0|5") == "2670dee1d6f8d343236b32cb33c57362"


# ---- schema evolution: version 1 <-> version 2, fastavro and Apache avro --------------------


def apache_read(body, writer_json, reader_json):
    w = avro.schema.parse(json.dumps(writer_json))
    r = avro.schema.parse(json.dumps(reader_json))
    dec = avro.io.BinaryDecoder(io.BytesIO(body))
    return avro.io.DatumReader(w, r).read(dec)


def plain_bodies(tool, tmp_path):
    alerts, msgs = write(tool, tmp_path, "plain")
    return alerts, msgs


def test_old_reader_reads_new_alerts(tool, tmp_path):
    alerts, msgs = plain_bodies(tool, tmp_path)
    for i, (want, body) in enumerate(zip(alerts, msgs)):
        old_view = {k: v for k, v in want.items() if k in V1_FIELDS}
        got = fastavro.schemaless_reader(io.BytesIO(body), SCHEMA, V1)
        assert list(got) == V1_FIELDS, i
        assert all(set(f) == {"feature", "contribution"} for f in got["top_factors"]), i
        assert_alert_equal_v1(got, old_view, f"fastavro v1 reader, message {i}")
        got = apache_read(body, SCHEMA_JSON, V1_JSON)
        assert set(got) == set(V1_FIELDS), i
        assert_alert_equal_v1(got, old_view, f"Apache avro v1 reader, message {i}")


def assert_alert_equal_v1(got, want, where):
    for key in ("alert_id", "user_id", "risk_bucket", "segment_id", "segment_label",
                "recommended_action", "model_version", "arm"):
        assert got[key] == want[key], (where, key)
    assert millis(got["event_time"]) == want["event_time"], where
    assert same_double(got["churn_probability"], want["churn_probability"]), where
    assert [f["feature"] for f in got["top_factors"]] == \
        [f["feature"] for f in want["top_factors"]], where
    for name, value in want["features"].items():
        assert same_double(got["features"][name], value), (where, name)


def test_new_reader_reads_old_alerts(tool, tmp_path):
    alerts, _ = plain_bodies(tool, tmp_path)
    for i, a in enumerate(alerts):
        old = {k: v for k, v in a.items() if k in V1_FIELDS}
        old["top_factors"] = [{"feature": f["feature"], "contribution": f["contribution"]}
                              for f in a["top_factors"]]
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, V1, old)  # an alert as version 1 wrote it
        body = buf.getvalue()
        for name, got in (("fastavro", fastavro.schemaless_reader(io.BytesIO(body), V1, SCHEMA)),
                          ("Apache avro", apache_read(body, V1_JSON, SCHEMA_JSON))):
            where = f"{name} v2 reader of a v1 alert, message {i}"
            assert set(got) == set(FIELDS), where
            assert_alert_equal_v1(got, old, where)
            assert got["kind"] == "unknown" and got["trigger"] == "unknown", where
            assert millis(got["created_at"]) == 0, where
            for f in got["top_factors"]:
                assert f["value"] == 0 and f["direction"] == "", where


def test_future_enum_symbols_resolve_to_the_defaults():
    """A later writer that adds a symbol to every enum: readers of schemas/alert.avsc get
    each enum's default instead of failing (the reason the defaults exist). fastavro only:
    Apache avro's Python reader (1.12) does not apply the reader's enum default (it raises
    "Symbol ... not present in Reader's Schema"); the Java reader and fastavro do."""
    future = json.loads(json.dumps(SCHEMA_JSON))
    added = {"RiskBucket": "critical", "Arm": "control2", "AlertKind": "reactivated",
             "AlertTrigger": "manual"}
    for name, e in enums(future, {}).items():
        e["symbols"].append(added[name])
    features = {n: 0.0 for n in ("active_days_7d", "tenure_days")}
    rec = {"alert_id": "x" * 32, "user_id": "u", "event_time": 5, "churn_probability": 0.5,
           "risk_bucket": "critical", "segment_id": 0, "segment_label": "l",
           "recommended_action": "a", "top_factors": [], "model_version": 1,
           "arm": "control2", "features": features, "kind": "reactivated",
           "trigger": "manual", "created_at": 6}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(future), rec)
    body = buf.getvalue()
    defaults = {name: e["default"] for name, e in enums(SCHEMA_JSON, {}).items()}
    got = fastavro.schemaless_reader(io.BytesIO(body), fastavro.parse_schema(future), SCHEMA)
    assert got["risk_bucket"] == defaults["RiskBucket"]
    assert got["arm"] == defaults["Arm"]
    assert got["kind"] == defaults["AlertKind"] == "unknown"
    assert got["trigger"] == defaults["AlertTrigger"] == "unknown"
