#!/usr/bin/env bash
# Builds and runs the fuzz targets (libFuzzer + ASan + UBSan), SECONDS each (default 30: the
# eleven targets and their builds take about 7 minutes on the 2-core machine):
#   fuzz_decode  the Avro event decoder (seed corpus tests/fuzz/corpus/decode)
#   fuzz_direct  the direct Avro decoder against the general path (tests/fuzz/corpus/direct)
#   fuzz_csv     the CSV reader and mapper of import/replay (tests/fuzz/corpus/csv)
#   fuzz_config  the config file parser (tests/fuzz/corpus/config)
#   fuzz_jsonl   the JSON lines event parser of replay (tests/fuzz/corpus/jsonl)
#   fuzz_record  the per-user record decoder (bytes from Redis; tests/fuzz/corpus/record)
#   fuzz_model   the model snapshot decoder (Redis model key, --model-in; corpus/model)
#   fuzz_journal model journal replay (entries merged from Redis; corpus/journal)
#   fuzz_user_id the user id of GET /v1/users/{id} and its `at` (tests/fuzz/corpus/user_id)
#   fuzz_alert   the ChurnAlert decoder of respond and tail, and the outbox (corpus/alert)
#   fuzz_guard   compose's guardrails on a language model's answer (corpus/guard)
# Fails on any crash, leak, sanitizer report or oversized allocation. New inputs go to
# build/fuzz/corpus/<target> (not committed).
# Usage: tests/fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_TO_RUN="${1:-30}"
case $SECONDS_TO_RUN in
    '' | *[!0-9]*) echo "usage: tests/fuzz/run.sh [SECONDS] [TARGET...] (SECONDS: a whole number, got '$SECONDS_TO_RUN')" >&2; exit 2 ;;
esac
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(decode direct csv config jsonl record model journal user_id alert guard)
OUT=build/fuzz
mkdir -p "$OUT"
make --no-print-directory -s build/gen/event_avsc.h

CC="${FUZZ_CC:-clang}"
CFLAGS=(-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
    -Wall -Wextra -Wno-unused-parameter -Ibuild/gen)
for d in processor/*/ state/; do CFLAGS+=("-I${d%/}"); done

sources_of() { # TARGET: the library sources each target links (no stubs: the real modules)
    case "$1" in
    decode | direct)
        echo processor/codec/codec.c processor/codec/codec_decode.c processor/codec/codec_encode.c \
            processor/codec/codec_file.c processor/codec/codec_plan.c processor/codec/codec_direct.c \
            processor/codec/codec_schema.c processor/codec/codec_walk.c processor/core/event.c \
            processor/core/log.c processor/core/outfile.c
        ;;
    csv)
        echo processor/import/csv_reader.c processor/import/csv_map.c \
            processor/import/csv_import.c processor/import/csv_auto.c processor/core/event.c \
            processor/core/log.c \
            processor/core/grow.c
        ;;
    model | journal)
        echo processor/models/*.c processor/core/outfile.c processor/core/log.c \
            processor/core/grow.c processor/core/pool.c
        ;;
    record)
        echo processor/features/user.c processor/features/features.c \
            processor/features/feat_wire.c processor/core/event.c
        ;;
    jsonl)
        echo processor/codec/jsonl.c processor/core/event.c processor/core/log.c
        ;;
    config)
        echo processor/config/config.c processor/config/config_value.c \
            processor/config/config_source.c processor/config/config_print.c processor/core/numfmt.c
        ;;
    user_id)
        echo processor/daemon/user_request.c processor/core/event.c processor/core/log.c
        ;;
    alert)
        echo processor/alerts/alert_decode.c processor/alerts/alert_codec.c \
            processor/alerts/alert_id.c processor/codec/codec.c processor/codec/codec_decode.c \
            processor/codec/codec_encode.c processor/codec/codec_file.c \
            processor/codec/codec_plan.c processor/codec/codec_direct.c \
            processor/codec/codec_schema.c processor/codec/codec_walk.c processor/core/event.c \
            processor/core/log.c processor/core/outfile.c processor/core/numfmt.c \
            processor/core/fastlog.c processor/features/feature_table.c \
            processor/features/features.c
        ;;
    guard)
        echo processor/daemon/compose_guard.c processor/alerts/alert_id.c \
            processor/alerts/alert_segment.c processor/core/numfmt.c
        ;;
    *)
        echo "unknown fuzz target $1" >&2
        return 1
        ;;
    esac
}
libs_of() {
    case "$1" in
    decode | direct) pkg-config --cflags --libs avro-c zlib ;; # codec_file.c inflates container blocks
    csv | jsonl) pkg-config --cflags --libs zlib ;;
    model | journal) echo -lpthread; pkg-config --cflags --libs zlib openblas ;;
    config) pkg-config --cflags --libs rdkafka ;;
    user_id) pkg-config --cflags jansson hiredis ;; # headers only, via user_view.h
    alert) pkg-config --cflags --libs avro-c zlib ;;
    guard) pkg-config --cflags avro-c ;; # headers only, via alert.h
    esac
}

# Avro-C prefixes value instances with a 4-byte refcount, so the pointers inside them sit
# at addresses LeakSanitizer skips by default and it reports false "direct leaks" of their
# strings; use_unaligned makes it scan those words too.
export LSAN_OPTIONS="use_unaligned=1${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
failed=0
for t in "${TARGETS[@]}"; do
    bin="$OUT/fuzz_$t"
    # shellcheck disable=SC2046 # word splitting of the source and flag lists is intended
    "$CC" "${CFLAGS[@]}" "tests/fuzz/fuzz_$t.c" $(sources_of "$t") $(libs_of "$t") -lm \
        -o "$bin"
    mkdir -p "$OUT/corpus/$t"
    log="$OUT/fuzz_$t.log"
    set +e
    "$bin" -max_total_time="$SECONDS_TO_RUN" -malloc_limit_mb=256 -rss_limit_mb=1024 \
        -timeout=10 -artifact_prefix="$OUT/$t-" -print_final_stats=1 \
        "$OUT/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    set -e
    tail -n 8 "$log"
    if [ "$rc" -ne 0 ] || grep -qE "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:" "$log"; then
        echo "fuzz_$t: FAILED (exit $rc), see $log and $OUT/$t-crash-* / leak-* / oom-*" >&2
        failed=$((failed + 1))
    else
        echo "fuzz_$t: OK (${SECONDS_TO_RUN}s, no crash, leak or sanitizer report)"
    fi
done
[ "$failed" -eq 0 ]
