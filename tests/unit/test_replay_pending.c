/* Replay's pending scores (processor/replay/replay_pending.c): every snapshot put is taken
 * back exactly once with what was put, whatever the order: across the growth and compaction
 * of the per-user arrays and removals from their middle; against a brute-force oracle; with
 * and without the entries' feature rows (--snapshots-out); with and without the user
 * record's memo of the handle, and with a memo that names another user or none; the room a
 * user's array keeps under a bound on the entries one user holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "replay_internal.h"

#define DAY  86400000LL
#define XDIM 5

typedef struct oracle_s {
    char uid[32];
    int64_t tick_ms;
    float score;
    int live;
    user_rec_t *rec; /* the user's record (its memo), or NULL: the id alone */
} oracle_t;

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The feature row an entry is put with: a function of its score and tick. */
static void row_of(const oracle_t *o, float *x)
{
    for (int i = 0; i < XDIM; i++)
        x[i] = o->score * (float)(i + 1) + (float)(o->tick_ms / DAY % 1000);
}

static int put(pending_map_t *m, const oracle_t *o)
{
    ex_scores_t ex = {.p = {o->score / 2, o->score / 3, o->score / 4}};
    float x[XDIM];
    row_of(o, x);
    return rp_pending_put(m, o->uid, o->rec, o->tick_ms, o->score, o->score + 1,
                          (int)(o->tick_ms % 7), &ex, m->xdim ? x : NULL);
}

static void expect_taken(pending_map_t *m, oracle_t *o)
{
    pending_t p;
    float x[XDIM] = {-1, -1, -1, -1, -1}, want[XDIM];
    assert_int_equal(rp_pending_take(m, o->uid, o->rec, o->tick_ms, &p, x), 1);
    row_of(o, want);
    for (int i = 0; i < XDIM; i++)
        assert_true(m->xdim ? x[i] == want[i] : x[i] == -1); /* untouched when not kept */
    assert_true(p.score == o->score);
    assert_true(p.recency_days == o->score + 1);
    assert_true(p.expert[2] == (float)(double)(o->score / 4));
    assert_int_equal(p.seg, (int)(o->tick_ms % 7));
    assert_true(p.tick_ms == o->tick_ms);
    o->live = 0;
    /* taken once: a second take finds nothing */
    assert_int_equal(rp_pending_take(m, o->uid, o->rec, o->tick_ms, &p, NULL), 0);
}

/* Users x ticks put in waves and taken in a random order interleaved with the puts, as
 * labels arrive while later ticks are scored. */
static void random_against_oracle(int xdim, uint32_t bound)
{
    enum { USERS = 3000, TICKS = 12, N = USERS * TICKS };
    static oracle_t o[N];
    static user_rec_t recs[USERS];
    for (int u = 0; u < USERS; u++)
        user_rec_init(&recs[u]);
    pending_map_t m = {0};
    rp_pending_keep_features(&m, xdim);
    rp_pending_set_bound(&m, bound);
    uint64_t seed = 88172645463325252ULL;
    for (int t = 0; t < TICKS; t++)
        for (int u = 0; u < USERS; u++) {
            oracle_t *e = &o[t * USERS + u];
            int user = (u * 7919) % USERS;
            snprintf(e->uid, sizeof(e->uid), "user-%d", user);
            e->rec = (t + u) % 3 ? &recs[user] : NULL; /* mostly through the memo */
            e->tick_ms = 1700000000000LL / DAY * DAY + t * DAY;
            e->score = (float)(next_rand(&seed) % 100000) / 100000.0f;
        }
    size_t taken = 0, live = 0;
    for (int t = 0; t < TICKS; t++) {
        for (int u = 0; u < USERS; u++) {
            assert_int_equal(put(&m, &o[t * USERS + u]), 0);
            o[t * USERS + u].live = 1;
            live++;
        }
        /* take a random half of what is live (some misses probe absent keys too) */
        for (size_t k = 0; k < live / 2; k++) {
            oracle_t *e = &o[next_rand(&seed) % (size_t)((t + 1) * USERS)];
            if (!e->live) {
                pending_t p;
                assert_int_equal(rp_pending_take(&m, e->uid, e->rec, e->tick_ms, &p, NULL), 0);
                continue;
            }
            expect_taken(&m, e);
            taken++;
        }
        live = (size_t)(t + 1) * USERS - taken;
        assert_int_equal(m.count, live);
    }
    for (size_t i = 0; i < N; i++)
        if (o[i].live)
            expect_taken(&m, &o[i]);
    assert_int_equal(m.count, 0);
    assert_int_equal(m.nids, USERS);
    rp_pending_free(&m);
    rp_pending_free(&m); /* freed maps are empty and reusable */
    assert_int_equal(m.xdim, 0);
}

static void test_random_against_oracle(void **state)
{
    (void)state;
    random_against_oracle(0, 0);
}

static void test_random_against_oracle_with_rows(void **state)
{
    (void)state;
    random_against_oracle(XDIM, 0);
}

static void test_absent_and_empty(void **state)
{
    (void)state;
    pending_map_t m = {0};
    pending_t p;
    assert_int_equal(rp_pending_take(&m, "nobody", NULL, 0, &p, NULL), 0);
    oracle_t a = {.uid = "a", .tick_ms = -DAY, .score = 0.5f}; /* ticks before 1970 too */
    assert_int_equal(put(&m, &a), 0);
    assert_int_equal(rp_pending_take(&m, "a", NULL, 0, &p, NULL), 0);
    assert_int_equal(rp_pending_take(&m, "b", NULL, -DAY, &p, NULL), 0);
    expect_taken(&m, &a);
    /* a key put twice (the engine never does) comes back oldest first, then is gone */
    oracle_t first = {.uid = "a", .tick_ms = 0, .score = 0.25f}, second = first;
    second.score = 0.75f;
    assert_int_equal(put(&m, &first), 0);
    assert_int_equal(put(&m, &second), 0);
    assert_int_equal(rp_pending_take(&m, "a", NULL, 0, &p, NULL), 1);
    assert_true(p.score == 0.25f);
    expect_taken(&m, &second);
    assert_int_equal(m.count, 0);
    rp_pending_free(&m);
}

/* The memo is a hint: one naming another user, a handle past the table, or an id that is a
 * prefix of the right one is checked and passed over, and corrected. */
static void test_memo_checked(void **state)
{
    (void)state;
    pending_map_t m = {0};
    pending_t p;
    user_rec_t ra, rab;
    user_rec_init(&ra);
    user_rec_init(&rab);
    oracle_t a = {.uid = "a", .tick_ms = 0, .score = 0.5f, .rec = &ra};
    oracle_t ab = {.uid = "ab", .tick_ms = 0, .score = 0.25f, .rec = &rab};
    assert_int_equal(put(&m, &a), 0);
    assert_int_equal(put(&m, &ab), 0);
    assert_int_equal(ra.memo, 1);
    assert_int_equal(rab.memo, 2);
    rab.memo = 1; /* names "a", a prefix of "ab" */
    expect_taken(&m, &ab);
    assert_int_equal(rab.memo, 2);
    ra.memo = 99; /* past the table */
    expect_taken(&m, &a);
    assert_int_equal(ra.memo, 1);
    assert_int_equal(put(&m, &ab), 0); /* an entry left: an empty map looks nothing up */
    ra.memo = 2;                       /* names "ab" */
    assert_int_equal(rp_pending_take(&m, "a", &ra, 0, &p, NULL), 0);
    assert_int_equal(ra.memo, 1);
    rp_pending_free(&m);
}

/* An emptied array is released when it grew past its first size, kept when it did not; the
 * user is served again after either. */
static void test_emptied_arrays(void **state)
{
    (void)state;
    pending_map_t m = {0};
    rp_pending_keep_features(&m, XDIM);
    oracle_t o[20];
    for (int i = 0; i < 20; i++)
        o[i] = (oracle_t){.uid = "quiet", .tick_ms = i * DAY, .score = (float)i / 20};
    for (int i = 0; i < 20; i++)
        assert_int_equal(put(&m, &o[i]), 0);
    assert_true(m.users[0].cap >= 20);
    for (int i = 0; i < 20; i++)
        expect_taken(&m, &o[i]);
    assert_int_equal(m.users[0].cap, 0);
    assert_null(m.users[0].e);
    assert_null(m.users[0].x);
    oracle_t again = {.uid = "quiet", .tick_ms = 30 * DAY, .score = 0.5f};
    oracle_t regular = {.uid = "regular", .tick_ms = 0, .score = 0.25f};
    assert_int_equal(put(&m, &again), 0);
    assert_int_equal(put(&m, &regular), 0);
    expect_taken(&m, &regular);
    assert_int_equal(m.users[1].cap, 8); /* small: kept */
    assert_non_null(m.users[1].e);
    expect_taken(&m, &again);
    assert_int_equal(m.count, 0);
    rp_pending_free(&m);
}

/* With a bound on the entries one user holds, a quiet user's array grows to the bound and
 * no further while labels leave from its head and ticks add at its tail; more live entries
 * than the bound still fit (it grows past it); and the random oracle holds with bounds below
 * and above what users hold (12 ticks). */
static void test_bound(void **state)
{
    (void)state;
    pending_map_t m = {0};
    rp_pending_keep_features(&m, XDIM);
    rp_pending_set_bound(&m, 14);
    oracle_t o[64];
    for (int i = 0; i < 64; i++)
        o[i] = (oracle_t){.uid = "quiet", .tick_ms = i * DAY, .score = (float)i / 64};
    for (int i = 0; i < 13; i++)
        assert_int_equal(put(&m, &o[i]), 0);
    assert_int_equal(m.users[0].cap, 14); /* 8, then the bound, not 16 */
    for (int i = 13; i < 40; i++) {       /* H < L: the oldest label leaves, a new tick comes */
        expect_taken(&m, &o[i - 13]);
        assert_int_equal(put(&m, &o[i]), 0);
        assert_int_equal(m.users[0].cap, 14);
    }
    for (int i = 40; i < 50; i++) /* more than the bound live at once: 23 */
        assert_int_equal(put(&m, &o[i]), 0);
    assert_true(m.users[0].cap >= 23);
    for (int i = 27; i < 50; i++)
        expect_taken(&m, &o[i]);
    assert_int_equal(m.count, 0);
    rp_pending_free(&m);
    random_against_oracle(XDIM, 5);
    random_against_oracle(0, 13);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_against_oracle),
        cmocka_unit_test(test_random_against_oracle_with_rows),
        cmocka_unit_test(test_absent_and_empty),
        cmocka_unit_test(test_memo_checked),
        cmocka_unit_test(test_emptied_arrays),
        cmocka_unit_test(test_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
