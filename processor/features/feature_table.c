/* The feature table and the feature vector x(t): feat_info[] is the one definition of every
 * feature's name, unit, half-life, transform, cap and meaning; the vector, explanations,
 * `inspect` and the README's feature reference are all printed from it. */
#include "feat.h"

#include "fastlog.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define D_7  "7-day half-life"
#define D_30 "30-day half-life"
#define D_90 "90-day half-life"

/* Caps: durations at 365 days (a year of silence is as churned as it gets), tenure at ten
 * years, the activity frequency at its maximum (30 active days per 30 days). */
const feat_info_t feat_info[FEAT_DIM] = {
    [FEAT_ACTIVE_DAYS_7D] = {"active_days_7d", "days", 7, FEAT_TF_LOG1P, 0,
                             "distinct UTC days with activity (a day counts once however "
                             "many events it holds), " D_7},
    [FEAT_ACTIVE_DAYS_30D] = {"active_days_30d", "days", 30, FEAT_TF_LOG1P, 0,
                              "distinct UTC days with activity, " D_30},
    [FEAT_ACTIVE_DAYS_90D] = {"active_days_90d", "days", 90, FEAT_TF_LOG1P, 0,
                              "distinct UTC days with activity, " D_90},
    [FEAT_ACTIVE_DAYS_LIFETIME] = {"active_days_lifetime", "days", 0, FEAT_TF_LOG1P, 0,
                                   "distinct UTC days with activity since the first event, "
                                   "not decayed"},
    [FEAT_SESSIONS_30D] = {"sessions_30d", "count", 30, FEAT_TF_LOG1P, 0,
                           "session_start events, " D_30},
    [FEAT_PAGE_VIEWS_30D] = {"page_views_30d", "count", 30, FEAT_TF_LOG1P, 0,
                             "page_view events, " D_30},
    [FEAT_CARTS_30D] = {"carts_30d", "count", 30, FEAT_TF_LOG1P, 0, "add_to_cart events, " D_30},
    [FEAT_PURCHASES_30D] = {"purchases_30d", "count", 30, FEAT_TF_LOG1P, 0,
                            "purchase events (one per invoice line), " D_30},
    [FEAT_PURCHASES_90D] = {"purchases_90d", "count", 90, FEAT_TF_LOG1P, 0,
                            "purchase events, " D_90},
    [FEAT_PURCHASE_DAYS_90D] = {"purchase_days_90d", "days", 90, FEAT_TF_LOG1P, 0,
                                "distinct UTC days with a purchase, " D_90},
    [FEAT_REVENUE_30D] = {"revenue_30d", "currency", 30, FEAT_TF_LOG1P, 0,
                          "purchase amounts (negative amounts count as 0), " D_30},
    [FEAT_REVENUE_90D] = {"revenue_90d", "currency", 90, FEAT_TF_LOG1P, 0,
                          "purchase amounts, " D_90},
    [FEAT_REFUNDS_90D] = {"refunds_90d", "count", 90, FEAT_TF_LOG1P, 0,
                          "refund events (not activity), " D_90},
    [FEAT_REFUND_AMOUNT_90D] = {"refund_amount_90d", "currency", 90, FEAT_TF_LOG1P, 0,
                                "refunded amounts by magnitude, kept apart from revenue, " D_90},
    [FEAT_SUPPORT_TICKETS_30D] = {"support_tickets_30d", "count", 30, FEAT_TF_LOG1P, 0,
                                  "support_ticket events, " D_30},
    [FEAT_COUPONS_90D] = {"coupons_90d", "count", 90, FEAT_TF_LOG1P, 0,
                          "coupon_redeem events, " D_90},
    [FEAT_CANCEL_INTENT_30D] = {"cancel_intent_30d", "count", 30, FEAT_TF_LOG1P, 0,
                                "subscription_cancel events (not activity), " D_30},
    [FEAT_DAYS_SINCE_ACTIVITY] = {"days_since_activity", "days", 0, FEAT_TF_LOG1P, 365,
                                  "time since the last activity event; 365 when never"},
    [FEAT_DAYS_SINCE_PURCHASE] = {"days_since_purchase", "days", 0, FEAT_TF_LOG1P, 365,
                                  "time since the last purchase; 365 when never"},
    [FEAT_TENURE_DAYS] = {"tenure_days", "days", 0, FEAT_TF_LOG1P, 3650,
                          "time since the first activity event; 0 when never"},
    [FEAT_MEAN_GAP_DAYS] = {"mean_gap_days", "days", 90, FEAT_TF_LOG1P, 365,
                            "mean gap between consecutive distinct active days, each gap "
                            "weighted by its end day with a 90-day half-life; with fewer than "
                            "2 active days the open gap (tenure, at least 1)"},
    [FEAT_RECENCY_GAP_RATIO] = {"recency_gap_ratio", "ratio", 0, FEAT_TF_LOG1P, 365,
                                "days_since_activity / mean_gap_days: above 1 means quieter "
                                "than the user's own rhythm"},
    [FEAT_ACTIVITY_TREND] = {"activity_trend_7d_30d", "ratio", 0, FEAT_TF_NONE, 1,
                             "(a7 - p7) / (a7 + p7) in [-1, 1], a7 = active_days_7d and p7 "
                             "its steady-state value implied by active_days_30d: < 0 "
                             "slowing down, > 0 speeding up, 0 steady or no data"},
    [FEAT_ACTIVE_DAYS_PER_30D] = {"active_days_per_30d", "days", 0, FEAT_TF_NONE, 30,
                                  "lifetime active days per 30 calendar days of tenure "
                                  "(frequency), in [0, 30]"},
};

const char *feat_transform_name(feat_transform_t tf)
{
    return tf == FEAT_TF_LOG1P ? "log1p" : "none";
}

int feat_index(const char *name)
{
    for (int i = 0; i < FEAT_DIM; i++)
        if (strcmp(feat_info[i].name, name) == 0)
            return i;
    return -1;
}

static double days_between(int64_t from_ms, int64_t to_ms)
{
    /* In double: to_ms is the caller's read time and may be anything (INT64_MAX). */
    return to_ms > from_ms ? ((double)to_ms - (double)from_ms) / (double)FEAT_DAY_MS : 0.0;
}

/* Time-weighted mean gap between active days: gap_sum / (sum of the same weights). Both
 * carry the same decay factor, so the ratio is taken at t_ref. The weights of all active
 * days but the first are active_days_90d minus the first day's weight; every later day
 * weighs at least as much as the first, so the difference is >= half of active_days_90d
 * and loses no precision. */
static double mean_gap_days(const feat_state_t *st, double tenure_days)
{
    if (st->first_activity_ms == FEAT_NEVER)
        return 365.0;
    double open_gap = tenure_days < 1.0 ? 1.0 : tenure_days;
    if (st->lifetime_active_days < 2)
        return open_gap;
    int64_t first_midnight = feat_day_of(st->first_activity_ms) * FEAT_DAY_MS;
    double w_first = exp2(-(double)(st->t_ref_ms - first_midnight) / (90.0 * FEAT_DAY_MS));
    double w = (double)st->counter[FEAT_C_ACTIVE_DAYS_90D] - w_first;
    if (!(w > 0))
        return open_gap;
    double gap = (double)st->gap_sum_days / w;
    return gap < 1.0 ? 1.0 : gap; /* gaps between distinct days are >= 1 */
}

/* Reads before t_ref clamp to t_ref (feat.h). */
static int64_t read_time(const feat_state_t *st, int64_t t_ms)
{
    return (st->t_ref_ms != FEAT_NEVER && t_ms < st->t_ref_ms) ? st->t_ref_ms : t_ms;
}

/* Read from feat_info once (tables_once): which features feat_vector log-transforms, and
 * every feature's bounds, [0, cap], or [-cap, cap] for the signed trend, hi = +inf without a
 * cap (cap 0), for the loops that run on every row. */
#define FEAT_DIM_PADDED ((FEAT_DIM + 3) & ~3) /* feat_vector's log1p block: whole vector steps */
static uint8_t is_log1p[FEAT_DIM];
static double bound_lo[FEAT_DIM], bound_hi[FEAT_DIM];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void tables(void)
{
    for (int i = 0; i < FEAT_DIM; i++) {
        is_log1p[i] = feat_info[i].transform == FEAT_TF_LOG1P;
        double cap = feat_info[i].cap;
        bound_lo[i] = i == FEAT_ACTIVITY_TREND ? -cap : 0.0;
        bound_hi[i] = cap > 0 ? cap : INFINITY;
    }
}

/* Feature i's value within its bounds (tables() has run): NaN and values below go to lo,
 * values above a cap to the cap (v > +inf never holds). */
static double bounded(int i, double v)
{
    double w = v >= bound_lo[i] ? v : bound_lo[i];
    return w > bound_hi[i] ? bound_hi[i] : w;
}

/* Days since the last activity, tenure and the mean gap (before the table's bounds). */
static void rhythm(const feat_state_t *st, int64_t t, double *recency, double *tenure, double *gap)
{
    int active = st->first_activity_ms != FEAT_NEVER;
    *recency = active ? days_between(st->last_activity_ms, t) : 365.0;
    *tenure = active ? days_between(st->first_activity_ms, t) : 0.0;
    *gap = mean_gap_days(st, *tenure);
    if (*gap > 365.0)
        *gap = 365.0;
}

void feat_rhythm(const feat_state_t *st, int64_t t_ms, double *quiet_days, double *active_days,
                 double *gap_days)
{
    double recency, tenure, gap;
    (void)pthread_once(&tables_once, tables);
    rhythm(st, read_time(st, t_ms), &recency, &tenure, &gap);
    *quiet_days = bounded(FEAT_DAYS_SINCE_ACTIVITY, recency);
    *active_days = bounded(FEAT_ACTIVE_DAYS_LIFETIME, st->lifetime_active_days);
    *gap_days = bounded(FEAT_MEAN_GAP_DAYS, gap);
}

void feat_human_values(const feat_state_t *st, int64_t t_ms, double out[FEAT_DIM])
{
    int64_t t = read_time(st, t_ms);
    double c[FEAT_C_COUNT];
    feat_counters_at(st, t, c);

    out[FEAT_ACTIVE_DAYS_7D] = c[FEAT_C_ACTIVE_DAYS_7D];
    out[FEAT_ACTIVE_DAYS_30D] = c[FEAT_C_ACTIVE_DAYS_30D];
    out[FEAT_ACTIVE_DAYS_90D] = c[FEAT_C_ACTIVE_DAYS_90D];
    out[FEAT_ACTIVE_DAYS_LIFETIME] = st->lifetime_active_days;
    out[FEAT_SESSIONS_30D] = c[FEAT_C_SESSIONS_30D];
    out[FEAT_PAGE_VIEWS_30D] = c[FEAT_C_PAGE_VIEWS_30D];
    out[FEAT_CARTS_30D] = c[FEAT_C_CARTS_30D];
    out[FEAT_PURCHASES_30D] = c[FEAT_C_PURCHASES_30D];
    out[FEAT_PURCHASES_90D] = c[FEAT_C_PURCHASES_90D];
    out[FEAT_PURCHASE_DAYS_90D] = c[FEAT_C_PURCHASE_DAYS_90D];
    out[FEAT_REVENUE_30D] = c[FEAT_C_REVENUE_30D];
    out[FEAT_REVENUE_90D] = c[FEAT_C_REVENUE_90D];
    out[FEAT_REFUNDS_90D] = c[FEAT_C_REFUNDS_90D];
    out[FEAT_REFUND_AMOUNT_90D] = c[FEAT_C_REFUND_AMOUNT_90D];
    out[FEAT_SUPPORT_TICKETS_30D] = c[FEAT_C_SUPPORT_TICKETS_30D];
    out[FEAT_COUPONS_90D] = c[FEAT_C_COUPONS_90D];
    out[FEAT_CANCEL_INTENT_30D] = c[FEAT_C_CANCEL_INTENT_30D];

    int active = st->first_activity_ms != FEAT_NEVER;
    double recency, tenure, gap;
    rhythm(st, t, &recency, &tenure, &gap);
    out[FEAT_DAYS_SINCE_ACTIVITY] = recency;
    out[FEAT_DAYS_SINCE_PURCHASE] =
        st->last_purchase_ms != FEAT_NEVER ? days_between(st->last_purchase_ms, t) : 365.0;
    out[FEAT_TENURE_DAYS] = tenure;
    out[FEAT_MEAN_GAP_DAYS] = gap;
    out[FEAT_RECENCY_GAP_RATIO] = (recency > 365.0 ? 365.0 : recency) / gap; /* gap >= 1 */

    /* A user active every day holds S_h = sum_k 2^(-k/h) = 1 / (1 - 2^(-1/h)) in a counter
     * with half-life h, so active_days_30d predicts active_days_7d = a30 * S_7 / S_30. */
    double a7 = c[FEAT_C_ACTIVE_DAYS_7D];
    double p7 = c[FEAT_C_ACTIVE_DAYS_30D] * (1.0 - exp2(-1.0 / 30.0)) / (1.0 - exp2(-1.0 / 7.0));
    out[FEAT_ACTIVITY_TREND] = (a7 + p7 > 1e-12) ? (a7 - p7) / (a7 + p7) : 0.0;

    double per30 = 0.0;
    if (active) {
        /* Calendar days from the first active day's midnight to t, at least 1. */
        int64_t first_midnight = feat_day_of(st->first_activity_ms) * FEAT_DAY_MS;
        double span = ceil(days_between(first_midnight, t));
        per30 = 30.0 * st->lifetime_active_days / (span < 1.0 ? 1.0 : span);
    }
    out[FEAT_ACTIVE_DAYS_PER_30D] = per30;

    (void)pthread_once(&tables_once, tables);
    for (int i = 0; i < FEAT_DIM; i++)
        out[i] = bounded(i, out[i]);
}

double feat_human_value(const feat_state_t *st, int64_t t_ms, int i)
{
    if (i < 0 || i >= FEAT_DIM)
        return 0.0;
    double v[FEAT_DIM];
    feat_human_values(st, t_ms, v);
    return v[i];
}

/* Every transformed value goes through fl_log1p_block, one row or one value: the same
 * arithmetic on every path (scoring, learning, explanations, inspect). */
float feat_transform(int i, double human)
{
    if (i < 0 || i >= FEAT_DIM)
        return 0.0f;
    if (feat_info[i].transform != FEAT_TF_LOG1P)
        return (float)human;
    double in = human > 0 ? human : 0.0;
    float out;
    fl_log1p_block(&in, &out, 1);
    return out;
}

void feat_vector(const feat_state_t *st, int64_t t_ms, float out[FEAT_DIM])
{
    /* Every feature goes through the log1p block, the plain ones too (their logs unused), and
     * a select picks each feature's value: whole-row loops that vectorize, no index lists, no
     * scalar tail (FEAT_DIM_PADDED lanes; a lane computes what the one-value path does). */
    double v[FEAT_DIM], in[FEAT_DIM_PADDED];
    float logs[FEAT_DIM_PADDED];
    feat_human_values(st, t_ms, v); /* also builds the tables (is_log1p) */
    for (int i = 0; i < FEAT_DIM; i++)
        in[i] = v[i] > 0 ? v[i] : 0.0;
    for (int i = FEAT_DIM; i < FEAT_DIM_PADDED; i++)
        in[i] = 0.0;
    fl_log1p_block(in, logs, FEAT_DIM_PADDED);
    for (int i = 0; i < FEAT_DIM; i++)
        out[i] = is_log1p[i] ? logs[i] : (float)v[i];
}

void feat_print_user(FILE *out, const feat_state_t *st, int64_t t_ms)
{
    double v[FEAT_DIM];
    feat_human_values(st, t_ms, v);
    fprintf(out, "%-24s %-8s %14s %10s\n", "feature", "unit", "value", "x");
    for (int i = 0; i < FEAT_DIM; i++)
        fprintf(out, "%-24s %-8s %14.4f %10.4f\n", feat_info[i].name, feat_info[i].unit, v[i],
                (double)feat_transform(i, v[i]));
}

static void format_half_life(char *buf, size_t size, double days)
{
    if (days > 0)
        snprintf(buf, size, "%g", days);
    else
        snprintf(buf, size, "-");
}

void feat_print_reference(FILE *out, int markdown)
{
    char hl[16], cap[16];
    if (markdown) {
        fprintf(out, "| # | feature | unit | half-life (days) | transform | cap | description |\n");
        fprintf(out, "|---|---|---|---|---|---|---|\n");
    } else {
        fprintf(out, "%-3s %-24s %-8s %-9s %-9s %-6s %s\n", "#", "feature", "unit", "half-life",
                "transform", "cap", "description");
    }
    for (int i = 0; i < FEAT_DIM; i++) {
        const feat_info_t *f = &feat_info[i];
        format_half_life(hl, sizeof hl, f->half_life_days);
        if (f->cap > 0)
            snprintf(cap, sizeof cap, "%g", f->cap);
        else
            snprintf(cap, sizeof cap, "-");
        if (markdown)
            fprintf(out, "| %d | `%s` | %s | %s | %s | %s | %s |\n", i, f->name, f->unit, hl,
                    feat_transform_name(f->transform), cap, f->description);
        else
            fprintf(out, "%-3d %-24s %-8s %-9s %-9s %-6s %s\n", i, f->name, f->unit, hl,
                    feat_transform_name(f->transform), cap, f->description);
    }
}
