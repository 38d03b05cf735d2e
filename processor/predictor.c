/* Predictor: model scoring per snapshot, label buffering and mini-batch learning. */
#include "predictor.h"

#include <stdlib.h>
#include <string.h>

struct pred_s {
    model_t *model; /* borrowed */
    float *x;       /* PRED_BUFFER_ROWS x FEAT_DIM queued rows */
    float *y;
    int64_t *tick_ms;
    size_t n;
    size_t learnt;
};

pred_t *pred_new(model_t *model)
{
    pred_t *pr = calloc(1, sizeof(*pr));
    if (!pr)
        return NULL;
    pr->model = model;
    pr->x = malloc(sizeof(float) * PRED_BUFFER_ROWS * FEAT_DIM);
    pr->y = malloc(sizeof(float) * PRED_BUFFER_ROWS);
    pr->tick_ms = malloc(sizeof(int64_t) * PRED_BUFFER_ROWS);
    if (!pr->x || !pr->y || !pr->tick_ms) {
        pred_destroy(pr);
        return NULL;
    }
    return pr;
}

void pred_destroy(pred_t *pr)
{
    if (!pr)
        return;
    free(pr->x);
    free(pr->y);
    free(pr->tick_ms);
    free(pr);
}

/* Cold start: until the model has learnt PRED_COLD_START_LABELS labels of each class, a
 * snapshot's score is the recency prior (more days since the last activity, more churn), a
 * monotone map of log1p(days) into (0, 1). Positives arrive only H after their tick, so for
 * the first H of a fresh model it has seen negatives alone and ranks no better than chance;
 * the prior keeps those first ticks' rankings (and alerts) sensible. */
static float cold_start_prior(const float *x)
{
    static int idx = -2;
    if (idx == -2)
        idx = feat_index("days_since_activity");
    double d = idx >= 0 && x[idx] > 0 ? (double)x[idx] : 0;
    return (float)(0.02 + 0.96 * d / (d + 2.0));
}

int pred_cold(const pred_t *pr)
{
    const lr_t *lr = model_logreg(pr->model);
    return lr_class_count(lr, 0) < PRED_COLD_START_LABELS ||
           lr_class_count(lr, 1) < PRED_COLD_START_LABELS;
}

float pred_score(pred_t *pr, const float *x, int *seg, float *z)
{
    float zbuf[FEAT_DIM], p;
    int s;
    model_score(pr->model, x, 1, z ? z : zbuf, &p, &s);
    if (seg)
        *seg = s;
    return pred_cold(pr) ? cold_start_prior(x) : p;
}

int pred_flush(pred_t *pr)
{
    if (pr->n == 0)
        return 0;
    /* Calibration sees each row's raw logit before the model learns from it. */
    int rc = model_observe_labels(pr->model, pr->x, pr->tick_ms, pr->y, pr->n);
    if (rc == 0)
        rc = model_train(pr->model, pr->x, pr->y, pr->n, NULL);
    pr->learnt += pr->n;
    pr->n = 0;
    return rc;
}

int pred_label(pred_t *pr, int64_t tick_ms, const float *x, int y)
{
    memcpy(pr->x + pr->n * FEAT_DIM, x, sizeof(float) * FEAT_DIM);
    pr->tick_ms[pr->n] = tick_ms;
    pr->y[pr->n++] = (float)y;
    return pr->n == PRED_BUFFER_ROWS ? pred_flush(pr) : 0;
}

void pred_ticks_complete(pred_t *pr, int64_t through_ms)
{
    model_ticks_complete(pr->model, through_ms);
}

model_t *pred_model(const pred_t *pr)
{
    return pr->model;
}

size_t pred_labels_learnt(const pred_t *pr)
{
    return pr->learnt;
}
