/* Per-user state: applying events with lazy exponential decay, distinct-day bookkeeping that
 * tolerates out-of-order events, and the versioned little-endian encoding stored in Redis.
 * The feature vector derived from this state lives in feature_table.c. */
#include "feat.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* Counters are clamped here on every store so that no sequence of events reaches +Inf
 * (log1p(1e30) = 69 is still a usable feature). */
#define FEAT_COUNTER_MAX 1e30

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
    double f[HL_COUNT];
    decay_factors((double)(t_ms - st->t_ref_ms), f);
    for (int c = 0; c < FEAT_C_COUNT; c++)
        st->counter[c] = store_counter((double)st->counter[c] * f[counter_hl[c]]);
    st->gap_sum_days = store_counter((double)st->gap_sum_days * f[HL_90D]);
    st->t_ref_ms = t_ms;
}

void feat_counters_at(const feat_state_t *st, int64_t t_ms, double out[FEAT_C_COUNT])
{
    double f[HL_COUNT];
    /* Empty state: every counter is 0 and stays 0. Reads before t_ref clamp to t_ref. */
    decay_factors(st->t_ref_ms == FEAT_NEVER ? 0.0 : (double)t_ms - (double)st->t_ref_ms, f);
    for (int c = 0; c < FEAT_C_COUNT; c++)
        out[c] = (double)st->counter[c] * f[counter_hl[c]];
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

/* ---- encoding ----
 * Layout and rationale in feat.h. Everything is built from two primitives, LEB128 varints
 * and raw little-endian float32 bits, read through a bounds-checked reader that never looks
 * past the end of the buffer. Encodings are canonical (one byte string per state: minimal
 * varints, no explicit zero counters, the largest time unit), so equal states have equal
 * bytes and the decoder can reject everything else. */

/* The flags word gives one bit to each counter below bit 16. */
_Static_assert(FEAT_C_COUNT == 16, "FL_COUNTERS and FL_GAP_SUM assume 16 counters");

enum {
    FL_COUNTERS = 0xffff,  /* bit c: counter[c] != 0, its f32 follows */
    FL_GAP_SUM = 1u << 16, /* gap_sum_days != 0 */
    FL_REF = 1u << 17,     /* t_ref_ms is set */
    FL_ACTIVE = 1u << 18,  /* first/last activity, active days and lifetime days follow */
    FL_PURCHASED = 1u << 19,
    FL_KNOWN = (1u << 20) - 1
};

/* Units of an engine/policy time code, smallest first; each divides the next. Ticks are
 * multiples of the tick interval and cooldowns ticks plus a duration, so against a UTC
 * midnight they are usually whole days (or hours, minutes) and take 1-3 bytes. */
static const int64_t time_unit_ms[4] = {1, 1000, 60000, FEAT_DAY_MS};

static uint32_t f32_bits(float f)
{
    uint32_t v;
    memcpy(&v, &f, sizeof v);
    return v;
}

static float bits_f32(uint32_t v)
{
    float f;
    memcpy(&f, &v, sizeof f);
    return f;
}

static uint64_t zigzag(int64_t v)
{
    return v < 0 ? ~((uint64_t)v << 1) : (uint64_t)v << 1;
}

static int64_t unzigzag(uint64_t u)
{
    return (u & 1) ? -(int64_t)(u >> 1) - 1 : (int64_t)(u >> 1);
}

static uint8_t *put_uvarint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint8_t *put_f32(uint8_t *p, float f)
{
    uint32_t v = f32_bits(f);
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 4;
}

/* Bounds-checked reader: every get fails instead of reading past `end`, and the first
 * failure is kept (with the field's name) for the error message. */
typedef struct rd_s {
    const uint8_t *p, *end;
    const char *field; /* field being read when an error happened */
    const char *why;
} rd_t;

static int rd_fail(rd_t *r, const char *field, const char *why)
{
    if (!r->why) {
        r->field = field;
        r->why = why;
    }
    return -1;
}

/* Minimal LEB128 of a uint64: at most 10 bytes, the 10th <= 1, no trailing zero byte. */
static int rd_uvarint(rd_t *r, const char *field, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0;; i++) {
        if (r->p >= r->end)
            return rd_fail(r, field, "truncated");
        uint8_t b = *r->p++;
        if (i == 9 && b > 1)
            return rd_fail(r, field, "varint overflows 64 bits");
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (b == 0 && i > 0)
                return rd_fail(r, field, "overlong varint");
            *out = v;
            return 0;
        }
    }
}

static int rd_f32(rd_t *r, const char *field, float *out)
{
    if (r->end - r->p < 4)
        return rd_fail(r, field, "truncated");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)r->p[i] << (8 * i);
    r->p += 4;
    *out = bits_f32(v);
    return 0;
}

/* Base of engine/policy time codes: the UTC midnight of t_ref (0 for an empty state). */
static int64_t time_base_ms(const feat_state_t *st)
{
    return st->t_ref_ms == FEAT_NEVER ? 0 : feat_day_of(st->t_ref_ms) * FEAT_DAY_MS;
}

static int derived_time_ok(int64_t t)
{
    return t == FEAT_NEVER || (t >= -FEAT_DERIVED_TIME_LIMIT_MS && t <= FEAT_DERIVED_TIME_LIMIT_MS);
}

/* Code 0 = FEAT_NEVER; else 1 + (zigzag(q) << 2 | unit) with t = base + q * unit, unit the
 * largest of time_unit_ms dividing t - base. */
static uint8_t *put_time_code(uint8_t *p, int64_t t, int64_t base)
{
    if (t == FEAT_NEVER)
        return put_uvarint(p, 0);
    int64_t d = t - base; /* |d| <= 2^52 + 2^50 + 1 day: both are in range */
    unsigned u = 3;
    while (u > 0 && d % time_unit_ms[u] != 0)
        u--;
    return put_uvarint(p, 1 + ((zigzag(d / time_unit_ms[u]) << 2) | u));
}

static int rd_time_code(rd_t *r, const char *field, int64_t base, int64_t *out)
{
    uint64_t code;
    if (rd_uvarint(r, field, &code) != 0)
        return -1;
    if (code == 0) {
        *out = FEAT_NEVER;
        return 0;
    }
    unsigned u = (unsigned)((code - 1) & 3);
    uint64_t zq = (code - 1) >> 2;
    /* Bound q before multiplying: |t - base| <= 2^53 keeps everything exact in int64. */
    if (zq >> 1 > (UINT64_C(1) << 53) / (uint64_t)time_unit_ms[u])
        return rd_fail(r, field, "time outside +-2^52 ms");
    int64_t d = unzigzag(zq) * time_unit_ms[u];
    int64_t t = base + d;
    if (!derived_time_ok(t))
        return rd_fail(r, field, "time outside +-2^52 ms");
    if (u < 3 && d % time_unit_ms[u + 1] == 0)
        return rd_fail(r, field, "non-canonical time unit");
    *out = t;
    return 0;
}

/* Backward distance from `from` (uvarint, >= 0 by the state's ordering invariants). */
static int rd_back(rd_t *r, const char *field, int64_t from, int64_t *out)
{
    uint64_t d;
    if (rd_uvarint(r, field, &d) != 0)
        return -1;
    if (d > (uint64_t)(from + FEAT_TIME_LIMIT_MS)) /* from >= -2^50, so no overflow */
        return rd_fail(r, field, "time outside +-2^50 ms");
    *out = from - (int64_t)d;
    return 0;
}

static int time_ok(int64_t t)
{
    return t == FEAT_NEVER || (t >= -FEAT_TIME_LIMIT_MS && t <= FEAT_TIME_LIMIT_MS);
}

/* The invariants of feat_state_t (feat.h) that the apply path relies on, e.g. bit 0 set
 * whenever there is a last active day. Returns NULL when they hold. A value that breaks
 * them is corrupt, not a state to limp along with; the encoder refuses such a state too, so
 * whatever it writes decodes. */
static const char *state_invalid(const feat_state_t *s)
{
    if (!time_ok(s->first_activity_ms) || !time_ok(s->last_activity_ms) ||
        !time_ok(s->last_purchase_ms) || !time_ok(s->t_ref_ms))
        return "a time is outside +-2^50 ms";
    if (!derived_time_ok(s->cooldown_until_ms))
        return "cooldown time outside +-2^52 ms";
    if ((s->first_activity_ms == FEAT_NEVER) != (s->last_activity_ms == FEAT_NEVER))
        return "first and last activity disagree on whether the user was ever active";
    if (s->first_activity_ms != FEAT_NEVER &&
        (s->first_activity_ms > s->last_activity_ms || !(s->active_day_bits & 1) ||
         s->lifetime_active_days == 0))
        return "inconsistent activity fields";
    if (s->first_activity_ms == FEAT_NEVER &&
        (s->active_day_bits != 0 || s->lifetime_active_days != 0))
        return "active days without activity";
    if ((s->last_purchase_ms == FEAT_NEVER) != (s->purchase_day_bits == 0) ||
        (s->last_purchase_ms != FEAT_NEVER && !(s->purchase_day_bits & 1)))
        return "inconsistent purchase fields";
    if (s->t_ref_ms == FEAT_NEVER
            ? (s->last_activity_ms != FEAT_NEVER || s->last_purchase_ms != FEAT_NEVER)
            : (s->t_ref_ms < s->last_activity_ms || s->t_ref_ms < s->last_purchase_ms))
        return "reference time before the last event";
    for (int c = 0; c <= FEAT_C_COUNT; c++) {
        float v = c < FEAT_C_COUNT ? s->counter[c] : s->gap_sum_days;
        if (!isfinite(v) || v < 0 || v > (float)FEAT_COUNTER_MAX ||
            (s->t_ref_ms == FEAT_NEVER && f32_bits(v) != 0))
            return "a counter is negative, non-finite, above 1e30 or set without events";
    }
    return NULL;
}

size_t feat_encode(const feat_state_t *st, uint8_t *buf, size_t cap)
{
    if (state_invalid(st))
        return 0;
    uint8_t tmp[FEAT_ENCODED_MAX_BYTES];
    uint32_t flags = 0;
    for (int c = 0; c < FEAT_C_COUNT; c++)
        if (f32_bits(st->counter[c]) != 0)
            flags |= 1u << c;
    if (f32_bits(st->gap_sum_days) != 0)
        flags |= FL_GAP_SUM;
    if (st->t_ref_ms != FEAT_NEVER)
        flags |= FL_REF;
    if (st->last_activity_ms != FEAT_NEVER)
        flags |= FL_ACTIVE;
    if (st->last_purchase_ms != FEAT_NEVER)
        flags |= FL_PURCHASED;

    uint8_t *p = put_uvarint(tmp, flags);
    if (flags & FL_REF)
        p = put_uvarint(p, zigzag(st->t_ref_ms));
    /* Backward distances: t_ref >= last >= first, t_ref >= last purchase (invariants). */
    if (flags & FL_ACTIVE) {
        p = put_uvarint(p, (uint64_t)(st->t_ref_ms - st->last_activity_ms));
        p = put_uvarint(p, (uint64_t)(st->last_activity_ms - st->first_activity_ms));
    }
    if (flags & FL_PURCHASED)
        p = put_uvarint(p, (uint64_t)(st->t_ref_ms - st->last_purchase_ms));
    for (int c = 0; c < FEAT_C_COUNT; c++)
        if (flags & (1u << c))
            p = put_f32(p, st->counter[c]);
    if (flags & FL_GAP_SUM)
        p = put_f32(p, st->gap_sum_days);
    /* Bit 0 of both bitmaps is set by invariant and not stored; old days are the high bits,
     * so a user with only recent activity has a short varint. */
    if (flags & FL_ACTIVE) {
        p = put_uvarint(p, st->active_day_bits >> 1);
        p = put_uvarint(p, (uint64_t)st->lifetime_active_days - 1);
    }
    if (flags & FL_PURCHASED)
        p = put_uvarint(p, st->purchase_day_bits >> 1);
    p = put_time_code(p, st->cooldown_until_ms, time_base_ms(st));

    size_t n = (size_t)(p - tmp);
    if (n > cap)
        return 0;
    memcpy(buf, tmp, n);
    return n;
}

static void decode_error(rd_t *r, char *errstr, size_t errstr_size)
{
    snprintf(errstr, errstr_size, "feature state: corrupt value: %s: %s", r->field, r->why);
}

int feat_decode(feat_state_t *st, const uint8_t *buf, size_t len, size_t *used, char *errstr,
                size_t errstr_size)
{
    rd_t r = {.p = buf, .end = buf + len, .field = NULL, .why = NULL};
    feat_state_t s;
    feat_state_init(&s);
    uint64_t flags;
    if (rd_uvarint(&r, "flags", &flags) != 0)
        goto fail;
    if (flags & ~(uint64_t)FL_KNOWN) {
        rd_fail(&r, "flags", "unknown flag bits (written by a newer churnstream?)");
        goto fail;
    }
    if (!(flags & FL_REF) && flags != 0) {
        rd_fail(&r, "flags", "counters or activity set without events");
        goto fail;
    }
    if (flags & FL_REF) {
        uint64_t z;
        if (rd_uvarint(&r, "t_ref_ms", &z) != 0)
            goto fail;
        if (z > (UINT64_C(1) << 51)) {
            rd_fail(&r, "t_ref_ms", "time outside +-2^50 ms");
            goto fail;
        }
        s.t_ref_ms = unzigzag(z);
    }
    if (flags & FL_ACTIVE) {
        if (rd_back(&r, "last_activity_ms", s.t_ref_ms, &s.last_activity_ms) != 0 ||
            rd_back(&r, "first_activity_ms", s.last_activity_ms, &s.first_activity_ms) != 0)
            goto fail;
    }
    if ((flags & FL_PURCHASED) &&
        rd_back(&r, "last_purchase_ms", s.t_ref_ms, &s.last_purchase_ms) != 0)
        goto fail;
    for (int c = 0; c < FEAT_C_COUNT; c++)
        if ((flags & (1u << c)) && rd_f32(&r, "counter", &s.counter[c]) != 0)
            goto fail;
    if ((flags & FL_GAP_SUM) && rd_f32(&r, "gap_sum_days", &s.gap_sum_days) != 0)
        goto fail;
    for (int c = 0; c <= FEAT_C_COUNT; c++) {
        float v = c < FEAT_C_COUNT ? s.counter[c] : s.gap_sum_days;
        uint32_t bit = c < FEAT_C_COUNT ? 1u << c : FL_GAP_SUM;
        if ((flags & bit) && f32_bits(v) == 0) { /* canonical: zero is never stored */
            rd_fail(&r, c < FEAT_C_COUNT ? "counter" : "gap_sum_days", "explicit zero");
            goto fail;
        }
    }
    if (flags & FL_ACTIVE) {
        uint64_t bits, days;
        if (rd_uvarint(&r, "active_day_bits", &bits) != 0 ||
            rd_uvarint(&r, "lifetime_active_days", &days) != 0)
            goto fail;
        if (bits >> 63) {
            rd_fail(&r, "active_day_bits", "more than 64 days");
            goto fail;
        }
        if (days >= UINT16_MAX) {
            rd_fail(&r, "lifetime_active_days", "above 65535");
            goto fail;
        }
        s.active_day_bits = bits << 1 | 1;
        s.lifetime_active_days = (uint16_t)(days + 1);
    }
    if (flags & FL_PURCHASED) {
        uint64_t bits;
        if (rd_uvarint(&r, "purchase_day_bits", &bits) != 0)
            goto fail;
        if (bits >> 31) {
            rd_fail(&r, "purchase_day_bits", "more than 32 days");
            goto fail;
        }
        s.purchase_day_bits = (uint32_t)(bits << 1 | 1);
    }
    if (rd_time_code(&r, "cooldown_until_ms", time_base_ms(&s), &s.cooldown_until_ms) != 0)
        goto fail;
    if (!used && r.p != r.end) {
        rd_fail(&r, "end", "trailing bytes");
        goto fail;
    }
    const char *bad = state_invalid(&s);
    if (bad) {
        snprintf(errstr, errstr_size, "feature state: corrupt value: %s", bad);
        return -1;
    }
    if (used)
        *used = (size_t)(r.p - buf);
    *st = s;
    return 0;
fail:
    decode_error(&r, errstr, errstr_size);
    return -1;
}

size_t feat_encode_time(const feat_state_t *st, int64_t t_ms, uint8_t *buf, size_t cap)
{
    if (!derived_time_ok(t_ms))
        return 0;
    uint8_t tmp[FEAT_TIME_CODE_MAX_BYTES];
    size_t n = (size_t)(put_time_code(tmp, t_ms, time_base_ms(st)) - tmp);
    if (n > cap)
        return 0;
    memcpy(buf, tmp, n);
    return n;
}

int feat_decode_time(const feat_state_t *st, const uint8_t *buf, size_t len, size_t *used,
                     int64_t *t_ms, char *errstr, size_t errstr_size)
{
    rd_t r = {.p = buf, .end = buf + len, .field = NULL, .why = NULL};
    int64_t t;
    if (rd_time_code(&r, "time", time_base_ms(st), &t) != 0) {
        snprintf(errstr, errstr_size, "%s", r.why);
        return -1;
    }
    *used = (size_t)(r.p - buf);
    *t_ms = t;
    return 0;
}

int feat_event_part_equal(const feat_state_t *a, const feat_state_t *b)
{
    /* Field by field, floats by their bits (as the bytes of the encoding would compare):
     * the encoding is variable-length, so no byte prefix holds "the event part". */
    if (a->first_activity_ms != b->first_activity_ms ||
        a->last_activity_ms != b->last_activity_ms || a->last_purchase_ms != b->last_purchase_ms ||
        a->t_ref_ms != b->t_ref_ms || a->active_day_bits != b->active_day_bits ||
        a->purchase_day_bits != b->purchase_day_bits ||
        a->lifetime_active_days != b->lifetime_active_days ||
        f32_bits(a->gap_sum_days) != f32_bits(b->gap_sum_days))
        return 0;
    for (int c = 0; c < FEAT_C_COUNT; c++)
        if (f32_bits(a->counter[c]) != f32_bits(b->counter[c]))
            return 0;
    return 1;
}
