#!/usr/bin/env bash
# README's config and feature references equal what the binary prints from its tables, and
# its table of default alert actions (section Alerts) names exactly the actions that
# `churnstream help actions` prints.
set -euo pipefail
: "${CS_BIN:?}" "${CS_ROOT:?}"
python3 "$CS_ROOT/tests/tools/readme_refs.py" "$CS_BIN" "$CS_ROOT/README.md" --check

help=$("$CS_BIN" help actions)
rc=0
"$CS_BIN" help actions extra >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || { echo "FAIL: help actions with an argument exited $rc, want 2" >&2; exit 1; }
# The help's default table: "    <when> -> <action>" lines.
from_help=$(printf '%s\n' "$help" | sed -n 's/^    .* -> \(.*\)$/\1/p' | sort -u)
# README's: the last column of the rows of the table under "**Actions.**".
from_readme=$(awk '/^\*\*Actions\.\*\*/ {on = 1} on && /^\| (low|lapsed|at_risk)/ {print} on && /^$/ && seen {exit} on && /^\|/ {seen = 1}' \
    "$CS_ROOT/README.md" | awk -F'|' '{gsub(/^ +| +$/, "", $4); print $4}' | sort -u)
[ -n "$from_help" ] || { echo "FAIL: no default action in churnstream help actions" >&2; exit 1; }
if [ "$from_help" != "$from_readme" ]; then
    echo "FAIL: README's default actions differ from churnstream help actions" >&2
    diff <(printf '%s\n' "$from_readme") <(printf '%s\n' "$from_help") >&2 || true
    exit 1
fi
echo "test_docs: ok ($(printf '%s\n' "$from_help" | wc -l) default actions documented)"
