#!/usr/bin/env python3
"""Decode benchmark: build/bench/bench_decode decodes the same generated events in each wire
format (confluent, single-object, plain) and as a container file, through the codec and
through the raw Avro-C loop, in one process; every codec/raw ratio is taken within a run.
Usage: bench/decode.py [--build DIR] [--runs N] [--events N]  -> bench/out/decode.json"""

import argparse
import json

import benchlib as bl

FORMATS = ["confluent", "single-object", "plain", "container"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--events", type=int, default=500000)
    ap.add_argument("--min-seconds", type=float, default=1.0)
    a = ap.parse_args()
    build = bl.build_dir(a.build)
    bl.log("decode: %d events x %d runs, >= %.1f s per measurement" %
           (a.events, a.runs, a.min_seconds))
    res = bl.check(bl.run_measured(
        [bl.bench_bin(build, "bench_decode"), "--events", str(a.events), "--runs", str(a.runs),
         "--min-seconds", str(a.min_seconds)]), "bench_decode")
    raw = json.loads(res["stdout"])
    out = {"events": raw["events"], "mean_body_bytes": raw["mean_body_bytes"],
           "runs": raw["runs"], "formats": {}}
    for f in FORMATS:
        codec = [r[f]["codec_eps"] for r in raw["runs"]]
        avro = [r[f]["raw_eps"] for r in raw["runs"]]
        ratio = [r[f]["codec_eps"] / r[f]["raw_eps"] for r in raw["runs"]]
        out["formats"][f] = {"codec_eps": bl.stats(codec), "raw_eps": bl.stats(avro),
                             "ratio": bl.stats(ratio)}
        bl.log("decode: %-13s codec %.0f ev/s, Avro-C %.0f ev/s, ratio %.2f (medians)" %
               (f, out["formats"][f]["codec_eps"]["median"],
                out["formats"][f]["raw_eps"]["median"], out["formats"][f]["ratio"]["median"]))
    bl.write_json("decode", out)


if __name__ == "__main__":
    main()
