/* Calibrator: recovers a planted Platt mapping, ignores incomplete ticks, follows drift
 * with its half-life, survives an encode/decode round trip and rejects corrupt input. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "calibrator.h"
#include "rng.h"

#define DAY 86400000LL

/* n labelled snapshots of one tick whose true probability is sigmoid(a * l + b). */
static void feed(cal_t *cal, rng_t *r, int64_t tick, int n, double a, double b)
{
    for (int i = 0; i < n; i++) {
        double l = rng_normal(r) * 2;
        double p = 1 / (1 + exp(-(a * l + b)));
        assert_int_equal(cal_add(cal, tick, l, rng_uniform(r) < p), 0);
    }
}

static void test_recovers_planted_mapping(void **state)
{
    (void)state;
    static const struct {
        double a, b;
    } cases[] = {{1, 0}, {2, -1}, {0.5, 0.8}, {0.7, -2}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        cal_t *cal = cal_new(365 * DAY);
        rng_t r;
        rng_seed(&r, 11 + c);
        for (int t = 0; t < 20; t++)
            feed(cal, &r, t * 7 * DAY, 5000, cases[c].a, cases[c].b);
        assert_int_equal(cal_complete_through(cal, 19 * 7 * DAY), 20);
        double a, b, w;
        cal_params(cal, &a, &b, &w);
        if (fabs(a - cases[c].a) > 0.06 || fabs(b - cases[c].b) > 0.06)
            fail_msg("case %zu: fitted a=%.3f b=%.3f, planted a=%.2f b=%.2f", c, a, b, cases[c].a,
                     cases[c].b);
        assert_float_equal(cal_apply(cal, 0.0), 1 / (1 + exp(-b)), 1e-12);
        cal_destroy(cal);
    }
}

static void test_incomplete_ticks_wait(void **state)
{
    (void)state;
    cal_t *cal = cal_new(28 * DAY);
    rng_t r;
    rng_seed(&r, 5);
    feed(cal, &r, 7 * DAY, 2000, 2, -1);
    feed(cal, &r, 14 * DAY, 2000, 2, -1);
    double a, b, w;
    cal_params(cal, &a, &b, &w);
    assert_true(a == 1 && b == 0 && w == 0); /* identity until a tick completes */
    assert_float_equal(cal_apply(cal, 1.5), 1 / (1 + exp(-1.5)), 1e-12);
    assert_int_equal(cal_complete_through(cal, 7 * DAY), 1); /* only the first */
    cal_params(cal, &a, &b, &w);
    assert_float_equal(w, 2000, 1e-9);
    assert_int_equal(cal_complete_through(cal, 7 * DAY), 0);
    cal_destroy(cal);
}

static void test_follows_drift(void **state)
{
    (void)state;
    /* The intercept moves from -1 to +1; with a 14-day half-life, 20 weekly ticks after the
     * change leave the old regime with weight 2^-10. */
    cal_t *cal = cal_new(14 * DAY);
    rng_t r;
    rng_seed(&r, 9);
    int64_t t = 0;
    for (int i = 0; i < 20; i++, t += 7 * DAY)
        feed(cal, &r, t, 3000, 1, -1);
    cal_complete_through(cal, t);
    for (int i = 0; i < 20; i++, t += 7 * DAY)
        feed(cal, &r, t, 3000, 1, 1);
    cal_complete_through(cal, t);
    double a, b, w;
    cal_params(cal, &a, &b, &w);
    assert_true(fabs(b - 1) < 0.1);
    cal_destroy(cal);
}

static void test_round_trip_and_corruption(void **state)
{
    (void)state;
    cal_t *cal = cal_new(28 * DAY);
    rng_t r;
    rng_seed(&r, 3);
    for (int t = 0; t < 5; t++)
        feed(cal, &r, t * DAY, 300, 1.5, 0.2);
    cal_complete_through(cal, 2 * DAY);
    mw_buf_t b = {0};
    cal_encode(cal, &b);
    mw_reader_t rd = {.p = b.data, .len = b.len, .off = 0};
    char err[128];
    cal_t *back = cal_decode(&rd, err, sizeof(err));
    assert_non_null(back);
    assert_int_equal(rd.off, b.len);
    mw_buf_t b2 = {0};
    cal_encode(back, &b2);
    assert_int_equal(b.len, b2.len);
    assert_memory_equal(b.data, b2.data, b.len);
    /* Both go on identically. */
    assert_int_equal(cal_complete_through(cal, 10 * DAY), cal_complete_through(back, 10 * DAY));
    assert_float_equal(cal_apply(cal, 0.3), cal_apply(back, 0.3), 0);
    cal_destroy(back);
    /* Every truncation is refused, never read past the end. */
    for (size_t len = 0; len < b.len; len++) {
        mw_reader_t t = {.p = b.data, .len = len, .off = 0};
        cal_t *c = cal_decode(&t, err, sizeof(err));
        if (c)
            fail_msg("truncated at %zu of %zu accepted", len, b.len);
    }
    free(b.data);
    free(b2.data);
    cal_destroy(cal);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recovers_planted_mapping),
        cmocka_unit_test(test_incomplete_ticks_wait),
        cmocka_unit_test(test_follows_drift),
        cmocka_unit_test(test_round_trip_and_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
