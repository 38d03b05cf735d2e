/* The report's figures from the labelled rows (see report_data.h). Every sort has a total
 * order and every tie group is walked as one, so the figures do not depend on row order. */
#include "report_data.h"

#include <math.h>
#include <stdlib.h>

static int cmp_score_desc(const void *pa, const void *pb)
{
    const bt_row_t *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->y - b->y; /* a total order; tie groups are walked as one anyway */
}

static int cmp_tick_score_desc(const void *pa, const void *pb)
{
    const bt_row_t *a = pa, *b = pb;
    if (a->tick_ms != b->tick_ms)
        return a->tick_ms < b->tick_ms ? -1 : 1;
    return cmp_score_desc(pa, pb);
}

/* Walks rows sorted by descending score, one ROC vertex per distinct score, and returns the
 * trapezoid area, which is the tie-averaged AUC; NaN when a class is missing. Vertices go
 * to fpr/tpr (capacity n + 1) when they are not NULL. */
static double roc_walk(const bt_row_t *r, size_t n, double *fpr, double *tpr, size_t *npts)
{
    double P = 0, N, tp = 0, fp = 0, area = 0;
    for (size_t i = 0; i < n; i++)
        P += r[i].y;
    N = (double)n - P;
    if (npts)
        *npts = 0;
    if (P == 0 || N == 0)
        return NAN;
    size_t k = 0;
    if (fpr) {
        fpr[0] = tpr[0] = 0;
        k = 1;
    }
    for (size_t i = 0; i < n;) {
        double tp0 = tp, fp0 = fp;
        size_t j = i;
        while (j < n && r[j].score == r[i].score) {
            tp += r[j].y;
            fp += 1 - r[j].y;
            j++;
        }
        area += (fp - fp0) * (tp + tp0) / 2;
        if (fpr) {
            fpr[k] = fp / N;
            tpr[k] = tp / P;
            k++;
        }
        i = j;
    }
    if (npts)
        *npts = k;
    return area / (P * N);
}

/* Pooled exact ROC of rows (re-sorted in place by score), kept as <= ROC_MAX_POINTS
 * vertices evenly spaced along the exact ones (ends included). */
static int roc_pooled(bt_row_t *rows, size_t n, roc_t *out)
{
    out->n = 0;
    double *fpr = malloc((n + 1) * sizeof(double)), *tpr = malloc((n + 1) * sizeof(double));
    if (!fpr || !tpr) {
        free(fpr);
        free(tpr);
        return -1;
    }
    qsort(rows, n, sizeof(*rows), cmp_score_desc);
    size_t k;
    out->auc = roc_walk(rows, n, fpr, tpr, &k);
    size_t keep = k < ROC_MAX_POINTS ? k : ROC_MAX_POINTS;
    for (size_t i = 0; i < keep; i++) {
        size_t src =
            keep > 1 ? (size_t)((double)i * (double)(k - 1) / (double)(keep - 1) + 0.5) : 0;
        out->fpr[i] = fpr[src];
        out->tpr[i] = tpr[src];
    }
    out->n = keep;
    free(fpr);
    free(tpr);
    return 0;
}

/* Mean log-loss of a group, NaN unless every score is in (0, 1) (as bt_compute). */
static double logloss(const bt_row_t *r, size_t n)
{
    double ll = 0;
    for (size_t i = 0; i < n; i++) {
        double s = r[i].score;
        if (!(s > 0 && s < 1))
            return NAN;
        ll += r[i].y ? -log(s) : -log1p(-s);
    }
    return ll / (double)n;
}

static size_t tick_index(const rep_t *rp, int64_t t)
{
    size_t lo = 0, hi = rp->nticks;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (rp->ticks[mid].tick_ms <= t)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

int rep_compute(rep_t *rp, const rp_row_t *rows, size_t nrows)
{
    for (size_t i = 0; i < nrows; i++)
        rp->n += rows[i].in_window != 0;
    size_t cap = rp->n ? rp->n : 1;
    rp->m = malloc(cap * sizeof(bt_row_t));
    rp->r = malloc(cap * sizeof(bt_row_t));
    rp->ticks = malloc(cap * sizeof(tick_t));
    if (!rp->m || !rp->r || !rp->ticks)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < nrows; i++) {
        if (!rows[i].in_window)
            continue;
        int y = rows[i].y != 0;
        rp->m[n] = (bt_row_t){rows[i].tick_ms, rows[i].score, y};
        rp->r[n] = (bt_row_t){rows[i].tick_ms, rows[i].recency_days, y};
        rp->pos += (size_t)y;
        n++;
    }
    /* Per tick: both copies sorted by (tick, score desc) have the same tick groups. */
    qsort(rp->m, n, sizeof(bt_row_t), cmp_tick_score_desc);
    qsort(rp->r, n, sizeof(bt_row_t), cmp_tick_score_desc);
    for (size_t i = 0; i < n;) {
        size_t j = i, pos = 0;
        while (j < n && rp->m[j].tick_ms == rp->m[i].tick_ms)
            pos += (size_t)rp->m[j++].y;
        rp->ticks[rp->nticks++] = (tick_t){
            .tick_ms = rp->m[i].tick_ms,
            .n = j - i,
            .pos = pos,
            .auc_model = roc_walk(rp->m + i, j - i, NULL, NULL, NULL),
            .auc_recency = roc_walk(rp->r + i, j - i, NULL, NULL, NULL),
            .logloss = logloss(rp->m + i, j - i),
        };
        i = j;
    }
    size_t series = (size_t)rp->k + 1;
    rp->seg_n = calloc(rp->nticks * series + 1, sizeof(size_t));
    rp->seg_pos = calloc(rp->nticks * series + 1, sizeof(size_t));
    if (!rp->seg_n || !rp->seg_pos)
        return -1;
    for (size_t i = 0; i < nrows; i++) {
        if (!rows[i].in_window)
            continue;
        int s = rows[i].seg >= 0 && rows[i].seg < rp->k ? rows[i].seg : rp->k;
        size_t at = tick_index(rp, rows[i].tick_ms) * series + (size_t)s;
        rp->seg_n[at]++;
        rp->seg_pos[at] += rows[i].y != 0;
        rp->seg_tot_n[s]++;
        rp->seg_tot_pos[s] += rows[i].y != 0;
    }
    for (size_t i = 0; i < n; i++) {
        double p = rp->m[i].score;
        int b = p >= 1 ? RD_CAL_BINS - 1 : p > 0 ? (int)(p * RD_CAL_BINS) : 0;
        rp->cal_n[b]++;
        rp->cal_pos[b] += (size_t)rp->m[i].y;
        rp->cal_p[b] += p;
    }
    /* Last: the pooled curves re-sort the copies by score alone. */
    if (roc_pooled(rp->m, n, &rp->roc_m) != 0 || roc_pooled(rp->r, n, &rp->roc_r) != 0)
        return -1;
    return 0;
}

void rep_free(rep_t *rp)
{
    free(rp->m);
    free(rp->r);
    free(rp->ticks);
    free(rp->seg_n);
    free(rp->seg_pos);
}
