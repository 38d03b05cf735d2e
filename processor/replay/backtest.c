/* Backtest metrics over labelled snapshots: exact, by sorting (n log n), no histograms. */
#include "backtest.h"

#include "radix.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int cmp_tick_score_desc(const void *a, const void *b)
{
    const bt_row_t *x = a, *y = b;
    if (x->tick_ms != y->tick_ms)
        return x->tick_ms < y->tick_ms ? -1 : 1;
    return x->score > y->score ? -1 : x->score < y->score;
}

/* A row's two sort keys for sort_tick_score_desc, as unsigned numbers: key 0 the score's
 * (descending: the complemented cs_double_key), key 1 the tick's (ascending: sign bit flipped).
 * Digit d (0..15, least significant first) is byte d % 8 of key d / 8. */
static uint64_t row_key(const bt_row_t *r, int which)
{
    return which == 0 ? ~cs_double_key(r->score) : (uint64_t)r->tick_ms ^ (1ULL << 63);
}

/* Sorts rows by tick, then score descending, rows that compare equal kept in their input
 * order: exactly what a stable sort with cmp_tick_score_desc gives (glibc's qsort is a merge
 * sort), since the sums over the sorted rows must not move by a bit. LSD radix over the 16
 * digits, each pass stable; a digit equal in every row is skipped (ticks share their high
 * bytes, float scores widened to double their low ones). A NaN score compares equal to
 * everything, which no key reproduces: then, and when the buffer cannot be had, qsort. */
static void sort_tick_score_desc(bt_row_t *rows, size_t n)
{
    size_t(*count)[256] = calloc(16, sizeof(*count)); /* one histogram per digit */
    bt_row_t *tmp = malloc(n * sizeof(*tmp));
    int has_nan = 0;
    for (size_t i = 0; i < n && !has_nan; i++)
        has_nan = isnan(rows[i].score);
    if (!count || !tmp || has_nan) {
        free(count);
        free(tmp);
        qsort(rows, n, sizeof(*rows), cmp_tick_score_desc);
        return;
    }
    CS_RADIX_SORT(bt_row_t, rows, tmp, n, 2, count, row_key);
    free(count);
    free(tmp);
}

/* An AUC sort key: the score's cs_float_key in the upper 32 bits (the sort key), the row's
 * bits (AUC_*) in the lower ones (carried along, not sorted on). 8 bytes a row. */
typedef uint64_t auc_key_t;
#define AUC_SCORE(k) ((k) >> 32)

static uint64_t auc_key(const auc_key_t *k, int word)
{
    (void)word;
    return *k & ~(uint64_t)0xffffffffu;
}

/* Bits of an auc_key_t: the label, membership of the whole set, of the subset from `from` on. */
#define AUC_Y    1u
#define AUC_ALL  2u
#define AUC_FROM 4u

/* Mann-Whitney over keys sorted ascending, counting only the entries with a `member` bit:
 * the positives' rank sum, ranks taken among the members, ties given their average rank.
 * Filtering a sorted array keeps it sorted, so a subset needs no sort of its own, and its
 * tie groups, ranks and sums come out as sorting it alone would give them, bit for bit. */
static double auc_sorted(const auc_key_t *r, size_t n, uint64_t member)
{
    double rank_sum = 0, n1 = 0;
    size_t rank = 0; /* members before the current group */
    for (size_t i = 0; i < n;) {
        size_t j = i, m = 0, pos = 0;
        for (; j < n && AUC_SCORE(r[j]) == AUC_SCORE(r[i]); j++) {
            if (r[j] & member) {
                m++;
                pos += (size_t)(r[j] & AUC_Y);
            }
        }
        if (m) {
            double avg_rank = (double)(rank + 1 + rank + m) / 2.0; /* ranks rank+1 .. rank+m */
            rank_sum += avg_rank * (double)pos;
            n1 += (double)pos;
            rank += m;
        }
        i = j;
    }
    double n0 = (double)rank - n1;
    if (n1 == 0 || n0 == 0)
        return NAN;
    return (rank_sum - n1 * (n1 + 1) / 2) / (n1 * n0);
}

/* The AUC of rows[0..n) and of rows[from..n) (NaN when a class is missing or out of memory)
 * from one sort. */
static void auc_whole_and_from(const bt_row_t *rows, size_t n, size_t from, double *whole,
                               double *tail)
{
    *whole = *tail = NAN;
    auc_key_t *buf = n ? malloc(2 * n * sizeof(*buf)) : NULL;
    if (!buf)
        return;
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint64_t)cs_float_key(rows[i].score) << 32 | (rows[i].y != 0 ? AUC_Y : 0) |
                 AUC_ALL | (i >= from ? AUC_FROM : 0);
    size_t(*count)[256] = calloc(8, sizeof(*count)); /* one histogram per byte of the key */
    if (!count) {
        free(buf);
        return;
    }
    CS_RADIX_SORT(auc_key_t, buf, buf + n, n, 1, count, auc_key);
    free(count);
    *whole = auc_sorted(buf, n, AUC_ALL);
    *tail = auc_sorted(buf, n, AUC_FROM);
    free(buf);
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

int bt_compute(bt_row_t *rows, size_t n, bt_metrics_t *out)
{
    memset(out, 0, sizeof(*out));
    out->auc = out->auc_second_half = out->logloss = out->brier = NAN;
    out->logloss_second_half = NAN;
    out->top10_precision = out->top10_lift = NAN;
    out->snapshots = n;
    if (n == 0)
        return 0;
    sort_tick_score_desc(rows, n);

    int probs_open = 1, probs_closed = 1;
    double ll = 0, brier = 0, prec_sum = 0, lift_sum = 0;
    size_t lift_ticks = 0;
    for (size_t i = 0; i < n; i++) {
        double s = rows[i].score;
        out->positives += (size_t)rows[i].y;
        if (!(s > 0 && s < 1))
            probs_open = 0;
        if (!(s >= 0 && s <= 1))
            probs_closed = 0;
        ll += rows[i].y ? -log(s) : -log1p(-s);
        brier += (s - rows[i].y) * (s - rows[i].y);
    }
    out->positive_rate = (double)out->positives / (double)n;
    if (probs_open)
        out->logloss = ll / (double)n;
    if (probs_closed)
        out->brier = brier / (double)n;

    size_t half_start = 0, tick_index = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        double pos = 0;
        while (j < n && rows[j].tick_ms == rows[i].tick_ms)
            pos += rows[j++].y;
        out->ticks++;
        double p = top_precision(rows + i, j - i);
        prec_sum += p;
        if (pos > 0) {
            lift_sum += p / (pos / (double)(j - i));
            lift_ticks++;
        }
        i = j;
    }
    /* Second half: ticks from index ticks/2 on (the scorer's ticks[len // 2]). */
    for (size_t i = 0; i < n;) {
        if (tick_index == out->ticks / 2) {
            half_start = i;
            break;
        }
        size_t j = i;
        while (j < n && rows[j].tick_ms == rows[i].tick_ms)
            j++;
        tick_index++;
        i = j;
    }
    out->top10_precision = prec_sum / (double)out->ticks;
    if (lift_ticks)
        out->top10_lift = lift_sum / (double)lift_ticks;
    auc_whole_and_from(rows, n, half_start, &out->auc, &out->auc_second_half);
    if (probs_open && half_start < n) {
        double ll2 = 0;
        for (size_t i = half_start; i < n; i++)
            ll2 += rows[i].y ? -log(rows[i].score) : -log1p(-rows[i].score);
        out->logloss_second_half = ll2 / (double)(n - half_start);
    }
    return 0;
}
