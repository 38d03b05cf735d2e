/* Experts and their Hedge weighting (experts.h): the BTYD summary of a state, BG/NBD
 * before any label, the regression joining after the first complete tick (its prior ramped
 * over EX_LOGREG_RAMP_H x H of complete ticks, the same at daily and weekly ticks), the weights
 * moving to the best expert, the regret bound on an adversarial label sequence, the
 * pool's convexity bound, the snapshot section's round trip and corruption checks, and the
 * BTYD shape chosen by labels after H of them. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "experts.h"
#include "rng.h"

#define DAY  86400000LL
#define WEEK (7 * DAY)

static ev_event_t purchase(int64_t t_ms)
{
    ev_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.user_id[0] = 'u';
    ev.user_id_len = 1;
    ev.event_time_ms = t_ms;
    ev.type = EV_PURCHASE;
    ev.amount = 10;
    return ev;
}

static void test_summary_of_state(void **state)
{
    (void)state;
    ex_t *ex = ex_new(90);
    assert_non_null(ex);
    feat_state_t st;
    feat_state_init(&st);
    ex_summary_t s;
    ex_summary_of(ex, &st, 100 * DAY, &s);
    assert_true(s.rep == 0 && s.t_x == 0 && s.age == 0 && s.h == 90);
    /* Days 10 (twice), 12 and 20, read at the midnight of day 30. */
    const int64_t times[] = {10 * DAY + 3600000, 10 * DAY + 7200000, 12 * DAY + 60000,
                             20 * DAY + 1000};
    for (size_t i = 0; i < 4; i++) {
        ev_event_t ev = purchase(times[i]);
        feat_apply(&st, &ev);
    }
    /* An empty calendar reads every day as open: calendar days. */
    ex_summary_of(ex, &st, 30 * DAY, &s);
    assert_true(s.rep == 2);  /* 3 distinct active days */
    assert_true(s.t_x == 10); /* day 20 - day 10 */
    assert_true(s.age == 20); /* midnight of day 30 - midnight of day 10 */
    assert_true(s.h == 90);
    ex_summary_of(ex, &st, 30 * DAY + DAY / 2, &s);
    assert_true(s.age == 20.5); /* fractional days between ticks */
    /* Open days: a busy shop (5 user-days a day) active on days 10..19 except 13 and 14 (a
     * closed weekend), and on 20..24; days 25..29 had no activity at all (a holiday). */
    for (int d = 10; d < 25; d++)
        for (int k = 0; d != 13 && d != 14 && k < 5; k++)
            assert_int_equal(ex_mark_day(ex, d), 0);
    ex_summary_of(ex, &st, 30 * DAY, &s);
    assert_true(s.rep == 2);
    assert_true(s.t_x == 8);  /* days 10..19 open but 13, 14 */
    assert_true(s.age == 13); /* and 20..24 */
    /* H scales by the open share of the 365 days before day 30 (days before the first
     * mark, day 10, count as open): 345 + 13 of 365. */
    assert_true(fabs(s.h - 90.0 * 358.0 / 365.0) < 1e-12);
    ex_summary_of(ex, &st, 30 * DAY + DAY / 4, &s);
    assert_true(s.age == 13.25);
    /* Off (model.open_days=false): calendar days again, the calendar kept. */
    ex_set_open_days(ex, 0);
    ex_summary_of(ex, &st, 30 * DAY, &s);
    assert_true(s.t_x == 10 && s.age == 20 && s.h == 90);
    assert_int_equal(ex_open_days(ex)->ndays, 15);
    ex_set_open_days(ex, 1);
    /* A single active day: x = 0, t_x = 0. */
    feat_state_init(&st);
    ev_event_t ev = purchase(5 * DAY + 1);
    feat_apply(&st, &ev);
    ex_summary_of(ex, &st, 7 * DAY, &s);
    assert_true(s.rep == 0 && s.t_x == 0 && s.age == 2); /* before the calendar: open */
    ex_destroy(ex);
}

/* Before any complete tick the pool is BG/NBD and the recency prior only: an untrained
 * regression (p = 0.5 everywhere) must not move it. */
static void test_bgnbd_leads_before_labels(void **state)
{
    (void)state;
    ex_t *ex = ex_new(90);
    assert_non_null(ex);
    double w[EX_N];
    ex_weights(ex, w);
    assert_true(w[EX_LOGREG] == 0);
    assert_true(w[EX_BGNBD] > 0.9);
    ex_summary_t quiet = {
        .rep = 10, .t_x = 30, .age = 200, .h = 90}; /* frequent buyer, gone quiet */
    ex_summary_t busy = {.rep = 10, .t_x = 199, .age = 200, .h = 90};
    ex_scores_t a, b;
    ex_score(ex, &quiet, 0.5, &a);
    ex_score(ex, &busy, 0.5, &b);
    assert_true(a.blend > b.blend);
    assert_true(a.p[EX_BGNBD] > b.p[EX_BGNBD]);
    ex_destroy(ex);
}

/* Feeds one tick: n snapshots, expert probabilities p[i] given y, folded at once. */
static const ex_summary_t dummy = {.rep = 1, .t_x = 1, .age = 2, .h = 90};

static void feed_tick(ex_t *ex, int64_t tick, int n, double pos_rate, const double p1[EX_N],
                      const double p0[EX_N], rng_t *r)
{
    for (int k = 0; k < n; k++) {
        int y = rng_uniform(r) < pos_rate;
        ex_scores_t sc = {.shapes = 0}; /* as ex_score leaves it: no shape grading */
        for (int i = 0; i < EX_N; i++)
            sc.p[i] = y ? p1[i] : p0[i];
        assert_int_equal(ex_observe(ex, tick, NULL, &dummy, y, &sc), 0);
    }
    assert_int_equal(ex_complete_through(ex, tick), 1);
}

static void test_weights_move_to_best(void **state)
{
    (void)state;
    ex_t *ex = ex_new(90);
    rng_t r;
    rng_seed(&r, 5);
    /* The regression separates the classes, BG/NBD barely, recency not at all. */
    const double p1[EX_N] = {0.4, 0.55, 0.8}, p0[EX_N] = {0.4, 0.45, 0.2};
    feed_tick(ex, 0, 500, 0.4, p1, p0, &r);
    double w[EX_N];
    ex_weights(ex, w);
    assert_true(w[EX_LOGREG] > 0); /* joined after one complete tick */
    for (int t = 1; t < 40; t++)
        feed_tick(ex, t * WEEK, 500, 0.4, p1, p0, &r);
    ex_weights(ex, w);
    assert_true(w[EX_LOGREG] > 0.99);
    double loss[EX_N];
    uint64_t ticks;
    ex_losses(ex, loss, &ticks);
    assert_int_equal(ticks, 40);
    assert_true(loss[EX_LOGREG] < loss[EX_BGNBD] && loss[EX_BGNBD] < loss[EX_RECENCY]);
    /* An incomplete tick changes nothing; an old tick is not measured twice. */
    ex_scores_t sc = {.p = {0.5, 0.5, 0.01}};
    assert_int_equal(ex_observe(ex, 50 * WEEK, NULL, &dummy, 1, &sc), 0);
    double w2[EX_N];
    ex_weights(ex, w2);
    assert_memory_equal(w, w2, sizeof(w));
    assert_int_equal(ex_observe(ex, 3 * WEEK, NULL, &dummy, 1, &sc), 0);
    assert_int_equal(ex_complete_through(ex, 39 * WEEK), 0);
    ex_destroy(ex);
}

static double logit(double p)
{
    return log(p / (1 - p));
}

/* Hedge's guarantee on an adversarial sequence: each tick the adversary labels every
 * snapshot against the pool's current leaning. Two experts (BG/NBD, regression) with
 * fixed opposite opinions; recency stays at 0.5. The pool's mean log-loss summed over the
 * ticks, L_pool, is at most the weighted mean of the experts' (convexity of log-loss in
 * the logit), and the weighted mean is within ln(1/pi_i)/eta + eta n l_max^2 / 8 of expert
 * i's total (Hedge, losses in [0, l_max]; pi_i the smallest prior i had, the regression's
 * ramp included); discounting only forgets, and with a half-life
 * of 26 ticks over 12 ticks the bound holds with the loss totals it tracks. */
static void test_adversarial_regret(void **state)
{
    (void)state;
    ex_t *ex = ex_new(90);
    const double pb = 0.2, pl = 0.8; /* churn probability said by BG/NBD and the regression */
    const int n_ticks = 12;
    double pool_total = 0, expert_total[EX_N] = {0};
    double lmax = log(1 / 0.2);
    /* The first tick teaches nothing adversarial: measure both experts once. */
    for (int t = 0; t < n_ticks; t++) {
        ex_summary_t s = {.rep = 1, .t_x = 1, .age = 2, .h = 90};
        ex_scores_t sc;
        ex_score(ex, &s, pl, &sc);
        sc.p[EX_BGNBD] = pb; /* fixed opinions, whatever the summary */
        sc.p[EX_RECENCY] = 0.5;
        double w[EX_N], z = 0;
        ex_weights(ex, w);
        for (int i = 0; i < EX_N; i++)
            z += w[i] * logit(sc.p[i]);
        double pool = 1 / (1 + exp(-z));
        int y = pool < 0.5; /* against the pool */
        double pool_loss = -(y ? log(pool) : log1p(-pool)), wmean = 0;
        for (int i = 0; i < EX_N; i++) {
            double li = -(y ? log(sc.p[i]) : log1p(-sc.p[i]));
            expert_total[i] += li;
            wmean += w[i] * li;
        }
        assert_true(pool_loss <= wmean + 1e-12); /* convexity, every tick */
        pool_total += pool_loss;
        for (int k = 0; k < 100; k++)
            assert_int_equal(ex_observe(ex, t * WEEK, NULL, &s, y, &sc), 0);
        assert_int_equal(ex_complete_through(ex, t * WEEK), 1);
    }
    /* Each expert's bound with its smallest prior over the run: BG/NBD's never falls below
     * its full share, the regression's starts at 1 / (weeks of the ramp) of it. */
    double prior_bg = (1 - EX_PRIOR_RECENCY) / 2;
    double prior_lr = prior_bg / (EX_LOGREG_RAMP_H * 90 / 7.0);
    double slack = EX_HEDGE_ETA * n_ticks * lmax * lmax / 8;
    double bound_bg = expert_total[EX_BGNBD] + log(1 / prior_bg) / EX_HEDGE_ETA + slack;
    double bound_lr = expert_total[EX_LOGREG] + log(1 / prior_lr) / EX_HEDGE_ETA + slack;
    /* + one tick of loss for the first tick, when the regression had no weight yet. */
    assert_true(pool_total <= fmin(bound_bg, bound_lr) + lmax);
    ex_destroy(ex);
}

static void test_round_trip_and_corruption(void **state)
{
    (void)state;
    ex_t *ex = ex_new(45);
    rng_t r;
    rng_seed(&r, 9);
    const double p1[EX_N] = {0.6, 0.7, 0.8}, p0[EX_N] = {0.4, 0.3, 0.2};
    for (int t = 0; t < 5; t++)
        feed_tick(ex, t * WEEK, 50, 0.3, p1, p0, &r);
    ex_scores_t sc = {.p = {0.5, 0.4, 0.3}};
    assert_int_equal(ex_observe(ex, 9 * WEEK, NULL, &dummy, 1, &sc), 0);
    assert_int_equal(ex_observe(ex, 8 * WEEK, NULL, &dummy, 0, &sc), 0);
    const double coef[3] = {0.5, -0.25, 0.125};
    assert_int_equal(ex_tick_start(ex, 8 * WEEK, coef, 2, 1.5, -0.5), 0);
    assert_int_equal(ex_tick_start(ex, 9 * WEEK, coef, 2, 1.0, 0.0), 0);
    assert_int_equal(ex_tick_start(ex, 10 * WEEK, coef, 3, 1.0, 0.0), -1); /* dim is fixed */
    bgnbd_table_t *t = bgnbd_table_new();
    for (int i = 0; i < 200; i++)
        assert_int_equal(bgnbd_table_add(t, i % 7, (i % 7) * 3, 30 + i % 11, 1), 0);
    assert_int_equal(ex_refit(ex, t, 5 * WEEK), 0);
    bgnbd_table_destroy(t);
    for (int d = 100; d < 300; d += 3) /* a calendar of open days travels with the section */
        for (int k = 0; k < 4; k++)
            assert_int_equal(ex_mark_day(ex, d), 0);

    mw_buf_t b = {0};
    ex_encode(ex, &b);
    assert_false(b.failed);
    mw_reader_t rd = {.p = b.data, .len = b.len};
    char err[128];
    ex_t *back = ex_decode(&rd, 5, err, sizeof(err));
    assert_non_null(back);
    assert_int_equal(rd.off, b.len);
    mw_buf_t b2 = {0};
    ex_encode(back, &b2);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.data, b.data, b.len);
    assert_true(ex_horizon_days(back) == 45);
    assert_int_equal(ex_fit_tick_ms(back), 5 * WEEK);
    assert_true(od_before(ex_open_days(back), 300) - od_before(ex_open_days(back), 100) == 67);
    assert_true(od_before(ex_open_days(back), 300) == od_before(ex_open_days(ex), 300));
    ex_destroy(back);
    /* Format 4 had no calendar: the bytes up to it load, with an empty one. */
    const size_t od_bytes = 4 + 8 + 2 * 199; /* days 100..298 */
    mw_reader_t r4 = {.p = b.data, .len = b.len - od_bytes};
    ex_t *old = ex_decode(&r4, 4, err, sizeof(err));
    assert_non_null(old);
    assert_int_equal(r4.off, r4.len);
    assert_int_equal(ex_open_days(old)->ndays, 0);
    ex_destroy(old);
    /* Every truncation fails cleanly. */
    for (size_t cut = 0; cut < b.len; cut++) {
        mw_reader_t tr = {.p = b.data, .len = cut};
        ex_t *bad = ex_decode(&tr, 5, err, sizeof(err));
        assert_null(bad);
    }
    /* A negative parameter (r's sign bit, byte 15) is refused. */
    b.data[15] ^= 0x80;
    mw_reader_t cr = {.p = b.data, .len = b.len};
    assert_null(ex_decode(&cr, 5, err, sizeof(err)));
    free(b.data);
    free(b2.data);
    ex_destroy(ex);
}

/* A label is graded by what the experts said at its tick, not by the model at label time:
 * the regression frozen at tick 0 says 0.9 for x; the model "now" says 0.1. A positive
 * label costs -ln 0.9 for the regression, as frozen. Frozen ticks are dropped once
 * complete. */
static void test_graded_as_scored(void **state)
{
    (void)state;
    ex_t *ex = ex_new(90);
    const float x[2] = {2, 1};
    double l = log(0.9 / 0.1);                     /* raw logit of 0.9, split over the weights */
    const double coef[3] = {l / 2, l / 2, -l / 2}; /* l/2 * 2 + l/2 * 1 - l/2 = l */
    assert_int_equal(ex_tick_start(ex, 0, coef, 2, 1.0, 0.0), 0);
    ex_scores_t now = {.p = {0.5, 0.5, 0.1}};
    ex_summary_t s = {.rep = 0, .t_x = 0, .age = 10, .h = 90};
    assert_int_equal(ex_observe(ex, 0, x, &s, 1, &now), 0);
    assert_int_equal(ex_complete_through(ex, 0), 1);
    double loss[EX_N];
    ex_losses(ex, loss, NULL);
    assert_true(fabs(loss[EX_LOGREG] + log(0.9)) < 1e-9);
    assert_true(fabs(loss[EX_RECENCY] + log(ex_recency_prior(10))) < 1e-9);
    /* A tick with no frozen scorer before it falls back to "now". */
    ex_t *ex2 = ex_new(90);
    assert_int_equal(ex_observe(ex2, 0, x, &s, 1, &now), 0);
    assert_int_equal(ex_complete_through(ex2, 0), 1);
    ex_losses(ex2, loss, NULL);
    assert_true(fabs(loss[EX_LOGREG] + log(0.1)) < 1e-9);
    ex_destroy(ex2);
    ex_destroy(ex);
}

/* The regression's prior ramps with the weeks of complete ticks graded (EX_LOGREG_RAMP_H x H),
 * the same at daily and weekly ticks: with equal losses its weight is its ramped prior. */
static void test_logreg_ramp(void **state)
{
    (void)state;
    const double p[EX_N] = {0.5, 0.5, 0.5};
    double full = EX_LOGREG_RAMP_H * 91 / 7.0; /* weeks: 13 for H = 91 d */
    ex_t *wk = ex_new(91), *dy = ex_new(91);
    rng_t r;
    rng_seed(&r, 3);
    assert_true(ex_logreg_share(wk) == 0);
    feed_tick(wk, 0, 10, 0.3, p, p, &r);
    assert_true(fabs(ex_logreg_share(wk) - 1 / full) < 1e-12);
    double w[EX_N];
    ex_weights(wk, w);
    assert_true(fabs(w[EX_LOGREG] - (1 - EX_PRIOR_RECENCY) / (2 * full)) < 1e-12);
    assert_true(fabs(w[EX_BGNBD] - (1 - EX_PRIOR_RECENCY) * (1 - 1 / (2 * full))) < 1e-12);
    for (int t = 1; t < 3; t++)
        feed_tick(wk, t * WEEK, 10, 0.3, p, p, &r);
    /* Daily ticks over the same span (the first complete tick counts a week, as weekly). */
    for (int t = 0; t <= 14; t++)
        feed_tick(dy, t * DAY, 10, 0.3, p, p, &r);
    assert_true(fabs(ex_logreg_share(wk) - 3 / full) < 1e-12);
    assert_true(fabs(ex_logreg_share(dy) - 3 / full) < 1e-9);
    for (int t = 3; t < (int)ceil(full); t++)
        feed_tick(wk, t * WEEK, 10, 0.3, p, p, &r);
    assert_true(ex_logreg_share(wk) == 1);
    ex_weights(wk, w);
    assert_true(fabs(w[EX_LOGREG] - w[EX_BGNBD]) < 1e-12);
    /* The share survives a snapshot round trip. */
    mw_buf_t b = {0};
    ex_encode(dy, &b);
    mw_reader_t rd = {.p = b.data, .len = b.len};
    char err[128];
    ex_t *back = ex_decode(&rd, 5, err, sizeof(err));
    assert_non_null(back);
    assert_true(ex_logreg_share(back) == ex_logreg_share(dy));
    ex_destroy(back);
    free(b.data);
    ex_destroy(wk);
    ex_destroy(dy);
}

/* The BTYD expert's shape is chosen by labels: with labels drawn from the k = 4 shape's own
 * P(none) (a proper scoring rule: the true probabilities have the least expected log-loss),
 * k = 1 speaks until H of complete ticks are graded, then k = 4, and the score follows it;
 * the shapes section survives a round trip and refuses every truncation. */
static void test_shape_chosen_by_labels(void **state)
{
    (void)state;
    ex_t *ex = ex_new(28); /* H = 4 weeks of complete ticks before a shape may lead */
    rng_t r;
    rng_seed(&r, 21);
    enum { N = 1500 };
    ex_summary_t s[N];
    bgnbd_table_t *t = bgnbd_table_new();
    for (int i = 0; i < N; i++) {
        double rep = (double)rng_below(&r, 12), age = 40 + (double)rng_below(&r, 200);
        double t_x = rep > 0 ? age * (0.2 + 0.8 * rng_uniform(&r)) : 0;
        s[i] = (ex_summary_t){.rep = rep, .t_x = t_x, .age = age, .h = 28};
        assert_int_equal(bgnbd_table_add(t, rep, t_x, age, 1), 0);
    }
    const double coef[3] = {0, 0, 0};
    const int k4 = 2; /* ex_shape_k[2] == 4 */
    assert_int_equal(ex_shape_k[k4], 4);
    for (int w = 0; w < 6; w++) {
        assert_int_equal(ex_refit(ex, t, w * WEEK), 0);
        assert_int_equal(ex_tick_start(ex, w * WEEK, coef, 2, 1.0, 0.0), 0);
        const float x[2] = {0, 0};
        for (int i = 0; i < N; i++) {
            ex_scores_t sc;
            assert_int_equal(ex_grade(ex, w * WEEK, x, &s[i], &sc), 1);
            assert_int_equal(sc.shapes, 1);
            int y = rng_uniform(&r) < sc.shape_p[k4];
            assert_int_equal(ex_observe_graded(ex, w * WEEK, y, &sc), 0);
        }
        assert_int_equal(ex_complete_through(ex, w * WEEK), 1);
        assert_int_equal(ex_shape(ex), w < 3 ? 0 : k4); /* 4 weeks graded after w = 3 */
    }
    bgnbd_table_destroy(t);
    double mean[EX_SHAPES];
    ex_shape_losses(ex, mean);
    for (int k = 0; k < EX_SHAPES; k++)
        assert_true(k == k4 || mean[k] > mean[k4]);
    ex_scores_t now;
    ex_score(ex, &s[7], 0.5, &now);
    assert_true(now.p[EX_BGNBD] == fmin(fmax(bgcnbd_p_none(ex_shape_params(ex, k4), 4, s[7].rep,
                                                           s[7].t_x, s[7].age, s[7].h),
                                             EX_P_MIN),
                                        1 - EX_P_MIN));
    /* model.btyd_shapes=false: BG/NBD speaks, the history is kept for when it is on again */
    ex_set_shapes(ex, 0);
    assert_int_equal(ex_shape(ex), 0);
    ex_score(ex, &s[7], 0.5, &now);
    assert_true(now.p[EX_BGNBD] ==
                fmin(fmax(bgnbd_p_none(ex_bgnbd_params(ex), s[7].rep, s[7].t_x, s[7].age, s[7].h),
                          EX_P_MIN),
                     1 - EX_P_MIN));
    ex_set_shapes(ex, 1);
    assert_int_equal(ex_shape(ex), k4);

    mw_buf_t b = {0};
    ex_encode(ex, &b);
    size_t ex_len = b.len;
    ex_encode_shapes(ex, &b);
    assert_false(b.failed);
    char err[128];
    mw_reader_t rd = {.p = b.data, .len = b.len};
    ex_t *back = ex_decode(&rd, 6, err, sizeof(err));
    assert_non_null(back);
    assert_int_equal(ex_decode_shapes(back, &rd), 0);
    assert_int_equal(rd.off, b.len);
    assert_int_equal(ex_shape(back), k4);
    mw_buf_t b2 = {0};
    ex_encode(back, &b2);
    ex_encode_shapes(back, &b2);
    assert_int_equal(b2.len, b.len);
    assert_memory_equal(b2.data, b.data, b.len);
    ex_destroy(back);
    for (size_t cut = ex_len; cut < b.len; cut++) {
        mw_reader_t tr = {.p = b.data, .len = cut};
        ex_t *e2 = ex_decode(&tr, 6, err, sizeof(err));
        assert_non_null(e2);
        assert_int_equal(ex_decode_shapes(e2, &tr) == 0 && !tr.failed, 0);
        ex_destroy(e2);
    }
    free(b.data);
    free(b2.data);
    ex_destroy(ex);
}

static double lgt(double p)
{
    p = p < EX_P_MIN ? EX_P_MIN : p > 1 - EX_P_MIN ? 1 - EX_P_MIN : p;
    return log(p / (1 - p));
}

/* ex_explain: the BTYD parts are Shapley values (they add up to the expert's logit against
 * the reference; a user equal to the reference has none), signed as the model reads them,
 * and each expert's part is scaled by its pool weight. */
static void test_explain(void **state)
{
    (void)state;
    ex_t *ex = ex_new(90);
    assert_non_null(ex);
    const ex_summary_t ref = {.rep = 4, .t_x = 100, .age = 130, .h = 90};
    const ex_summary_t users[] = {
        {.rep = 4, .t_x = 100, .age = 200, .h = 90},  /* quiet 100 days: churn-ward */
        {.rep = 20, .t_x = 125, .age = 130, .h = 90}, /* frequent and recent */
        {.rep = 0, .t_x = 0, .age = 10, .h = 90},     /* one visit, 10 days ago */
        ref,
    };
    double parts[EX_EXPLAIN_N];
    ex_set_mode(ex, EX_MODE_BGNBD); /* weights 0, 1, 0 */
    for (size_t u = 0; u < sizeof users / sizeof users[0]; u++) {
        ex_scores_t su, sr;
        ex_score(ex, &users[u], 0.5, &su);
        ex_score(ex, &ref, 0.5, &sr);
        ex_explain(ex, &users[u], &ref, parts);
        double sum = parts[0] + parts[1] + parts[2];
        double want = lgt(su.p[EX_BGNBD]) - lgt(sr.p[EX_BGNBD]);
        if (!(fabs(sum - want) < 1e-9))
            fail_msg("user %zu: parts add up to %.12g, the logit moved %.12g", u, sum, want);
        if (u == 3)
            for (int i = 0; i < EX_EXPLAIN_N; i++)
                assert_true(parts[i] == 0);
    }
    ex_explain(ex, &users[0], &ref, parts);
    assert_true(parts[EX_EXPLAIN_QUIET] > 0.5); /* the long silence is what speaks */
    assert_true(fabs(parts[EX_EXPLAIN_REPEAT]) < parts[EX_EXPLAIN_QUIET]);
    ex_explain(ex, &users[1], &ref, parts);
    assert_true(parts[EX_EXPLAIN_REPEAT] < 0); /* many repeat days: alive */

    /* recency alone: its logit difference, on quiet days only */
    ex_set_mode(ex, EX_MODE_RECENCY);
    ex_explain(ex, &users[0], &ref, parts);
    assert_float_equal(parts[EX_EXPLAIN_QUIET],
                       lgt(ex_recency_prior(100)) - lgt(ex_recency_prior(30)), 1e-12);
    assert_true(parts[EX_EXPLAIN_REPEAT] == 0 && parts[EX_EXPLAIN_SPAN] == 0);
    /* the regression alone: nothing from these experts */
    ex_set_mode(ex, EX_MODE_LOGREG);
    ex_explain(ex, &users[0], &ref, parts);
    for (int i = 0; i < EX_EXPLAIN_N; i++)
        assert_true(parts[i] == 0);
    ex_destroy(ex);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary_of_state),
        cmocka_unit_test(test_bgnbd_leads_before_labels),
        cmocka_unit_test(test_weights_move_to_best),
        cmocka_unit_test(test_adversarial_regret),
        cmocka_unit_test(test_round_trip_and_corruption),
        cmocka_unit_test(test_graded_as_scored),
        cmocka_unit_test(test_logreg_ramp),
        cmocka_unit_test(test_shape_chosen_by_labels),
        cmocka_unit_test(test_explain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
