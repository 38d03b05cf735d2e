/* Unit tests for alert outcomes (processor/alerts/outcome.h): the window's edges, late
 * events, repeats, settlement by the watermark, censoring at the end, the counts by
 * dimension and the uplift interval against hand-computed values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "outcome.h"

#define DAY (86400000LL)
#define T0  (19700LL * DAY)
#define W   (30 * DAY)

static alert_t make_alert(int64_t at, alert_arm_t arm, alert_kind_t kind, int seg)
{
    alert_t a;
    memset(&a, 0, sizeof a);
    a.created_at_ms = at;
    a.event_time_ms = at;
    a.arm = arm;
    a.kind = kind;
    a.risk_bucket = ALERT_HIGH;
    a.segment_id = seg;
    return a;
}

static void test_window_edges(void **unused)
{
    /* (a, a + W]: an activity at a itself does not count, one at a + W does. */
    static const struct {
        int64_t t;
        int decided;
        oc_outcome_t o;
    } cases[] = {
        {T0 - DAY, 0, OC_RETAINED}, /* before the alert (a late event) */
        {T0, 0, OC_RETAINED},
        {T0 + 1, 1, OC_RETAINED},
        {T0 + W, 1, OC_RETAINED},
        {T0 + W + 1, 1, OC_NOT_RETAINED}, /* the watermark (below) passed a + W */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        user_rec_t rec;
        user_rec_init(&rec);
        alert_t a = make_alert(T0, ALERT_HOLDOUT, ALERT_LAPSED, 5);
        oc_result_t r;
        assert_int_equal(oc_start(&rec, &a, ALERT_ARCH_LOYAL, &r), 1);
        assert_int_equal(rec.outcome_alert_ms, T0);
        int d = oc_activity(&rec, cases[k].t, W, T0 + W + 1, &r);
        assert_int_equal(d, cases[k].decided);
        if (!d) {
            assert_int_equal(rec.outcome_alert_ms, T0);
            continue;
        }
        assert_int_equal(r.outcome, cases[k].o);
        assert_int_equal(r.arm, ALERT_HOLDOUT);
        assert_int_equal(r.kind, ALERT_LAPSED);
        assert_int_equal(r.bucket, ALERT_HIGH);
        assert_int_equal(r.arch, ALERT_ARCH_LOYAL);
        assert_int_equal(r.seg, 5);
        assert_int_equal(r.alert_ms, T0);
        assert_int_equal(rec.outcome_alert_ms, INT64_MIN);
    }
}

static void test_late_event_may_still_retain(void **unused)
{
    /* An activity past the window while the watermark has not passed a + W: an event inside
     * the window may still arrive late, so nothing is decided yet. */
    user_rec_t rec;
    user_rec_init(&rec);
    alert_t a = make_alert(T0, ALERT_TREATMENT, ALERT_AT_RISK, 0);
    oc_result_t r;
    oc_start(&rec, &a, ALERT_ARCH_NEW, &r);
    assert_int_equal(oc_activity(&rec, T0 + W + DAY, W, T0 + W - 1, &r), 0);
    assert_int_equal(oc_activity(&rec, T0 + W - 5, W, T0 + W - 1, &r), 1);
    assert_int_equal(r.outcome, OC_RETAINED);
    /* Settled by a visit only once no event at or before a + W can come. */
    oc_start(&rec, &a, ALERT_ARCH_NEW, &r);
    assert_int_equal(oc_settle(&rec, T0 + W, W, &r), 0);
    assert_int_equal(oc_settle(&rec, T0 + W + 1, W, &r), 1);
    assert_int_equal(r.outcome, OC_NOT_RETAINED);
    assert_int_equal(oc_settle(&rec, T0 + 2 * W, W, &r), 0); /* exactly once */
}

static void test_repeat_and_finish(void **unused)
{
    user_rec_t rec;
    user_rec_init(&rec);
    alert_t a = make_alert(T0, ALERT_TREATMENT, ALERT_LAPSED, -1);
    alert_t b = make_alert(T0 + 14 * DAY, ALERT_TREATMENT, ALERT_LAPSED, -1);
    oc_result_t r;
    assert_int_equal(oc_start(&rec, &a, ALERT_ARCH_NONE, &r), 1);
    assert_int_equal(oc_start(&rec, &b, ALERT_ARCH_NONE, &r), 0);
    assert_int_equal(r.outcome, OC_REPEAT);
    assert_int_equal(rec.outcome_alert_ms, T0); /* the first alert's window stays */
    assert_int_equal(rec.outcome_seg, -1);
    /* End of a replay: censored when the window reaches the end, else not retained. */
    assert_int_equal(oc_finish(&rec, T0 + W, W, &r), 1);
    assert_int_equal(r.outcome, OC_CENSORED);
    assert_int_equal(oc_finish(&rec, T0 + 3 * W, W, &r), 0);
    oc_start(&rec, &a, ALERT_ARCH_NONE, &r);
    assert_int_equal(oc_finish(&rec, T0 + W + 1, W, &r), 1);
    assert_int_equal(r.outcome, OC_NOT_RETAINED);
}

static void test_uplift_interval(void **unused)
{
    /* 60/100 vs 40/100: 0.2 +- 1.959964 * sqrt(.24/100 + .24/100) = 0.2 +- 0.135786. */
    double u, lo, hi;
    oc_uplift(100, 60, 100, 40, &u, &lo, &hi);
    assert_float_equal(u, 0.2, 1e-12);
    assert_float_equal(lo, 0.2 - 1.959964 * sqrt(0.0048), 1e-12);
    assert_float_equal(hi, 0.2 + 1.959964 * sqrt(0.0048), 1e-12);
    assert_float_equal(hi - lo, 2 * 0.135786, 1e-5);
    oc_uplift(0, 0, 10, 3, &u, &lo, &hi);
    assert_true(isnan(u) && isnan(lo) && isnan(hi));
}

static void add(oc_stats_t *st, alert_arm_t arm, alert_kind_t kind, const char *action,
                oc_outcome_t o, int n)
{
    oc_result_t r = {.outcome = o,
                     .arm = arm,
                     .kind = kind,
                     .seg = 2,
                     .arch = ALERT_ARCH_CHAMPIONS,
                     .action = action};
    for (int i = 0; i < n; i++)
        assert_int_equal(oc_stats_add(st, &r), 0);
}

static void test_stats_rows(void **unused)
{
    oc_stats_t *st = oc_stats_new();
    assert_non_null(st);
    add(st, ALERT_TREATMENT, ALERT_LAPSED, "win-back campaign", OC_RETAINED, 30);
    add(st, ALERT_TREATMENT, ALERT_LAPSED, "win-back campaign", OC_NOT_RETAINED, 70);
    add(st, ALERT_TREATMENT, ALERT_AT_RISK, "coupon", OC_RETAINED, 30);
    add(st, ALERT_TREATMENT, ALERT_AT_RISK, "coupon", OC_NOT_RETAINED, 20);
    add(st, ALERT_HOLDOUT, ALERT_LAPSED, "win-back campaign", OC_RETAINED, 1);
    add(st, ALERT_HOLDOUT, ALERT_LAPSED, "win-back campaign", OC_NOT_RETAINED, 9);
    add(st, ALERT_HOLDOUT, ALERT_LAPSED, "win-back campaign", OC_CENSORED, 4);
    add(st, ALERT_TREATMENT, ALERT_LAPSED, "win-back campaign", OC_REPEAT, 7);
    oc_row_t *rows;
    size_t n = oc_stats_rows(st, OC_BY_ALL, &rows);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].key, "all");
    assert_int_equal(rows[0].n[0], 150);
    assert_int_equal(rows[0].retained[0], 60);
    assert_int_equal(rows[0].n[1], 10);
    assert_int_equal(rows[0].retained[1], 1);
    assert_int_equal(rows[0].censored[1], 4);
    assert_int_equal(rows[0].repeats[0], 7);
    assert_float_equal(rows[0].uplift, 0.4 - 0.1, 1e-12);
    free(rows);
    n = oc_stats_rows(st, OC_BY_ACTION, &rows);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].key, "coupon");
    assert_true(isnan(rows[0].uplift)); /* no holdout alert with a coupon */
    assert_string_equal(rows[1].key, "win-back campaign");
    assert_float_equal(rows[1].uplift, 0.3 - 0.1, 1e-12);
    free(rows);
    n = oc_stats_rows(st, OC_BY_SEGMENT, &rows);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].key, "seg 2 (champions)");
    free(rows);
    oc_stats_t *b = oc_stats_new();
    assert_int_equal(oc_stats_merge(b, st), 0);
    assert_int_equal(oc_stats_merge(b, st), 0);
    n = oc_stats_rows(b, OC_BY_KIND, &rows);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].key, "at_risk");
    assert_int_equal(rows[0].n[0], 100);
    free(rows);
    oc_stats_destroy(b);
    oc_stats_destroy(st);
    oc_stats_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_edges),
        cmocka_unit_test(test_late_event_may_still_retain),
        cmocka_unit_test(test_repeat_and_finish),
        cmocka_unit_test(test_uplift_interval),
        cmocka_unit_test(test_stats_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
