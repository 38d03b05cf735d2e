/* Unit tests of the prequential metrics: AUC on hand tables (perfect, reversed, ties, mixed),
 * the histogram's error bound against an exact AUC, log-loss and Brier by hand, encoding. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model_wire.h"
#include "pmetrics.h"
#include "rng.h"

#define MAXN 8

typedef struct {
    const char *name;
    int n;
    double p[MAXN];
    int y[MAXN];
    double auc;
    double bound;
} auc_case_t;

static const auc_case_t auc_cases[] = {
    {"perfect", 4, {0.1, 0.2, 0.8, 0.9}, {0, 0, 1, 1}, 1.0, 0},
    {"reversed", 4, {0.1, 0.2, 0.8, 0.9}, {1, 1, 0, 0}, 0.0, 0},
    {"all tied", 4, {0.5, 0.5, 0.5, 0.5}, {0, 1, 0, 1}, 0.5, 0.5},
    /* pos 0.35 beats neg 0.1, loses to 0.4; pos 0.8 beats both: 3 of 4 pairs */
    {"mixed", 4, {0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}, 0.75, 0},
    /* pos 0.3 ties both negatives (2 x 1/2), pos 0.7 beats both: 3 of 4 */
    {"exact ties", 4, {0.3, 0.3, 0.7, 0.3}, {1, 0, 1, 0}, 0.75, 0.25},
    /* 3 pos x 2 neg: 0.9 > both, 0.6 > 0.2 only (< 0.65), 0.1 > none: 3 of 6 */
    {"three by two", 5, {0.9, 0.65, 0.6, 0.2, 0.1}, {1, 0, 1, 0, 1}, 0.5, 0},
    /* scores at the ends of [0, 1] and out of range are clamped into the end bins */
    {"ends", 4, {0.0, 1.0, -3.0, 7.0}, {0, 1, 0, 1}, 1.0, 0},
};

static void test_auc_table(void **state)
{
    (void)state;
    for (size_t t = 0; t < sizeof(auc_cases) / sizeof(auc_cases[0]); t++) {
        const auc_case_t *c = &auc_cases[t];
        pm_t *pm = pm_new(0);
        assert_non_null(pm);
        for (int i = 0; i < c->n; i++)
            pm_add_one(pm, c->p[i], c->y[i]);
        if (fabs(pm_auc(pm) - c->auc) > 1e-12)
            fail_msg("%s: auc %.6f want %.6f", c->name, pm_auc(pm), c->auc);
        if (fabs(pm_auc_error_bound(pm) - c->bound) > 1e-12)
            fail_msg("%s: bound %.6f want %.6f", c->name, pm_auc_error_bound(pm), c->bound);
        assert_int_equal(pm_count(pm), (uint64_t)c->n);
        pm_destroy(pm);
    }
}

static void test_empty_and_one_class(void **state)
{
    (void)state;
    pm_t *pm = pm_new(8);
    assert_true(isnan(pm_auc(pm)) && isnan(pm_logloss(pm)) && isnan(pm_brier(pm)));
    assert_true(isnan(pm_positive_rate(pm)) && isnan(pm_auc_error_bound(pm)));
    pm_add_one(pm, 0.3, 1);
    pm_add_one(pm, 0.6, 1);
    assert_true(isnan(pm_auc(pm)));
    assert_float_equal(pm_positive_rate(pm), 1.0, 0);
    pm_add_one(pm, NAN, 0);
    assert_int_equal(pm_count(pm), 2);
    assert_int_equal(pm_skipped(pm), 1);
    pm_destroy(pm);
    pm_destroy(NULL);
    assert_null(pm_new(3));
    assert_null(pm_new(21));
    assert_null(pm_new(-1));
}

static void test_logloss_brier_by_hand(void **state)
{
    (void)state;
    pm_t *pm = pm_new(0);
    pm_add_one(pm, 0.9, 1);
    pm_add_one(pm, 0.2, 0);
    pm_add_one(pm, 0.6, 0);
    assert_float_equal(pm_logloss(pm), (-log(0.9) - log(0.8) - log(0.4)) / 3, 1e-15);
    assert_float_equal(pm_brier(pm), (0.01 + 0.04 + 0.36) / 3, 1e-15);
    assert_float_equal(pm_positive_rate(pm), 1.0 / 3, 1e-15);
    assert_int_equal(pm_positives(pm), 1);
    pm_destroy(pm);

    /* clamping: a confident miss costs -ln(1e-7), not infinity */
    pm = pm_new(0);
    pm_add_one(pm, 0.0, 1);
    pm_add_one(pm, 1.0, 0);
    assert_float_equal(pm_logloss(pm), -log(1e-7), 1e-9);
    assert_float_equal(pm_brier(pm), 1.0, 0);
    pm_destroy(pm);
    assert_float_equal(pm_logloss_one(1.0, 1), -log1p(-1e-7), 1e-18);
    assert_float_equal(pm_logloss_one(0.25, 0), -log(0.75), 1e-15);

    /* the float batch API agrees with the scalar one */
    pm = pm_new(0);
    const float p[3] = {0.9f, 0.2f, 0.6f}, y[3] = {1, 0, 0};
    pm_add(pm, p, y, 3);
    double want = (-log((double)0.9f) - log(1 - (double)0.2f) - log(1 - (double)0.6f)) / 3;
    assert_float_equal(pm_logloss(pm), want, 1e-12);
    pm_destroy(pm);
}

static double exact_auc(const double *p, const int *y, size_t n)
{
    double wins = 0, np = 0, nn = 0;
    for (size_t i = 0; i < n; i++) {
        np += y[i];
        nn += !y[i];
        if (!y[i])
            continue;
        for (size_t j = 0; j < n; j++)
            if (!y[j])
                wins += p[i] > p[j] ? 1 : p[i] == p[j] ? 0.5 : 0;
    }
    return wins / (np * nn);
}

static void test_histogram_within_bound_of_exact(void **state)
{
    (void)state;
    const size_t n = 3000;
    double *p = malloc(n * sizeof(double));
    int *y = malloc(n * sizeof(int));
    rng_t r;
    rng_seed(&r, 77);
    for (size_t i = 0; i < n; i++) {
        y[i] = rng_uniform(&r) < 0.3;
        double logit = (y[i] ? 1.0 : -0.5) + rng_normal(&r);
        p[i] = 1 / (1 + exp(-logit));
    }
    double exact = exact_auc(p, y, n);
    int bits[] = {4, 8, 12, 16, 20};
    for (size_t b = 0; b < sizeof(bits) / sizeof(bits[0]); b++) {
        pm_t *pm = pm_new(bits[b]);
        for (size_t i = 0; i < n; i++)
            pm_add_one(pm, p[i], y[i]);
        double err = fabs(pm_auc(pm) - exact), bound = pm_auc_error_bound(pm);
        if (err > bound + 1e-12)
            fail_msg("2^%d bins: |%.6f - %.6f| > bound %.6g", bits[b], pm_auc(pm), exact, bound);
        if (bits[b] >= 16 && bound > 1e-3)
            fail_msg("2^%d bins: bound %.6g too loose", bits[b], bound);
        pm_destroy(pm);
    }
    free(p);
    free(y);
}

static void test_encode_roundtrip_and_truncation(void **state)
{
    (void)state;
    pm_t *pm = pm_new(12);
    rng_t r;
    rng_seed(&r, 5);
    for (int i = 0; i < 500; i++)
        pm_add_one(pm, rng_uniform(&r), rng_uniform(&r) < 0.4);
    pm_add_one(pm, NAN, 1);
    mw_buf_t b = {0};
    pm_encode(pm, &b);
    char err[200];
    mw_reader_t rd = {.p = b.data, .len = b.len};
    pm_t *back = pm_decode(&rd, err, sizeof(err));
    assert_non_null(back);
    assert_int_equal(rd.off, b.len);
    assert_float_equal(pm_auc(back), pm_auc(pm), 0);
    assert_float_equal(pm_logloss(back), pm_logloss(pm), 0);
    assert_int_equal(pm_skipped(back), 1);
    mw_buf_t b2 = {0};
    pm_encode(back, &b2);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.data, b.data, b.len);
    for (size_t len = 0; len < b.len; len++) {
        mw_reader_t t = {.p = b.data, .len = len};
        pm_t *bad = pm_decode(&t, err, sizeof(err));
        if (bad)
            fail_msg("decoded a %zu-byte prefix of %zu", len, b.len);
    }
    pm_destroy(pm);
    pm_destroy(back);
    free(b.data);
    free(b2.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auc_table),
        cmocka_unit_test(test_empty_and_one_class),
        cmocka_unit_test(test_logloss_brier_by_hand),
        cmocka_unit_test(test_histogram_within_bound_of_exact),
        cmocka_unit_test(test_encode_roundtrip_and_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
