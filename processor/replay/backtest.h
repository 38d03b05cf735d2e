/* Exact offline metrics of a backtest over its labelled snapshots, computed the way
 * shared/tools/backtest_score.py does (DESIGN.md section 4): ROC AUC with tied scores
 * averaged, pooled and on the second half of the ticks; log-loss (pooled and second half) and
 * Brier; precision and
 * lift in the top 10% of each tick, averaged over ticks. */
#ifndef CS_BACKTEST_H
#define CS_BACKTEST_H

#include <stddef.h>
#include <stdint.h>

/* 16 bytes: a replay keeps one per labelled snapshot while it computes each metric, so the
 * score is a float, as the replay's own rows hold it (bench/RESULTS.md, memory). */
typedef struct bt_row_s {
    int64_t tick_ms;
    float score;
    int32_t y; /* 0 or 1 */
} bt_row_t;

typedef struct bt_metrics_s {
    size_t snapshots, positives, ticks;
    double positive_rate;
    double auc, auc_second_half; /* NaN when one class is missing */
    double logloss, brier;       /* NaN unless every score is a probability in (0,1) / [0,1] */
    double logloss_second_half;  /* the log-loss of the second half of the ticks, as auc's */
    double top10_precision, top10_lift;
} bt_metrics_t;

/* The metrics that add up tick by tick (all but the AUCs and the second half's log-loss),
 * accumulated over ticks given in increasing tick order: a stream of ticks gives the same
 * sums, bit for bit, as bt_compute over all their rows at once. */
typedef struct bt_acc_s {
    size_t snapshots, positives, ticks, lift_ticks;
    int probs_open, probs_closed; /* every score in (0,1) / in [0,1] so far */
    double ll, brier, prec_sum, lift_sum;
} bt_acc_t;

void bt_acc_init(bt_acc_t *a);
/* Adds one tick: rows[0..n) are all the tick's rows (n > 0), in the order they came; they are
 * sorted in place by score, descending, rows of equal score kept in that order. Returns the
 * tick's log-loss sum (NaN-free only when its scores are probabilities). */
double bt_acc_tick(bt_acc_t *a, bt_row_t *rows, size_t n);
/* The accumulated metrics into out (AUCs and logloss_second_half left NaN). */
void bt_acc_metrics(const bt_acc_t *a, bt_metrics_t *out);

/* Computes the metrics of rows[0..n). Sorts rows in place (by tick, then score). Returns 0,
 * -1 on out of memory. */
int bt_compute(bt_row_t *rows, size_t n, bt_metrics_t *out);

/* ROC AUC of rows[0..n) (tied scores count one half); NaN when a class is missing. Sorts a
 * copy; returns NaN on out of memory too. */
double bt_auc(const bt_row_t *rows, size_t n);

#endif
