#!/usr/bin/env bash
# `churnstream run` as a user meets it before any data flows: --help and `help run`, usage
# errors (exit 2: an unknown flag, an unreadable --model-in, a bad config value, an unknown
# --handler), and an unreachable Redis at start with either handler (exit 1, the message
# names the address). Needs only CS_BIN (nothing listens on port 1).
set -euo pipefail
: "${CS_BIN:?set CS_BIN to the churnstream binary}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect_status() { # WANT CMD...: run CMD, stdout+stderr to $tmp/out, check the exit status
    local want=$1 rc=0
    shift
    "$@" >"$tmp/out" 2>&1 || rc=$?
    if [ "$rc" -ne "$want" ]; then
        echo "FAIL: $* exited $rc, want $want; output:" >&2
        cat "$tmp/out" >&2
        exit 1
    fi
}
expect_output() { # TEXT: $tmp/out must contain TEXT
    grep -qF -- "$1" "$tmp/out" || { echo "FAIL: output lacks \"$1\":" >&2; cat "$tmp/out" >&2; exit 1; }
}

expect_status 0 "$CS_BIN" run --help
expect_output "usage: churnstream run [--model-in FILE]"
expect_output "--handler NAME    churn (default) or count"
expect_status 0 "$CS_BIN" help run
expect_output "usage: churnstream run"

expect_status 2 "$CS_BIN" run --no-such-flag
expect_output 'unknown argument "--no-such-flag"'
expect_status 2 "$CS_BIN" run --model-in "$tmp/missing.model"
expect_output "cannot open"
expect_status 2 "$CS_BIN" run --batch.max_messages=0
expect_output "batch.max_messages"

# Nothing listens on port 1: a clear runtime failure, not a hang.
expect_status 1 timeout 20 "$CS_BIN" run --redis.port=1 --redis.connect_timeout=1s --metrics.port=0
expect_output "127.0.0.1:1"
expect_status 2 "$CS_BIN" run --handler=magic
expect_output 'expected churn or count, got "magic"'
expect_status 1 timeout 20 "$CS_BIN" run --handler=count --redis.port=1 --redis.connect_timeout=1s --metrics.port=0
expect_output "127.0.0.1:1"

echo "test_run_cli: ok"
