/* Backtest metrics over labelled snapshots: exact, by sorting (n log n), no histograms. */
#include "backtest.h"

#include "auc_spill.h"
#include "radix.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int cmp_score_desc(const bt_row_t *x, const bt_row_t *y)
{
    return x->score > y->score ? -1 : x->score < y->score;
}

/* Insertion sort by score, descending, stable: small ticks, NaN scores (a NaN compares equal
 * to everything, which no radix key reproduces) and the fallback without scratch memory. */
static void insertion_sort_score_desc(bt_row_t *rows, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        bt_row_t r = rows[i];
        size_t j = i;
        for (; j > 0 && cmp_score_desc(&rows[j - 1], &r) > 0; j--)
            rows[j] = rows[j - 1];
        rows[j] = r;
    }
}

static uint64_t score_desc_key(const bt_row_t *r, int word)
{
    (void)word;
    return ~cs_double_key(r->score);
}

static uint64_t tick_key(const bt_row_t *r, int word)
{
    (void)word;
    return (uint64_t)r->tick_ms ^ (1ULL << 63);
}

/* Stable sorts of rows (rows that compare equal keep their input order, as the sums over the
 * sorted rows must not move by a bit): by score descending within a tick, by tick over all
 * rows. LSD radix, each pass stable; a digit equal in every row is skipped. Returns -1 when
 * the tick sort has no scratch memory (the score sort falls back to insertion). */
static int sort_rows(bt_row_t *rows, size_t n, int by_tick)
{
    int has_nan = 0;
    for (size_t i = 0; i < n && !has_nan && !by_tick; i++)
        has_nan = isnan(rows[i].score);
    if (!by_tick && (n < 32 || has_nan)) {
        insertion_sort_score_desc(rows, n);
        return 0;
    }
    size_t(*count)[256] = calloc(8, sizeof(*count)); /* one histogram per digit */
    bt_row_t *tmp = malloc(n * sizeof(*tmp));
    if (count && tmp && by_tick)
        CS_RADIX_SORT(bt_row_t, rows, tmp, n, 1, count, tick_key);
    else if (count && tmp)
        CS_RADIX_SORT(bt_row_t, rows, tmp, n, 1, count, score_desc_key);
    free(count);
    free(tmp);
    if (count && tmp)
        return 0;
    if (by_tick)
        return -1;
    insertion_sort_score_desc(rows, n);
    return 0;
}

/* A key's subsets in auc_whole_and_from: all (bit 0), from `from` on (payload bit 1). */
static unsigned member_whole_and_from(uint32_t payload, void *ctx)
{
    (void)ctx;
    return 1u | (payload & 2u);
}

/* The AUC of rows[0..n) and of rows[from..n) (NaN when a class is missing or out of memory)
 * from one sort: an auc_spill sized to hold every key, so nothing goes to disk. */
static void auc_whole_and_from(const bt_row_t *rows, size_t n, size_t from, double *whole,
                               double *tail)
{
    *whole = *tail = NAN;
    auc_spill_t *s = as_new(n);
    double out[2];
    if (!s)
        return;
    for (size_t i = 0; i < n; i++)
        if (as_add(s, rows[i].score, (rows[i].y != 0) | (i >= from ? 2u : 0u)) != 0)
            goto out;
    if (as_result(s, 2, member_whole_and_from, NULL, out) == 0) {
        *whole = out[0];
        *tail = out[1];
    }
out:
    as_free(s);
}

double bt_auc(const bt_row_t *rows, size_t n)
{
    double whole, tail;
    auc_whole_and_from(rows, n, n, &whole, &tail);
    return whole;
}

/* Precision in the top 10% of one tick's rows (sorted by score, descending); rows tied at
 * the cut count with the tied group's mean label, as the independent scorer does. */
static double top_precision(const bt_row_t *r, size_t n)
{
    size_t k = (size_t)ceil(0.10 * (double)n);
    double cut = r[k - 1].score, above_pos = 0, tied_pos = 0;
    size_t above = 0, tied = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].score > cut) {
            above++;
            above_pos += r[i].y;
        } else if (r[i].score == cut) {
            tied++;
            tied_pos += r[i].y;
        }
    }
    return (above_pos + (double)(k - above) * (tied_pos / (double)tied)) / (double)k;
}

void bt_acc_init(bt_acc_t *a)
{
    memset(a, 0, sizeof(*a));
    a->probs_open = a->probs_closed = 1;
}

double bt_acc_tick(bt_acc_t *a, bt_row_t *rows, size_t n)
{
    sort_rows(rows, n, 0);
    double tick_ll = 0, pos = 0;
    for (size_t i = 0; i < n; i++) {
        double s = rows[i].score;
        a->positives += (size_t)rows[i].y;
        pos += rows[i].y;
        if (!(s > 0 && s < 1))
            a->probs_open = 0;
        if (!(s >= 0 && s <= 1))
            a->probs_closed = 0;
        double l = rows[i].y ? -log(s) : -log1p(-s);
        a->ll += l;
        tick_ll += l;
        a->brier += (s - rows[i].y) * (s - rows[i].y);
    }
    a->snapshots += n;
    a->ticks++;
    double p = top_precision(rows, n);
    a->prec_sum += p;
    if (pos > 0) {
        a->lift_sum += p / (pos / (double)n);
        a->lift_ticks++;
    }
    return tick_ll;
}

void bt_acc_metrics(const bt_acc_t *a, bt_metrics_t *out)
{
    memset(out, 0, sizeof(*out));
    out->auc = out->auc_second_half = out->logloss = out->brier = NAN;
    out->logloss_second_half = NAN;
    out->top10_precision = out->top10_lift = NAN;
    out->snapshots = a->snapshots;
    out->positives = a->positives;
    out->ticks = a->ticks;
    if (a->snapshots == 0)
        return;
    double n = (double)a->snapshots;
    out->positive_rate = (double)a->positives / n;
    if (a->probs_open)
        out->logloss = a->ll / n;
    if (a->probs_closed)
        out->brier = a->brier / n;
    out->top10_precision = a->prec_sum / (double)a->ticks;
    if (a->lift_ticks)
        out->top10_lift = a->lift_sum / (double)a->lift_ticks;
}

int bt_compute(bt_row_t *rows, size_t n, bt_metrics_t *out)
{
    bt_acc_t acc;
    bt_acc_init(&acc);
    bt_acc_metrics(&acc, out);
    if (n == 0)
        return 0;
    if (sort_rows(rows, n, 1) != 0)
        return -1;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && rows[j].tick_ms == rows[i].tick_ms)
            j++;
        bt_acc_tick(&acc, rows + i, j - i);
        i = j;
    }
    bt_acc_metrics(&acc, out);
    /* Second half: ticks from index ticks/2 on (the scorer's ticks[len // 2]). */
    size_t half_start = 0;
    for (size_t t = 0; t < acc.ticks / 2; t++) {
        size_t j = half_start;
        while (j < n && rows[j].tick_ms == rows[half_start].tick_ms)
            j++;
        half_start = j;
    }
    auc_whole_and_from(rows, n, half_start, &out->auc, &out->auc_second_half);
    if (acc.probs_open && half_start < n) {
        double ll2 = 0;
        for (size_t i = half_start; i < n; i++)
            ll2 += rows[i].y ? -log(rows[i].score) : -log1p(-rows[i].score);
        out->logloss_second_half = ll2 / (double)(n - half_start);
    }
    return 0;
}
