/* Online recalibration of the churn probability (Platt scaling, refitted as labels complete).
 *
 * Why: labels arrive with different delays by class (a negative at the user's next
 * activity, a positive only at T + H), so the stream the logistic regression learns from
 * under-represents positives of recent ticks, and the positive rate drifts as cohorts age.
 * The calibrator avoids both: it keeps one small histogram of (raw logit, label) per tick
 * until the tick is complete (every label known: T + H passed), and only then folds it into
 * exponentially decayed statistics and refits p = sigmoid(a * logit + b). A tick's
 * histogram has the true class mix, so the fit has no delay bias, and the decay keeps it
 * following the drift. Before the first complete tick it is the identity.
 *
 * The logits it learns from are the current regression's at label time, so a negative (label
 * at the next activity) is graded by a regression close to the one that scored it and a
 * positive by one 90 days wiser. Tried against that mismatch and not kept (issue 12;
 * `churnstream replay --json --tick.interval=1d` on the shared logs; before: Online Retail
 * 0.715 / 0.746 pooled / second half, the regression's log-loss 0.778; completejourney2 0.886 /
 * 0.898, 0.177):
 *  - the logit the frozen scorer of the label's tick gave (the pairing the Hedge grading
 *    uses): the young regressions of the first months rank backwards, the map learnt flat or
 *    inverted slopes, and the regression's AUC fell to 0.555 / 0.656 (Online Retail) and
 *    0.478 / 0.545 (completejourney2); the blends 0.708 / 0.743 and 0.863 / 0.864;
 *  - rows, not logits: a deterministic reservoir (Algorithm R, splitmix64 of tick and count)
 *    of 8 rows per day of tick and class per pending tick, kept 3 half-lives once complete,
 *    each standing for n / k of its tick's class; at every tick start Platt refitted on the
 *    logits the regression gives those rows then (weights scaled to the rows kept, the prior
 *    of 10 rows towards the identity, the slope held >= 0: a young regression ranked the
 *    first complete rows backwards, a = -0.34 on completejourney2). Its log-loss fell to
 *    0.707 (Online Retail) and 0.154 (completejourney2) and Online Retail's second half rose
 *    to 0.748, but pooled AUC fell (0.712, 0.881) and at weekly ticks completejourney2's
 *    regression's second half 0.888 -> 0.867 (slopes ~0.4 against ~0.8 here, its per-tick
 *    maps shifting scores between ticks); with experts.h's sleeping rule the simulated
 *    sparse log's second half fell to 0.685 weekly. Unstratified: the same within 0.001.
 *    It also made the snapshot ~120 KB larger (rows of 24 floats). */
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
