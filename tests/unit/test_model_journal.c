/* Unit tests of model journals (model_journal.h): a journal replayed onto the model it was
 * recorded from gives the same bytes as the model that recorded it; the population-level ops
 * (fit, tick start, ticks complete, segment names) are idempotent when two copies report
 * them; rows are not (each journal is applied once by the caller); corrupt, truncated and
 * mismatched journals are refused at every length without reading past the end. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model.h"
#include "rng.h"

#define DIM  6
#define K    3
#define DAY  86400000LL
#define WEEK (7 * DAY)

static model_t *new_model(void)
{
    char err[256];
    model_t *m = model_new(DIM, K, 7, NULL, err, sizeof err);
    assert_non_null(m);
    model_set_class_balance(m, 1);
    return m;
}

static model_t *copy_of(const model_t *m)
{
    uint8_t *b;
    size_t n;
    char err[256];
    assert_int_equal(model_encode(m, &b, &n), 0);
    model_t *c = model_decode(b, n, err, sizeof err);
    free(b);
    assert_non_null(c);
    model_set_class_balance(c, 1);
    return c;
}

static void assert_same_bytes(const model_t *a, const model_t *b)
{
    uint8_t *ba, *bb;
    size_t na, nb;
    assert_int_equal(model_encode(a, &ba, &na), 0);
    assert_int_equal(model_encode(b, &bb, &nb), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(ba, bb, na);
    free(ba);
    free(bb);
}

/* Ten weekly ticks of a small population, through every recorded call, as a pipeline makes
 * them: day marks, a refit and tick start per tick, prequential pairs, learnt rows, ticks
 * complete once H = 4 weeks has passed, a segment name once k-means is seeded. */
static void drive(model_t *m, uint64_t seed, int64_t t0)
{
    rng_t r;
    rng_seed(&r, seed);
    bgnbd_table_t *tab = bgnbd_table_new();
    assert_non_null(tab);
    for (int w = 0; w < 10; w++) {
        int64_t tick = t0 + w * WEEK;
        for (int d = 0; d < 7; d++)
            for (int u = 0; u < 5; u++)
                assert_int_equal(model_mark_day(m, tick / DAY - 7 + d), 0);
        bgnbd_table_clear(tab);
        for (int u = 0; u < 40; u++) {
            double age = 10 + rng_below(&r, 60);
            double rep = (double)rng_below(&r, 8);
            double tx = rep > 0 ? age * rng_uniform(&r) : 0;
            assert_int_equal(bgnbd_table_add(tab, rep, tx, age, 1), 0);
        }
        (void)model_refit_bgnbd(m, tab, tick);
        assert_int_equal(model_tick_start(m, tick), 0);
        enum { N = 25 };
        float x[N * DIM], y[N];
        ex_summary_t s[N];
        int64_t tk[N];
        for (int i = 0; i < N; i++) {
            for (int j = 0; j < DIM; j++)
                x[i * DIM + j] = (float)(rng_normal(&r) + (j == 0 ? 3 : 0));
            y[i] = x[i * DIM + 1] > 0.3f ? 1.0f : 0.0f;
            s[i] = (ex_summary_t){.rep = (double)rng_below(&r, 5), .age = 40, .h = 28};
            s[i].t_x = s[i].rep > 0 ? 20 : 0;
            tk[i] = w >= 4 ? tick - 4 * WEEK : tick;
            model_prequential(m, 0.1 + 0.8 * rng_uniform(&r), (int)y[i]);
        }
        assert_int_equal(model_learn(m, x, s, tk, y, N, NULL), 0);
        if (w >= 4)
            model_ticks_complete(m, tick - 4 * WEEK);
        if (w == 6)
            assert_int_equal(model_set_segment_name(m, 1, 3, "loyal (high x)"), 0);
    }
    bgnbd_table_destroy(tab);
}

static void test_replay_reproduces_bytes(void **state)
{
    (void)state;
    model_t *m = new_model();
    model_t *base = copy_of(m);
    mj_t j;
    mj_init(&j);
    model_record_to(m, &j);
    drive(m, 11, 1700000000000LL);
    model_record_to(m, NULL);
    assert_false(mj_failed(&j));
    assert_int_equal(j.rows, 250);
    char err[256];
    assert_int_equal(model_replay(base, j.b.data, j.b.len, err, sizeof err), 0);
    assert_same_bytes(m, base);
    assert_int_equal(model_examples_seen(base), 250);
    assert_int_equal(pm_count(model_metrics(base)), 250);
    /* A replay feeds no recorder: the journal attached to base stays empty. */
    mj_t j2;
    mj_init(&j2);
    model_record_to(base, &j2);
    model_t *again = copy_of(m);
    assert_int_equal(model_replay(again, j.b.data, 0, err, sizeof err), 0);
    assert_int_equal(j2.b.len, 0);
    model_destroy(again);
    mj_free(&j);
    mj_free(&j2);
    model_destroy(m);
    model_destroy(base);
}

/* Two copies' journals of the same ticks: rows add up, the population-level ops count once. */
static void test_merge_two_journals(void **state)
{
    (void)state;
    model_t *a = new_model(), *b = new_model(), *merged = new_model();
    mj_t ja, jb;
    mj_init(&ja);
    mj_init(&jb);
    model_record_to(a, &ja);
    model_record_to(b, &jb);
    drive(a, 1, 1700000000000LL);
    drive(b, 2, 1700000000000LL);
    char err[256];
    assert_int_equal(model_replay(merged, ja.b.data, ja.b.len, err, sizeof err), 0);
    assert_int_equal(model_replay(merged, jb.b.data, jb.b.len, err, sizeof err), 0);
    assert_int_equal(model_examples_seen(merged), 500);
    assert_int_equal(pm_count(model_metrics(merged)), 500);
    /* The first fit of each tick wins: a's parameters, b's ignored. */
    double users;
    ex_fit_stats(model_experts(a), &users, NULL, NULL);
    assert_true(users > 0); /* the fits succeeded: parameters were recorded */
    const bgnbd_params_t *pa = ex_bgnbd_params(model_experts(a));
    const bgnbd_params_t *pm = ex_bgnbd_params(model_experts(merged));
    assert_true(pa->r == pm->r && pa->alpha == pm->alpha && pa->a == pm->a && pa->b == pm->b);
    uint64_t folded_a, folded_m;
    double la[EX_N], lm[EX_N];
    ex_losses(model_experts(a), la, &folded_a);
    ex_losses(model_experts(merged), lm, &folded_m);
    assert_int_equal(folded_a, folded_m); /* each tick folded once */
    int arch;
    char label[64];
    assert_int_equal(model_segment_name(merged, 1, &arch, label, sizeof label), 1);
    assert_int_equal(arch, 3);
    mj_free(&ja);
    mj_free(&jb);
    model_destroy(a);
    model_destroy(b);
    model_destroy(merged);
}

/* Every prefix of a journal either replays (it ends on an op boundary) or is refused with a
 * message; every single-byte corruption is refused or replays without reading past the end
 * (ASan); a journal of another dimension is refused. */
static void test_refuses_corrupt(void **state)
{
    (void)state;
    model_t *m = new_model();
    mj_t j;
    mj_init(&j);
    model_record_to(m, &j);
    drive(m, 5, 1700000000000LL);
    model_record_to(m, NULL);
    char err[256];
    size_t ok = 0;
    for (size_t len = 0; len < j.b.len; len += 1 + len / 64) {
        model_t *c = new_model();
        uint8_t *cut = malloc(len ? len : 1);
        memcpy(cut, j.b.data, len);
        err[0] = '\0';
        int rc = model_replay(c, cut, len, err, sizeof err);
        if (rc == 0)
            ok++;
        else
            assert_non_null(strstr(err, "model journal: op"));
        free(cut);
        model_destroy(c);
    }
    assert_true(ok >= 1);
    uint8_t *bad = malloc(j.b.len);
    for (size_t at = 0; at < j.b.len; at += 97) {
        memcpy(bad, j.b.data, j.b.len);
        bad[at] ^= 0xA5;
        model_t *c = new_model();
        (void)model_replay(c, bad, j.b.len, err, sizeof err);
        model_destroy(c);
    }
    free(bad);
    char e2[256];
    model_t *other = model_new(DIM + 1, K, 7, NULL, e2, sizeof e2);
    assert_non_null(other);
    assert_int_equal(model_replay(other, j.b.data, j.b.len, err, sizeof err), -1);
    model_destroy(other);
    const uint8_t unknown[] = {99};
    model_t *c = new_model();
    assert_int_equal(model_replay(c, unknown, 1, err, sizeof err), -1);
    model_destroy(c);
    mj_free(&j);
    model_destroy(m);
}

/* model_swap: pipelines borrow a model; its contents can be replaced in place. */
static void test_swap_keeps_recorder(void **state)
{
    (void)state;
    model_t *a = new_model(), *b = new_model();
    mj_t j;
    mj_init(&j);
    model_record_to(a, &j);
    drive(b, 3, 1700000000000LL);
    model_swap(a, b);
    assert_int_equal(model_examples_seen(a), 250);
    assert_int_equal(model_examples_seen(b), 0);
    model_prequential(a, 0.5, 1);
    assert_int_equal(j.ops, 1); /* a kept its recorder */
    mj_free(&j);
    model_destroy(a);
    model_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_reproduces_bytes),
        cmocka_unit_test(test_merge_two_journals),
        cmocka_unit_test(test_refuses_corrupt),
        cmocka_unit_test(test_swap_keeps_recorder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
