#!/usr/bin/env bash
# Runs cmocka test binaries and totals them: `run-tests.sh KIND BIN...`. Shows each binary's
# output, reads cmocka's "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)" lines, and
# ends with "KIND: N passed, N failed". A binary that crashes, hangs past the timeout or
# exits non-zero without a FAILED line counts as one failure. Exit status 1 on any failure.
set -uo pipefail

kind=${1:?usage: run-tests.sh KIND BIN...}
shift
timeout_s=${CS_TEST_TIMEOUT_S:-900}
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# cmocka prints its summary to stdout only in its default output mode.
export CMOCKA_MESSAGE_OUTPUT=STDOUT

for bin in "$@"; do
    echo "== $kind: $bin"
    # --foreground keeps the binary in the terminal's process group, so Ctrl-C reaches it.
    timeout --foreground --kill-after=10 "$timeout_s" "$bin" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]\+\) test(s)\..*/\1/p' "$log" | awk '{ s += $1 } END { print s + 0 }')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]\+\) test(s).*/\1/p' "$log" | awk '{ s += $1 } END { print s + 0 }')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            echo "!! $bin: timed out after ${timeout_s}s"
        elif [ "$rc" -gt 128 ]; then
            echo "!! $bin: killed by signal $((rc - 128))"
        else
            echo "!! $bin: exit status $rc without a cmocka FAILED line"
        fi
        f=1
    elif [ "$rc" -eq 0 ] && [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        # A test binary that ran nothing is a broken test binary, not a success.
        echo "!! $bin: exited 0 but printed no cmocka summary"
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
done

[ $# -eq 0 ] && echo "== $kind: no test binaries"
echo "$kind: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
