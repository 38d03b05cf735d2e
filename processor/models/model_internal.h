/* The model's layout, shared by model.c (the pipeline over the parts) and model_snapshot.c
 * (its versioned bytes). Not for use outside models/. */
#ifndef CS_MODEL_INTERNAL_H
#define CS_MODEL_INTERNAL_H

#include <stdint.h>

#include "model.h"

#define MODEL_HEADER_BYTES 48 /* magic .. examples_seen */
#define MODEL_MAX_BYTES    ((uint64_t)1 << 32)

struct model_s {
    int dim;
    int k;
    uint64_t seed;
    uint64_t version;
    uint64_t examples_seen;
    sc_t *sc;
    km_t *km;
    lr_t *lr;
    pm_t *pm;
    cal_t *cal;
    ex_t *ex;
    /* Balanced class weights for the regression, from the churn rate of complete ticks
     * (ex_base_rate), not from the running label counts: those lack the positives of the
     * last H (they arrive at T + H), so early on they weighed the few positives by the
     * thousand and AdaGrad's accumulators never recovered (completejourney2, daily ticks:
     * the regression's second-half AUC 0.54; 0.87 with complete-tick weights). Set by
     * model_new from params and by model_set_class_balance; not in the snapshot. */
    int balanced;
    /* Segment names (model_segment_name) of segment version names_version; k entries. */
    uint64_t names_version;
    struct seg_name_s {
        uint8_t valid, arch;
        char label[MODEL_SEG_NAME_MAX];
    } * names;
    mj_t *rec; /* model_record_to: the journal fed by the learning calls; NULL = none */
};

/* The recorder's appends (model_journal.c), one per learning call. */
void mj_put_day(mj_t *j, int64_t day);
void mj_put_fit(mj_t *j, const ex_t *ex, int ok);
/* The shapes' parameters after ex_refit refitted them (experts.h: ex_shapes_fit_tick_ms). */
void mj_put_shapes(mj_t *j, const ex_t *ex);
void mj_put_tick(mj_t *j, uint8_t code, int64_t tick_ms);
void mj_put_pm(mj_t *j, double p, int y);
void mj_put_learn(mj_t *j, int dim, const float *x, const ex_summary_t *s, const int64_t *tick_ms,
                  const float *y, size_t n);
void mj_put_name(mj_t *j, uint64_t segment_version, int seg, int arch, const char *label);
#define MJ_DAY      1
#define MJ_FIT      2
#define MJ_TICK     3
#define MJ_PM       4
#define MJ_LEARN    5
#define MJ_COMPLETE 6
#define MJ_NAME     7
#define MJ_SHAPES   8

#endif
