/* Prequential (test-then-train) metrics of the churn model: each labelled snapshot's score,
 * taken before the model learnt from it, is added once. AUC from a fine histogram of scores,
 * log-loss, Brier score, count and positive rate; all cumulative since creation. */
#ifndef CS_PMETRICS_H
#define CS_PMETRICS_H

#include <stddef.h>
#include <stdint.h>

struct mw_buf_s;
struct mw_reader_s;

typedef struct pm_s pm_t;

#define PM_BINS_LOG2_DEFAULT 16
#define PM_P_CLAMP           1e-7 /* log-loss uses p clamped to [1e-7, 1 - 1e-7] */

/* New accumulator with 2^bins_log2 equal-width score bins on [0, 1]; bins_log2 in 4..20,
 * 0 = PM_BINS_LOG2_DEFAULT. Memory is 16 bytes per bin. NULL on bad argument / no memory.
 *
 * AUC accuracy: pairs (positive, negative) whose scores fall in different bins are ranked
 * exactly; a pair in the same bin counts 1/2, which is also the exact value for equal scores.
 * So |AUC - exact AUC| <= pm_auc_error_bound() = 1/2 * sum_b pos_b neg_b / (P N), and the
 * histogram AUC is exact whenever no bin holds both classes (scores further apart than
 * 2^-bins_log2). */
pm_t *pm_new(int bins_log2);
/* Frees; pm_destroy(NULL) is a no-op. */
void pm_destroy(pm_t *pm);

/* Adds n (score, label) pairs: p in [0, 1] (clamped), label y >= 0.5 is positive. A NaN
 * score is skipped and counted in pm_skipped(). */
void pm_add(pm_t *pm, const float *p, const float *y, size_t n);
void pm_add_one(pm_t *pm, double p, int y);

uint64_t pm_count(const pm_t *pm);
uint64_t pm_positives(const pm_t *pm);
uint64_t pm_skipped(const pm_t *pm);
/* positives / count; NAN when empty. */
double pm_positive_rate(const pm_t *pm);
/* Histogram ROC AUC; NAN until both classes were seen. */
double pm_auc(const pm_t *pm);
/* Bound on |pm_auc - exact AUC| (see pm_new); NAN like pm_auc. */
double pm_auc_error_bound(const pm_t *pm);
/* Mean log-loss (natural log) with clamped p; NAN when empty. */
double pm_logloss(const pm_t *pm);
/* Mean (p - y)^2; NAN when empty. */
double pm_brier(const pm_t *pm);

/* Log-loss of one prediction, p clamped to [PM_P_CLAMP, 1 - PM_P_CLAMP]. */
double pm_logloss_one(double p, int y);

/* Snapshot section (model.c); see sc_encode. The histogram is stored sparsely (non-empty
 * bins as varints), so a young model's section is small. */
void pm_encode(const pm_t *pm, struct mw_buf_s *b);
pm_t *pm_decode(struct mw_reader_s *r, char *errstr, size_t errstr_size);

#endif
