"""ChurnAlert on the wire: the C alert encoder against fastavro and schemas/alert.avsc.

tests/python/alert_tool.c (built with `make build/tests/python/alert_tool`, done here when
missing; CS_ALERT_TOOL overrides the path) builds alerts through the real policy plus
hand-made edge cases, writes them in each framing and prints each one's JSON line
(alert_to_json). fastavro must decode every message, field by field, to exactly what the
JSON says; the single-object fingerprint must be fastavro's; and alert ids and holdout arms
are recomputed here from their definitions with an independent SipHash-2-4.
Run: python3 -m pytest tests/python
"""

import datetime as dt
import io
import json
import os
import struct
import subprocess
from pathlib import Path

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
                "recommended_action", "model_version", "arm"):
        assert got[key] == want[key], (where, key)
        assert type(got[key]) is type(want[key]), (where, key)
    assert millis(got["event_time"]) == want["event_time"], where
    assert same_double(got["churn_probability"], want["churn_probability"]), where
    assert len(got["top_factors"]) == len(want["top_factors"]), where
    for g, w in zip(got["top_factors"], want["top_factors"]):
        assert g["feature"] == w["feature"], where
        assert same_double(g["contribution"], w["contribution"]), where
    assert list(got["features"]) == list(want["features"]), where  # same names, same order
    for name, value in want["features"].items():
        assert same_double(got["features"][name], value), (where, name)


def test_schema_is_the_contract():
    assert SCHEMA_JSON["name"] == "ChurnAlert"
    assert FIELDS == ["alert_id", "user_id", "event_time", "churn_probability", "risk_bucket",
                      "segment_id", "segment_label", "recommended_action", "top_factors",
                      "model_version", "arm", "features"]


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
    assert any(a["segment_id"] == -1 and a["segment_label"] == "unsegmented" for a in alerts)
    assert any(len(a["user_id"].encode()) == 256 for a in alerts)
    assert any(len(a["top_factors"]) == 0 for a in alerts)
    assert any('"' in a["user_id"] and "\\" in a["user_id"] for a in alerts)
    policy = [a for a in alerts if a["model_version"] == 1]
    assert len(policy) >= 8
    for a in policy:
        assert a["churn_probability"] >= 0.6 and a["risk_bucket"] == "high"
        assert len(a["top_factors"]) == 3
        c = [f["contribution"] for f in a["top_factors"]]
        assert c == sorted(c, reverse=True)
        assert len(a["features"]) == 24


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
