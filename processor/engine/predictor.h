/* Scoring and learning on engine snapshots, shared by `run` and `replay`: a snapshot's score
 * comes from the model as it stands; labelled snapshots are buffered and learnt in
 * mini-batches at batch boundaries, so the same input and batch boundaries give the same
 * model bit for bit. */
#ifndef CS_PREDICTOR_H
#define CS_PREDICTOR_H

#include <stddef.h>

#include "feat.h"
#include "model.h"

typedef struct pred_s pred_t;

/* Borrows model and team (both must outlive the predictor; team may be NULL: it runs the
 * read-only part of learning, see model_observe_labels). Returns NULL on out of memory. */
pred_t *pred_new(model_t *model, cs_pool_t *team);
void pred_destroy(pred_t *pr);

/* Scores one snapshot: feature row x[FEAT_DIM] and the user's BTYD summary s at the scoring
 * time (ex_summary_of). Returns the published churn probability (the experts' pool); *seg
 * (if not NULL) gets the segment id (-1 before k-means is seeded); z (if not NULL, FEAT_DIM
 * floats) the standardized row, for explanations; experts (if not NULL) every expert's
 * probability. From the first tick on the pool leans on BG/NBD, which needs no labels, so
 * there is no separate cold-start rule. */
float pred_score(pred_t *pr, const float *x, const ex_summary_t *s, int *seg, float *z,
                 ex_scores_t *experts);

/* Queues a labelled snapshot (y 0 or 1) of tick tick_ms with its row and summary. Rows are
 * learnt by pred_flush(), and automatically once PRED_BUFFER_ROWS are queued. Returns 0, -1
 * on out of memory. */
int pred_label(pred_t *pr, int64_t tick_ms, const float *x, const ex_summary_t *s, int y);

/* Every tick <= through_ms has all its labels (its positives were resolved at T + H): the
 * calibration and the experts' weights refit on them (model_ticks_complete). */
void pred_ticks_complete(pred_t *pr, int64_t through_ms);
#define PRED_BUFFER_ROWS 4096

/* Learns every queued row (model_train) and empties the queue. Returns 0 or -1. */
int pred_flush(pred_t *pr);

/* The model scored and trained (borrowed at pred_new). */
model_t *pred_model(const pred_t *pr);

#endif
