/* Per-user state: applying events with lazy exponential decay and distinct-day bookkeeping
 * that tolerates out-of-order events. The versioned encoding stored in Redis is in
 * feat_wire.c, the feature vector derived from this state in feature_table.c. */
#include "feat.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* The three half-lives in use. Decay factors are computed once per half-life, not per
 * counter: an in-order event costs 3 exp2 calls, whatever the number of counters. */
enum { HL_7D = 0, HL_30D, HL_90D, HL_COUNT };
static const double hl_days[HL_COUNT] = {7.0, 30.0, 90.0};
static const double inv_hl_ms[HL_COUNT] = {1.0 / (7.0 * FEAT_DAY_MS), 1.0 / (30.0 * FEAT_DAY_MS),
                                           1.0 / (90.0 * FEAT_DAY_MS)};

static const uint8_t counter_hl[FEAT_C_COUNT] = {
    [FEAT_C_ACTIVE_DAYS_7D] = HL_7D,     [FEAT_C_ACTIVE_DAYS_30D] = HL_30D,
    [FEAT_C_ACTIVE_DAYS_90D] = HL_90D,   [FEAT_C_SESSIONS_30D] = HL_30D,
    [FEAT_C_PAGE_VIEWS_30D] = HL_30D,    [FEAT_C_CARTS_30D] = HL_30D,
    [FEAT_C_PURCHASES_30D] = HL_30D,     [FEAT_C_PURCHASES_90D] = HL_90D,
    [FEAT_C_PURCHASE_DAYS_90D] = HL_90D, [FEAT_C_REVENUE_30D] = HL_30D,
    [FEAT_C_REVENUE_90D] = HL_90D,       [FEAT_C_REFUNDS_90D] = HL_90D,
    [FEAT_C_REFUND_AMOUNT_90D] = HL_90D, [FEAT_C_SUPPORT_TICKETS_30D] = HL_30D,
    [FEAT_C_COUPONS_90D] = HL_90D,       [FEAT_C_CANCEL_INTENT_30D] = HL_30D,
};

double feat_counter_half_life_days(feat_counter_t c)
{
    return (c >= 0 && c < FEAT_C_COUNT) ? hl_days[counter_hl[c]] : 0.0;
}

/* f[g] = 2^(-age/h_g). age <= 0 gives 1: nothing ever decays upwards. */
static void decay_factors(double age_ms, double f[HL_COUNT])
{
    for (int g = 0; g < HL_COUNT; g++)
        f[g] = age_ms > 0 ? exp2(-age_ms * inv_hl_ms[g]) : 1.0;
}

/* fc[c] = f[counter_hl[c]]: each counter's factor, so the loops over counters that follow
 * are element-wise (feat_counters_at's loop vectorizes then: 182 M -> 123 M instructions on
 * the generated file's replay). */
static void counter_factors(const double f[HL_COUNT], double fc[FEAT_C_COUNT])
{
    for (int c = 0; c < FEAT_C_COUNT; c++)
        fc[c] = f[counter_hl[c]];
}

/* v as a stored counter: NaN and v <= 0 give 0, above FEAT_COUNTER_MAX the cap. */
static float store_counter(double v)
{
    if (!(v > 0)) /* also catches NaN */
        return 0.0f;
    return v > FEAT_COUNTER_MAX ? (float)FEAT_COUNTER_MAX : (float)v;
}

void feat_state_init(feat_state_t *st)
{
    memset(st, 0, sizeof *st);
    st->first_activity_ms = FEAT_NEVER;
    st->last_activity_ms = FEAT_NEVER;
    st->last_purchase_ms = FEAT_NEVER;
    st->t_ref_ms = FEAT_NEVER;
    st->cooldown_until_ms = FEAT_NEVER;
}

void feat_decay_to(feat_state_t *st, int64_t t_ms)
{
    if (st->t_ref_ms == FEAT_NEVER || t_ms <= st->t_ref_ms)
        return;
    if (t_ms > FEAT_TIME_LIMIT_MS) /* keep the invariant feat_decode checks */
        t_ms = FEAT_TIME_LIMIT_MS;
    double f[HL_COUNT], fc[FEAT_C_COUNT];
    decay_factors((double)(t_ms - st->t_ref_ms), f);
    counter_factors(f, fc);
    for (int c = 0; c < FEAT_C_COUNT; c++)
        st->counter[c] = store_counter((double)st->counter[c] * fc[c]);
    st->gap_sum_days = store_counter((double)st->gap_sum_days * f[HL_90D]);
    st->t_ref_ms = t_ms;
}

void feat_counters_at(const feat_state_t *st, int64_t t_ms, double out[FEAT_C_COUNT])
{
    double f[HL_COUNT], fc[FEAT_C_COUNT];
    /* Empty state: every counter is 0 and stays 0. Reads before t_ref clamp to t_ref. */
    decay_factors(st->t_ref_ms == FEAT_NEVER ? 0.0 : (double)t_ms - (double)st->t_ref_ms, f);
    counter_factors(f, fc);
    for (int c = 0; c < FEAT_C_COUNT; c++)
        out[c] = (double)st->counter[c] * fc[c];
}

double feat_counter_at(const feat_state_t *st, feat_counter_t c, int64_t t_ms)
{
    if (c < 0 || c >= FEAT_C_COUNT)
        return 0.0;
    double v = st->counter[c];
    if (st->t_ref_ms == FEAT_NEVER || t_ms <= st->t_ref_ms)
        return v;
    /* Subtract in double: t_ms may be anything, e.g. INT64_MAX, and must not overflow. */
    return v * exp2(-((double)t_ms - (double)st->t_ref_ms) * inv_hl_ms[counter_hl[c]]);
}

/* Adds x * weight to counter c, weight = the decay from the contribution's time to t_ref. */
static void add_counter(feat_state_t *st, feat_counter_t c, double x, const double w[HL_COUNT])
{
    st->counter[c] = store_counter((double)st->counter[c] + x * w[counter_hl[c]]);
}

/* A distinct day contributes as of its UTC midnight, never as of the event that happened to
 * reveal it: otherwise the value would depend on which of the day's events came first. */
static void midnight_weights(const feat_state_t *st, int64_t day, double w[HL_COUNT])
{
    decay_factors((double)(st->t_ref_ms - day * FEAT_DAY_MS), w);
}

static double midnight_weight_90d(const feat_state_t *st, int64_t day)
{
    double w[HL_COUNT];
    midnight_weights(st, day, w);
    return w[HL_90D];
}

static void add_active_day(feat_state_t *st, int64_t day)
{
    double w[HL_COUNT];
    midnight_weights(st, day, w);
    add_counter(st, FEAT_C_ACTIVE_DAYS_7D, 1.0, w);
    add_counter(st, FEAT_C_ACTIVE_DAYS_30D, 1.0, w);
    add_counter(st, FEAT_C_ACTIVE_DAYS_90D, 1.0, w);
    if (st->lifetime_active_days < UINT16_MAX)
        st->lifetime_active_days++;
}

static void add_gap(feat_state_t *st, double delta_days_weighted)
{
    st->gap_sum_days = store_counter((double)st->gap_sum_days + delta_days_weighted);
}

/* The gap sum gives each active day but the first the weight w(d) of its midnight times the
 * gap back to the previous active day. A late day d between known days p < d < n replaces
 * the gap n-p (weight w(n)) by d-p (weight w(d)) and n-d (weight w(n)):
 *   delta = w(d)(d-p) + w(n)(n-d) - w(n)(n-p) = (w(d) - w(n)) (d - p),
 * and a late day before every known day adds w(n)(n-d). Both are exact when p and n are
 * known, so the sum does not depend on arrival order. n is always in the bitmap (day L has
 * bit 0). When no earlier day is in the window, p is taken as the first active day, which
 * is exact unless the user had other days older than the window (then it is an estimate,
 * and the sum is clamped at 0). `i` is d's bit index; the bit is not set yet. */
static void insert_late_day(feat_state_t *st, int64_t d, unsigned i, int64_t last_day,
                            int64_t first_day)
{
    uint64_t bits = st->active_day_bits;
    uint64_t later = bits & ((UINT64_C(1) << i) - 1);
    int64_t n = later ? last_day - (63 - __builtin_clzll(later)) : last_day;
    uint64_t earlier = i + 1 < 64 ? bits >> (i + 1) : 0;
    int have_p = earlier != 0 || first_day < d;
    int64_t p = earlier ? d - 1 - __builtin_ctzll(earlier) : first_day;
    double wn = midnight_weight_90d(st, n);
    if (have_p)
        add_gap(st, (midnight_weight_90d(st, d) - wn) * (double)(d - p));
    else
        add_gap(st, wn * (double)(n - d));
}

/* Activity at t: last/first activity, distinct active days, the gap sum. */
static void apply_activity(feat_state_t *st, int64_t t)
{
    int64_t d = feat_day_of(t);
    if (st->first_activity_ms == FEAT_NEVER) {
        st->first_activity_ms = st->last_activity_ms = t;
        st->active_day_bits = 1;
        add_active_day(st, d);
        return;
    }
    int64_t last_day = feat_day_of(st->last_activity_ms);
    int64_t first_day = feat_day_of(st->first_activity_ms);
    if (d > last_day) {
        int64_t shift = d - last_day;
        st->active_day_bits = shift >= 64 ? 0 : st->active_day_bits << shift;
        st->active_day_bits |= 1;
        add_active_day(st, d);
        add_gap(st, midnight_weight_90d(st, d) * (double)shift);
        st->last_activity_ms = t;
    } else if (d == last_day) {
        if (t > st->last_activity_ms)
            st->last_activity_ms = t;
    } else {
        int64_t i = last_day - d;
        if (i < FEAT_ACTIVE_DAY_BITS) {
            uint64_t bit = UINT64_C(1) << i;
            if (!(st->active_day_bits & bit)) {
                insert_late_day(st, d, (unsigned)i, last_day, first_day);
                st->active_day_bits |= bit;
                add_active_day(st, d);
            }
        } else if (d < first_day) {
            /* Older than the window but before the first day: certainly new. */
            add_gap(st, midnight_weight_90d(st, first_day) * (double)(first_day - d));
            add_active_day(st, d);
        }
        /* else: a day in [first_day, last_day - 64) that the bitmap no longer covers:
         * counted in the event counters only (see feat_apply in feat.h). */
    }
    if (t < st->first_activity_ms)
        st->first_activity_ms = t;
}

static void apply_purchase_day(feat_state_t *st, int64_t t)
{
    int64_t d = feat_day_of(t);
    double w[HL_COUNT];
    if (st->last_purchase_ms == FEAT_NEVER) {
        st->purchase_day_bits = 1;
        st->last_purchase_ms = t;
        midnight_weights(st, d, w);
        add_counter(st, FEAT_C_PURCHASE_DAYS_90D, 1.0, w);
        return;
    }
    int64_t last_day = feat_day_of(st->last_purchase_ms);
    if (d > last_day) {
        int64_t shift = d - last_day;
        st->purchase_day_bits = shift >= 32 ? 0 : st->purchase_day_bits << shift;
        st->purchase_day_bits |= 1;
        st->last_purchase_ms = t;
        midnight_weights(st, d, w);
        add_counter(st, FEAT_C_PURCHASE_DAYS_90D, 1.0, w);
    } else if (d == last_day) {
        if (t > st->last_purchase_ms)
            st->last_purchase_ms = t;
    } else if (last_day - d < FEAT_PURCHASE_DAY_BITS) {
        uint32_t bit = UINT32_C(1) << (last_day - d);
        if (!(st->purchase_day_bits & bit)) {
            st->purchase_day_bits |= bit;
            midnight_weights(st, d, w);
            add_counter(st, FEAT_C_PURCHASE_DAYS_90D, 1.0, w);
        }
    }
}

static double clamp_amount(double a)
{
    if (!isfinite(a))
        return 0.0;
    return a > FEAT_AMOUNT_MAX ? FEAT_AMOUNT_MAX : a;
}

void feat_apply(feat_state_t *st, const ev_event_t *ev)
{
    int64_t t = ev->event_time_ms;
    if (t < -FEAT_TIME_LIMIT_MS || t > FEAT_TIME_LIMIT_MS)
        return;
    if (st->t_ref_ms == FEAT_NEVER)
        st->t_ref_ms = t;
    else
        feat_decay_to(st, t);
    /* Now t <= t_ref: the event contributes 2^(-(t_ref - t)/h), 1 when in order. */
    double w[HL_COUNT];
    decay_factors((double)(st->t_ref_ms - t), w);

    switch (ev->type) {
    case EV_SESSION_START:
        add_counter(st, FEAT_C_SESSIONS_30D, 1.0, w);
        break;
    case EV_PAGE_VIEW:
        add_counter(st, FEAT_C_PAGE_VIEWS_30D, 1.0, w);
        break;
    case EV_ADD_TO_CART:
        add_counter(st, FEAT_C_CARTS_30D, 1.0, w);
        break;
    case EV_PURCHASE: {
        double revenue = clamp_amount(ev->amount);
        if (revenue < 0) /* a negative purchase is a data error, not a refund */
            revenue = 0;
        add_counter(st, FEAT_C_PURCHASES_30D, 1.0, w);
        add_counter(st, FEAT_C_PURCHASES_90D, 1.0, w);
        add_counter(st, FEAT_C_REVENUE_30D, revenue, w);
        add_counter(st, FEAT_C_REVENUE_90D, revenue, w);
        apply_purchase_day(st, t);
        break;
    }
    case EV_REFUND:
        add_counter(st, FEAT_C_REFUNDS_90D, 1.0, w);
        add_counter(st, FEAT_C_REFUND_AMOUNT_90D, clamp_amount(fabs(ev->amount)), w);
        break;
    case EV_SUPPORT_TICKET:
        add_counter(st, FEAT_C_SUPPORT_TICKETS_30D, 1.0, w);
        break;
    case EV_COUPON_REDEEM:
        add_counter(st, FEAT_C_COUPONS_90D, 1.0, w);
        break;
    case EV_SUBSCRIPTION_CANCEL:
        add_counter(st, FEAT_C_CANCEL_INTENT_30D, 1.0, w);
        break;
    default: /* search, remove_from_cart, other: activity only */
        break;
    }
    if (ev_is_activity(ev->type))
        apply_activity(st, t);
}
