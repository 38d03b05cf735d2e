/* Online logistic regression on standardized vectors: mini-batch SGD with per-coordinate
 * AdaGrad steps, L2 on the weights (not the bias) and optional balanced class weights from
 * running class counts. Predictions and gradients are plain loops in a fixed order, so the
 * same inputs give the same bits on every CPU. */
#ifndef CS_LOGREG_H
#define CS_LOGREG_H

#include <stddef.h>
#include <stdint.h>

struct mw_buf_s;
struct mw_reader_s;

typedef struct lr_s lr_t;

typedef struct lr_params_s {
    double learning_rate; /* AdaGrad base step (> 0); default 0.1 */
    /* L2 per example: the objective is mean weighted log-loss + l2/2 |w|^2, i.e. sklearn's
     * LogisticRegression with C = 1 / (l2 * n_samples). Default 1e-4. */
    double l2;
    int class_weight_balanced; /* 1: weight class c by (n0 + n1) / (2 n_c), running counts */
    /* Rows per AdaGrad step (>= 1); default 32. Long batches are cut so a tick's thousands
     * of labels make many steps, not one. */
    int minibatch_rows;
} lr_params_t;

/* Fills the defaults above. */
void lr_params_default(lr_params_t *p);

/* New model with zero weights for `dim` (>= 1) features; params NULL = defaults. Returns
 * NULL on a bad parameter or out of memory. Free with lr_destroy(). */
lr_t *lr_new(int dim, const lr_params_t *params);
/* Frees; lr_destroy(NULL) is a no-op. */
void lr_destroy(lr_t *lr);

/* p[i] = sigmoid(w . z_i + b) for n rows of z[n*dim]. p must not alias z. */
void lr_predict(const lr_t *lr, const float *z, size_t n, float *p);
/* Raw logits w.z + bias of n standardized rows into logit[n] (caller's buffer). */
void lr_logit(const lr_t *lr, const float *z, size_t n, float *logit);
/* Learns from n labelled rows in order, in steps of minibatch_rows: y[i] in [0, 1] (>= 0.5
 * counts as the positive class for class weights), sample_weight NULL = all 1. Gradient
 * X^T (p - y). Returns 0, or -1 when out of memory (nothing learned). */
int lr_update(lr_t *lr, const float *z, const float *y, size_t n, const float *sample_weight);
/* out[i] = w_i * z_i for one row: the additive parts of the logit (alerts' top factors). */
void lr_contributions(const lr_t *lr, const float *z, float *out);

/* Sigmoid that neither overflows nor loses the tail: exp of a non-positive argument only. */
double lr_sigmoid(double logit);

int lr_dim(const lr_t *lr);
double lr_weight(const lr_t *lr, int i);
double lr_bias(const lr_t *lr);
/* Labels seen per class (0 or 1), unweighted. */
double lr_class_count(const lr_t *lr, int cls);
/* AdaGrad steps taken. */
uint64_t lr_steps(const lr_t *lr);

/* Snapshot section (model.c); see sc_encode. */
void lr_encode(const lr_t *lr, struct mw_buf_s *b);
lr_t *lr_decode(struct mw_reader_s *r, char *errstr, size_t errstr_size);

#endif
