/* The replay's streaming metrics against the in-memory ones: auc_spill (exact AUCs merged
 * from sorted runs on disk) against bt_auc, and replay_metrics (ticks closed as their labels
 * complete) against bt_compute over all in-window rows at once. Small spill buffers force
 * many runs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auc_spill.h"
#include "backtest.h"
#include "replay_metrics.h"

static uint64_t rng = 88172645463325252ULL;
static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* A score: half the time from 200 levels (many ties), else continuous; the label leans on it. */
static float score_and_label(int *y)
{
    float s = uniform() < 0.5 ? (float)((int)(uniform() * 200) / 200.0) : (float)uniform();
    *y = uniform() < 0.2 + 0.6 * s;
    return s;
}

static unsigned member_all_even(uint32_t payload, void *ctx)
{
    (void)ctx;
    return 1u | ((payload >> 1) % 2 == 0 ? 2u : 0u);
}

static void test_spill_matches_memory(void **state)
{
    (void)state;
    enum { N = 50000 };
    bt_row_t *all = malloc(N * sizeof(*all)), *even = malloc(N * sizeof(*even));
    size_t neven = 0;
    auc_spill_t *s = as_new(1024);
    assert_non_null(s);
    for (uint32_t i = 0; i < N; i++) {
        int y;
        float v = score_and_label(&y);
        all[i] = (bt_row_t){0, v, y};
        if (i % 2 == 0)
            even[neven++] = all[i];
        assert_int_equal(as_add(s, v, i << 1 | (uint32_t)y), 0);
    }
    assert_true(as_runs(s) >= N / 1024 - 1);
    double out[2];
    assert_int_equal(as_result(s, 2, member_all_even, NULL, out), 0);
    /* bit for bit, not within a tolerance */
    assert_true(out[0] == bt_auc(all, N));
    assert_true(out[1] == bt_auc(even, neven));
    assert_true(out[0] > 0.6 && out[0] < 0.9);
    /* the spill is empty after a result and can be used again */
    assert_int_equal(as_runs(s), 0);
    assert_int_equal(as_add(s, 0.5f, 1), 0);
    assert_int_equal(as_add(s, 0.25f, 0), 0);
    assert_int_equal(as_result(s, 2, member_all_even, NULL, out), 0);
    assert_true(out[0] == 1.0);
    as_free(s);
    free(all);
    free(even);
}

static void test_spill_one_class_and_empty(void **state)
{
    (void)state;
    auc_spill_t *s = as_new(1024);
    double out[2];
    assert_int_equal(as_result(s, 2, member_all_even, NULL, out), 0);
    assert_true(isnan(out[0]) && isnan(out[1]));
    for (uint32_t i = 0; i < 3000; i++)
        assert_int_equal(as_add(s, (float)uniform(), i << 1 | 1u), 0);
    assert_int_equal(as_result(s, 2, member_all_even, NULL, out), 0);
    assert_true(isnan(out[0]) && isnan(out[1]));
    as_free(s);
}

static void test_spill_unwritable_dir(void **state)
{
    (void)state;
    const char *old = getenv("TMPDIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("TMPDIR", "/nonexistent/churnstream-test", 1);
    auc_spill_t *s = as_new(1024);
    int rc = 0;
    for (uint32_t i = 0; i < 2000 && rc == 0; i++)
        rc = as_add(s, (float)uniform(), i & 1u);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(as_error(s), "/nonexistent/churnstream-test"));
    as_free(s);
    if (saved)
        setenv("TMPDIR", saved, 1);
    else
        unsetenv("TMPDIR");
    free(saved);
}

#define TICKS   40
#define TICK_MS 1000
#define H_TICKS 6

static void expect_same(const bt_metrics_t *a, const bt_metrics_t *b)
{
    assert_int_equal(a->snapshots, b->snapshots);
    assert_int_equal(a->positives, b->positives);
    assert_int_equal(a->ticks, b->ticks);
    /* exact, NaN equal to NaN */
    const double x[] = {a->auc,        a->auc_second_half, a->logloss, a->brier, a->top10_precision,
                        a->top10_lift, a->positive_rate};
    const double y[] = {b->auc,        b->auc_second_half, b->logloss, b->brier, b->top10_precision,
                        b->top10_lift, b->positive_rate};
    for (size_t i = 0; i < sizeof(x) / sizeof(x[0]); i++)
        assert_true(x[i] == y[i] || (isnan(x[i]) && isnan(y[i])));
    if (isnan(b->logloss_second_half))
        assert_true(isnan(a->logloss_second_half));
    else
        assert_float_equal(a->logloss_second_half, b->logloss_second_half, 1e-12);
}

/* The in-memory metrics of column c (0 model, 1 recency, 2.. experts) of rows[0..n). */
static void in_memory(const rp_row_t *rows, size_t n, int c, bt_metrics_t *out)
{
    bt_row_t *a = malloc((n ? n : 1) * sizeof(*a));
    for (size_t i = 0; i < n; i++) {
        float v = c == 0 ? rows[i].score : c == 1 ? rows[i].recency_days : rows[i].expert[c - 2];
        a[i] = (bt_row_t){rows[i].tick_ms, v, rows[i].y};
    }
    assert_int_equal(bt_compute(a, n, out), 0);
    free(a);
}

static void test_stream_matches_all_at_once(void **state)
{
    (void)state;
    /* Each tick's rows are labelled at random times within its horizon; ticks close as the
     * clock passes T + H; the input ends at TICKS, so the labels of the last H_TICKS - 1
     * ticks' windows are cut: those seen before the end are censored. */
    enum { PER_TICK = 300 };
    size_t n = TICKS * PER_TICK, nin = 0;
    rp_row_t *rows = malloc(n * sizeof(*rows)), *in = malloc(n * sizeof(*in));
    int *at = malloc(n * sizeof(*at));
    for (size_t i = 0; i < n; i++) {
        int y, t = (int)(i / PER_TICK);
        float s = score_and_label(&y);
        int y2;
        rows[i] = (rp_row_t){.tick_ms = (int64_t)t * TICK_MS,
                             .score = s,
                             .recency_days = (float)(uniform() * 60),
                             .expert = {(float)uniform(), score_and_label(&y2), 0.5f},
                             .seg = (int16_t)(i % 5),
                             .y = (int8_t)y};
        at[i] = t + (int)(uniform() * H_TICKS); /* when its label arrives, < T + H */
    }
    /* the columns summed on two threads: the figures must still be bt_compute's, bit for bit */
    cs_pool_t *team = cs_pool_new(2);
    assert_non_null(team);
    rp_metrics_t *m = rpm_new(1024, team);
    assert_non_null(m);
    for (int clock = 0; clock < TICKS; clock++) {
        for (size_t i = 0; i < n; i++)
            if (at[i] == clock)
                assert_int_equal(rpm_add(m, &rows[i]), 0);
        assert_int_equal(rpm_close_before(m, (int64_t)(clock - H_TICKS + 1) * TICK_MS), 0);
    }
    assert_true(rpm_spilled_runs(m) > 0);
    /* a label of a closed tick is refused */
    assert_int_equal(rpm_add(m, &rows[0]), 1);
    int64_t end_ms = (int64_t)TICKS * TICK_MS, H = (int64_t)H_TICKS * TICK_MS;
    rp_summary_t sum = {.scored = n};
    assert_int_equal(rpm_finish(m, H, end_ms, &sum), 0);
    /* the in-window rows in label order */
    for (int clock = 0; clock < TICKS; clock++)
        for (size_t i = 0; i < n; i++)
            if (at[i] == clock && rows[i].tick_ms + H <= end_ms)
                in[nin++] = rows[i];
    assert_int_equal(sum.labelled, nin);
    assert_int_equal(sum.censored, n - nin);
    bt_metrics_t ref;
    in_memory(in, nin, 0, &ref);
    expect_same(&sum.model, &ref);
    in_memory(in, nin, 1, &ref);
    expect_same(&sum.recency, &ref);
    for (int x = 0; x < EX_N; x++) {
        in_memory(in, nin, 2 + x, &ref);
        expect_same(&sum.experts[x], &ref);
    }
    /* early warning and first quarter against bt_auc of those subsets */
    bt_row_t *sub = malloc(nin * sizeof(*sub));
    size_t k = 0;
    for (size_t i = 0; i < nin; i++)
        if (in[i].recency_days < RP_EARLY_DAYS)
            sub[k++] = (bt_row_t){in[i].tick_ms, in[i].score, in[i].y};
    assert_true(sum.auc_early == bt_auc(sub, k));
    /* early warning on the second half: closed ticks from index nclosed / 2 on */
    size_t closed = (size_t)(TICKS - H_TICKS + 1);
    k = 0;
    for (size_t i = 0; i < nin; i++)
        if (in[i].recency_days < RP_EARLY_DAYS && in[i].tick_ms >= (int64_t)(closed / 2) * TICK_MS)
            sub[k++] = (bt_row_t){in[i].tick_ms, in[i].score, in[i].y};
    assert_true(k > 0 && sum.auc_early_second_half == bt_auc(sub, k));
    int64_t first = 0, last = (int64_t)(TICKS - H_TICKS) * TICK_MS;
    assert_int_equal(nin, (size_t)(TICKS - H_TICKS + 1) * PER_TICK);
    k = 0;
    for (size_t i = 0; i < nin; i++)
        if (in[i].tick_ms <= first + (last - first) / 4)
            sub[k++] = (bt_row_t){in[i].tick_ms, in[i].score, in[i].y};
    assert_true(sum.auc_first_quarter == bt_auc(sub, k));
    size_t seg0 = 0;
    for (size_t i = 0; i < nin; i++)
        seg0 += in[i].seg == 0;
    assert_int_equal(sum.seg_size[0], seg0);
    rpm_free(m);
    cs_pool_destroy(team);
    free(sub);
    free(rows);
    free(in);
    free(at);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spill_matches_memory),
        cmocka_unit_test(test_spill_one_class_and_empty),
        cmocka_unit_test(test_spill_unwritable_dir),
        cmocka_unit_test(test_stream_matches_all_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
