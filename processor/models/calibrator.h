/* Online recalibration of the churn probability (Platt scaling, refitted as labels complete).
 *
 * Why: labels arrive with different delays by class (a negative at the user's next
 * activity, a positive only at T + H), so the stream the logistic regression learns from
 * under-represents positives of recent ticks, and the positive rate drifts as cohorts age.
 * The calibrator avoids both: it keeps one small histogram of (raw logit, label) per tick
 * until the tick is complete (every label known: T + H passed), and only then folds it into
 * exponentially decayed statistics and refits p = sigmoid(a * logit + b). A tick's
 * histogram has the true class mix, so the fit has no delay bias, and the decay keeps it
 * following the drift. Before the first complete tick it is the identity. */
#ifndef CS_CALIBRATOR_H
#define CS_CALIBRATOR_H

#include <stddef.h>
#include <stdint.h>

#include "model_wire.h"

#define CAL_BINS      32 /* raw logit bins over [-8, 8) */
#define CAL_LOGIT_MAX 8.0

typedef struct cal_s cal_t;

/* half_life_ms: decay of completed ticks' weight (> 0). NULL on out of memory. */
cal_t *cal_new(int64_t half_life_ms);
void cal_destroy(cal_t *cal);

/* Records a labelled snapshot of tick_ms whose raw (uncalibrated) logit is `logit`. Returns
 * 0, -1 on out of memory. */
int cal_add(cal_t *cal, int64_t tick_ms, double logit, int y);

/* Every tick <= through_ms is complete: fold their histograms (in tick order) and refit.
 * Returns the number of ticks folded. */
int cal_complete_through(cal_t *cal, int64_t through_ms);

/* Calibrated probability of a raw logit. */
double cal_apply(const cal_t *cal, double logit);

/* Current fit (a = 1, b = 0 until a tick completes) and the decayed weight behind it. */
void cal_params(const cal_t *cal, double *a, double *b, double *weight);

void cal_encode(const cal_t *cal, mw_buf_t *b);
cal_t *cal_decode(mw_reader_t *r, char *errstr, size_t errstr_size);

#endif
