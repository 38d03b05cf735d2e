/* The calendar of open days (open_days.h): B(d) against a naive count on random
 * calendars, days before the base and past the last mark, the open share, idempotent
 * marks, the lull weights (against a naive computation, and on a steady shop with a lull,
 * a rise and a small shop), and the snapshot section's round trip and corruption checks. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "open_days.h"
#include "rng.h"

static void test_empty_reads_calendar(void **state)
{
    (void)state;
    od_t od;
    od_init(&od);
    assert_true(od_before(&od, 12345) == 12345);
    assert_true(od_share(&od, 12345, 365) == 1.0);
    od_free(&od);
}

/* The rule, naively: open when active, else when the last OD_MEAN_DAYS active days before it
 * average below OD_MIN_EXPECTED user-days (or there are none). */
static int naive_open(const int *cnt, int i)
{
    if (cnt[i])
        return 1;
    double sum = 0;
    int n = 0;
    for (int k = i - 1; k >= 0 && n < OD_MEAN_DAYS; k--)
        if (cnt[k]) {
            sum += cnt[k];
            n++;
        }
    return n == 0 || sum < OD_MIN_EXPECTED * n;
}

/* B(d2) - B(d1) is the number of open days in [d1, d2) by the rule, whatever the order of
 * the marks (late ones included): random calendars of 1..400 days, busy and quiet. */
/* Marks the days of order[0..n) (day offsets from base, ascending; with r, order[0] = 0
 * stays first and the rest is shuffled: late marks and gaps in every order), counting them
 * into cnt; returns the last day with a mark (offset < span). */
static int mark_days(od_t *od, int64_t base, int *order, int n, int *cnt, int span, rng_t *r)
{
    for (int i = n - 1; r && i > 1; i--) {
        int j = 1 + (int)(rng_uniform(r) * i);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i < n; i++) {
        assert_int_equal(od_mark(od, base + order[i]), 0);
        cnt[order[i]]++;
    }
    int last = 0;
    for (int i = 0; i < span; i++)
        if (cnt[i])
            last = i;
    return last;
}

static void test_before_matches_naive_count(void **state)
{
    (void)state;
    rng_t r;
    rng_seed(&r, 11);
    enum { MAXD = 600 };
    for (int round = 0; round < 60; round++) {
        od_t od;
        od_init(&od);
        const int64_t base = 18000 + (int64_t)(rng_uniform(&r) * 100);
        const int span = 1 + (int)(rng_uniform(&r) * 400);
        static int cnt[MAXD];
        memset(cnt, 0, sizeof(cnt));
        double density = rng_uniform(&r), busy = 1 + rng_uniform(&r) * 8;
        static int order[MAXD * 10];
        int n = 0;
        order[n++] = 0; /* the base day first */
        for (int i = 1; i < span; i++)
            if (rng_uniform(&r) < density)
                for (int k = 1 + (int)(rng_uniform(&r) * busy); k > 0; k--)
                    order[n++] = i;
        int last = mark_days(&od, base, order, n, cnt, span, &r);
        assert_int_equal(od_mark(&od, base - 5), 0); /* before base: ignored */
        for (int lo = -20; lo < span + 20; lo += 7)
            for (int hi = lo; hi < span + 30; hi += 3) {
                int want = 0;
                for (int d = lo; d < hi; d++)
                    want += d < 0 ? 1 : naive_open(cnt, d <= last ? d : last + 1);
                double got = od_before(&od, base + hi) - od_before(&od, base + lo);
                if (got != want)
                    fail_msg("round %d [%d, %d): %g open days, want %d", round, lo, hi, got, want);
            }
        od_free(&od);
    }
}

/* The lull weight of day i, naively (open_days.h): cnt[0..n) the counts, n = last + 1 (the
 * last day is left out of every week's mean). */
static double naive_weight(const int *cnt, int n, int i)
{
    if (!naive_open(cnt, i))
        return 0;
    int lo = i > 3 ? i - 3 : 0, hi = i + 4 < n - 1 ? i + 4 : n - 1, blo = i > 56 ? i - 56 : 0;
    double open_week = 0, sum_week = 0, open_base = 0, sum_base = 0;
    for (int d = lo; d < hi; d++) {
        open_week += naive_open(cnt, d);
        sum_week += cnt[d];
    }
    for (int d = blo; d < i; d++) {
        open_base += naive_open(cnt, d);
        sum_base += cnt[d];
    }
    if (open_week <= 0 || open_base < OD_LULL_MIN_OPEN || sum_base / open_base < OD_LULL_MIN_MEAN)
        return 1;
    double w = sum_week / open_week / (sum_base / open_base);
    return w >= 1 ? 1 : w < OD_LULL_FLOOR ? OD_LULL_FLOOR : w;
}

/* With lulls on, B(d2) - B(d1) is the naive sum of the weights, with the marks in time order
 * or any other (late ones re-weigh the days around them), and switching lulls off gives the
 * open day count back. */
static void test_lull_matches_naive(void **state)
{
    (void)state;
    rng_t r;
    rng_seed(&r, 23);
    enum { MAXD = 300 };
    for (int round = 0; round < 40; round++) {
        od_t od;
        od_init(&od);
        od_set_lull(&od, 1);
        const int64_t base = 18000;
        const int span = 30 + (int)(rng_uniform(&r) * 250);
        static int cnt[MAXD];
        memset(cnt, 0, sizeof(cnt));
        double busy = 2 + rng_uniform(&r) * 30;
        static int order[MAXD * 40];
        int n = 0;
        order[n++] = 0;
        for (int i = 1; i < span; i++) {
            double level = (i / 20) % 3 == 1 ? 0.3 : 1; /* lulls every 60 days */
            if (rng_uniform(&r) < 0.9)
                for (int k = (int)(rng_uniform(&r) * busy * level); k > 0; k--)
                    order[n++] = i;
        }
        /* every other round in time order, as a stream marks them: each new last day re-weighs
         * the week before it */
        int last = mark_days(&od, base, order, n, cnt, span, round % 2 ? &r : NULL);
        double want = 0;
        for (int d = 0; d < span + 10; d++) {
            want += d <= last ? naive_weight(cnt, last + 1, d) : naive_open(cnt, last + 1);
            double got = od_before(&od, base + d + 1) - od_before(&od, base);
            if (fabs(got - want) > 1e-9)
                fail_msg("round %d day %d: B = %.12g, naive %.12g", round, d, got, want);
        }
        od_set_lull(&od, 0);
        int open = 0;
        for (int d = 0; d <= last; d++)
            open += naive_open(cnt, d);
        assert_true(od_before(&od, base + last + 1) - od_before(&od, base) == open);
        od_free(&od);
    }
}

/* A steady shop (40 user-days a day), then two weeks at a quarter of that, then back, then
 * a rise to 4x: the lull counts about a quarter, the rise 1; the first weeks count 1; a
 * small shop (3 a day) counts calendar days throughout. */
static void test_lull_shapes(void **state)
{
    (void)state;
    od_t od;
    od_init(&od);
    od_set_lull(&od, 1);
    for (int d = 0; d < 200; d++) {
        int k = d >= 100 && d < 114 ? 10 : d >= 150 ? 160 : 40;
        for (int i = 0; i < k; i++)
            assert_int_equal(od_mark(&od, 1000 + d), 0);
    }
    assert_true(od_before(&od, 1000 + 97) - od_before(&od, 1000) == 97);   /* steady: 1 */
    double lull = od_before(&od, 1000 + 111) - od_before(&od, 1000 + 103); /* inside it */
    assert_true(lull > 8 * 0.25 - 1e-9 && lull < 8 * 0.3);
    assert_true(od_before(&od, 1000 + 200) - od_before(&od, 1000 + 147) == 53); /* the rise */
    od_free(&od);
    od_set_lull(&od, 1);
    for (int d = 0; d < 200; d++)
        for (int i = 0; i < (d >= 100 && d < 114 ? 1 : 3); i++)
            assert_int_equal(od_mark(&od, 1000 + d), 0);
    assert_true(od_before(&od, 1000 + 200) - od_before(&od, 1000) == 200); /* small: calendar */
    od_free(&od);
}

/* A busy shop closed at weekends: 5 of 7 days open, and a holiday is closed. */
static void test_share(void **state)
{
    (void)state;
    od_t od;
    od_init(&od);
    for (int64_t d = 7000; d < 7000 + 700; d++)
        if ((d + 3) % 7 < 5 && !(d >= 7300 && d < 7310))
            for (int k = 0; k < 20; k++)
                assert_int_equal(od_mark(&od, d), 0);
    double s = od_share(&od, 7000 + 350, 350);
    assert_true(s > 0.69 && s < 0.7); /* 250 - 7 holiday weekdays of 350 */
    assert_true(od_before(&od, 7310) - od_before(&od, 7296) == 2); /* 2 weekdays before 7300 */
    /* Early on, days before the calendar count as open. */
    assert_true(od_share(&od, 7000 + 7, 365) > 0.99);
    /* After the last active day a busy shop's silence is closed: 1 / window, never 0. */
    assert_true(od_share(&od, 7000 + 2000, 365) == 1.0 / 365);
    od_free(&od);
}

/* A quiet shop (one user-day on some days): its empty days stay open (calendar time). */
static void test_quiet_shop_keeps_calendar(void **state)
{
    (void)state;
    od_t od;
    od_init(&od);
    for (int64_t d = 100; d < 400; d += 3)
        assert_int_equal(od_mark(&od, d), 0);
    assert_true(od_before(&od, 500) - od_before(&od, 100) == 400);
    assert_true(od_share(&od, 500, 365) == 1.0);
    od_free(&od);
}

static void test_limits(void **state)
{
    (void)state;
    od_t od;
    od_init(&od);
    for (int k = 0; k < 10; k++)
        assert_int_equal(od_mark(&od, 100), 0);
    assert_int_equal(od_mark(&od, 100 + OD_MAX_DAYS), 0); /* out of reach: ignored */
    assert_int_equal(od.ndays, 1);
    for (int k = 0; k < 10; k++)
        assert_int_equal(od_mark(&od, 100 + OD_MAX_DAYS - 1), 0);
    assert_int_equal(od.ndays, OD_MAX_DAYS);
    assert_true(od_before(&od, 100 + OD_MAX_DAYS) - od_before(&od, 100) == 2);
    assert_true(od_before(&od, 100 + OD_MAX_DAYS + 10) - od_before(&od, 100) == 12);
    for (int k = 0; k < 70000; k++) /* counts saturate */
        assert_int_equal(od_mark(&od, 100), 0);
    assert_int_equal(od.count[0], UINT16_MAX);
    od_free(&od);
}

static void test_round_trip_and_corruption(void **state)
{
    (void)state;
    od_t od, back;
    od_init(&od);
    od_init(&back);
    for (int64_t d = 5000; d < 5130; d += 2)
        for (int k = 0; k < 1 + d % 5; k++)
            assert_int_equal(od_mark(&od, d), 0);
    mw_buf_t b = {0};
    od_encode(&od, &b);
    assert_false(b.failed);
    assert_int_equal(b.len, 4 + 8 + 2 * 129); /* 129 days */
    mw_reader_t r = {.p = b.data, .len = b.len};
    assert_int_equal(od_decode(&back, &r), 0);
    assert_int_equal(r.off, b.len);
    for (int64_t d = 4990; d < 5140; d++)
        assert_true(od_before(&back, d) == od_before(&od, d));
    for (size_t cut = 0; cut < b.len; cut++) {
        mw_reader_t t = {.p = b.data, .len = cut};
        assert_int_equal(od_decode(&back, &t), -1);
        assert_int_equal(back.ndays, 0);
    }
    /* a last day with no count, a base day with no count, ndays over the limit */
    uint8_t *c = malloc(b.len);
    memcpy(c, b.data, b.len);
    c[b.len - 1] = c[b.len - 2] = 0;
    mw_reader_t t1 = {.p = c, .len = b.len};
    assert_int_equal(od_decode(&back, &t1), -1);
    memcpy(c, b.data, b.len);
    c[12] = c[13] = 0;
    mw_reader_t t2 = {.p = c, .len = b.len};
    assert_int_equal(od_decode(&back, &t2), -1);
    memcpy(c, b.data, b.len);
    c[3] = 0x7f;
    mw_reader_t t3 = {.p = c, .len = b.len};
    assert_int_equal(od_decode(&back, &t3), -1);
    /* the empty calendar is one u32 */
    od_t empty;
    od_init(&empty);
    mw_buf_t e = {0};
    od_encode(&empty, &e);
    assert_int_equal(e.len, 4);
    mw_reader_t re = {.p = e.data, .len = e.len};
    assert_int_equal(od_decode(&back, &re), 0);
    assert_int_equal(back.ndays, 0);
    free(c);
    free(b.data);
    free(e.data);
    od_free(&od);
    od_free(&back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_reads_calendar),
        cmocka_unit_test(test_before_matches_naive_count),
        cmocka_unit_test(test_share),
        cmocka_unit_test(test_quiet_shop_keeps_calendar),
        cmocka_unit_test(test_lull_matches_naive),
        cmocka_unit_test(test_lull_shapes),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_round_trip_and_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
