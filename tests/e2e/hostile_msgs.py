#!/usr/bin/env python3
"""Messages for tests/e2e/test_hostile_daemon.sh's dlq_reasons case: one per DLQ reason
(plus valid events that set the watermark), encoded by hand from schemas/event.avsc (Avro
binary, Confluent framing with the built-in schema id 1), produced with kcat one file per
message, and the DLQ's headers checked against what each message must give.

  hostile_msgs.py write FILE                 the cases, as JSON lines with hex payloads
  hostile_msgs.py produce FILE BROKERS TOPIC PHASE  the messages of PHASE (1: before any
                                             watermark, 2: after), in order, to partition 0
  hostile_msgs.py count-rejects FILE         how many must reach the DLQ
  hostile_msgs.py check-dlq FILE HEADERS     kcat '%h' lines of the DLQ against the cases
"""

import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time

DAY_MS = 86_400_000
INT64_MIN = "-9223372036854775808"


def zigzag(n):
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def avro_string(b):
    return zigzag(len(b)) + b


def event(uid=b"u1", t_ms=None, etype=1, amount=0.0):
    t_ms = int(time.time() * 1000) if t_ms is None else t_ms
    return (avro_string(uid) + zigzag(t_ms) + zigzag(etype) + struct.pack("<d", amount)
            + b"\x00\x00\x00")  # item_id, category, channel: null


def confluent(body, schema_id=1):
    return b"\x00" + struct.pack(">I", schema_id) + body


def cases():
    """(name, payload, expected reason or None for valid, text the detail must contain)."""
    now = int(time.time() * 1000)
    return [
        # Before any valid event: no watermark yet, the future bound follows the wall clock.
        ("far future, no watermark", confluent(event(t_ms=now + 400 * DAY_MS)),
         "time_out_of_window", "no watermark yet"),
        ("valid 1", confluent(event(b"u1", now)), None, None),
        ("valid 2", confluent(event(b"u2", now)), None, None),
        # Phase 2, produced once phase 1 is committed: the watermark is now - 1 h.
        ("not avro", b"not avro", "undecodable", ""),
        ("wrong magic byte 0x05", b"\x05" + struct.pack(">I", 1) + event(), "undecodable",
         "wrong magic byte 0x05"),
        ("unknown schema id", confluent(event(), 99), "unknown_schema", "schema id 99"),
        ("empty user id", confluent(event(b"")), "missing_user_id", ""),
        ("user id of 300 bytes", confluent(event(b"x" * 300)), "user_id_too_long", "300"),
        ("NaN amount", confluent(event(amount=float("nan"))), "non_finite_amount", ""),
        ("far past", confluent(event(t_ms=now - 200 * DAY_MS)), "time_out_of_window",
         "events.max_past"),
        ("far future", confluent(event(t_ms=now + 400 * DAY_MS)), "time_out_of_window",
         "events.max_future"),
        ("valid 3", confluent(event(b"u3", now)), None, None),
    ]


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def main():
    cmd = sys.argv[1]
    if cmd == "write":
        with open(sys.argv[2], "w") as f:
            for i, (name, payload, reason, text) in enumerate(cases()):
                f.write(json.dumps({"name": name, "hex": payload.hex(), "reason": reason,
                                    "text": text, "phase": 1 if i < 3 else 2}) + "\n")
        return 0
    rows = load(sys.argv[2])
    if cmd == "count-rejects":  # [PHASE]: up to and with that phase
        last = int(sys.argv[3]) if len(sys.argv) > 3 else 2
        print(sum(1 for r in rows if r["reason"] and r["phase"] <= last))
        return 0
    if cmd == "produce":
        brokers, topic, phase = sys.argv[3], sys.argv[4], int(sys.argv[5])
        with tempfile.TemporaryDirectory() as d:
            files = []
            for i, r in enumerate(rows):
                if r["phase"] != phase:
                    continue
                p = os.path.join(d, f"{i:03d}.bin")
                with open(p, "wb") as f:
                    f.write(bytes.fromhex(r["hex"]))
                files.append(p)
            # One file = one message, in order, to partition 0 (offset = index).
            subprocess.run(["kcat", "-P", "-b", brokers, "-t", topic, "-p", "0", "-k", "hostile"]
                           + files, check=True, timeout=60)
        return 0
    if cmd == "check-dlq":
        with open(sys.argv[3], errors="replace") as f:
            lines = [ln.rstrip("\n") for ln in f if ln.strip()]
        expected = {i: r for i, r in enumerate(rows) if r["reason"]}
        seen = {}
        bad = 0
        for ln in lines:
            m = re.match(r"error=(.*),source\.topic=[^,]*,source\.partition=0,source\.offset=(\d+)$", ln)
            if not m:
                print(f"check-dlq: unparsable headers: {ln!r}")
                bad += 1
                continue
            error, off = m.group(1), int(m.group(2))
            seen[off] = error
        for off, r in expected.items():
            got = seen.get(off)
            want = r["reason"] + ": "
            if got is None:
                print(f"check-dlq: {r['name']} (offset {off}) did not reach the DLQ")
                bad += 1
            elif not got.startswith(want) or r["text"] not in got or INT64_MIN in got:
                print(f"check-dlq: {r['name']} (offset {off}): error header {got!r}, want "
                      f"{want!r}... naming {r['text']!r}")
                bad += 1
            else:
                print(f"  {r['name']:26s} -> {got}")
        for off in seen:
            if off not in expected:
                print(f"check-dlq: valid message at offset {off} reached the DLQ: {seen[off]!r}")
                bad += 1
        return 1 if bad else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
