/* The in-memory store's range (state/store_mem.c): a range visits exactly the users whose
 * last activity is in [lo, hi), in the Redis store's order (time, then id bytes, the shorter
 * first on a common prefix), whatever sort gets there; against a brute-force oracle. `each`
 * visits the same users, each once, in any order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store_mem.h"

typedef struct seen_s {
    const char *ids[4096];
    int64_t t[4096];
    size_t n;
} seen_t;

static int cmp_id(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void collect(void *ctx, const char *user_id, user_rec_t *rec)
{
    seen_t *s = ctx;
    assert_true(s->n < 4096);
    s->ids[s->n] = user_id;
    s->t[s->n++] = feat_last_activity_ms(&rec->feat);
}

static int before(int64_t ta, const char *a, int64_t tb, const char *b)
{
    if (ta != tb)
        return ta < tb;
    size_t la = strlen(a), lb = strlen(b);
    int c = memcmp(a, b, la < lb ? la : lb);
    return c != 0 ? c < 0 : la < lb;
}

/* n users, last activity times from a few values (heavy ties, negatives, far apart). */
static void check_range(size_t n, int64_t lo, int64_t hi)
{
    st_mem_t *st = st_mem_new();
    assert_non_null(st);
    store_ops_t ops;
    st_mem_engine_ops(st, &ops);
    static const int64_t times[] = {
        -86400000LL, -1, 0, 1, 255, 256, 65536, 1704067200000LL, 1704067200001LL, 1727395764917LL};
    uint64_t seed = 0x2545f4914f6cdd1dULL;
    for (size_t i = 0; i < n; i++) {
        char id[32];
        /* ids sharing prefixes ("u1", "u10", "u100"), so ties go to the shorter */
        snprintf(id, sizeof(id), "u%zu", (i * 7919) % n);
        user_rec_t *rec = ops.get(ops.opaque, id, strlen(id));
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        rec->feat.last_activity_ms = times[seed % 10] + (int64_t)(seed >> 60 & 1) * 4096;
        ops.touched(ops.opaque, id, rec);
    }
    seen_t *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    ops.range(ops.opaque, lo, hi, collect, s);
    size_t want = 0;
    for (size_t i = 0; i < st_mem_count(st); i++) {
        int64_t t = feat_last_activity_ms(&st_mem_at(st, i)->feat);
        want += t >= lo && t < hi;
    }
    assert_int_equal(s->n, want);
    for (size_t k = 0; k < s->n; k++) {
        assert_true(s->t[k] >= lo && s->t[k] < hi);
        if (k > 0)
            assert_true(before(s->t[k - 1], s->ids[k - 1], s->t[k], s->ids[k]));
    }
    seen_t *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    ops.each(ops.opaque, lo, hi, collect, e);
    assert_int_equal(e->n, s->n);
    qsort(s->ids, s->n, sizeof(s->ids[0]), cmp_id);
    qsort(e->ids, e->n, sizeof(e->ids[0]), cmp_id);
    for (size_t k = 0; k < e->n; k++) {
        assert_string_equal(e->ids[k], s->ids[k]);
        if (k > 0)
            assert_true(strcmp(e->ids[k - 1], e->ids[k]) < 0); /* once each */
    }
    free(e);
    free(s);
    st_mem_destroy(st);
}

static void test_range_order(void **state)
{
    (void)state;
    check_range(3000, INT64_MIN, INT64_MAX); /* the radix path */
    check_range(3000, 0, 1704067200001LL);   /* a window: both ends */
    check_range(40, INT64_MIN, INT64_MAX);   /* the small path */
    check_range(1, INT64_MIN, INT64_MAX);
    check_range(0, INT64_MIN, INT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
