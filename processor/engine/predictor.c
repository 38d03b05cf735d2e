/* Predictor: model scoring per snapshot, label buffering and mini-batch learning. */
#include "predictor.h"

#include <stdlib.h>
#include <string.h>

struct pred_s {
    model_t *model;  /* borrowed */
    cs_pool_t *team; /* borrowed, may be NULL */
    float *x;        /* PRED_BUFFER_ROWS x FEAT_DIM queued rows */
    float *y;
    ex_summary_t *s; /* the rows' BTYD summaries */
    int64_t *tick_ms;
    size_t n;
    size_t learnt;
};

pred_t *pred_new(model_t *model, cs_pool_t *team)
{
    pred_t *pr = calloc(1, sizeof(*pr));
    if (!pr)
        return NULL;
    pr->model = model;
    pr->team = team;
    pr->x = malloc(sizeof(float) * PRED_BUFFER_ROWS * FEAT_DIM);
    pr->y = malloc(sizeof(float) * PRED_BUFFER_ROWS);
    pr->s = malloc(sizeof(ex_summary_t) * PRED_BUFFER_ROWS);
    pr->tick_ms = malloc(sizeof(int64_t) * PRED_BUFFER_ROWS);
    if (!pr->x || !pr->y || !pr->s || !pr->tick_ms) {
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
    free(pr->s);
    free(pr->tick_ms);
    free(pr);
}

float pred_score(pred_t *pr, const float *x, const ex_summary_t *s, int *seg, float *z,
                 ex_scores_t *experts)
{
    float zbuf[FEAT_DIM], p;
    int sg;
    model_score(pr->model, x, s, 1, z ? z : zbuf, &p, &sg, experts);
    if (seg)
        *seg = sg;
    return p;
}

int pred_flush(pred_t *pr)
{
    if (pr->n == 0)
        return 0;
    int rc = model_learn(pr->model, pr->x, pr->s, pr->tick_ms, pr->y, pr->n, pr->team);
    pr->learnt += pr->n;
    pr->n = 0;
    return rc;
}

int pred_label(pred_t *pr, int64_t tick_ms, const float *x, const ex_summary_t *s, int y)
{
    memcpy(pr->x + pr->n * FEAT_DIM, x, sizeof(float) * FEAT_DIM);
    pr->s[pr->n] = *s;
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
