/* Replay's future guard (processor/replay/replay_future.c): which events beyond watermark +
 * events.max_future are confirmed by the log and which are lone future timestamps; the
 * order and content of every other event are untouched. Table driven over small logs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "replay_future.h"

#define DAY 86400000LL

typedef struct src_s {
    const int64_t *t;
    size_t n, next;
} src_t;

static int next_ev(void *opaque, ev_event_t *ev, ev_reason_t *reason, char *why, size_t why_size,
                   char *errstr, size_t errstr_size)
{
    src_t *s = opaque;
    (void)why;
    (void)why_size;
    (void)errstr;
    (void)errstr_size;
    if (s->next >= s->n)
        return 0;
    memset(ev, 0, sizeof(*ev));
    ev->event_time_ms = s->t[s->next];
    snprintf(ev->user_id, sizeof(ev->user_id), "u%zu", s->next);
    s->next++;
    *reason = EV_OK;
    return 1;
}

/* Runs a log through the guard with watermark = max accepted time (no lateness); writes 1
 * for each event rejected as future. Returns the number of events returned. */
static size_t run(const int64_t *t, size_t n, int64_t max_future_ms, int *rejected)
{
    src_t s = {t, n, 0};
    rpf_t *g = rpf_new(max_future_ms);
    assert_non_null(g);
    int64_t max_t = INT64_MIN;
    size_t k = 0;
    ev_event_t ev;
    ev_reason_t reason;
    char why[256], err[256];
    int fut;
    while (rpf_next(g, next_ev, &s, max_t, &ev, &reason, &fut, why, sizeof why, err, sizeof err) ==
           1) {
        /* order preserved: the k-th event out is the k-th in */
        assert_int_equal(ev.event_time_ms, t[k]);
        rejected[k] = fut;
        if (fut) {
            assert_int_equal(reason, EV_ERR_TIME_OUT_OF_WINDOW);
            assert_non_null(strstr(why, "events.max_future"));
        } else {
            assert_int_equal(reason, EV_OK);
            if (ev.event_time_ms > max_t)
                max_t = ev.event_time_ms;
        }
        k++;
    }
    rpf_destroy(g);
    return k;
}

static void test_lone_future_row_rejected(void **state)
{
    (void)state;
    int64_t t[300];
    int rej[300];
    for (int i = 0; i < 300; i++)
        t[i] = 1700000000000LL + i * 3600000LL;
    t[150] = 1700000000000LL + 800 * DAY; /* two years ahead */
    assert_int_equal(run(t, 300, DAY, rej), 300);
    for (int i = 0; i < 300; i++)
        if (rej[i] != (i == 150))
            fail_msg("event %d: rejected=%d", i, rej[i]);
}

static void test_quiet_spell_accepted(void **state)
{
    (void)state;
    int64_t t[300];
    int rej[300];
    for (int i = 0; i < 300; i++)
        t[i] = 1700000000000LL + i * 3600000LL + (i >= 150 ? 12 * DAY : 0);
    assert_int_equal(run(t, 300, DAY, rej), 300);
    for (int i = 0; i < 300; i++)
        assert_int_equal(rej[i], 0);
}

static void test_far_rows_do_not_confirm_each_other_with_near_ones(void **state)
{
    (void)state;
    /* a 2-day quiet spell (confirmed by the rows after it) and, inside it, one row years
     * ahead: the rows after the spell are beyond the bound but not near the far row */
    int64_t t[200];
    int rej[200];
    for (int i = 0; i < 200; i++)
        t[i] = 1700000000000LL + i * 60000LL + (i >= 100 ? 2 * DAY : 0);
    t[100] = 1700000000000LL + 900 * DAY;
    assert_int_equal(run(t, 200, DAY, rej), 200);
    for (int i = 0; i < 200; i++)
        if (rej[i] != (i == 100))
            fail_msg("event %d: rejected=%d", i, rej[i]);
}

static void test_future_row_at_the_end_and_disabled_bound(void **state)
{
    (void)state;
    int64_t t[50];
    int rej[50];
    for (int i = 0; i < 50; i++)
        t[i] = 1700000000000LL + i * 1000LL;
    /* the last event has nothing after it to be judged by: applied */
    t[49] = 1700000000000LL + 30 * DAY;
    assert_int_equal(run(t, 50, DAY, rej), 50);
    assert_int_equal(rej[49], 0);
    /* one event after it, still before it: rejected */
    t[48] = 1700000000000LL + 30 * DAY;
    t[49] = 1700000000000LL + 49 * 1000LL;
    assert_int_equal(run(t, 50, DAY, rej), 50);
    assert_int_equal(rej[48], 1);
    assert_int_equal(rej[49], 0);
    /* max_future 0: no bound at all */
    assert_int_equal(run(t, 50, 0, rej), 50);
    assert_int_equal(rej[49], 0);
    /* the first event has no watermark to be compared with */
    int64_t one[3] = {1700000000000LL + 900 * DAY, 1700000000000LL + 900 * DAY + 1,
                      1700000000000LL + 900 * DAY + 2};
    assert_int_equal(run(one, 3, DAY, rej), 3);
    assert_int_equal(rej[0] + rej[1] + rej[2], 0);
}

static void test_sparse_log_kept(void **state)
{
    (void)state;
    /* a hand-built log: one event a week, every gap beyond a 1-day bound */
    int64_t t[6];
    int rej[6];
    for (int i = 0; i < 6; i++)
        t[i] = 1700000000000LL + i * 7 * DAY;
    assert_int_equal(run(t, 6, DAY, rej), 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(rej[i], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lone_future_row_rejected),
        cmocka_unit_test(test_quiet_spell_accepted),
        cmocka_unit_test(test_far_rows_do_not_confirm_each_other_with_near_ones),
        cmocka_unit_test(test_future_row_at_the_end_and_disabled_bound),
        cmocka_unit_test(test_sparse_log_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
