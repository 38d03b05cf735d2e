/* Calibrator: per-tick (logit, label) histograms, folded when complete, Platt refit by
 * Newton's method on the binned, decayed statistics (32 points, so a refit is ~free). */
#include "calibrator.h"
#include "grow.h"
#include "upper_bound.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cal_hist_s {
    double pos[CAL_BINS], neg[CAL_BINS], logit_sum[CAL_BINS];
} cal_hist_t;

typedef struct cal_tick_s {
    int64_t tick_ms;
    cal_hist_t h;
} cal_tick_t;

struct cal_s {
    int64_t half_life_ms;
    double a, b;
    int64_t last_fold_ms; /* INT64_MIN before the first fold */
    cal_hist_t total;     /* completed ticks, decayed to last_fold_ms */
    cal_tick_t *pending;  /* sorted by tick */
    size_t npending, cap;
};

cal_t *cal_new(int64_t half_life_ms)
{
    if (half_life_ms <= 0)
        return NULL;
    cal_t *cal = calloc(1, sizeof(*cal));
    if (!cal)
        return NULL;
    cal->half_life_ms = half_life_ms;
    cal->a = 1;
    cal->last_fold_ms = INT64_MIN;
    return cal;
}

void cal_destroy(cal_t *cal)
{
    if (!cal)
        return;
    free(cal->pending);
    free(cal);
}

static int bin_of(double logit)
{
    if (!(logit > -CAL_LOGIT_MAX)) /* also NaN */
        return 0;
    if (logit >= CAL_LOGIT_MAX)
        return CAL_BINS - 1;
    return (int)((logit + CAL_LOGIT_MAX) / (2 * CAL_LOGIT_MAX) * CAL_BINS);
}

static cal_tick_t *pending_slot(cal_t *cal, int64_t tick_ms)
{
    /* pending is sorted by tick_ms; labels come for any of the last H of ticks (a positive
     * at T + H), so a scan from the end walked H / tick entries for each */
    size_t i;
    CS_UPPER_BOUND(cal->pending, cal->npending, tick_ms, tick_ms, i);
    if (i > 0 && cal->pending[i - 1].tick_ms == tick_ms)
        return &cal->pending[i - 1];
    if (CS_GROW(cal->pending, cal->cap, cal->npending + 1, 32) != 0)
        return NULL;
    memmove(&cal->pending[i + 1], &cal->pending[i], (cal->npending - i) * sizeof(cal_tick_t));
    cal->npending++;
    memset(&cal->pending[i], 0, sizeof(cal_tick_t));
    cal->pending[i].tick_ms = tick_ms;
    return &cal->pending[i];
}

int cal_add(cal_t *cal, int64_t tick_ms, double logit, int y)
{
    cal_tick_t *t = pending_slot(cal, tick_ms);
    if (!t)
        return -1;
    int k = bin_of(logit);
    double l = logit > CAL_LOGIT_MAX    ? CAL_LOGIT_MAX
               : logit < -CAL_LOGIT_MAX ? -CAL_LOGIT_MAX
                                        : logit;
    if (y)
        t->h.pos[k] += 1;
    else
        t->h.neg[k] += 1;
    t->h.logit_sum[k] += isfinite(l) ? l : 0;
    return 0;
}

#define CAL_PRIOR 10.0 /* snapshots' worth of pull towards the identity (a = 1, b = 0) */

/* Weighted log-loss of sigmoid(a l + b) over the bins, plus the prior. */
static double cal_loss(const cal_hist_t *h, double a, double b)
{
    double loss = 0.5 * CAL_PRIOR * ((a - 1) * (a - 1) + b * b);
    for (int k = 0; k < CAL_BINS; k++) {
        double n = h->pos[k] + h->neg[k];
        if (n <= 0)
            continue;
        double s = a * (h->logit_sum[k] / n) + b;
        /* log(1 + e^-s) and log(1 + e^s), stable for large |s| */
        double lp = s > 0 ? log1p(exp(-s)) : -s + log1p(exp(s));
        double ln = s > 0 ? s + log1p(exp(-s)) : log1p(exp(s));
        loss += h->pos[k] * lp + h->neg[k] * ln;
    }
    return loss;
}

/* Damped Newton on cal_loss (convex): a full step when it lowers the loss, else halved until
 * it does, so nearly separable or one-bin data cannot make it oscillate. */
static void refit(cal_t *cal)
{
    double a = cal->a, b = cal->b, loss = cal_loss(&cal->total, a, b);
    for (int iter = 0; iter < 50; iter++) {
        double ga = CAL_PRIOR * (a - 1), gb = CAL_PRIOR * b, haa = CAL_PRIOR, hab = 0,
               hbb = CAL_PRIOR;
        for (int k = 0; k < CAL_BINS; k++) {
            double n = cal->total.pos[k] + cal->total.neg[k];
            if (n <= 0)
                continue;
            double l = cal->total.logit_sum[k] / n;
            double p = 1 / (1 + exp(-(a * l + b)));
            double r = n * p - cal->total.pos[k]; /* d loss / d (a l + b) */
            double w = n * p * (1 - p);
            ga += r * l;
            gb += r;
            haa += w * l * l;
            hab += w * l;
            hbb += w;
        }
        double det = haa * hbb - hab * hab;
        if (!(det > 0))
            break;
        double da = (hbb * ga - hab * gb) / det, db = (haa * gb - hab * ga) / det;
        double t = 1, next = cal_loss(&cal->total, a - da, b - db);
        while (!(next <= loss) && t > 1e-6) {
            t /= 2;
            next = cal_loss(&cal->total, a - t * da, b - t * db);
        }
        if (!(next <= loss))
            break;
        a -= t * da;
        b -= t * db;
        double gain = loss - next;
        loss = next;
        if (gain < 1e-9 * (1 + loss))
            break;
    }
    if (isfinite(a) && isfinite(b)) {
        cal->a = a;
        cal->b = b;
    }
}

int cal_complete_through(cal_t *cal, int64_t through_ms)
{
    size_t n = 0;
    while (n < cal->npending && cal->pending[n].tick_ms <= through_ms) {
        const cal_tick_t *t = &cal->pending[n];
        if (cal->last_fold_ms != INT64_MIN && t->tick_ms > cal->last_fold_ms) {
            double decay =
                exp2(-(double)(t->tick_ms - cal->last_fold_ms) / (double)cal->half_life_ms);
            for (int k = 0; k < CAL_BINS; k++) {
                cal->total.pos[k] *= decay;
                cal->total.neg[k] *= decay;
                cal->total.logit_sum[k] *= decay;
            }
        }
        if (cal->last_fold_ms == INT64_MIN || t->tick_ms > cal->last_fold_ms)
            cal->last_fold_ms = t->tick_ms;
        for (int k = 0; k < CAL_BINS; k++) {
            cal->total.pos[k] += t->h.pos[k];
            cal->total.neg[k] += t->h.neg[k];
            cal->total.logit_sum[k] += t->h.logit_sum[k];
        }
        n++;
    }
    if (n == 0)
        return 0;
    memmove(cal->pending, cal->pending + n, (cal->npending - n) * sizeof(cal_tick_t));
    cal->npending -= n;
    refit(cal);
    return (int)n;
}

double cal_apply(const cal_t *cal, double logit)
{
    double l = logit > CAL_LOGIT_MAX    ? CAL_LOGIT_MAX
               : logit < -CAL_LOGIT_MAX ? -CAL_LOGIT_MAX
                                        : logit;
    return 1 / (1 + exp(-(cal->a * l + cal->b)));
}

void cal_params(const cal_t *cal, double *a, double *b, double *weight)
{
    *a = cal->a;
    *b = cal->b;
    double w = 0;
    for (int k = 0; k < CAL_BINS; k++)
        w += cal->total.pos[k] + cal->total.neg[k];
    *weight = w;
}

static void put_hist(mw_buf_t *b, const cal_hist_t *h)
{
    for (int k = 0; k < CAL_BINS; k++) {
        mw_put_f64(b, h->pos[k]);
        mw_put_f64(b, h->neg[k]);
        mw_put_f64(b, h->logit_sum[k]);
    }
}

static int get_hist(mw_reader_t *r, cal_hist_t *h)
{
    for (int k = 0; k < CAL_BINS; k++) {
        h->pos[k] = mw_get_f64(r);
        h->neg[k] = mw_get_f64(r);
        h->logit_sum[k] = mw_get_f64(r);
        if (!(h->pos[k] >= 0) || !(h->neg[k] >= 0) || !isfinite(h->pos[k]) ||
            !isfinite(h->neg[k]) || !isfinite(h->logit_sum[k]))
            return -1;
    }
    return 0;
}

/* Layout: i64 half_life_ms, f64 a, f64 b, i64 last_fold_ms, total histogram, u32 pending,
 * then per pending tick: i64 tick_ms + histogram. Histograms: CAL_BINS x (pos, neg, sum). */
void cal_encode(const cal_t *cal, mw_buf_t *b)
{
    mw_put_u64(b, (uint64_t)cal->half_life_ms);
    mw_put_f64(b, cal->a);
    mw_put_f64(b, cal->b);
    mw_put_u64(b, (uint64_t)cal->last_fold_ms);
    put_hist(b, &cal->total);
    mw_put_u32(b, (uint32_t)cal->npending);
    for (size_t i = 0; i < cal->npending; i++) {
        mw_put_u64(b, (uint64_t)cal->pending[i].tick_ms);
        put_hist(b, &cal->pending[i].h);
    }
}

cal_t *cal_decode(mw_reader_t *r, char *errstr, size_t errstr_size)
{
    int64_t half_life = (int64_t)mw_get_u64(r);
    cal_t *cal = cal_new(half_life > 0 ? half_life : 1);
    if (!cal) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    cal->a = mw_get_f64(r);
    cal->b = mw_get_f64(r);
    cal->last_fold_ms = (int64_t)mw_get_u64(r);
    int bad =
        half_life <= 0 || !isfinite(cal->a) || !isfinite(cal->b) || get_hist(r, &cal->total) != 0;
    uint32_t n = mw_get_u32(r);
    /* Each pending tick takes 8 + 24 * CAL_BINS bytes: refuse counts the input cannot hold
     * before allocating for them. */
    if (!bad && !r->failed && n > (r->len - r->off) / (8 + 24 * CAL_BINS))
        bad = 1;
    for (uint32_t i = 0; !bad && !r->failed && i < n; i++) {
        int64_t tick = (int64_t)mw_get_u64(r);
        if ((i > 0 && tick <= cal->pending[i - 1].tick_ms)) {
            bad = 1;
            break;
        }
        cal_tick_t *t = pending_slot(cal, tick);
        if (!t || get_hist(r, &t->h) != 0)
            bad = 1;
    }
    if (bad || r->failed) {
        snprintf(errstr, errstr_size, "calibrator section corrupt or truncated");
        cal_destroy(cal);
        return NULL;
    }
    return cal;
}
