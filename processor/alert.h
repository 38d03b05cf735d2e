/* Alert policy and the ChurnAlert record (DESIGN.md section 6; schemas/alert.avsc): which
 * scored users alert (threshold or top percent of the tick, cooldown, min examples), what
 * the alert says (risk bucket, segment and its label, recommended action, top factors,
 * holdout arm, features) and its deterministic id. Shared by `run` and `replay`. */
#ifndef CS_ALERT_H
#define CS_ALERT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "event.h"
#include "feat.h"
#include "model.h"

#define ALERT_TOP_FACTORS 3
#define ALERT_ID_LEN      32 /* hex characters */

typedef enum { ALERT_LOW = 0, ALERT_MEDIUM, ALERT_HIGH } alert_bucket_t;
typedef enum { ALERT_TREATMENT = 0, ALERT_HOLDOUT } alert_arm_t;

typedef struct alert_factor_s {
    const char *feature; /* feat_info[i].name (static) */
    double contribution; /* w_i * z_i */
} alert_factor_t;

/* One alert, a plain value (no heap). */
typedef struct alert_s {
    char alert_id[ALERT_ID_LEN + 1];
    char user_id[EV_USER_ID_MAX + 1];
    int64_t event_time_ms; /* the tick, or the triggering event's time */
    double churn_probability;
    alert_bucket_t risk_bucket;
    int segment_id; /* -1 while k-means is not seeded */
    char segment_label[160];
    char recommended_action[96];
    alert_factor_t top_factors[ALERT_TOP_FACTORS];
    int n_factors;
    int64_t model_version;
    alert_arm_t arm;
    double features[FEAT_DIM]; /* human units (feat_human_value) */
} alert_t;

/* What triggered a scoring: a tick sweep (user, tick), or a strong-signal event (its
 * partition and offset), which makes the alert id stable across re-sends and recomputation
 * after a crash. */
typedef struct alert_trigger_s {
    int is_event;
    int64_t tick_ms;   /* !is_event */
    int32_t partition; /* is_event */
    int64_t offset;    /* is_event */
} alert_trigger_t;

#endif
