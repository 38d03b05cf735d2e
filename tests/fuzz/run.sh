#!/usr/bin/env bash
# Builds and runs the decoder fuzz target (libFuzzer + ASan + UBSan) for SECONDS (default 60).
# Fails on any crash, leak, sanitizer report or oversized allocation. New inputs go to
# build/fuzz/corpus (not committed); the seed corpus is tests/fuzz/corpus/decode.
# Usage: tests/fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_TO_RUN="${1:-60}"
OUT=build/fuzz
mkdir -p "$OUT/corpus"
make --no-print-directory -s build/gen/event_avsc.h

CC="${FUZZ_CC:-clang}"
"$CC" -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -Wall -Wextra -Wno-unused-parameter -Iprocessor -Ibuild/gen \
    $(pkg-config --cflags avro-c) \
    tests/fuzz/fuzz_decode.c processor/codec.c processor/codec_decode.c \
    processor/codec_encode.c processor/codec_file.c processor/codec_plan.c \
    processor/codec_schema.c processor/codec_walk.c processor/event.c processor/log.c \
    $(pkg-config --libs avro-c) -lm -o "$OUT/fuzz_decode"

LOG="$OUT/fuzz_decode.log"
# Avro-C prefixes value instances with a 4-byte refcount, so the pointers inside them sit
# at addresses LeakSanitizer skips by default and it reports false "direct leaks" of their
# strings; use_unaligned makes it scan those words too.
export LSAN_OPTIONS="use_unaligned=1${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
set +e
"$OUT/fuzz_decode" -max_total_time="$SECONDS_TO_RUN" -malloc_limit_mb=256 -rss_limit_mb=1024 \
    -timeout=10 -artifact_prefix="$OUT/" -print_final_stats=1 \
    "$OUT/corpus" tests/fuzz/corpus/decode >"$LOG" 2>&1
rc=$?
set -e
tail -n 25 "$LOG"
if [ "$rc" -ne 0 ] || grep -qE "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:" "$LOG"; then
    echo "fuzz_decode: FAILED (exit $rc), see $LOG and $OUT/crash-* / leak-* / oom-*" >&2
    exit 1
fi
echo "fuzz_decode: OK (${SECONDS_TO_RUN}s, no crash, leak or sanitizer report)"
