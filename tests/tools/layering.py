#!/usr/bin/env python3
"""The layering rule of processor/ and state/ (README, "Layout"), checked from #include lines.

Every folder has a rank; a file may include headers of its own folder and of folders of a
lower or equal rank, never of a higher one. state/ is stricter: features/, core/, config/
and itself only (it sits below the engine that drives it). Headers are included by name
(the Makefile puts every folder on the include path), so a name is looked up in the tree;
a quoted include that names no header of the tree (other than the generated *_avsc.h) is an
error too, so a new folder has to be given a rank here before it can be used.
Seams: librdkafka handles are created only in processor/daemon/kafka.c (rd_kafka_new), so
every handle gets the same configuration, log bridge and errors.

Usage: layering.py [ROOT]     exit 0 when clean, 1 with one line per violation.
"""
import os
import re
import sys

RANKS = {
    "processor/core": 0, "processor/config": 0,
    "processor/features": 1,
    "processor/models": 2, "state": 2,
    "processor/engine": 3, "processor/codec": 3, "processor/alerts": 3,
    "processor/daemon": 4, "processor/replay": 4, "processor/import": 4,
    "processor/cli": 5,
}
# Folders whose includes are limited to a list rather than by rank.
ONLY = {"state": {"state", "processor/features", "processor/core", "processor/config"}}
GENERATED = re.compile(r"^[a-z_]+_avsc\.h$")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
# (call, the one file allowed to make it)
SEAMS = [("rd_kafka_new", "processor/daemon/kafka.c")]


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../..")
    root = os.path.abspath(root)
    where, sources, problems = {}, [], []
    for d in RANKS:
        path = os.path.join(root, d)
        if not os.path.isdir(path):
            problems.append(f"{d}/: folder missing")
            continue
        for name in sorted(os.listdir(path)):
            if name.endswith(".h"):
                if name in where:
                    problems.append(f"{d}/{name}: header name also in {where[name]}/")
                where[name] = d
            if name.endswith((".c", ".h")):
                sources.append((d, name))
    for top in ("processor", "state"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            rel = os.path.relpath(dirpath, root)
            if rel not in RANKS and any(f.endswith((".c", ".h")) for f in files):
                problems.append(f"{rel}/: sources in a folder with no rank (tests/tools/layering.py)")
    for d, name in sources:
        with open(os.path.join(root, d, name), encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                for call, home in SEAMS:
                    if re.search(rf"\b{call}\s*\(", line) and f"{d}/{name}" != home:
                        problems.append(f"{d}/{name}:{lineno}: {call}() outside {home}")
                m = INCLUDE.match(line)
                if not m:
                    continue
                inc = m.group(1)
                if GENERATED.match(inc):
                    continue
                target = where.get(inc)
                at = f"{d}/{name}:{lineno}: #include \"{inc}\""
                if target is None:
                    problems.append(f"{at}: no such header in the tree")
                elif d in ONLY and target not in ONLY[d]:
                    problems.append(f"{at}: {d}/ may include only {', '.join(sorted(ONLY[d]))}")
                elif RANKS[target] > RANKS[d]:
                    problems.append(f"{at}: goes up from {d}/ (rank {RANKS[d]}) to {target}/ "
                                    f"(rank {RANKS[target]})")
    for p in problems:
        print(p)
    if problems:
        print(f"layering: {len(problems)} violation(s)", file=sys.stderr)
        return 1
    print(f"layering: ok ({len(sources)} files in {len(RANKS)} folders)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
