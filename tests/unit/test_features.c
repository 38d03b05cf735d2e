/* Unit tests for the per-user state and feature vector (processor/features/feat.h): decay against
 * closed forms and explicit sums, order independence, distinct days, the encoding, the
 * feature table and the guards that keep every feature finite. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feat.h"
#include "rng.h"

#define DAY FEAT_DAY_MS
/* 2023-12-09 00:00:00 UTC, a midnight. */
#define T0 (19700LL * DAY)

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* |a - b| <= abs_tol + rel_tol * |b|, with both values in the failure message. */
#define assert_close(a, b, rel_tol, abs_tol)                                                       \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (abs_tol) + (rel_tol)*fabs(b_)))                                    \
            fail_msg("%s = %.9g, expected %s = %.9g", #a, a_, #b, b_);                             \
    } while (0)

static ev_event_t mk_event(ev_type_t type, int64_t t_ms, double amount)
{
    ev_event_t ev;
    memset(&ev, 0, sizeof ev);
    strcpy(ev.user_id, "u1");
    ev.user_id_len = 2;
    ev.type = type;
    ev.event_time_ms = t_ms;
    ev.amount = amount;
    return ev;
}

static void apply(feat_state_t *st, ev_type_t type, int64_t t_ms, double amount)
{
    ev_event_t ev = mk_event(type, t_ms, amount);
    feat_apply(st, &ev);
}

/* ---- decay against closed forms ---- */

static void test_decay_closed_form(void **unused)
{
    static const struct {
        ev_type_t type;
        feat_counter_t counter;
        double half_lives; /* read after this many half-lives */
    } cases[] = {
        {EV_SESSION_START, FEAT_C_SESSIONS_30D, 0},
        {EV_SESSION_START, FEAT_C_SESSIONS_30D, 1},
        {EV_SESSION_START, FEAT_C_SESSIONS_30D, 2},
        {EV_SESSION_START, FEAT_C_SESSIONS_30D, 3.5},
        {EV_SESSION_START, FEAT_C_SESSIONS_30D, 10},
        {EV_PAGE_VIEW, FEAT_C_PAGE_VIEWS_30D, 1},
        {EV_ADD_TO_CART, FEAT_C_CARTS_30D, 4},
        {EV_PURCHASE, FEAT_C_PURCHASES_30D, 1},
        {EV_PURCHASE, FEAT_C_PURCHASES_90D, 1},
        {EV_PURCHASE, FEAT_C_PURCHASES_90D, 0.25},
        {EV_PURCHASE, FEAT_C_PURCHASE_DAYS_90D, 2},
        {EV_REFUND, FEAT_C_REFUNDS_90D, 1},
        {EV_SUPPORT_TICKET, FEAT_C_SUPPORT_TICKETS_30D, 1},
        {EV_COUPON_REDEEM, FEAT_C_COUPONS_90D, 3},
        {EV_SUBSCRIPTION_CANCEL, FEAT_C_CANCEL_INTENT_30D, 1},
        {EV_SEARCH, FEAT_C_ACTIVE_DAYS_7D, 1},
        {EV_SEARCH, FEAT_C_ACTIVE_DAYS_7D, 5},
        {EV_OTHER, FEAT_C_ACTIVE_DAYS_30D, 1},
        {EV_OTHER, FEAT_C_ACTIVE_DAYS_90D, 1},
    };
    for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
        feat_state_t st;
        feat_state_init(&st);
        apply(&st, cases[k].type, T0, 1.0); /* T0 is a midnight: day weight = event weight */
        double h_ms = feat_counter_half_life_days(cases[k].counter) * DAY;
        int64_t t = T0 + (int64_t)(cases[k].half_lives * h_ms);
        double expect = exp2(-cases[k].half_lives);
        assert_close(feat_counter_at(&st, cases[k].counter, t), expect, 1e-6, 0);
        double c[FEAT_C_COUNT];
        feat_counters_at(&st, t, c);
        assert_close(c[cases[k].counter], expect, 1e-6, 0);
        /* Bringing the state forward changes no value at or after the new t_ref. */
        feat_decay_to(&st, t);
        assert_int_equal(feat_t_ref_ms(&st), t);
        assert_close(feat_counter_at(&st, cases[k].counter, t), expect, 1e-6, 0);
        assert_close(feat_counter_at(&st, cases[k].counter, t + (int64_t)h_ms), expect / 2, 1e-6,
                     0);
    }
}

static void test_decay_vector_and_clamp(void **unused)
{
    feat_state_t st;
    feat_state_init(&st);
    apply(&st, EV_SESSION_START, T0, 0);
    float x[FEAT_DIM];
    feat_vector(&st, T0 + 30 * DAY, x);
    assert_float_equal(x[FEAT_SESSIONS_30D], (float)log1p(0.5), 1e-6);
    /* Reads before t_ref clamp to t_ref: never a value above what the state holds. */
    assert_close(feat_counter_at(&st, FEAT_C_SESSIONS_30D, T0 - 30 * DAY), 1.0, 0, 0);
    assert_close(feat_human_value(&st, T0 - 30 * DAY, FEAT_SESSIONS_30D), 1.0, 0, 0);
    assert_close(feat_human_value(&st, T0 - 30 * DAY, FEAT_DAYS_SINCE_ACTIVITY), 0.0, 0, 0);
    /* Two events one half-life apart: 1 * 1/2 + 1 at the second, t_ref moves forward. */
    apply(&st, EV_SESSION_START, T0 + 30 * DAY, 0);
    assert_int_equal(feat_t_ref_ms(&st), T0 + 30 * DAY);
    assert_close(st.counter[FEAT_C_SESSIONS_30D], 1.5, 1e-6, 0);
    /* A late event does not move t_ref and adds its weight at t_ref. */
    apply(&st, EV_SESSION_START, T0 - 30 * DAY, 0);
    assert_int_equal(feat_t_ref_ms(&st), T0 + 30 * DAY);
    assert_close(st.counter[FEAT_C_SESSIONS_30D], 1.75, 1e-6, 0);
}

/* ---- many events against the explicit sum ---- */

typedef struct {
    ev_type_t type;
    int64_t t_ms;
    double amount;
} evspec_t;

static void gen_events(uint64_t seed, int n, int64_t span_ms, evspec_t *out)
{
    rng_t r;
    rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        out[i].type = (ev_type_t)rng_below(&r, EV_TYPE_COUNT);
        out[i].t_ms = T0 + (int64_t)rng_below(&r, (uint64_t)span_ms);
        out[i].amount = -50.0 + 550.0 * rng_uniform(&r);
    }
}

static int cmp_evspec_time(const void *a, const void *b)
{
    int64_t x = ((const evspec_t *)a)->t_ms, y = ((const evspec_t *)b)->t_ms;
    return (x > y) - (x < y);
}

/* The specification of every counter, written independently of features.c. */
static void expected_counters(const evspec_t *evs, int n, int64_t t, double c[FEAT_C_COUNT],
                              double *mean_gap, int *lifetime_days)
{
    memset(c, 0, sizeof(double) * FEAT_C_COUNT);
    static char active_day[400], purchase_day[400]; /* day - T0/DAY */
    memset(active_day, 0, sizeof active_day);
    memset(purchase_day, 0, sizeof purchase_day);
    for (int i = 0; i < n; i++) {
        double age = (double)(t - evs[i].t_ms);
#define W(c_) exp2(-age / (feat_counter_half_life_days(c_) * DAY))
        double a = evs[i].amount;
        switch (evs[i].type) {
        case EV_SESSION_START:
            c[FEAT_C_SESSIONS_30D] += W(FEAT_C_SESSIONS_30D);
            break;
        case EV_PAGE_VIEW:
            c[FEAT_C_PAGE_VIEWS_30D] += W(FEAT_C_PAGE_VIEWS_30D);
            break;
        case EV_ADD_TO_CART:
            c[FEAT_C_CARTS_30D] += W(FEAT_C_CARTS_30D);
            break;
        case EV_PURCHASE:
            c[FEAT_C_PURCHASES_30D] += W(FEAT_C_PURCHASES_30D);
            c[FEAT_C_PURCHASES_90D] += W(FEAT_C_PURCHASES_90D);
            c[FEAT_C_REVENUE_30D] += (a > 0 ? a : 0) * W(FEAT_C_REVENUE_30D);
            c[FEAT_C_REVENUE_90D] += (a > 0 ? a : 0) * W(FEAT_C_REVENUE_90D);
            purchase_day[(evs[i].t_ms - T0) / DAY] = 1;
            break;
        case EV_REFUND:
            c[FEAT_C_REFUNDS_90D] += W(FEAT_C_REFUNDS_90D);
            c[FEAT_C_REFUND_AMOUNT_90D] += fabs(a) * W(FEAT_C_REFUND_AMOUNT_90D);
            break;
        case EV_SUPPORT_TICKET:
            c[FEAT_C_SUPPORT_TICKETS_30D] += W(FEAT_C_SUPPORT_TICKETS_30D);
            break;
        case EV_COUPON_REDEEM:
            c[FEAT_C_COUPONS_90D] += W(FEAT_C_COUPONS_90D);
            break;
        case EV_SUBSCRIPTION_CANCEL:
            c[FEAT_C_CANCEL_INTENT_30D] += W(FEAT_C_CANCEL_INTENT_30D);
            break;
        default:
            break;
        }
#undef W
        if (evs[i].type != EV_REFUND && evs[i].type != EV_SUBSCRIPTION_CANCEL)
            active_day[(evs[i].t_ms - T0) / DAY] = 1;
    }
    /* Distinct days weigh as of their midnight; the gap EWMA weighs each gap by its end day. */
    double g = 0, w = 0;
    int prev = -1;
    *lifetime_days = 0;
    for (int d = 0; d < 400; d++) {
        double age = (double)(t - (T0 + d * DAY));
        if (purchase_day[d])
            c[FEAT_C_PURCHASE_DAYS_90D] += exp2(-age / (90.0 * DAY));
        if (!active_day[d])
            continue;
        (*lifetime_days)++;
        c[FEAT_C_ACTIVE_DAYS_7D] += exp2(-age / (7.0 * DAY));
        c[FEAT_C_ACTIVE_DAYS_30D] += exp2(-age / (30.0 * DAY));
        c[FEAT_C_ACTIVE_DAYS_90D] += exp2(-age / (90.0 * DAY));
        if (prev >= 0) {
            g += exp2(-age / (90.0 * DAY)) * (d - prev);
            w += exp2(-age / (90.0 * DAY));
        }
        prev = d;
    }
    *mean_gap = w > 0 ? g / w : -1;
}

static void check_against_spec(const feat_state_t *st, const evspec_t *evs, int n, int64_t t)
{
    double expect[FEAT_C_COUNT], got[FEAT_C_COUNT], gap;
    int days;
    expected_counters(evs, n, t, expect, &gap, &days);
    feat_counters_at(st, t, got);
    for (int c = 0; c < FEAT_C_COUNT; c++) {
        /* float storage, hundreds of additions: a few 1e-6 relative */
        if (fabs(got[c] - expect[c]) > 1e-5 + 2e-5 * fabs(expect[c]))
            fail_msg("counter %d: got %.9g, expected %.9g", c, got[c], expect[c]);
    }
    assert_int_equal(feat_lifetime_active_days(st), days);
    if (gap > 0)
        assert_close(feat_human_value(st, t, FEAT_MEAN_GAP_DAYS), gap < 1 ? 1 : gap, 2e-5, 0);
}

static void test_sum_formula_in_order(void **unused)
{
    static const struct {
        uint64_t seed;
        int n;
        int span_days;
        int read_after_days;
    } cases[] = {
        {1, 1, 1, 0}, {2, 20, 3, 1}, {3, 500, 120, 0}, {4, 500, 300, 10}, {5, 2000, 60, 45},
    };
    static evspec_t evs[2000];
    for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
        gen_events(cases[k].seed, cases[k].n, cases[k].span_days * DAY, evs);
        qsort(evs, (size_t)cases[k].n, sizeof evs[0], cmp_evspec_time);
        feat_state_t st;
        feat_state_init(&st);
        int64_t last_act = FEAT_NEVER, first_act = FEAT_NEVER, last_buy = FEAT_NEVER;
        for (int i = 0; i < cases[k].n; i++) {
            apply(&st, evs[i].type, evs[i].t_ms, evs[i].amount);
            if (ev_is_activity(evs[i].type)) {
                last_act = evs[i].t_ms;
                if (first_act == FEAT_NEVER)
                    first_act = evs[i].t_ms;
            }
            if (evs[i].type == EV_PURCHASE)
                last_buy = evs[i].t_ms;
        }
        int64_t t = evs[cases[k].n - 1].t_ms + cases[k].read_after_days * DAY;
        check_against_spec(&st, evs, cases[k].n, t);
        assert_int_equal(feat_last_activity_ms(&st), last_act);
        assert_int_equal(feat_first_activity_ms(&st), first_act);
        assert_int_equal(feat_last_purchase_ms(&st), last_buy);
        assert_int_equal(feat_t_ref_ms(&st), evs[cases[k].n - 1].t_ms);
    }
}

/* ---- arrival order does not matter ---- */

/* purchase_days: 1 = must match; 0 = a late purchase day may be missed (more than 31
 * days behind the latest purchase), never counted twice. */
static void assert_states_match(const feat_state_t *a, const feat_state_t *b, int purchase_days)
{
    assert_int_equal(a->first_activity_ms, b->first_activity_ms);
    assert_int_equal(a->last_activity_ms, b->last_activity_ms);
    assert_int_equal(a->last_purchase_ms, b->last_purchase_ms);
    assert_int_equal(a->t_ref_ms, b->t_ref_ms);
    assert_int_equal(a->active_day_bits, b->active_day_bits);
    if (purchase_days)
        assert_int_equal(a->purchase_day_bits, b->purchase_day_bits);
    assert_int_equal(a->lifetime_active_days, b->lifetime_active_days);
    for (int c = 0; c < FEAT_C_COUNT; c++)
        if (c == FEAT_C_PURCHASE_DAYS_90D && !purchase_days)
            assert_true(a->counter[c] <= b->counter[c] * (1 + 1e-5));
        else if (fabs(a->counter[c] - b->counter[c]) > 1e-6 + 2e-5 * fabs(b->counter[c]))
            fail_msg("counter %d: %.9g vs %.9g", c, a->counter[c], b->counter[c]);
    assert_close(a->gap_sum_days, b->gap_sum_days, 2e-5, 1e-5);
}

static void test_permutations_same_state(void **unused)
{
    static const struct {
        uint64_t seed;
        int n;
        int span_days; /* <= 64: every late active day can be checked against the bitmap;
                          <= 32: every late purchase day too */
    } cases[] = {{11, 2, 2}, {12, 10, 5}, {13, 300, 32}, {14, 600, 64}, {15, 100, 20}};
    static evspec_t evs[600];
    for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
        int n = cases[k].n;
        gen_events(cases[k].seed, n, cases[k].span_days * DAY, evs);
        qsort(evs, (size_t)n, sizeof evs[0], cmp_evspec_time);
        feat_state_t sorted;
        feat_state_init(&sorted);
        for (int i = 0; i < n; i++)
            apply(&sorted, evs[i].type, evs[i].t_ms, evs[i].amount);
        int64_t t = evs[n - 1].t_ms + DAY;
        check_against_spec(&sorted, evs, n, t);
        float x_sorted[FEAT_DIM];
        feat_vector(&sorted, t, x_sorted);

        rng_t r;
        rng_seed(&r, cases[k].seed * 7919);
        for (int perm = 0; perm < 9; perm++) {
            if (perm == 0) { /* reversed: every event but the first is late */
                for (int i = 0; i < n / 2; i++) {
                    evspec_t tmp = evs[i];
                    evs[i] = evs[n - 1 - i];
                    evs[n - 1 - i] = tmp;
                }
            } else { /* Fisher-Yates */
                for (int i = n - 1; i > 0; i--) {
                    int j = (int)rng_below(&r, (uint64_t)i + 1);
                    evspec_t tmp = evs[i];
                    evs[i] = evs[j];
                    evs[j] = tmp;
                }
            }
            feat_state_t st;
            feat_state_init(&st);
            for (int i = 0; i < n; i++)
                apply(&st, evs[i].type, evs[i].t_ms, evs[i].amount);
            int purchase_days = cases[k].span_days <= FEAT_PURCHASE_DAY_BITS;
            assert_states_match(&st, &sorted, purchase_days);
            float x[FEAT_DIM];
            feat_vector(&st, t, x);
            for (int i = 0; i < FEAT_DIM; i++)
                if (i != FEAT_PURCHASE_DAYS_90D || purchase_days)
                    assert_float_equal(x[i], x_sorted[i], 1e-5);
        }
    }
}

/* Mean gap between distinct days, with late days inserted anywhere. */
static void test_mean_gap(void **unused)
{
    static const struct {
        int n;
        int days[6]; /* arrival order; each event at the day's noon */
        int read_day;
        double expect; /* < 0: compute from the closed form over the sorted days */
    } cases[] = {
        {1, {0}, 4, 3.5},            /* one day: the open gap, i.e. the tenure */
        {2, {0, 1}, 2, 1.0},         /* consecutive days */
        {4, {0, 3, 6, 9}, 10, 3.0},  /* regular rhythm */
        {3, {0, 10, 5}, 11, 5.0},    /* late day splits a gap evenly */
        {3, {10, 0, 5}, 11, 5.0},    /* front insertion, then a split */
        {3, {5, 10, 0}, 11, 5.0},    /* front insertion last */
        {4, {0, 4, 10, 6}, 11, -1},  /* uneven split */
        {3, {0, 100, 130}, 131, -1}, /* weights differ a lot */
        {3, {130, 100, 0}, 131, -1}, /* the same, in reverse: 0 is older than the window */
        {3, {100, 130, 0}, 131, -1}, /* before the first day and outside the window */
    };
    for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
        feat_state_t st;
        feat_state_init(&st);
        int sorted[6];
        for (int i = 0; i < cases[k].n; i++) {
            apply(&st, EV_PAGE_VIEW, T0 + cases[k].days[i] * DAY + DAY / 2, 0);
            sorted[i] = cases[k].days[i];
        }
        for (int i = 0; i < cases[k].n; i++) /* insertion sort */
            for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
                int tmp = sorted[j];
                sorted[j] = sorted[j - 1];
                sorted[j - 1] = tmp;
            }
        int64_t t = T0 + cases[k].read_day * DAY;
        double expect = cases[k].expect;
        if (expect < 0) {
            double g = 0, w = 0;
            for (int i = 1; i < cases[k].n; i++) {
                double wi = exp2(-(double)(t - (T0 + sorted[i] * DAY)) / (90.0 * DAY));
                g += wi * (sorted[i] - sorted[i - 1]);
                w += wi;
            }
            expect = g / w;
        }
        assert_int_equal(feat_lifetime_active_days(&st), cases[k].n);
        assert_close(feat_human_value(&st, t, FEAT_MEAN_GAP_DAYS), expect, 1e-5, 0);
        double recency = feat_human_value(&st, t, FEAT_DAYS_SINCE_ACTIVITY);
        assert_close(feat_human_value(&st, t, FEAT_RECENCY_GAP_RATIO), recency / expect, 1e-5, 0);
    }
}

/* ---- distinct days, UTC boundaries, what counts as activity ---- */

static void test_day_of(void **unused)
{
    static const struct {
        int64_t t_ms, day;
    } cases[] = {
        {0, 0},          {DAY - 1, 0},
        {DAY, 1},        {-1, -1},
        {-DAY, -1},      {-DAY - 1, -2},
        {T0, 19700},     {T0 + DAY - 1, 19700},
        {T0 - 1, 19699}, {FEAT_TIME_LIMIT_MS, FEAT_TIME_LIMIT_MS / DAY},
    };
    for (size_t k = 0; k < ARRAY_LEN(cases); k++)
        assert_int_equal(feat_day_of(cases[k].t_ms), cases[k].day);
}

static void test_distinct_days(void **unused)
{
    static const struct {
        const char *what;
        int n;
        struct {
            ev_type_t type;
            int64_t t_ms; /* relative to T0 */
        } ev[8];
        int expect_days;
        int64_t expect_last; /* relative to T0; INT64_MIN = never */
    } cases[] = {
        {"many events in one day",
         8,
         {{EV_SESSION_START, 0},
          {EV_PAGE_VIEW, 1000},
          {EV_PURCHASE, 2000},
          {EV_PURCHASE, 2000},
          {EV_PAGE_VIEW, DAY / 2},
          {EV_SEARCH, DAY - 1},
          {EV_OTHER, 5},
          {EV_ADD_TO_CART, 7}},
         1,
         DAY - 1},
        {"UTC midnight splits days", 2, {{EV_PAGE_VIEW, DAY - 1}, {EV_PAGE_VIEW, DAY}}, 2, DAY},
        {"UTC midnight, reversed", 2, {{EV_PAGE_VIEW, DAY}, {EV_PAGE_VIEW, DAY - 1}}, 2, DAY},
        {"before the epoch", 2, {{EV_PAGE_VIEW, -T0 - 1}, {EV_PAGE_VIEW, -T0}}, 2, -T0},
        {"refunds and cancels are not activity",
         3,
         {{EV_REFUND, 0}, {EV_SUBSCRIPTION_CANCEL, DAY}, {EV_REFUND, 2 * DAY}},
         0,
         INT64_MIN},
        {"cancel after activity", 2, {{EV_PAGE_VIEW, 0}, {EV_SUBSCRIPTION_CANCEL, 3 * DAY}}, 1, 0},
        {"search, remove_from_cart, other are activity",
         3,
         {{EV_SEARCH, 0}, {EV_REMOVE_FROM_CART, DAY}, {EV_OTHER, 2 * DAY}},
         3,
         2 * DAY},
        {"late event on a counted day",
         3,
         {{EV_PAGE_VIEW, 0}, {EV_PAGE_VIEW, 10 * DAY}, {EV_PAGE_VIEW, 5}},
         2,
         10 * DAY},
        {"late new day in the window",
         3,
         {{EV_PAGE_VIEW, 0}, {EV_PAGE_VIEW, 10 * DAY}, {EV_PAGE_VIEW, 5 * DAY}},
         3,
         10 * DAY},
        {"late day 63 days back is checked",
         3,
         {{EV_PAGE_VIEW, 0}, {EV_PAGE_VIEW, 63 * DAY}, {EV_PAGE_VIEW, 1}},
         2,
         63 * DAY},
        {"late day 64+ days back, after the first, is not counted",
         3,
         {{EV_PAGE_VIEW, 0}, {EV_PAGE_VIEW, 200 * DAY}, {EV_PAGE_VIEW, 136 * DAY}},
         2,
         200 * DAY},
        {"late day 63 days back, after the first, is counted",
         3,
         {{EV_PAGE_VIEW, 0}, {EV_PAGE_VIEW, 200 * DAY}, {EV_PAGE_VIEW, 137 * DAY}},
         3,
         200 * DAY},
        {"a day before the first always counts, once",
         3,
         {{EV_PAGE_VIEW, 100 * DAY}, {EV_PAGE_VIEW, 0}, {EV_PAGE_VIEW, 1000}},
         2,
         100 * DAY},
        {"a gap over 64 days clears the window",
         4,
         {{EV_PAGE_VIEW, 0},
          {EV_PAGE_VIEW, 70 * DAY},
          {EV_PAGE_VIEW, 70 * DAY + 1},
          {EV_PAGE_VIEW, 71 * DAY}},
         3,
         71 * DAY},
    };
    for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
        feat_state_t st;
        feat_state_init(&st);
        for (int i = 0; i < cases[k].n; i++)
            apply(&st, cases[k].ev[i].type, T0 + cases[k].ev[i].t_ms, 10.0);
        if ((int)feat_lifetime_active_days(&st) != cases[k].expect_days)
            fail_msg("%s: %u days, expected %d", cases[k].what, feat_lifetime_active_days(&st),
                     cases[k].expect_days);
        int64_t expect_last =
            cases[k].expect_last == INT64_MIN ? FEAT_NEVER : T0 + cases[k].expect_last;
        assert_int_equal(feat_last_activity_ms(&st), expect_last);
        /* The decayed day counters agree with the lifetime count when read at t_ref with a
         * huge half-life... approximately: check the 90d counter is <= days and > 0 iff days. */
        double a90 = feat_counter_at(&st, FEAT_C_ACTIVE_DAYS_90D, feat_t_ref_ms(&st));
        assert_true(a90 <= cases[k].expect_days + 1e-6);
        assert_true((a90 > 0) == (cases[k].expect_days > 0));
    }
}

static void test_not_activity(void **unused)
{
    feat_state_t st;
    feat_state_init(&st);
    apply(&st, EV_PAGE_VIEW, T0, 0);
    apply(&st, EV_REFUND, T0 + 5 * DAY, -30.0); /* sign of refunds varies between sources */
    apply(&st, EV_REFUND, T0 + 5 * DAY, 20.0);
    apply(&st, EV_SUBSCRIPTION_CANCEL, T0 + 5 * DAY, 0);
    assert_int_equal(feat_last_activity_ms(&st), T0);
    assert_int_equal(feat_t_ref_ms(&st), T0 + 5 * DAY);
    assert_int_equal(feat_lifetime_active_days(&st), 1);
    int64_t t = T0 + 5 * DAY;
    assert_close(feat_human_value(&st, t, FEAT_REFUNDS_90D), 2.0, 1e-6, 0);
    assert_close(feat_human_value(&st, t, FEAT_REFUND_AMOUNT_90D), 50.0, 1e-6, 0);
    assert_close(feat_human_value(&st, t, FEAT_CANCEL_INTENT_30D), 1.0, 1e-6, 0);
    assert_close(feat_human_value(&st, t, FEAT_REVENUE_90D), 0.0, 0, 0);
    assert_close(feat_human_value(&st, t, FEAT_DAYS_SINCE_ACTIVITY), 5.0, 1e-9, 0);
    assert_close(feat_human_value(&st, t, FEAT_ACTIVE_DAYS_7D), exp2(-5.0 / 7.0), 1e-6, 0);
}

static void test_purchase_days(void **unused)
{
    static const struct {
        int n;
        int64_t t[5];        /* arrival order, relative to T0 */
        int n_days;          /* distinct days expected in purchase_days_90d */
        int days[3];         /* those days, relative to T0's day */
        int64_t expect_last; /* latest purchase, relative to T0 */
    } cases[] = {
        {3, {0, 1000, DAY - 1}, 1, {0}, DAY - 1},
        {2, {DAY, 0}, 2, {0, 1}, DAY},               /* a late day */
        {3, {DAY, 0, 5}, 2, {0, 1}, DAY},            /* the late day's second purchase */
        {3, {0, 31 * DAY, 5}, 2, {0, 31}, 31 * DAY}, /* 31 days back is still checked */
        {2, {40 * DAY, 0}, 1, {40}, 40 * DAY},       /* 40 days back: cannot be checked */
    };
    for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
        feat_state_t st;
        feat_state_init(&st);
        for (int i = 0; i < cases[k].n; i++)
            apply(&st, EV_PURCHASE, T0 + cases[k].t[i], 100.0);
        assert_int_equal(feat_last_purchase_ms(&st), T0 + cases[k].expect_last);
        int64_t r = T0 + 50 * DAY;
        double expect = 0;
        for (int i = 0; i < cases[k].n_days; i++)
            expect += exp2(-(double)(r - (T0 + cases[k].days[i] * DAY)) / (90.0 * DAY));
        assert_close(feat_human_value(&st, r, FEAT_PURCHASE_DAYS_90D), expect, 1e-6, 0);
        /* purchases count every event, duplicates or not */
        double p = 0;
        for (int i = 0; i < cases[k].n; i++)
            p += exp2(-(double)(r - (T0 + cases[k].t[i])) / (90.0 * DAY));
        assert_close(feat_human_value(&st, r, FEAT_PURCHASES_90D), p, 1e-6, 0);
    }
}

/* ---- derived features ---- */

static void test_recency_tenure_frequency(void **unused)
{
    feat_state_t st;
    feat_state_init(&st);
    /* Active every other day, days 0..58 (30 days), at noon; one purchase on day 20. */
    for (int d = 0; d < 60; d += 2)
        apply(&st, EV_PAGE_VIEW, T0 + d * DAY + DAY / 2, 0);
    apply(&st, EV_PURCHASE, T0 + 20 * DAY + DAY / 2, 12.5);
    int64_t t = T0 + 60 * DAY;
    assert_close(feat_human_value(&st, t, FEAT_ACTIVE_DAYS_LIFETIME), 30.0, 0, 0);
    assert_close(feat_human_value(&st, t, FEAT_ACTIVE_DAYS_PER_30D), 15.0, 1e-12, 0);
    assert_close(feat_human_value(&st, t, FEAT_DAYS_SINCE_ACTIVITY), 1.5, 1e-12, 0);
    assert_close(feat_human_value(&st, t, FEAT_DAYS_SINCE_PURCHASE), 39.5, 1e-12, 0);
    assert_close(feat_human_value(&st, t, FEAT_TENURE_DAYS), 59.5, 1e-12, 0);
    assert_close(feat_human_value(&st, t, FEAT_MEAN_GAP_DAYS), 2.0, 1e-5, 0);
    assert_close(feat_human_value(&st, t, FEAT_RECENCY_GAP_RATIO), 0.75, 1e-5, 0);
    assert_close(feat_human_value(&st, t, FEAT_REVENUE_90D), 12.5 * exp2(-39.5 / 90.0), 1e-6, 0);
    /* Caps: a year of silence and ten years of tenure. */
    assert_close(feat_human_value(&st, t + 400 * DAY, FEAT_DAYS_SINCE_ACTIVITY), 365.0, 0, 0);
    assert_close(feat_human_value(&st, t + 20 * 365 * DAY, FEAT_TENURE_DAYS), 3650.0, 0, 0);
    assert_close(feat_human_value(&st, t + 400 * DAY, FEAT_RECENCY_GAP_RATIO), 365.0 / 2.0, 1e-5,
                 0);
    /* One event: same-day frequency is the maximum. */
    feat_state_init(&st);
    apply(&st, EV_PAGE_VIEW, T0 + 100, 0);
    assert_close(feat_human_value(&st, T0 + 200, FEAT_ACTIVE_DAYS_PER_30D), 30.0, 0, 0);
    assert_close(feat_human_value(&st, T0 + 200, FEAT_DAYS_SINCE_PURCHASE), 365.0, 0, 0);
}

/* feat_rhythm gives exactly what feat_human_values gives for its three features: random
 * users (never active, one day, many), read before, at and long after their last event. */
static void test_rhythm_matches_human_values(void **unused)
{
    uint64_t r = 12345;
    for (int u = 0; u < 300; u++) {
        feat_state_t st;
        feat_state_init(&st);
        int events = u % 7 == 0 ? 0 : (int)(r % 40);
        int64_t t = T0;
        for (int i = 0; i < events; i++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            t += (int64_t)((r >> 33) % (20 * DAY));
            apply(&st, (r >> 20) % 3 == 0 ? EV_PURCHASE : EV_PAGE_VIEW, t, 5.0);
        }
        const int64_t at[] = {T0 - DAY, t, t + DAY / 3, t + 50 * DAY, t + 900 * DAY};
        for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
            double hv[FEAT_DIM], quiet, active, gap;
            feat_human_values(&st, at[k], hv);
            feat_rhythm(&st, at[k], &quiet, &active, &gap);
            assert_true(quiet == hv[FEAT_DAYS_SINCE_ACTIVITY]);
            assert_true(active == hv[FEAT_ACTIVE_DAYS_LIFETIME]);
            assert_true(gap == hv[FEAT_MEAN_GAP_DAYS]);
        }
    }
}

static void test_activity_trend(void **unused)
{
    static const struct {
        const char *what;
        int first_day, last_day, every; /* active on first_day, first_day+every, ... */
        int burst_from;                 /* and every day from here to last_day (-1: none) */
        int read_day;
        double lo, hi;
    } cases[] = {
        {"daily, steady", 0, 179, 1, -1, 180, -0.1, 0.1},
        {"weekly, steady", 0, 175, 7, -1, 176, -0.3, 0.3},
        {"daily, then silent 14 days", 0, 179, 1, -1, 194, -1.0, -0.4},
        {"weekly, then a daily burst", 0, 140, 7, 134, 141, 0.2, 1.0},
        {"silent for a year", 0, 30, 1, -1, 396, -1.0, -0.99},
    };
    for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
        feat_state_t st;
        feat_state_init(&st);
        for (int d = cases[k].first_day; d <= cases[k].last_day; d++) {
            int on = (d - cases[k].first_day) % cases[k].every == 0 ||
                     (cases[k].burst_from >= 0 && d >= cases[k].burst_from);
            if (on)
                apply(&st, EV_SESSION_START, T0 + d * DAY + DAY / 2, 0);
        }
        double trend = feat_human_value(&st, T0 + cases[k].read_day * DAY, FEAT_ACTIVITY_TREND);
        if (!(trend >= cases[k].lo && trend <= cases[k].hi))
            fail_msg("%s: trend %.4f outside [%.2f, %.2f]", cases[k].what, trend, cases[k].lo,
                     cases[k].hi);
    }
    feat_state_t empty;
    feat_state_init(&empty);
    assert_close(feat_human_value(&empty, T0, FEAT_ACTIVITY_TREND), 0.0, 0, 0);
}

static void test_transforms(void **unused)
{
    feat_state_t st;
    feat_state_init(&st);
    apply(&st, EV_SESSION_START, T0, 0);
    apply(&st, EV_PURCHASE, T0, 99.0);
    apply(&st, EV_PURCHASE, T0 + 1, -5.0); /* negative purchase: no revenue */
    apply(&st, EV_PURCHASE, T0 + 2, 1e300);
    int64_t t = T0 + 3 * DAY;
    double h[FEAT_DIM];
    float x[FEAT_DIM];
    feat_human_values(&st, t, h);
    feat_vector(&st, t, x);
    for (int i = 0; i < FEAT_DIM; i++) {
        assert_close(h[i], feat_human_value(&st, t, i), 0, 0);
        float expect = feat_info[i].transform == FEAT_TF_LOG1P ? (float)log1p(h[i]) : (float)h[i];
        assert_float_equal(x[i], expect, 1e-6);
        assert_float_equal(feat_transform(i, h[i]), expect, 0);
        assert_true(x[i] == feat_transform(i, h[i])); /* one arithmetic on every path */
    }
    /* Exact values: money is clamped per event, then log1p. */
    assert_close(h[FEAT_REVENUE_30D], (99.0 + FEAT_AMOUNT_MAX) * exp2(-3.0 / 30.0), 1e-6, 0);
    assert_close(h[FEAT_PURCHASES_30D], 3.0 * exp2(-3.0 / 30.0), 1e-6, 1e-9);
    assert_close(h[FEAT_DAYS_SINCE_PURCHASE], (3.0 * DAY - 2) / DAY, 1e-12, 0);
    assert_float_equal(x[FEAT_DAYS_SINCE_PURCHASE], (float)log1p(3.0), 1e-6);
    assert_float_equal(feat_transform(FEAT_REVENUE_30D, -10.0), 0.0f, 0);
    assert_float_equal(feat_transform(FEAT_ACTIVITY_TREND, -0.5), -0.5f, 0);
    assert_float_equal(feat_transform(-1, 3.0), 0.0f, 0);
    assert_float_equal(feat_transform(FEAT_DIM, 3.0), 0.0f, 0);
    assert_close(feat_human_value(&st, t, -1), 0.0, 0, 0);
    assert_close(feat_human_value(&st, t, FEAT_DIM), 0.0, 0, 0);
}

/* No NaN or Inf for any state, at any read time. */
static void test_guards_finite(void **unused)
{
    static const struct {
        ev_type_t type;
        int64_t t_ms;
        double amount;
    } poison[] = {
        {EV_PURCHASE, T0, 1e300},
        {EV_PURCHASE, T0, -1e300},
        {EV_PURCHASE, T0, NAN},
        {EV_PURCHASE, T0, INFINITY},
        {EV_REFUND, T0, -INFINITY},
        {EV_REFUND, T0, 1e300},
        {EV_PAGE_VIEW, FEAT_TIME_LIMIT_MS, 0},
        {EV_PAGE_VIEW, -FEAT_TIME_LIMIT_MS, 0},
        {EV_PURCHASE, -FEAT_TIME_LIMIT_MS + 1, 1e12},
        {EV_PAGE_VIEW, INT64_MAX, 0}, /* ignored */
        {EV_PAGE_VIEW, INT64_MIN, 0}, /* ignored */
        {(ev_type_t)999, T0, 0},      /* out-of-range type: treated as other */
    };
    static const int64_t reads[] = {INT64_MIN,
                                    -FEAT_TIME_LIMIT_MS,
                                    0,
                                    T0 - DAY,
                                    T0,
                                    T0 + DAY,
                                    T0 + 100LL * 365 * DAY,
                                    FEAT_TIME_LIMIT_MS,
                                    INT64_MAX};
    /* State k holds poison[0..k-1]; k = 0 is the empty state. Also 1e6 huge purchases. */
    for (size_t k = 0; k <= ARRAY_LEN(poison) + 1; k++) {
        feat_state_t st;
        feat_state_init(&st);
        if (k <= ARRAY_LEN(poison)) {
            for (size_t i = 0; i < k; i++)
                apply(&st, poison[i].type, poison[i].t_ms, poison[i].amount);
        } else {
            for (int i = 0; i < 100000; i++)
                apply(&st, EV_PURCHASE, T0 + i, 1e300);
        }
        for (size_t r = 0; r < ARRAY_LEN(reads); r++) {
            float x[FEAT_DIM];
            double h[FEAT_DIM];
            feat_vector(&st, reads[r], x);
            feat_human_values(&st, reads[r], h);
            for (int i = 0; i < FEAT_DIM; i++) {
                if (!isfinite(x[i]) || !isfinite(h[i]))
                    fail_msg("state %zu read %zu: %s = %g (x = %g)", k, r, feat_info[i].name, h[i],
                             (double)x[i]);
                double lo = i == FEAT_ACTIVITY_TREND ? -1.0 : 0.0;
                assert_true(h[i] >= lo);
                if (feat_info[i].cap > 0)
                    assert_true(h[i] <= feat_info[i].cap);
            }
        }
        /* Every reachable state survives its own encoding. */
        uint8_t buf[FEAT_ENCODED_MAX_BYTES];
        feat_state_t back;
        char err[256];
        size_t n = feat_encode(&st, buf, sizeof buf);
        assert_true(n > 0);
        if (feat_decode(&back, buf, n, NULL, err, sizeof err) != 0)
            fail_msg("state %zu: %s", k, err);
    }
    /* Empty state: the documented defaults. */
    feat_state_t empty;
    feat_state_init(&empty);
    assert_int_equal(feat_last_activity_ms(&empty), FEAT_NEVER);
    assert_close(feat_human_value(&empty, T0, FEAT_DAYS_SINCE_ACTIVITY), 365.0, 0, 0);
    assert_close(feat_human_value(&empty, T0, FEAT_DAYS_SINCE_PURCHASE), 365.0, 0, 0);
    assert_close(feat_human_value(&empty, T0, FEAT_TENURE_DAYS), 0.0, 0, 0);
    assert_close(feat_human_value(&empty, T0, FEAT_MEAN_GAP_DAYS), 365.0, 0, 0);
    assert_close(feat_human_value(&empty, T0, FEAT_ACTIVE_DAYS_PER_30D), 0.0, 0, 0);
    /* Out-of-range times are ignored entirely. */
    feat_state_t st;
    feat_state_init(&st);
    apply(&st, EV_PAGE_VIEW, FEAT_TIME_LIMIT_MS + 1, 0);
    assert_true(feat_event_part_equal(&st, &empty));
}

/* ---- encoding (the record-level tests are in test_user.c) ---- */

static void build_state(feat_state_t *st, uint64_t seed, int n)
{
    static evspec_t evs[400];
    feat_state_init(st);
    gen_events(seed, n, 90 * DAY, evs);
    for (int i = 0; i < n; i++)
        apply(st, evs[i].type, evs[i].t_ms, evs[i].amount);
}

static void assert_states_identical(const feat_state_t *a, const feat_state_t *b)
{
    assert_int_equal(a->first_activity_ms, b->first_activity_ms);
    assert_int_equal(a->last_activity_ms, b->last_activity_ms);
    assert_int_equal(a->last_purchase_ms, b->last_purchase_ms);
    assert_int_equal(a->t_ref_ms, b->t_ref_ms);
    assert_memory_equal(a->counter, b->counter, sizeof a->counter);
    assert_memory_equal(&a->gap_sum_days, &b->gap_sum_days, sizeof a->gap_sum_days);
    assert_int_equal(a->active_day_bits, b->active_day_bits);
    assert_int_equal(a->purchase_day_bits, b->purchase_day_bits);
    assert_int_equal(a->lifetime_active_days, b->lifetime_active_days);
    assert_int_equal(a->cooldown_until_ms, b->cooldown_until_ms);
}

static void test_encode_round_trip(void **unused)
{
    static const struct {
        uint64_t seed;
        int n;
        int64_t cooldown;
    } cases[] = {{0, 0, FEAT_NEVER},
                 {21, 1, FEAT_NEVER},
                 {22, 50, T0 + 7 * DAY},
                 {23, 400, -5},
                 {24, 3, FEAT_DERIVED_TIME_LIMIT_MS},
                 {25, 30, -FEAT_DERIVED_TIME_LIMIT_MS},
                 {26, 30, T0 + 17 * DAY + 1234}};
    for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
        feat_state_t st, back;
        build_state(&st, cases[k].seed, cases[k].n);
        feat_set_cooldown_until_ms(&st, cases[k].cooldown);
        uint8_t buf[FEAT_ENCODED_MAX_BYTES + 8];
        char err[256] = "";
        size_t n = feat_encode(&st, buf, sizeof buf);
        assert_true(n >= 1 && n <= FEAT_ENCODED_MAX_BYTES);
        assert_int_equal(feat_decode(&back, buf, n, NULL, err, sizeof err), 0);
        assert_states_identical(&st, &back);
        /* With `used`, trailing bytes are the caller's. */
        size_t used = 0;
        buf[n] = 0x55;
        assert_int_equal(feat_decode(&back, buf, n + 1, &used, err, sizeof err), 0);
        assert_int_equal(used, n);
        /* Exactly n bytes of room suffice, n - 1 do not. */
        uint8_t tight[FEAT_ENCODED_MAX_BYTES];
        assert_int_equal(feat_encode(&st, tight, n), n);
        assert_memory_equal(tight, buf, n);
        assert_int_equal(feat_encode(&st, tight, n - 1), 0);
        /* Decoding then applying equals applying directly (the store's round trip). */
        apply(&st, EV_PURCHASE, T0 + 95 * DAY, 10);
        apply(&back, EV_PURCHASE, T0 + 95 * DAY, 10);
        assert_states_identical(&st, &back);
    }
}

/* clang-format off */
static const uint8_t layout_bytes[] = {
    0x81, 0x84, 0x3c,                               /* flags 0xf0201 */
    0x80, 0xb2, 0xce, 0xea, 0x89, 0x63,             /* zigzag(t_ref) */
    0x00,                                           /* t_ref - last activity */
    0xfb, 0x98, 0xff, 0xcd, 0x01,                   /* last - first = 5 d + 123 ms */
    0x80, 0xba, 0xb7, 0x03,                         /* t_ref - last purchase = 2 h */
    0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0x40, /* counters 0 and 9 */
    0x00, 0x00, 0x00, 0x3f,                         /* gap sum */
    0x05, 0xab, 0x02, 0x00,                         /* bitmaps, lifetime */
    0x74};                                          /* cooldown */
/* clang-format on */

/* A hand-built state against bytes computed independently (a small Python model of the
 * layout in feat.h): flags, zigzag t_ref, backward distances, present floats only, bitmaps
 * without bit 0, lifetime - 1, cooldown as 14 whole days from t_ref's midnight. */
static void test_encode_layout(void **unused)
{
    feat_state_t st;
    feat_state_init(&st);
    st.t_ref_ms = T0 + 13 * 3600000LL;
    st.last_activity_ms = st.t_ref_ms;
    st.first_activity_ms = st.last_activity_ms - 5 * DAY - 123;
    st.last_purchase_ms = st.t_ref_ms - 2 * 3600000LL;
    st.counter[FEAT_C_ACTIVE_DAYS_7D] = 1.0f;
    st.counter[FEAT_C_REVENUE_30D] = 2.5f;
    st.gap_sum_days = 0.5f;
    st.active_day_bits = 0xb;
    st.purchase_day_bits = 1;
    st.lifetime_active_days = 300;
    st.cooldown_until_ms = T0 + 14 * DAY;
    uint8_t buf[FEAT_ENCODED_MAX_BYTES];
    assert_int_equal(feat_encode(&st, buf, sizeof buf), sizeof layout_bytes);
    assert_memory_equal(buf, layout_bytes, sizeof layout_bytes);

    /* Empty state: flags 0 and a NEVER cooldown. */
    feat_state_t empty;
    feat_state_init(&empty);
    static const uint8_t expect_empty[] = {0x00, 0x00};
    assert_int_equal(feat_encode(&empty, buf, sizeof buf), 2);
    assert_memory_equal(buf, expect_empty, 2);
    assert_int_equal(feat_encode(&empty, buf, 1), 0);
    assert_int_equal(feat_encode(&empty, buf, 0), 0);

    /* Time codes: the largest unit dividing t - base (t_ref's midnight). */
    static const struct {
        int64_t t_ms;
        uint8_t bytes[3];
        size_t n;
    } codes[] = {
        {FEAT_NEVER, {0x00}, 1},
        {T0, {0x04}, 1}, /* q 0 days */
        {T0 + DAY, {0x0c}, 1},
        {T0 + 1500, {0xe1, 0x5d}, 2}, /* 1500 ms */
        {T0 + 7000, {0x3a}, 1},
        {T0 - 1, {0x05}, 1},                                /* -1 ms */
        {T0 - 3 * DAY + 30 * 60000, {0x8f, 0x8c, 0x02}, 3}, /* -4290 min */
    };
    for (size_t k = 0; k < ARRAY_LEN(codes); k++) {
        uint8_t tb[FEAT_TIME_CODE_MAX_BYTES];
        assert_int_equal(feat_encode_time(&st, codes[k].t_ms, tb, sizeof tb), codes[k].n);
        assert_memory_equal(tb, codes[k].bytes, codes[k].n);
        int64_t t = 0;
        size_t used = 0;
        char err[128];
        assert_int_equal(feat_decode_time(&st, tb, codes[k].n, &used, &t, err, sizeof err), 0);
        assert_int_equal(used, codes[k].n);
        assert_int_equal(t, codes[k].t_ms);
    }
    /* Out of the derived-time range: not encodable (the engine never produces it). */
    uint8_t tb[FEAT_TIME_CODE_MAX_BYTES];
    assert_int_equal(feat_encode_time(&st, INT64_MAX, tb, sizeof tb), 0);
    assert_int_equal(feat_encode_time(&st, FEAT_DERIVED_TIME_LIMIT_MS + 1, tb, sizeof tb), 0);
    feat_set_cooldown_until_ms(&st, INT64_MAX);
    assert_int_equal(feat_encode(&st, buf, sizeof buf), 0);
}

static void test_event_part(void **unused)
{
    feat_state_t a, b;
    build_state(&a, 31, 100);
    b = a;
    feat_set_cooldown_until_ms(&b, T0 + 3 * DAY);
    assert_true(feat_event_part_equal(&a, &b));
    /* The encodings differ (cooldown) and even in length: no byte prefix is "the event part". */
    uint8_t ea[FEAT_ENCODED_MAX_BYTES], eb[FEAT_ENCODED_MAX_BYTES];
    size_t na = feat_encode(&a, ea, sizeof ea), nb = feat_encode(&b, eb, sizeof eb);
    assert_int_equal(na + 1, nb);        /* NEVER: 1 byte; about -87 whole days: 2 bytes... */
    assert_memory_equal(ea, eb, na - 1); /* ...and cooldown is the last field */
    /* Each event-derived field on its own breaks equality; floats compare by their bits. */
    for (int f = 0; f < 9; f++) {
        feat_state_t c = a;
        switch (f) {
        case 0:
            c.first_activity_ms--;
            break;
        case 1:
            c.last_activity_ms--;
            break;
        case 2:
            c.last_purchase_ms--;
            break;
        case 3:
            c.t_ref_ms++;
            break;
        case 4:
            c.counter[FEAT_C_CANCEL_INTENT_30D] = -0.0f;
            break;
        case 5:
            c.gap_sum_days = nextafterf(c.gap_sum_days, 1e30f);
            break;
        case 6:
            c.active_day_bits ^= 2;
            break;
        case 7:
            c.purchase_day_bits ^= 4;
            break;
        default:
            c.lifetime_active_days++;
            break;
        }
        if (feat_event_part_equal(&a, &c))
            fail_msg("field %d change not seen", f);
    }
    apply(&b, EV_PAGE_VIEW, T0 + 91 * DAY, 0);
    assert_false(feat_event_part_equal(&a, &b));
}

/* Each case replaces bytes [at, at + n_old) of layout_bytes by `repl` (n_new bytes). */
static void test_decode_rejects(void **unused)
{
    /* clang-format off */
    static const struct {
        size_t at, n_old;
        uint8_t repl[12];
        size_t n_new;
        const char *expect; /* substring of errstr */
    } cases[] = {
        {0, 36, {0}, 0, "flags: truncated"},
        {0, 3, {0x81, 0x84, 0x7c}, 3, "unknown flag bits"},              /* bit 20 */
        {0, 3, {0x81, 0x84, 0x34}, 3, "set without events"},            /* no t_ref */
        {0, 3, {0x81, 0x84, 0xbc, 0x00}, 4, "flags: overlong varint"},  /* trailing 0x00 */
        {3, 6, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 11,
         "t_ref_ms: varint overflows 64 bits"},
        {3, 6, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x08}, 8, "t_ref_ms: time outside"},
        {9, 1, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 8, "last_activity_ms: time outside"},
        {23, 4, {0x00, 0x00, 0xc0, 0x7f}, 4, "non-finite"},   /* NaN revenue */
        {23, 4, {0x00, 0x00, 0x20, 0xc0}, 4, "negative"},     /* -2.5 */
        {23, 4, {0x00, 0x00, 0x80, 0x7f}, 4, "non-finite"},   /* +Inf */
        {23, 4, {0x00, 0x00, 0x00, 0x00}, 4, "counter: explicit zero"},
        {27, 4, {0x00, 0x00, 0x00, 0x00}, 4, "gap_sum_days: explicit zero"},
        {31, 1, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 10,
         "active_day_bits: more than 64 days"},
        {32, 2, {0xff, 0xff, 0x03}, 3, "lifetime_active_days: above 65535"},
        {34, 1, {0x80, 0x80, 0x80, 0x80, 0x08}, 5, "purchase_day_bits: more than 32 days"},
        {35, 1, {0x01}, 1, "cooldown_until_ms: non-canonical"},       /* 0 in ms */
        {35, 1, {0x83, 0x5a}, 2, "cooldown_until_ms: non-canonical"}, /* 1440 min */
        {35, 1, {0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 9,
         "cooldown_until_ms: time outside"},
        {35, 1, {0x80}, 1, "cooldown_until_ms: truncated"},
        {36, 0, {0x00}, 1, "trailing bytes"},
        {21, 15, {0}, 0, "counter: truncated"},
        {9, 27, {0}, 0, "last_activity_ms: truncated"},
        {23, 4, {0xff, 0xff, 0x7f, 0x7f}, 4, "above 1e30"},   /* FLT_MAX */
    };
    /* clang-format on */
    for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
        uint8_t buf[64];
        size_t len = cases[k].at;
        memcpy(buf, layout_bytes, cases[k].at);
        memcpy(buf + len, cases[k].repl, cases[k].n_new);
        len += cases[k].n_new;
        size_t rest = sizeof layout_bytes - cases[k].at - cases[k].n_old;
        memcpy(buf + len, layout_bytes + cases[k].at + cases[k].n_old, rest);
        len += rest;
        /* The decoder gets exactly len bytes on the heap, so ASan sees any over-read. */
        uint8_t *heap = malloc(len ? len : 1);
        memcpy(heap, buf, len);
        feat_state_t out;
        feat_state_init(&out);
        feat_set_cooldown_until_ms(&out, 12345);
        char err[256] = "";
        assert_int_equal(feat_decode(&out, heap, len, NULL, err, sizeof err), -1);
        free(heap);
        if (!strstr(err, cases[k].expect))
            fail_msg("case %zu: error \"%s\" lacks \"%s\"", k, err, cases[k].expect);
        assert_int_equal(feat_cooldown_until_ms(&out), 12345); /* untouched on error */
        assert_int_equal(feat_last_activity_ms(&out), FEAT_NEVER);
    }
    /* The unmodified bytes decode (the cases above differ from a valid value only where
     * they say). */
    feat_state_t ok;
    char err[256] = "";
    assert_int_equal(feat_decode(&ok, layout_bytes, sizeof layout_bytes, NULL, err, sizeof err), 0);
}

/* ---- the feature table drives every output ---- */

static void test_table_consistency(void **unused)
{
    static const struct {
        feat_id_t feature;
        feat_counter_t counter;
    } decayed[] = {
        {FEAT_ACTIVE_DAYS_7D, FEAT_C_ACTIVE_DAYS_7D},
        {FEAT_ACTIVE_DAYS_30D, FEAT_C_ACTIVE_DAYS_30D},
        {FEAT_ACTIVE_DAYS_90D, FEAT_C_ACTIVE_DAYS_90D},
        {FEAT_SESSIONS_30D, FEAT_C_SESSIONS_30D},
        {FEAT_PAGE_VIEWS_30D, FEAT_C_PAGE_VIEWS_30D},
        {FEAT_CARTS_30D, FEAT_C_CARTS_30D},
        {FEAT_PURCHASES_30D, FEAT_C_PURCHASES_30D},
        {FEAT_PURCHASES_90D, FEAT_C_PURCHASES_90D},
        {FEAT_PURCHASE_DAYS_90D, FEAT_C_PURCHASE_DAYS_90D},
        {FEAT_REVENUE_30D, FEAT_C_REVENUE_30D},
        {FEAT_REVENUE_90D, FEAT_C_REVENUE_90D},
        {FEAT_REFUNDS_90D, FEAT_C_REFUNDS_90D},
        {FEAT_REFUND_AMOUNT_90D, FEAT_C_REFUND_AMOUNT_90D},
        {FEAT_SUPPORT_TICKETS_30D, FEAT_C_SUPPORT_TICKETS_30D},
        {FEAT_COUPONS_90D, FEAT_C_COUPONS_90D},
        {FEAT_CANCEL_INTENT_30D, FEAT_C_CANCEL_INTENT_30D},
    };
    assert_int_equal(ARRAY_LEN(decayed), FEAT_C_COUNT);
    assert_int_equal(sizeof feat_info / sizeof feat_info[0], FEAT_DIM);
    for (size_t k = 0; k < ARRAY_LEN(decayed); k++) {
        const feat_info_t *f = &feat_info[decayed[k].feature];
        assert_true(f->half_life_days == feat_counter_half_life_days(decayed[k].counter));
        /* "_30d" in the name is the half-life in days. */
        char suffix[16];
        snprintf(suffix, sizeof suffix, "_%gd", f->half_life_days);
        assert_string_equal(f->name + strlen(f->name) - strlen(suffix), suffix);
        assert_int_equal(f->transform, FEAT_TF_LOG1P); /* counts and money */
    }
    static const char *const units[] = {"days", "count", "currency", "ratio"};
    for (int i = 0; i < FEAT_DIM; i++) {
        const feat_info_t *f = &feat_info[i];
        assert_non_null(f->name);
        assert_non_null(f->description);
        assert_true(strlen(f->description) > 10);
        assert_true(strlen(f->name) > 0 && strlen(f->name) <= 24);
        for (const char *p = f->name; *p; p++)
            assert_true(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_');
        assert_true(isalpha((unsigned char)f->name[0]));
        int unit_ok = 0;
        for (size_t u = 0; u < ARRAY_LEN(units); u++)
            unit_ok |= f->unit && strcmp(f->unit, units[u]) == 0;
        assert_true(unit_ok);
        assert_true(f->transform == FEAT_TF_NONE || f->transform == FEAT_TF_LOG1P);
        /* untransformed features must be bounded by their cap */
        if (f->transform == FEAT_TF_NONE)
            assert_true(f->cap > 0);
        assert_int_equal(feat_index(f->name), i);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(f->name, feat_info[j].name);
    }
    assert_int_equal(feat_index("no_such_feature"), -1);
    assert_string_equal(feat_transform_name(FEAT_TF_LOG1P), "log1p");
    assert_string_equal(feat_transform_name(FEAT_TF_NONE), "none");
}

static char *capture(void (*print)(FILE *, const feat_state_t *, int64_t, int),
                     const feat_state_t *st, int64_t t, int flag, size_t *lines)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    assert_non_null(f);
    print(f, st, t, flag);
    fclose(f);
    *lines = 0;
    for (const char *p = text; *p; p++)
        *lines += *p == '\n';
    return text;
}

static void print_user(FILE *f, const feat_state_t *st, int64_t t, int flag)
{
    feat_print_user(f, st, t);
}

static void print_ref(FILE *f, const feat_state_t *st, int64_t t, int markdown)
{
    feat_print_reference(f, markdown);
}

static void test_printing(void **unused)
{
    feat_state_t st;
    build_state(&st, 51, 100);
    size_t lines;
    char *text = capture(print_user, &st, T0 + 100 * DAY, 0, &lines);
    assert_int_equal(lines, FEAT_DIM + 1);
    double h[FEAT_DIM];
    feat_human_values(&st, T0 + 100 * DAY, h);
    for (int i = 0; i < FEAT_DIM; i++) {
        char expect[128];
        snprintf(expect, sizeof expect, "\n%-24s %-8s %14.4f %10.4f\n", feat_info[i].name,
                 feat_info[i].unit, h[i], (double)feat_transform(i, h[i]));
        if (!strstr(text, expect))
            fail_msg("feat_print_user lacks line for %s:\n%s", feat_info[i].name, text);
    }
    free(text);

    text = capture(print_ref, NULL, 0, 1, &lines);
    assert_int_equal(lines, FEAT_DIM + 2);
    assert_true(strncmp(text, "| # | feature |", 15) == 0);
    for (int i = 0; i < FEAT_DIM; i++) {
        char expect[64];
        snprintf(expect, sizeof expect, "| %d | `%s` | %s |", i, feat_info[i].name,
                 feat_info[i].unit);
        if (!strstr(text, expect))
            fail_msg("reference lacks %s", expect);
        assert_non_null(strstr(text, feat_info[i].description));
    }
    free(text);

    text = capture(print_ref, NULL, 0, 0, &lines);
    assert_int_equal(lines, FEAT_DIM + 1);
    for (int i = 0; i < FEAT_DIM; i++)
        assert_non_null(strstr(text, feat_info[i].name));
    assert_null(strchr(text, '|'));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decay_closed_form),
        cmocka_unit_test(test_decay_vector_and_clamp),
        cmocka_unit_test(test_sum_formula_in_order),
        cmocka_unit_test(test_permutations_same_state),
        cmocka_unit_test(test_mean_gap),
        cmocka_unit_test(test_day_of),
        cmocka_unit_test(test_distinct_days),
        cmocka_unit_test(test_not_activity),
        cmocka_unit_test(test_purchase_days),
        cmocka_unit_test(test_recency_tenure_frequency),
        cmocka_unit_test(test_rhythm_matches_human_values),
        cmocka_unit_test(test_activity_trend),
        cmocka_unit_test(test_transforms),
        cmocka_unit_test(test_guards_finite),
        cmocka_unit_test(test_encode_round_trip),
        cmocka_unit_test(test_encode_layout),
        cmocka_unit_test(test_event_part),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_table_consistency),
        cmocka_unit_test(test_printing),
    };
    return cmocka_run_group_tests_name("features", tests, NULL, NULL);
}
