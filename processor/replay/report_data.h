/* The figures of the backtest report, computed from replay's labelled rows: exact pooled
 * ROC curves, per-tick AUC / log-loss / positive rate, calibration bins and per-segment
 * counts per tick. Internal to the report module (report.c draws them). */
#ifndef CS_REPORT_DATA_H
#define CS_REPORT_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "backtest.h"
#include "model.h"
#include "replay.h"

#define ROC_MAX_POINTS 500 /* vertices per ROC polyline; the exact curve is downsampled */
#define RD_CAL_BINS    10
#define SEG_SERIES     (RP_MAX_SEGMENTS + 1) /* segments + "unassigned" */

typedef struct tick_s {
    int64_t tick_ms;
    size_t n, pos;
    double auc_model, auc_recency, logloss; /* NaN: one class / scores not probabilities */
} tick_t;

typedef struct roc_s {
    double fpr[ROC_MAX_POINTS], tpr[ROC_MAX_POINTS];
    size_t n;
    double auc; /* of the exact curve (tied scores count one half) */
} roc_t;

typedef struct rep_s {
    const rp_summary_t *sum;
    const model_t *model;
    bt_row_t *m, *r; /* in-window rows scored by the model / by recency days */
    size_t n, pos;
    tick_t *ticks;
    size_t nticks;
    int k;                   /* segments; series k gathers rows without one */
    size_t *seg_n, *seg_pos; /* [nticks * (k + 1)] */
    size_t seg_tot_n[SEG_SERIES], seg_tot_pos[SEG_SERIES];
    roc_t roc_m, roc_r;
    size_t cal_n[RD_CAL_BINS], cal_pos[RD_CAL_BINS];
    double cal_p[RD_CAL_BINS]; /* sum of predictions */
} rep_t;

/* Fills rp from rows[0..nrows) (only in_window rows count). rp->sum, rp->model and rp->k
 * must be set and everything else zero. Returns 0, -1 when out of memory; either way free
 * with rep_free. */
int rep_compute(rep_t *rp, const rp_row_t *rows, size_t nrows);
/* Frees what rep_compute allocated (not rp itself). */
void rep_free(rep_t *rp);

#endif
