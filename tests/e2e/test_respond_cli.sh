#!/usr/bin/env bash
# `churnstream respond` as a user meets it without a broker: --help, and every bad option
# or input is a usage error (exit 2) naming what is wrong. The closed loop itself runs
# against the real broker in tests/python/test_closed_loop.py and in `make demo`.
set -euo pipefail
: "${CS_BIN:?set CS_BIN to the churnstream binary}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

help=$("$CS_BIN" respond --help)
grep -q -- '--advance-to DATE' <<<"$help" || fail "--help lacks --advance-to"
help=$("$CS_BIN" --help 2>&1)
grep -qE '^  respond +simulated customers' <<<"$help" || fail "respond not in --help"
check() { # EXPECTED-TEXT ARGS...: exit 2 and the text on stderr
    local want=$1 rc=0
    shift
    "$CS_BIN" respond "$@" 2>"$tmp/err" >/dev/null || rc=$?
    [ "$rc" -eq 2 ] || fail "respond $*: exit $rc, want 2"
    grep -qF -- "$want" "$tmp/err" || fail "respond $*: stderr lacks \"$want\": $(cat "$tmp/err")"
}
check '--effect: bad value "1.5"' --effect 1.5
check '--effect: bad value "-0.1"' --effect -0.1
check '--delay-days: bad value "0"' --delay-days 0
check '--timeout: bad value "x"' --timeout x
check '--seed: expected an integer' --seed 12a
check '--advance-to: expected a UTC date, got "tomorrow"' --advance-to tomorrow
check 'unexpected argument "extra"' extra
check 'unknown or incomplete option "--nope"' --nope
check "$tmp/missing.csv: No such file or directory" --truth "$tmp/missing.csv"
printf 'user_id,churn_time_ms\nu1\n' >"$tmp/bad.csv"
check "bad.csv:2: expected user_id,churn_time_ms" --truth "$tmp/bad.csv"
echo "test_respond_cli: ok"
