#!/usr/bin/env python3
"""Keeps README.md's generated sections true: the config reference and the feature reference
come from the binary (`churnstream help config --markdown`, `help features --markdown`),
which prints the same tables that drive parsing and the feature vector.

  readme_refs.py BIN README.md --check    exit 1 and show the first difference when stale
  readme_refs.py BIN README.md --update   rewrite the sections in place (make docs)
"""
import subprocess
import sys

SECTIONS = {
    "config-reference": ["help", "config", "--markdown"],
    "feature-reference": ["help", "features", "--markdown"],
}


def render(binary, args):
    return subprocess.run([binary] + args, check=True, capture_output=True, text=True).stdout.strip()


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in ("--check", "--update"):
        sys.exit(__doc__)
    binary, path, mode = sys.argv[1:]
    text = open(path).read()
    new = text
    for name, args in SECTIONS.items():
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        if begin not in new or end not in new:
            sys.exit(f"{path}: markers {begin} / {end} missing")
        head, rest = new.split(begin, 1)
        _, tail = rest.split(end, 1)
        new = f"{head}{begin}\n{render(binary, args)}\n{end}{tail}"
    if mode == "--update":
        if new != text:
            open(path, "w").write(new)
        return 0
    if new != text:
        a, b = text.splitlines(), new.splitlines()
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                print(f"{path}:{i + 1}: stale generated section\n  README: {x}\n  binary: {y}")
                break
        print("run 'make docs' to regenerate")
        return 1
    print(f"{path}: generated sections match the binary")
    return 0


if __name__ == "__main__":
    sys.exit(main())
