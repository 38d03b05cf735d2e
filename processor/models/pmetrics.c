/* Prequential metrics (pmetrics.h): two count histograms (positives, negatives) over score
 * bins give the AUC in one pass over the bins; sums in double give log-loss and Brier. */
#include "pmetrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "model_wire.h"

struct pm_s {
    int bins_log2;
    size_t bins;
    uint64_t *pos; /* [bins] */
    uint64_t *neg; /* [bins] */
    uint64_t count;
    uint64_t positives;
    uint64_t skipped;
    double logloss_sum;
    double brier_sum;
};

pm_t *pm_new(int bins_log2)
{
    if (bins_log2 == 0)
        bins_log2 = PM_BINS_LOG2_DEFAULT;
    if (bins_log2 < 4 || bins_log2 > 20)
        return NULL;
    pm_t *pm = calloc(1, sizeof(*pm));
    if (!pm)
        return NULL;
    pm->bins_log2 = bins_log2;
    pm->bins = (size_t)1 << bins_log2;
    pm->pos = calloc(pm->bins, sizeof(uint64_t));
    pm->neg = calloc(pm->bins, sizeof(uint64_t));
    if (!pm->pos || !pm->neg) {
        pm_destroy(pm);
        return NULL;
    }
    return pm;
}

void pm_destroy(pm_t *pm)
{
    if (!pm)
        return;
    free(pm->pos);
    free(pm->neg);
    free(pm);
}

double pm_logloss_one(double p, int y)
{
    if (p < PM_P_CLAMP)
        p = PM_P_CLAMP;
    if (p > 1 - PM_P_CLAMP)
        p = 1 - PM_P_CLAMP;
    return y ? -log(p) : -log1p(-p);
}

void pm_add_one(pm_t *pm, double p, int y)
{
    if (isnan(p)) {
        pm->skipped++;
        return;
    }
    if (p < 0)
        p = 0;
    if (p > 1)
        p = 1;
    size_t b = (size_t)(p * (double)pm->bins);
    if (b >= pm->bins) /* p == 1 */
        b = pm->bins - 1;
    y = y != 0;
    if (y) {
        pm->pos[b]++;
        pm->positives++;
    } else {
        pm->neg[b]++;
    }
    pm->count++;
    pm->logloss_sum += pm_logloss_one(p, y);
    pm->brier_sum += (p - y) * (p - y);
}

void pm_add(pm_t *pm, const float *p, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pm_add_one(pm, p[i], y[i] >= 0.5f);
}

uint64_t pm_count(const pm_t *pm)
{
    return pm->count;
}

uint64_t pm_positives(const pm_t *pm)
{
    return pm->positives;
}

uint64_t pm_skipped(const pm_t *pm)
{
    return pm->skipped;
}

double pm_positive_rate(const pm_t *pm)
{
    return pm->count ? (double)pm->positives / (double)pm->count : NAN;
}

/* Mann-Whitney in bin order: a positive beats every negative in a lower bin and ties (1/2)
 * with the negatives of its own bin. Returns the number of (positive, negative) pairs, 0
 * when a class is missing (then there is no AUC and wins and same_bin are not set). */
static double auc_parts(const pm_t *pm, double *wins, double *same_bin)
{
    uint64_t n_neg = pm->count - pm->positives;
    if (!pm->positives || !n_neg)
        return 0;
    double neg_below = 0;
    *wins = 0;
    *same_bin = 0;
    for (size_t b = 0; b < pm->bins; b++) {
        double pb = (double)pm->pos[b], nb = (double)pm->neg[b];
        *wins += pb * neg_below;
        *same_bin += pb * nb;
        neg_below += nb;
    }
    return (double)pm->positives * (double)n_neg;
}

double pm_auc(const pm_t *pm)
{
    double wins, same, pairs = auc_parts(pm, &wins, &same);
    return pairs > 0 ? (wins + 0.5 * same) / pairs : NAN;
}

double pm_auc_error_bound(const pm_t *pm)
{
    double wins, same, pairs = auc_parts(pm, &wins, &same);
    return pairs > 0 ? 0.5 * same / pairs : NAN;
}

double pm_logloss(const pm_t *pm)
{
    return pm->count ? pm->logloss_sum / (double)pm->count : NAN;
}

double pm_brier(const pm_t *pm)
{
    return pm->count ? pm->brier_sum / (double)pm->count : NAN;
}

/* Section layout: u8 bins_log2, u64 count, u64 positives, u64 skipped, f64 logloss_sum,
 * f64 brier_sum, u32 nonempty, then per non-empty bin in increasing order: varint gap (bin
 * index minus previous index plus one, first from -1), varint pos, varint neg. Empty bins
 * are never written, so each histogram has exactly one encoding. */
void pm_encode(const pm_t *pm, mw_buf_t *b)
{
    uint32_t nonempty = 0;
    for (size_t i = 0; i < pm->bins; i++)
        nonempty += (pm->pos[i] | pm->neg[i]) != 0;
    mw_put_u8(b, (uint8_t)pm->bins_log2);
    mw_put_u64(b, pm->count);
    mw_put_u64(b, pm->positives);
    mw_put_u64(b, pm->skipped);
    mw_put_f64(b, pm->logloss_sum);
    mw_put_f64(b, pm->brier_sum);
    mw_put_u32(b, nonempty);
    size_t prev = (size_t)-1;
    for (size_t i = 0; i < pm->bins; i++) {
        if (!(pm->pos[i] | pm->neg[i]))
            continue;
        mw_put_varint(b, (uint64_t)(i - prev));
        mw_put_varint(b, pm->pos[i]);
        mw_put_varint(b, pm->neg[i]);
        prev = i;
    }
}

pm_t *pm_decode(mw_reader_t *r, char *errstr, size_t errstr_size)
{
    uint8_t bins_log2 = mw_get_u8(r);
    uint64_t count = mw_get_u64(r), positives = mw_get_u64(r), skipped = mw_get_u64(r);
    double ll = mw_get_f64(r), brier = mw_get_f64(r);
    uint32_t nonempty = mw_get_u32(r);
    if (r->failed) {
        snprintf(errstr, errstr_size, "metrics: truncated header");
        return NULL;
    }
    if (bins_log2 < 4 || bins_log2 > 20 || positives > count || !(ll >= 0) || !isfinite(ll) ||
        !(brier >= 0) || !isfinite(brier) || nonempty > (1u << bins_log2)) {
        snprintf(errstr, errstr_size, "metrics: invalid header");
        return NULL;
    }
    pm_t *pm = pm_new(bins_log2);
    if (!pm) {
        snprintf(errstr, errstr_size, "metrics: out of memory");
        return NULL;
    }
    pm->count = count;
    pm->positives = positives;
    pm->skipped = skipped;
    pm->logloss_sum = ll;
    pm->brier_sum = brier;
    size_t idx = (size_t)-1;
    uint64_t sum_pos = 0, sum_neg = 0;
    for (uint32_t t = 0; t < nonempty; t++) {
        uint64_t gap = mw_get_varint(r), p = mw_get_varint(r), n = mw_get_varint(r);
        if (r->failed) {
            snprintf(errstr, errstr_size, "metrics: truncated or malformed histogram entry %u", t);
            goto fail;
        }
        /* idx starts at SIZE_MAX, so idx + gap wraps to the intended index */
        if (gap == 0 || gap > pm->bins || idx + (size_t)gap >= pm->bins || (p | n) == 0 ||
            p > count || n > count) {
            snprintf(errstr, errstr_size, "metrics: invalid histogram entry %u", t);
            goto fail;
        }
        idx += (size_t)gap;
        pm->pos[idx] = p;
        pm->neg[idx] = n;
        sum_pos += p;
        sum_neg += n;
        if (sum_pos > count || sum_neg > count) {
            snprintf(errstr, errstr_size, "metrics: histogram exceeds the count");
            goto fail;
        }
    }
    if (sum_pos != positives || sum_neg != count - positives) {
        snprintf(errstr, errstr_size,
                 "metrics: histogram totals (%llu+, %llu-) disagree with counts (%llu, %llu)",
                 (unsigned long long)sum_pos, (unsigned long long)sum_neg,
                 (unsigned long long)positives, (unsigned long long)count);
        goto fail;
    }
    return pm;
fail:
    pm_destroy(pm);
    return NULL;
}
