#!/usr/bin/env bash
# README's config and feature references equal what the binary prints from its tables.
set -euo pipefail
: "${CS_BIN:?}" "${CS_ROOT:?}"
python3 "$CS_ROOT/tests/tools/readme_refs.py" "$CS_BIN" "$CS_ROOT/README.md" --check
