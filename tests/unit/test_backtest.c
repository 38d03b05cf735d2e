/* Backtest metrics against values computed by hand (and matching
 * shared/tools/backtest_score.py's definitions). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

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
        double s = 0.9 - 0.05 * i;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auc_table),
        cmocka_unit_test(test_compute_by_hand),
        cmocka_unit_test(test_top_precision_ties),
        cmocka_unit_test(test_non_probabilities),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
