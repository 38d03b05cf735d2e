"""Interoperability of the churnstream Avro codec with fastavro, both directions.

churnstream -> fastavro: framed messages (Confluent, single-object, plain) and a deflate
container file written by the C codec are read by fastavro, field by field.
fastavro -> churnstream: the same framings, a container file, and evolved writer schemas
(tests/fixtures/schemas/<id>.avsc) written by fastavro are decoded by the C codec; the
expected values come from fastavro's own writer->reader resolution.

The C side is tests/python/avro_tool.c, built with `make build/tests/python/avro_tool`
(done here when missing; CS_AVRO_TOOL overrides the path). Run: python3 -m pytest tests/python
"""

import datetime as dt
import io
import json
import math
import os
import random
import struct
import subprocess
from pathlib import Path

import fastavro
import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "schemas"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
# Must equal READER_FP in tests/unit/test_codec.c.
READER_FP = 0x39E1F9725759D995


def load(path):
    with open(path) as f:
        return json.load(f)


READER_JSON = load(ROOT / "schemas" / "event.avsc")
READER = fastavro.parse_schema(READER_JSON)


def fp_of(schema_json):
    """CRC-64-AVRO fingerprint as a 64-bit int (fastavro gives the little-endian bytes)."""
    pcf = to_parsing_canonical_form(fastavro.parse_schema(schema_json))
    return int.from_bytes(bytes.fromhex(fingerprint(pcf, "CRC-64-AVRO")), "little")


@pytest.fixture(scope="session")
def tool():
    path = os.environ.get("CS_AVRO_TOOL")
    if path:
        return path
    target = "build/tests/python/avro_tool"
    subprocess.run(["make", "--no-print-directory", "-s", target], cwd=ROOT, check=True)
    return str(ROOT / target)


def run(tool, *args):
    out = subprocess.run([tool, *map(str, args)], cwd=ROOT, check=True, capture_output=True)
    return [json_loads(line) for line in out.stdout.decode("utf-8").splitlines() if line]


def json_loads(s):
    # "-0" must stay a negative zero double, not the int 0
    return json.loads(s, parse_int=lambda x: -0.0 if x == "-0" else int(x))


def millis(v):
    """fastavro returns timestamp-millis as an aware datetime; compare in exact ms."""
    if isinstance(v, dt.datetime):
        return (v - EPOCH) // dt.timedelta(milliseconds=1)
    return v


def same_float(a, b):
    return struct.pack("<d", float(a)) == struct.pack("<d", float(b))


def assert_event_equal(got, want, where):
    for k in ("user_id", "event_type", "item_id", "category", "channel"):
        assert got[k] == want[k], f"{where}: {k}: {got[k]!r} != {want[k]!r}"
    assert millis(got["event_time"]) == millis(want["event_time"]), where
    assert same_float(got["amount"], want["amount"]), f"{where}: amount {got['amount']!r}"


def split_framed(data):
    """Message files: 4-byte big-endian length + message, repeated."""
    out, off = [], 0
    while off < len(data):
        (n,) = struct.unpack_from(">I", data, off)
        out.append(data[off + 4 : off + 4 + n])
        off += 4 + n
    return out


def join_framed(messages):
    return b"".join(struct.pack(">I", len(m)) + m for m in messages)


def frame(wire, body, schema_id=1, fp=READER_FP):
    if wire == "confluent":
        return b"\x00" + struct.pack(">i", schema_id) + body
    if wire == "single-object":
        return b"\xc3\x01" + struct.pack("<Q", fp) + body
    return body


def unframe(wire, msg, schema_id):
    if wire == "confluent":
        assert msg[0] == 0 and struct.unpack(">i", msg[1:5])[0] == schema_id
        return msg[5:]
    if wire == "single-object":
        assert msg[:2] == b"\xc3\x01"
        assert struct.unpack("<Q", msg[2:10])[0] == READER_FP
        return msg[10:]
    return msg


def encode(schema, record):
    bio = io.BytesIO()
    fastavro.schemaless_writer(bio, schema, record)
    return bio.getvalue()


SYMBOLS = READER_JSON["fields"][2]["type"]["symbols"]


def python_events(n, seed=7):
    """Events written by fastavro: unicode, quotes, max-length ids, every type."""
    rnd = random.Random(seed)
    names = ["bob", "Ünïcödé", 'q"uote\\', "用户", "tab\there"]
    out = []
    for i in range(n):
        uid = f"{names[i % len(names)]}-{i}" if i % 40 != 3 else "k" * 256
        out.append(
            {
                "user_id": uid,
                "event_time": 1_600_000_000_000 + rnd.randrange(10**11),
                "event_type": SYMBOLS[i % len(SYMBOLS)],
                "amount": rnd.choice([0.0, -0.0, 0.1, 1e-300, 12.5, -7.25, rnd.uniform(-1e6, 1e6)]),
                "item_id": None if i % 2 else f"item-{rnd.randrange(10**6)}",
                "category": None if i % 3 == 0 else rnd.choice(["books", "épicerie", ""]),
                "channel": None if i % 4 else rnd.choice(["web", "ios"]),
            }
        )
    return out


# ---- canonical form and fingerprints ----


@pytest.mark.parametrize(
    "path", ["-", "schemas/alert.avsc", "tests/fixtures/schemas/2.avsc",
             "tests/fixtures/schemas/3.avsc", "tests/fixtures/schemas/4.avsc"])
def test_canonical_form_and_fingerprint_match_fastavro(tool, path):
    out = subprocess.run([tool, "canonical", path], cwd=ROOT, check=True, capture_output=True)
    fp_hex, pcf = out.stdout.decode().rstrip("\n").split(" ", 1)
    schema_json = READER_JSON if path == "-" else load(ROOT / path)
    assert pcf == to_parsing_canonical_form(fastavro.parse_schema(schema_json))
    assert int(fp_hex, 16) == fp_of(schema_json)


def test_reader_fingerprint_constant():
    assert fp_of(READER_JSON) == READER_FP


# ---- churnstream -> fastavro ----


@pytest.mark.parametrize("wire", ["confluent", "single-object", "plain"])
def test_c_messages_read_by_fastavro(tool, tmp_path, wire):
    path = tmp_path / "msgs.bin"
    expected = run(tool, "write-msgs", wire, 7, 500, path)
    messages = split_framed(path.read_bytes())
    assert len(messages) == len(expected) == 500
    for i, (msg, want) in enumerate(zip(messages, expected)):
        bio = io.BytesIO(unframe(wire, msg, 7))
        got = fastavro.schemaless_reader(bio, READER, None)
        assert bio.tell() == len(bio.getvalue()), f"message {i}: trailing bytes"
        assert_event_equal(got, want, f"{wire} message {i}")


def test_c_container_file_read_by_fastavro(tool, tmp_path):
    path = tmp_path / "events.avro"
    expected = run(tool, "write-file", 10000, path)
    with open(path, "rb") as f:
        reader = fastavro.reader(f)
        assert reader.codec == "deflate"
        assert to_parsing_canonical_form(reader.writer_schema) == to_parsing_canonical_form(READER)
        got = list(reader)
    assert len(got) == len(expected) == 10000
    for i, (g, w) in enumerate(zip(got, expected)):
        assert_event_equal(g, w, f"record {i}")


# ---- fastavro -> churnstream ----


def c_decoded(tool, tmp_path, messages, wire="auto", schemas_dir="-"):
    path = tmp_path / "in.bin"
    path.write_bytes(join_framed(messages))
    return run(tool, "read-msgs", wire, schemas_dir, path)


@pytest.mark.parametrize("wire", ["confluent", "single-object", "plain"])
def test_fastavro_messages_read_by_c(tool, tmp_path, wire):
    events = python_events(400)
    messages = [frame(wire, encode(READER, e)) for e in events]
    for declared in (wire, "auto"):
        got = c_decoded(tool, tmp_path, messages, declared)
        assert len(got) == len(events)
        for i, (g, want) in enumerate(zip(got, events)):
            assert g["reason"] == "ok", f"{wire} message {i}: {g}"
            assert_event_equal(g["event"], want, f"{wire}/{declared} message {i}")


def test_fastavro_invalid_events_rejected_by_c(tool, tmp_path):
    base = python_events(1)[0]
    cases = [
        ({"user_id": ""}, "missing_user_id"),
        ({"user_id": "é" * 128}, "ok"),                 # 256 bytes
        ({"user_id": "é" * 128 + "x"}, "user_id_too_long"),  # 257 bytes
        ({"amount": math.nan}, "non_finite_amount"),
        ({"amount": math.inf}, "non_finite_amount"),
        ({"amount": -math.inf}, "non_finite_amount"),
    ]
    messages = [frame("confluent", encode(READER, {**base, **patch})) for patch, _ in cases]
    messages.append(frame("confluent", encode(READER, base), schema_id=42))
    messages.append(frame("confluent", encode(READER, base) + b"\x00"))
    got = c_decoded(tool, tmp_path, messages)
    want = [reason for _, reason in cases] + ["unknown_schema", "undecodable"]
    assert [g["reason"] for g in got] == want


def evolved_records(writer_json, n, seed):
    """Records valid for an evolved writer schema, exercising its extra symbols/fields."""
    rnd = random.Random(seed)
    fields = {f["name"]: f["type"] for f in writer_json["fields"]}
    symbols = fields["event_type"]["symbols"]
    out = []
    for i in range(n):
        rec = {"user_id": f"evo-{seed}-{i}", "event_time": 1_650_000_000_000 + i * 1000,
               "event_type": symbols[i % len(symbols)]}
        if "amount" in fields:
            rec["amount"] = rnd.choice([0.5, -2.25, 1024.0, 3.0e10])  # exact as float32 too
        for k in ("item_id", "category", "channel", "device"):
            if k in fields:
                optional = isinstance(fields[k], list) and "null" in fields[k]
                rec[k] = None if optional and i % 3 == 0 else f"{k}-{i}"
        out.append(rec)
    return out


@pytest.mark.parametrize("schema_id", [2, 3, 4])
def test_fastavro_evolved_writer_read_by_c(tool, tmp_path, schema_id):
    writer_json = load(FIXTURES / f"{schema_id}.avsc")
    writer = fastavro.parse_schema(writer_json)
    records = evolved_records(writer_json, 60, schema_id)
    bodies = [encode(writer, r) for r in records]
    # the oracle: fastavro's own resolution of each body against the reader schema
    expected = [fastavro.schemaless_reader(io.BytesIO(b), writer, READER) for b in bodies]
    messages = [frame("confluent", b, schema_id=schema_id) for b in bodies]
    messages += [frame("single-object", b, fp=fp_of(writer_json)) for b in bodies]
    got = c_decoded(tool, tmp_path, messages, schemas_dir=str(FIXTURES))
    assert len(got) == 2 * len(records)
    for i, g in enumerate(got):
        want = expected[i % len(records)]
        assert g["reason"] == "ok", f"message {i}: {g}"
        assert_event_equal(g["event"], want, f"id {schema_id} message {i}")
    # the unknown symbols really were mapped to the default, not to a shifted index
    if schema_id == 2:
        types = {r["event_type"]: e["event_type"] for r, e in zip(records, expected)}
        assert types["wishlist"] == "other" and types["share"] == "other"
        assert types["search"] == "search"


@pytest.mark.parametrize("schema_id", [1, 2])
def test_fastavro_container_file_read_by_c(tool, tmp_path, schema_id):
    if schema_id == 1:
        writer_json, records = READER_JSON, python_events(3000, seed=11)
    else:
        writer_json = load(FIXTURES / "2.avsc")
        records = evolved_records(writer_json, 3000, 5)
    writer = fastavro.parse_schema(writer_json)
    path = tmp_path / "in.avro"
    with open(path, "wb") as f:
        fastavro.writer(f, writer, records, codec="deflate", sync_interval=16000)
    expected = [fastavro.schemaless_reader(io.BytesIO(encode(writer, r)), writer, READER)
                for r in records]
    got = run(tool, "read-file", path)
    assert len(got) == len(records)
    for i, (g, want) in enumerate(zip(got, expected)):
        assert g["reason"] == "ok", f"record {i}: {g}"
        assert_event_equal(g["event"], want, f"record {i}")
