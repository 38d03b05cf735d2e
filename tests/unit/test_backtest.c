/* Backtest metrics against values computed by hand (and matching
 * shared/tools/backtest_score.py's definitions). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backtest.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_auc_table(void **state)
{
    (void)state;
    static const struct {
        bt_row_t rows[6];
        size_t n;
        double auc;
    } cases[] = {
        /* perfect ranking */
        {{{0, .9, 1}, {0, .8, 1}, {0, .2, 0}, {0, .1, 0}}, 4, 1.0},
        /* reversed */
        {{{0, .1, 1}, {0, .2, 1}, {0, .8, 0}, {0, .9, 0}}, 4, 0.0},
        /* all tied: one half */
        {{{0, .5, 1}, {0, .5, 0}, {0, .5, 1}, {0, .5, 0}}, 4, 0.5},
        /* mixed: pairs (pos, neg) = (.8,.7)+ (.8,.3)+ (.4,.7)- (.4,.3)+ -> 3/4 */
        {{{0, .8, 1}, {0, .7, 0}, {0, .4, 1}, {0, .3, 0}}, 4, 0.75},
        /* a tie across classes counts one half: (.6,.6)=.5, (.6,.2)=1, (.9,.6)=1, (.9,.2)=1 */
        {{{0, .6, 1}, {0, .9, 1}, {0, .6, 0}, {0, .2, 0}}, 4, 3.5 / 4},
    };
    for (size_t i = 0; i < N(cases); i++)
        assert_float_equal(bt_auc(cases[i].rows, cases[i].n), cases[i].auc, 1e-12);
    bt_row_t one_class[] = {{0, .3, 1}, {0, .4, 1}};
    assert_true(isnan(bt_auc(one_class, 2)));
}

static void test_compute_by_hand(void **state)
{
    (void)state;
    /* Two ticks of 10 rows; tick 1: positives are the top 2 scores; tick 2: the top score is
     * a negative, 3 positives below. */
    bt_row_t rows[20];
    for (int i = 0; i < 10; i++) {
        rows[i] = (bt_row_t){100, 0.9 - 0.05 * i, i < 2};
        rows[10 + i] = (bt_row_t){200, 0.9 - 0.05 * i, i >= 1 && i <= 3};
    }
    bt_metrics_t m;
    assert_int_equal(bt_compute(rows, 20, &m), 0);
    assert_int_equal(m.snapshots, 20);
    assert_int_equal(m.positives, 5);
    assert_int_equal(m.ticks, 2);
    assert_float_equal(m.positive_rate, 0.25, 1e-12);
    /* top 10% of 10 rows = 1 row: precision 1 at tick 100, 0 at tick 200 */
    assert_float_equal(m.top10_precision, 0.5, 1e-12);
    /* lift: 1/0.2 = 5 and 0/0.3 = 0 -> mean 2.5 */
    assert_float_equal(m.top10_lift, 2.5, 1e-12);
    /* second half = tick 200 only: positives ranks 9,8,7 of 10 (ascending), 3 pos, 7 neg:
     * (24 - 6) / 21 */
    assert_float_equal(m.auc_second_half, 18.0 / 21.0, 1e-12);
    /* Brier and log-loss straight from the definitions */
    double brier = 0, ll = 0, ll2 = 0;
    for (int i = 0; i < 10; i++) {
        double s = (float)(0.9 - 0.05 * i); /* bt_row_t holds a float */
        int y1 = i < 2, y2 = i >= 1 && i <= 3;
        brier += (s - y1) * (s - y1) + (s - y2) * (s - y2);
        ll += -(y1 ? log(s) : log(1 - s)) - (y2 ? log(s) : log(1 - s));
        ll2 += -(y2 ? log(s) : log(1 - s));
    }
    assert_float_equal(m.brier, brier / 20, 1e-12);
    assert_float_equal(m.logloss, ll / 20, 1e-12);
    /* second half = tick 200 only, as for the AUC */
    assert_float_equal(m.logloss_second_half, ll2 / 10, 1e-12);
}

static void test_top_precision_ties(void **state)
{
    (void)state;
    /* 10 rows, k = 1, the top score tied between a positive and a negative: the tied group's
     * mean label (0.5) fills the one slot. */
    bt_row_t rows[10];
    for (int i = 0; i < 10; i++)
        rows[i] = (bt_row_t){0, i < 2 ? 0.9 : 0.1 * i / 10, i == 0};
    bt_metrics_t m;
    assert_int_equal(bt_compute(rows, 10, &m), 0);
    assert_float_equal(m.top10_precision, 0.5, 1e-12);
}

static void test_non_probabilities(void **state)
{
    (void)state;
    /* Days since last activity are not probabilities: no log-loss, no Brier. */
    bt_row_t rows[] = {{0, 3, 0}, {0, 40, 1}, {0, 12, 0}};
    bt_metrics_t m;
    assert_int_equal(bt_compute(rows, 3, &m), 0);
    assert_true(isnan(m.logloss));
    assert_true(isnan(m.brier));
    assert_float_equal(m.auc, 1.0, 1e-12);
}

/* bt_compute's sort must give the order of a stable sort by (tick, score descending), ties
 * in input order (the sums over the rows depend on it): against an insertion sort, on rows
 * with heavy ties, negative ticks, -0.0 next to +0.0, negative scores and float-widened
 * scores, large enough for every radix digit to vary. */
static int before(const bt_row_t *x, const bt_row_t *y)
{
    if (x->tick_ms != y->tick_ms)
        return x->tick_ms < y->tick_ms;
    return x->score > y->score;
}

static void test_sort_is_stable(void **state)
{
    (void)state;
    enum { N = 5000 };
    bt_row_t *rows = malloc(N * sizeof(*rows)), *want = malloc(N * sizeof(*want));
    assert_non_null(rows);
    assert_non_null(want);
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < N; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        uint32_t r = (uint32_t)(seed >> 33);
        int64_t ticks[] = {-86400000LL, 0, 1704067200000LL, 1704153600000LL, 1727395200000LL};
        double scores[] = {0.0, -0.0, 0.25, (double)0.1f, -3.5, 1e-300, 0.9999, 42.0};
        rows[i].tick_ms = ticks[r % 5];
        rows[i].score = r % 3 ? scores[(r >> 8) % 8] : (double)(float)((r >> 4) % 9973) / 97.0;
        rows[i].y = (int)((r >> 20) & 1);
    }
    memcpy(want, rows, N * sizeof(*rows));
    for (size_t i = 1; i < N; i++) {
        bt_row_t x = want[i];
        size_t j = i;
        for (; j > 0 && before(&x, &want[j - 1]); j--)
            want[j] = want[j - 1];
        want[j] = x;
    }
    bt_metrics_t m;
    assert_int_equal(bt_compute(rows, N, &m), 0);
    for (size_t i = 0; i < N; i++) {
        assert_true(rows[i].tick_ms == want[i].tick_ms);
        assert_memory_equal(&rows[i].score, &want[i].score, sizeof(double)); /* bits: -0.0 */
        assert_int_equal(rows[i].y, want[i].y);
    }
    free(rows);
    free(want);
}

/* The second half's AUC comes from the pooled sort, filtered: it must equal bt_auc on the
 * second half's rows alone, bit for bit (heavy ties across the halves, both classes). */
static void test_second_half_auc_from_one_sort(void **state)
{
    (void)state;
    enum { N = 4000 };
    bt_row_t *rows = malloc(N * sizeof(*rows));
    assert_non_null(rows);
    uint64_t seed = 12345;
    for (size_t i = 0; i < N; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        uint32_t r = (uint32_t)(seed >> 33);
        rows[i].tick_ms = (int64_t)(r % 7) * 86400000LL;
        rows[i].score = (double)(float)((r >> 3) % 50) / 50.0; /* 50 values: many ties */
        rows[i].y = (int)((r >> 12) % 3 == 0);
    }
    bt_metrics_t m;
    assert_int_equal(bt_compute(rows, N, &m), 0);
    /* rows are sorted by tick now: the second half starts at tick index ticks / 2 */
    size_t h = 0, tick = 0;
    while (h < N && tick < m.ticks / 2) {
        size_t j = h;
        while (j < N && rows[j].tick_ms == rows[h].tick_ms)
            j++;
        h = j;
        tick++;
    }
    double alone = bt_auc(rows + h, N - h), pooled = bt_auc(rows, N);
    assert_true(h > 0 && h < N);
    assert_memory_equal(&m.auc_second_half, &alone, sizeof(double));
    assert_memory_equal(&m.auc, &pooled, sizeof(double));
    free(rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auc_table),
        cmocka_unit_test(test_compute_by_hand),
        cmocka_unit_test(test_top_precision_ties),
        cmocka_unit_test(test_non_probabilities),
        cmocka_unit_test(test_sort_is_stable),
        cmocka_unit_test(test_second_half_auc_from_one_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
