/* The experts' layout, shared by experts.c (scoring, fitting, Hedge) and experts_wire.c
 * (the snapshot section). Not for use outside models/. */
#ifndef CS_EXPERTS_INTERNAL_H
#define CS_EXPERTS_INTERNAL_H

#include "experts.h"

typedef struct ex_tick_s {
    int64_t tick_ms;
    double n;          /* labelled snapshots */
    double pos;        /* of which positives */
    double loss[EX_N]; /* summed log-loss */
    double shape_n;    /* labelled snapshots graded by every shape (frozen shapes known) */
    double shape_loss[EX_SHAPES];
} ex_tick_t;

/* The scorers of one tick, frozen at its start (experts.h). */
typedef struct ex_frozen_s {
    int64_t tick_ms;
    bgnbd_params_t bg;
    double cal_a, cal_b;
    double *coef; /* dim + 1: weights on the raw row, then the bias; owned */
    /* Every shape's parameters ([0] = bg) and the shape the expert spoke with at the tick;
     * shapes_known = 0 for ticks frozen by a snapshot older than format 6 (not graded by
     * shape). */
    bgnbd_params_t shape_bg[EX_SHAPES];
    int shape, shapes_known;
} ex_frozen_t;

struct ex_s {
    double horizon_days;
    ex_mode_t mode;
    int open_days_on; /* summaries in open days (1, default) or calendar days */
    od_t days;        /* the calendar of open days (open_days.h) */
    bgnbd_params_t bg;
    int64_t fit_tick_ms; /* INT64_MIN: never fitted */
    double fit_users, fit_loglik;
    int fit_iterations;
    /* Hedge */
    double loss[EX_N];        /* discounted sums of per-tick mean log-losses */
    double loss_weight;       /* the same discounted sum of the ticks' scales (for means) */
    double labels, positives; /* the same discounted sums of complete ticks' label counts */
    uint64_t ticks_folded;    /* complete ticks measured */
    double graded_weeks;      /* the same ticks' scales, undiscounted: weeks of complete ticks */
    int64_t last_folded_ms;   /* INT64_MIN: none */
    ex_tick_t *pending;       /* incomplete ticks, ascending tick_ms */
    size_t npending, cap;
    int dim;             /* of the frozen regressions; 0 until the first freeze */
    ex_frozen_t *frozen; /* ascending tick_ms */
    size_t nfrozen, capfrozen;
    double w[EX_N]; /* weights_now(): refreshed whenever losses or the mode change */
    /* Shapes (experts.h): parameters of k = ex_shape_k[s] for s >= 1 ([0] unused: bg),
     * their last fit's tick (INT64_MIN: never), the discounted per-tick mean log-losses, the
     * weeks of complete ticks graded by shape (undiscounted) and the shape speaking now. */
    bgnbd_params_t shape_bg[EX_SHAPES];
    int64_t shape_fit_tick_ms;
    double shape_loss[EX_SHAPES];
    double shape_weeks;
    int shape;
    int shapes_on;              /* ex_set_shapes */
    bgnbd_table_t *shape_table; /* the thinned table the shapes are fitted on (owned) */
};

/* Recomputes the cached weights (every change of losses, fold count or mode calls it). */
void ex_refresh_weights(ex_t *ex);
/* The pending slot of tick_ms, inserted in order; NULL on out of memory or when full. */
ex_tick_t *ex_pending_slot(ex_t *ex, int64_t tick_ms);
/* Appends a frozen tick (ascending); NULL on out of memory or when full. */
ex_frozen_t *ex_frozen_push(ex_t *ex, int64_t tick_ms);

#endif
