/* libFuzzer target: the direct decoder against the general path (codec_internal.h). The first
 * input byte picks the writer schema (the reader's own, or tests/fixtures/schemas/2-4.avsc:
 * an added field, a reordered subset, promotions), the rest is one datum. Both paths must
 * give the same reason, event bytes and error text, and a container record the same length;
 * a mismatch aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"

#define NWRITERS 4
static avro_schema_t reader, writers[NWRITERS];
static cs_plan_t *plans[NWRITERS];
static avro_reader_t mem;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_cleanup(void)
{
    for (int i = 0; i < NWRITERS; i++) {
        cs_plan_destroy(plans[i]);
        if (writers[i])
            avro_schema_decref(writers[i]);
    }
    avro_schema_decref(reader);
    avro_reader_free(mem);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[512];
    reader = cs_reader_schema_new(err, sizeof err);
    mem = avro_reader_memory("", 0);
    if (!reader || !mem) {
        fprintf(stderr, "fuzz_direct: %s\n", err);
        abort();
    }
    writers[0] = avro_schema_incref(reader);
    for (int i = 1; i < NWRITERS; i++) {
        char path[64];
        snprintf(path, sizeof path, "tests/fixtures/schemas/%d.avsc", i + 1);
        if (!(writers[i] = cs_schema_load_file(path, err, sizeof err))) {
            fprintf(stderr, "fuzz_direct: %s\n", err);
            abort();
        }
    }
    for (int i = 0; i < NWRITERS; i++) {
        if (!(plans[i] = cs_plan_new(writers[i], reader, err, sizeof err))) {
            fprintf(stderr, "fuzz_direct: writer %d: %s\n", i, err);
            abort();
        }
    }
    atexit(fuzz_cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    cs_plan_t *plan = plans[data[0] % NWRITERS];
    const uint8_t *buf = data + 1;
    size_t len = size - 1;
    ev_event_t a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    char why_a[256] = "", why_b[256] = "";
    ev_reason_t ra = cs_plan_decode(plan, mem, buf, len, &a, why_a, sizeof why_a);
    ev_reason_t rb = cs_plan_decode_general(plan, mem, buf, len, &b, why_b, sizeof why_b);
    if (ra != rb || memcmp(&a, &b, sizeof a) != 0 || (ra != EV_OK && strcmp(why_a, why_b) != 0)) {
        fprintf(stderr, "fuzz_direct: paths differ: %d \"%s\" vs %d \"%s\"\n", ra, why_a, rb,
                why_b);
        abort();
    }
    int64_t used = 0;
    char why[256] = "";
    ev_reason_t rn = cs_plan_decode_next(plan, mem, buf, len, &used, &a, why, sizeof why);
    int64_t walked = cs_plan_datum_len(plan, buf, len, NULL, 0);
    if (used != walked || (used >= 0 && (size_t)used == len && rn != rb)) {
        fprintf(stderr, "fuzz_direct: record length %lld vs walk %lld\n", (long long)used,
                (long long)walked);
        abort();
    }
    return 0;
}
