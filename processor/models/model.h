/* The churn model snapshot: standardizer, k-means segments, logistic regression, the
 * experts and their weighting (experts.h: recency, BG/NBD, the calibrated regression), and
 * the prequential metrics, with a version counter and the number of examples learnt from.
 * model_encode/model_decode give the versioned little-endian bytes stored in Redis
 * (`cs:model`) and in `replay --model-out` files. */
#ifndef CS_MODEL_H
#define CS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "kmeans.h"
#include "calibrator.h"
#include "experts.h"
#include "logreg.h"
#include "model_journal.h"
#include "pmetrics.h"
#include "pool.h"
#include "scaler.h"

#define MODEL_FORMAT_VERSION                                                                       \
    6 /* 3: experts section (BG/NBD fit, Hedge weights); 4: graded                                 \
       * weeks; 5: open days; 6: BTYD shapes (formats 4 and 5 still load) */
#define MODEL_FORMAT_OLDEST 4
#define MODEL_MAGIC         "CSMD"

typedef struct model_s model_t;

typedef struct model_params_s {
    double scaler_half_life; /* examples; 0 = plain running moments (default) */
    double kmeans_half_life; /* events; 0 = no forgetting; default 100000 */
    double reassign_ratio;   /* starved-centre threshold; default 0.01 */
    lr_params_t lr;          /* default lr_params_default() */
    /* Metrics histogram: 2^14 bins by default, a compromise between AUC resolution and the
     * size of the snapshot committed with every batch (sparse, at most ~5 bytes per bin). */
    int metrics_bins_log2;
    /* Calibrator (calibrator.h): decay of completed ticks' weight, ms; default 28 days. */
    int64_t calibration_half_life_ms;
    /* The label horizon H in days (BG/NBD's P(no activity in H)); default 90. */
    double horizon_days;
} model_params_t;

/* Fills the defaults above. */
void model_params_default(model_params_t *p);

/* New untrained model for `dim` features and `k` segments; params NULL = defaults. Returns
 * NULL with a message in errstr on a bad argument or out of memory. Free with
 * model_destroy(). */
model_t *model_new(int dim, int k, uint64_t seed, const model_params_t *params, char *errstr,
                   size_t errstr_size);
/* Frees the model and its parts; model_destroy(NULL) is a no-op. */
void model_destroy(model_t *m);

/* The parts, owned by the model (never free them); valid until model_destroy. Mutating a
 * part directly does not bump the version: use model_train, or call model_touch. */
sc_t *model_scaler(const model_t *m);
km_t *model_kmeans(const model_t *m);
lr_t *model_logreg(const model_t *m);
pm_t *model_metrics(const model_t *m);

int model_dim(const model_t *m);
int model_k(const model_t *m);
uint64_t model_seed(const model_t *m);
/* Bumped by every model_train / model_touch; 0 for a new model. */
uint64_t model_version(const model_t *m);
/* Labelled rows learnt from (model_train's n, summed). */
uint64_t model_examples_seen(const model_t *m);
/* Records an update made through the parts: version += 1, examples_seen += n. */
void model_touch(model_t *m, uint64_t n);

/* Scores n rows x[n*dim] with their BTYD summaries s[n] (ex_summary_of at the scoring time):
 * z[n*dim] (caller's buffer) receives the standardized rows, p[n] the published churn
 * probabilities (the experts' pool, experts.h; clamped to [1e-6, 1 - 1e-6]), seg[n] (if not
 * NULL) the segment ids (-1 while k-means is not seeded) and experts[n] (if not NULL) every
 * expert's probability. s = NULL scores the calibrated regression alone (tools and tests
 * without user state; experts is then not written). z may alias x. Nothing is learnt. */
void model_score(const model_t *m, const float *x, const ex_summary_t *s, size_t n, float *z,
                 float *p, int *seg, ex_scores_t *experts);

/* Records the labelled rows x[n*dim] (summaries s[n]) of ticks tick_ms[n] before they are
 * learnt: the calibration (calibrator.h) gets their raw logits, the experts' weighting
 * their losses. Call before model_train on the same rows. The rows' read-only part (logits,
 * frozen grades) runs on team (borrowed, may be NULL); the result does not depend on it.
 * Returns 0 or -1. */
int model_observe_labels(model_t *m, const float *x, const ex_summary_t *s, const int64_t *tick_ms,
                         const float *y, size_t n, cs_pool_t *team);
/* Every tick <= through_ms has all its labels: refit the calibration and the weights. */
void model_ticks_complete(model_t *m, int64_t through_ms);
/* Explanation of one scored row, the alerts' top factors: out[dim] = each feature's part of
 * the published score's logit against the population's typical user (the standardizer's
 * means: z = 0), in log-odds:
 *  - the regression's w_i z_i of the standardized row z (model_score's z), times its
 *    calibration's slope and its pool weight (experts.h);
 *  - with the user's summary s (NULL: none) and dim = FEAT_DIM, the recency and BTYD experts'
 *    parts (ex_explain) against the typical user's summary (each of days since activity,
 *    lifetime active days and tenure at the back-transformed mean of its log feature),
 *    added to those three features.
 * Before the standardizer has seen a row there is no typical user: the regression's parts
 * only. */
void model_explain(const model_t *m, const float *z, const ex_summary_t *s, float *out);
/* A segment's label from its centre's strongest z-scores (km_label); names[dim] may be
 * NULL. 0, or -1 for a segment that does not exist (yet). */
int model_segment_label(const model_t *m, int seg, const char *const *names, char *buf, size_t cap);

/* The centre of segment seg in standardized units (each coordinate a z-score of the model's
 * input feature) into out[dim] (caller-owned): what the segment's business name is derived
 * from. 0, or -1 for a segment that does not exist (yet). */
int model_segment_centre(const model_t *m, int seg, double *out);
/* k-means' segment version: 0 before seeding, bumped whenever a centre is reseeded (its id
 * then means something else). Labels derived from the centres are cached per version. */
uint64_t model_segment_version(const model_t *m);

/* Segment names, frozen per segment version: the name a segment was first given under the
 * current segment version (the alert policy's archetype and label), kept in the snapshot and
 * committed with the batch, so a restarted daemon names every segment as an uninterrupted
 * one would (a name recomputed from centres that moved since would differ). */
#define MODEL_SEG_NAME_MAX 256
/* 1 and *arch, label (NUL-terminated, truncated to cap; label may be NULL for the archetype
 * alone) when segment seg has a name under the current segment version; 0 when not (or seg
 * out of range). */
int model_segment_name(const model_t *m, int seg, int *arch, char *label, size_t cap);
/* Records seg's name for the current segment version (names of an older version are
 * dropped first); bumps the version so the batch commits it. 0, -1 when seg is out of range
 * or arch outside 0..255. */
int model_set_segment_name(model_t *m, int seg, int arch, const char *label);

/* Tick tick_ms's sweep starts: freezes what each expert would say during it, so its labels
 * are graded as scored however late they arrive (experts.h). 0, -1 on out of memory. */
int model_tick_start(model_t *m, int64_t tick_ms);
/* Refits BG/NBD on the population summaries of tick_ms (experts.h). 0, or -1 when the
 * table cannot identify it (the previous fit stays). Bumps the version. */
int model_refit_bgnbd(model_t *m, const bgnbd_table_t *table, int64_t tick_ms);
/* The experts (owned by the model). */
ex_t *model_experts(const model_t *m);
/* The regression's calibration p = sigmoid(a logit + b) and the decayed label weight behind it
 * (calibrator.h). */
void model_calibration(const model_t *m, double *a, double *b, double *weight);
/* Learns from n labelled rows, in this order: scaler moments, then k-means and logistic
 * regression on the rows standardized with the updated scaler. y[i] in [0, 1]; sample_weight
 * NULL = all 1. Bumps the version. Returns 0, -1 when out of memory. */
int model_train(model_t *m, const float *x, const float *y, size_t n, const float *sample_weight);

/* What the predictor learns a labelled mini-batch with: model_observe_labels, then
 * model_train (no sample weights) on the same rows. Returns 0 or -1. */
int model_learn(model_t *m, const float *x, const ex_summary_t *s, const int64_t *tick_ms,
                const float *y, size_t n, cs_pool_t *team);
/* An activity event's UTC day for the experts' calendar of open days (ex_mark_day). */
int model_mark_day(model_t *m, int64_t day);
/* One prequential (score, label) pair into the model's metrics (pm_add_one). */
void model_prequential(model_t *m, double p, int y);

/* Journals (model_journal.h): from now on every learning call above (model_learn,
 * model_mark_day, model_prequential, model_tick_start, model_refit_bgnbd,
 * model_ticks_complete, model_set_segment_name) is also appended to j; NULL stops. j is
 * borrowed. Calls made directly on the parts (model_scaler() etc.) are not recorded. */
void model_record_to(model_t *m, mj_t *j);
/* Replays a journal's bytes onto m (rules in model_journal.h). The recorder is not fed.
 * Returns 0, or -1 with a message on corrupt bytes (m may then hold part of the journal:
 * discard it) or out of memory. Never reads past len. */
int model_replay(model_t *m, const uint8_t *buf, size_t len, char *errstr, size_t errstr_size);
/* Exchanges the contents of a and b (both valid models): a model that pipelines borrow
 * takes another's state in place. Settings not in the snapshot (class balance, the experts'
 * mode, calendar switch and horizon) travel with the contents: set them again after. Each
 * keeps its recorder (model_record_to). */
void model_swap(model_t *a, model_t *b);

/* Balanced class weights for the regression on (1) or off (0): each class then carries half
 * the weight at the churn rate of the complete ticks (no weighting before the first). The
 * configuration decides (model.class_weight); not part of the snapshot. */
void model_set_class_balance(model_t *m, int balanced);

/* Serializes the model: *buf is malloc'd (the caller frees it), *len its size. The bytes
 * are a pure function of the model state, so equal models give equal bytes. Returns 0, -1
 * when out of memory. Layout: "CSMD", u32 format version, u64 total length, u32 dim, u32 k,
 * u64 seed, u64 version, u64 examples_seen, the scaler, k-means, logreg and metrics
 * sections, u32 CRC-32 of everything before it; all little-endian. */
int model_encode(const model_t *m, uint8_t **buf, size_t *len);
/* Parses model_encode's bytes into a new model (free with model_destroy). Refuses, with a
 * message naming the problem, a wrong magic, an unknown format version, a truncated or
 * over-long buffer, a checksum mismatch and any invalid field. Never reads past len. */
model_t *model_decode(const uint8_t *buf, size_t len, char *errstr, size_t errstr_size);

/* Writes the snapshot to `path` atomically (a temp file in the same directory, fsync,
 * rename), so a reader sees the old or the new model, never half of one. 0 / -1. */
int model_save_file(const model_t *m, const char *path, char *errstr, size_t errstr_size);
/* Reads and decodes a snapshot file; errors are prefixed with the path. */
model_t *model_load_file(const char *path, char *errstr, size_t errstr_size);

#endif
