/* Per-user state and feature vector (DESIGN.md section 3): lazily time-decayed counters,
 * distinct active days, a time-weighted mean gap between active days, and the one table
 * (feat_info[]) that names, documents, transforms and prints every feature.
 * Named feat.h, not features.h: with -Iprocessor a "features.h" would shadow glibc's
 * <features.h> for every system header. */
#ifndef CS_FEAT_H
#define CS_FEAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "event.h"

#define FEAT_NEVER  INT64_MIN /* "no such time": never active, never purchased, ... */
#define FEAT_DAY_MS 86400000LL
/* Event times outside +-2^50 ms (~35,000 years) are ignored by feat_apply and rejected by
 * feat_decode, so differences of two times never overflow int64 and stay exact in double. */
#define FEAT_TIME_LIMIT_MS (1LL << 50)
/* Times derived from event times by adding configured durations (engine ticks, alert
 * cooldowns; the config caps every duration at 3650 days) stay within +-2^51 ms; the
 * encoding accepts +-2^52 ms for them. */
#define FEAT_DERIVED_TIME_LIMIT_MS (1LL << 52)
/* One purchase/refund amount is clamped to this magnitude before it is added: a single bad
 * amount (1e300) must not turn a float counter into +Inf. */
#define FEAT_AMOUNT_MAX 1e12
/* Counters are clamped on every store so that no sequence of events reaches +Inf
 * (log1p(1e30) = 69 is still a usable feature); the decoder rejects larger ones. */
#define FEAT_COUNTER_MAX 1e30
/* Days of history kept to tell whether a late event's UTC day was already counted. */
#define FEAT_ACTIVE_DAY_BITS   64
#define FEAT_PURCHASE_DAY_BITS 32

/* Time-decayed counters kept in the state. Each has one half-life (feat_counter_half_life_days). */
typedef enum {
    FEAT_C_ACTIVE_DAYS_7D = 0, /* distinct active UTC days, weighted at the day's midnight */
    FEAT_C_ACTIVE_DAYS_30D,
    FEAT_C_ACTIVE_DAYS_90D,
    FEAT_C_SESSIONS_30D,
    FEAT_C_PAGE_VIEWS_30D,
    FEAT_C_CARTS_30D, /* add_to_cart events */
    FEAT_C_PURCHASES_30D,
    FEAT_C_PURCHASES_90D,
    FEAT_C_PURCHASE_DAYS_90D, /* distinct UTC days with a purchase, weighted at midnight */
    FEAT_C_REVENUE_30D,       /* sum of max(0, amount) of purchases */
    FEAT_C_REVENUE_90D,
    FEAT_C_REFUNDS_90D,       /* refund events */
    FEAT_C_REFUND_AMOUNT_90D, /* sum of |amount| of refunds (sources disagree on the sign) */
    FEAT_C_SUPPORT_TICKETS_30D,
    FEAT_C_COUPONS_90D,
    FEAT_C_CANCEL_INTENT_30D, /* subscription_cancel events */
    FEAT_C_COUNT
} feat_counter_t;

/* The state of one user. Plain value type (no pointers), so callers keep arrays of it and
 * copy it freely; it is never freed. Fields are public for the store and tests, but only
 * feat_apply / feat_decode / feat_set_cooldown_until_ms should write them.
 * Invariants: event times are FEAT_NEVER or within +-FEAT_TIME_LIMIT_MS (the cooldown:
 * +-FEAT_DERIVED_TIME_LIMIT_MS); counters are finite and >= 0 and hold their values at
 * t_ref_ms; t_ref_ms >= every applied event time. */
typedef struct feat_state_s {
    int64_t first_activity_ms; /* earliest activity event; FEAT_NEVER if none */
    int64_t last_activity_ms;  /* latest activity event; FEAT_NEVER if none */
    int64_t last_purchase_ms;  /* latest purchase; FEAT_NEVER if none */
    int64_t t_ref_ms;          /* time the counters are decayed to = max event time seen */
    float counter[FEAT_C_COUNT];
    /* Sum over active days k (all but the first) of w(d_k) * (d_k - d_{k-1}) in days, w the
     * 90-day decay at d_k's midnight. Divided by the same weights summed (= active_days_90d
     * minus the first day's weight) it is a time-weighted EWMA of the gaps between
     * distinct active days that late events can update in O(1) (see features.c). */
    float gap_sum_days;
    /* bit i: UTC day (day(last_activity_ms) - i) had activity. */
    uint64_t active_day_bits;
    /* bit i: UTC day (day(last_purchase_ms) - i) had a purchase. */
    uint32_t purchase_day_bits;
    uint16_t lifetime_active_days; /* not decayed; saturates at 65535 */
    /* Model-dependent, written by the alert policy: no alert before this time. FEAT_NEVER
     * when none, else within +-FEAT_DERIVED_TIME_LIMIT_MS. The only field outside the
     * "event-derived part" (feat_event_part_equal). */
    int64_t cooldown_until_ms;
} feat_state_t;

/* ---- state: apply, accessors ---- */

/* Empty state: no activity, all counters 0, no cooldown. */
void feat_state_init(feat_state_t *st);
/* Applies one event in O(1) with no allocation. Events may arrive in any order: the stored
 * counters equal sum_i c_i * 2^(-(t_ref - t_i)/h) whatever the order (up to float
 * rounding), and distinct-day counts are exact for events at most 63 days (purchase days:
 * 31 days) older than the user's latest active (purchase) day; an older late event on a day
 * that cannot be checked counts in the event counters but adds no active/purchase day,
 * unless it is before the user's first activity (then it is certainly a new day).
 * Events with times outside +-FEAT_TIME_LIMIT_MS are ignored (the decoder's window rejects
 * them first). Non-finite amounts count as 0. */
void feat_apply(feat_state_t *st, const ev_event_t *ev);
/* Brings the counters forward to t_ms (t_ref_ms = t_ms) without adding anything; no-op when
 * t_ms <= t_ref_ms or the state is empty; t_ms is clamped to FEAT_TIME_LIMIT_MS. Values
 * read at times >= t_ms are unchanged (up to float rounding). */
void feat_decay_to(feat_state_t *st, int64_t t_ms);
/* Value of counter c at t_ms: counter * 2^(-(t_ms - t_ref_ms)/h). Reads before t_ref_ms
 * are clamped to t_ref_ms (the state cannot undo events it has absorbed). */
double feat_counter_at(const feat_state_t *st, feat_counter_t c, int64_t t_ms);
/* All counters at t_ms (same clamping) into out[FEAT_C_COUNT]; 3 exp2 calls in all. */
void feat_counters_at(const feat_state_t *st, int64_t t_ms, double out[FEAT_C_COUNT]);
/* Half-life of a counter in days. */
double feat_counter_half_life_days(feat_counter_t c);

/* Accessors. Times are Unix epoch ms, FEAT_NEVER when there is no such event (no activity,
 * no purchase, empty state, no cooldown). */
static inline int64_t feat_first_activity_ms(const feat_state_t *st)
{
    return st->first_activity_ms;
}
static inline int64_t feat_last_activity_ms(const feat_state_t *st)
{
    return st->last_activity_ms;
}
static inline int64_t feat_last_purchase_ms(const feat_state_t *st)
{
    return st->last_purchase_ms;
}
static inline int64_t feat_t_ref_ms(const feat_state_t *st)
{
    return st->t_ref_ms;
}
static inline int64_t feat_cooldown_until_ms(const feat_state_t *st)
{
    return st->cooldown_until_ms;
}
static inline void feat_set_cooldown_until_ms(feat_state_t *st, int64_t t_ms)
{
    st->cooldown_until_ms = t_ms;
}
static inline unsigned feat_lifetime_active_days(const feat_state_t *st)
{
    return st->lifetime_active_days;
}
/* UTC day number (days since 1970-01-01, floor, so negative times work) of a time. */
static inline int64_t feat_day_of(int64_t t_ms)
{
    return t_ms >= 0 ? t_ms / FEAT_DAY_MS : -((-t_ms + FEAT_DAY_MS - 1) / FEAT_DAY_MS);
}

/* ---- encoding (part of the Redis value) ----
 *
 * The feature state is the middle of the per-user record (user.h: [version][feature state]
 * [engine ticks]); the record's single version byte covers it, so it has none of its own.
 * Variable length, little-endian, canonical (equal states <=> equal bytes):
 *   uvarint flags: bit c (0..15) counter[c] != 0 | 16 gap_sum_days != 0 | 17 t_ref set |
 *                  18 ever active | 19 ever purchased; other bits are rejected
 *   [17] zvarint t_ref_ms                                  (zigzag LEB128, 6 bytes in 2024)
 *   [18] uvarint t_ref_ms - last_activity_ms               (1 byte when equal)
 *        uvarint last_activity_ms - first_activity_ms      (backward distances: >= 0 by
 *   [19] uvarint t_ref_ms - last_purchase_ms                the invariants, never signed)
 *   f32 counter[c] for every set bit c, in counter order   (raw IEEE bits, lossless)
 *   [16] f32 gap_sum_days
 *   [18] uvarint active_day_bits >> 1; uvarint lifetime_active_days - 1  (bit 0 is implied:
 *   [19] uvarint purchase_day_bits >> 1                     recent-only days are short)
 *   time code cooldown_until_ms
 * A time code (also used by user.c for the engine's ticks) is 0 for FEAT_NEVER, else
 * uvarint 1 + (zigzag(q) << 2 | u), t = base + q * unit[u], unit = {1 ms, 1 s, 1 min, 1 day}
 * the largest dividing t - base, base = the UTC midnight of t_ref_ms (0 for an empty
 * state): ticks and cooldowns are round, so 90 days ahead costs 2 bytes, not 5.
 * Varints are minimal LEB128 (overlong, truncated or > 64-bit ones are rejected). Bounds:
 * flags 3 + t_ref 8 + 3 distances 24 + 17 floats 68 + bitmaps 9 + 5 + lifetime 3 +
 * cooldown 8 = 128 bytes. Measured after a replay (whole record, user.h): Online Retail
 * median 64, max 89 bytes; generated log (16 counters in use) median 90, max 114. */
#define FEAT_ENCODED_MAX_BYTES   128
#define FEAT_TIME_CODE_MAX_BYTES 8

/* Writes the encoding of *st into buf; returns the bytes written (1..FEAT_ENCODED_MAX_BYTES),
 * or 0 when cap is too small or *st breaks the invariants of feat_state_t (what feat_decode
 * would reject), so every successful encoding decodes to an identical state. The caller
 * owns buf. */
size_t feat_encode(const feat_state_t *st, uint8_t *buf, size_t cap);
/* Decodes one encoding at the start of buf into *st. With used == NULL the encoding must
 * fill all len bytes; otherwise trailing bytes are left for the caller and *used is set to
 * the bytes consumed. Never reads past len. Returns 0, or -1 with a message in errstr
 * naming the field (truncated, overlong varint, unknown flags, out-of-range times,
 * non-finite or negative counters, inconsistent fields); *st is then unchanged. */
int feat_decode(feat_state_t *st, const uint8_t *buf, size_t len, size_t *used, char *errstr,
                size_t errstr_size);
/* A derived time (tick, cooldown: FEAT_NEVER or within +-FEAT_DERIVED_TIME_LIMIT_MS) as a
 * time code relative to st's reference day (see above), for the record's other fields.
 * Returns bytes written (1..FEAT_TIME_CODE_MAX_BYTES), 0 when t_ms is out of range or cap
 * too small. */
size_t feat_encode_time(const feat_state_t *st, int64_t t_ms, uint8_t *buf, size_t cap);
/* Reads one time code at the start of buf (relative to st, which must be the state the
 * code was written against); sets *t_ms and *used. -1 with errstr on a truncated, overlong,
 * non-canonical or out-of-range code. */
int feat_decode_time(const feat_state_t *st, const uint8_t *buf, size_t len, size_t *used,
                     int64_t *t_ms, char *errstr, size_t errstr_size);
/* 1 when a and b have the same event-derived part, i.e. every field but cooldown_until_ms
 * is equal (floats by their bits), whatever their cooldowns. The encoding is variable
 * length, so comparing a byte prefix of two encodings no longer means anything: use this
 * (or user_rec_event_part_equal) instead. */
int feat_event_part_equal(const feat_state_t *a, const feat_state_t *b);

/* ---- the feature vector x(t) ---- */

typedef enum {
    FEAT_ACTIVE_DAYS_7D = 0,
    FEAT_ACTIVE_DAYS_30D,
    FEAT_ACTIVE_DAYS_90D,
    FEAT_ACTIVE_DAYS_LIFETIME,
    FEAT_SESSIONS_30D,
    FEAT_PAGE_VIEWS_30D,
    FEAT_CARTS_30D,
    FEAT_PURCHASES_30D,
    FEAT_PURCHASES_90D,
    FEAT_PURCHASE_DAYS_90D,
    FEAT_REVENUE_30D,
    FEAT_REVENUE_90D,
    FEAT_REFUNDS_90D,
    FEAT_REFUND_AMOUNT_90D,
    FEAT_SUPPORT_TICKETS_30D,
    FEAT_COUPONS_90D,
    FEAT_CANCEL_INTENT_30D,
    FEAT_DAYS_SINCE_ACTIVITY,
    FEAT_DAYS_SINCE_PURCHASE,
    FEAT_TENURE_DAYS,
    FEAT_MEAN_GAP_DAYS,
    FEAT_RECENCY_GAP_RATIO,
    FEAT_ACTIVITY_TREND,
    FEAT_ACTIVE_DAYS_PER_30D,
    FEAT_DIM
} feat_id_t;

typedef enum {
    FEAT_TF_NONE = 0, /* x = v (the human value is already bounded) */
    FEAT_TF_LOG1P     /* x = log1p(max(0, v)) */
} feat_transform_t;

typedef struct feat_info_s {
    const char *name;      /* snake_case, stable: used in alerts, explanations, inspect */
    const char *unit;      /* "days", "count", "currency" or "ratio" */
    double half_life_days; /* 0 = not a decayed counter */
    feat_transform_t transform;
    double cap; /* human value clamped to [lo, cap]; 0 = no cap */
    const char *description;
} feat_info_t;

/* The single definition of every feature, indexed by feat_id_t. Static storage. */
extern const feat_info_t feat_info[FEAT_DIM];

/* Name of a transform ("none", "log1p"). */
const char *feat_transform_name(feat_transform_t tf);
/* Index of a feature by name, or -1. */
int feat_index(const char *name);
/* x(t) into out[FEAT_DIM] (caller-owned): every value finite, for every valid state
 * (including the empty one). t_ms < t_ref_ms reads at t_ref_ms. */
void feat_vector(const feat_state_t *st, int64_t t_ms, float out[FEAT_DIM]);
/* Feature i at t_ms in human units (before the transform, after caps), e.g. for the alert
 * `features` map. Returns 0 for i out of range. */
double feat_human_value(const feat_state_t *st, int64_t t_ms, int i);
/* All human values at once (out[FEAT_DIM], caller-owned). */
void feat_human_values(const feat_state_t *st, int64_t t_ms, double out[FEAT_DIM]);
/* Three of them, as feat_human_values gives them, without the decayed counters' cost:
 * days_since_activity, active_days_lifetime and mean_gap_days (the user's rhythm). */
void feat_rhythm(const feat_state_t *st, int64_t t_ms, double *quiet_days, double *active_days,
                 double *gap_days);
/* Transform of one human value into the model's input. */
float feat_transform(int i, double human);

/* One line per feature: name, unit, human value, transformed value (for `inspect`). */
void feat_print_user(FILE *out, const feat_state_t *st, int64_t t_ms);
/* The feature reference from feat_info[]: a Markdown table (markdown = 1, for the README)
 * or aligned plain text (for --help style output). */
void feat_print_reference(FILE *out, int markdown);

#endif
