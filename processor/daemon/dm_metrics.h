/* The daemon's counters, histogram and gauges, and their Prometheus text rendering (format
 * 0.0.4). The main thread writes, the HTTP thread reads: scalars are C11 atomics, the
 * per-partition lag table sits behind a mutex. */
#ifndef CS_DM_METRICS_H
#define CS_DM_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <pthread.h>

#include "codec.h"

#define DM_HIST_BUCKETS   12 /* batch_seconds upper bounds, +Inf added when rendered */
#define DM_LAG_PARTITIONS 256
#define DM_METRICS_PHASES 5   /* daemon.h's DM_PHASE_* (decode, apply, commit, report), collect */
#define DM_OUTCOME_CELLS  512 /* arm x kind x action x outcome: 2 x 2 x (9 + alert.actions) x 3 */

typedef struct dm_metrics_s {
    atomic_uint_fast64_t events_in;                     /* messages processed and accepted */
    atomic_uint_fast64_t events_rejected[EV_ERR_COUNT]; /* by ev_reason_t */
    atomic_uint_fast64_t dlq_produced, dlq_failed;
    atomic_uint_fast64_t alerts[2][3]; /* [arm][bucket], produced (acknowledged) alerts */
    atomic_uint_fast64_t alerts_failed;
    atomic_uint_fast64_t batches, batch_failures, batches_stale;
    atomic_uint_fast64_t redis_round_trips;
    /* microseconds: per phase of committed batches (DM_METRICS_PHASES names, the handler's
     * phases then collect), and blocked on Redis replies */
    atomic_uint_fast64_t phase_us[DM_METRICS_PHASES], redis_wait_us;
    /* shared model (dm_batch_result_t): cumulative, as the handler reports them */
    atomic_uint_fast64_t merges_ok, merges_failed, merged_entries, merges_held_back;
    atomic_uint_fast64_t hist_counts[DM_HIST_BUCKETS + 1]; /* non-cumulative; last = +Inf */
    atomic_uint_fast64_t hist_sum_us;
    atomic_int handler_healthy; /* 1 while the last store call succeeded */
    atomic_int kafka_healthy;   /* 0 while the consumer has no assignment for too long */
    atomic_int assigned_partitions;
    atomic_int batch_target; /* messages the next batch may hold (batch.catchup_factor) */
    atomic_int consumer_fatal;
    atomic_int_fast64_t watermark_ms; /* INT64_MIN = unknown */
    /* The model: labels learnt with a prequential score, version, AUC and log-loss (doubles
     * stored as their bits, so the HTTP thread reads them atomically). */
    atomic_uint_fast64_t model_labels, model_version, model_auc_bits, model_logloss_bits;
    /* Per expert (recency, bgnbd, logreg): weight and graded log-loss, as double bits;
     * experts_known = 0 until a batch reported them. */
    atomic_uint_fast64_t expert_weight_bits[3], expert_logloss_bits[3];
    atomic_int btyd_shape_k; /* the BTYD expert's Erlang shape (experts.h) */
    atomic_int experts_known;

    atomic_int stopping;

    /* Alert outcomes decided in committed batches since start (outcome.h), behind lock:
     * one cell per (arm, kind, action, outcome). Rendered as outcomes_total and, from the
     * same counts, the uplift gauges. */
    size_t n_outcomes;
    struct dm_outcome_cell_s {
        int arm; /* 0 treatment, 1 holdout */
        char kind[16], action[96], outcome[16];
        uint64_t count;
    } outcome_cells[DM_OUTCOME_CELLS];
    uint64_t outcome_cells_dropped; /* cells beyond DM_OUTCOME_CELLS (never with the defaults) */

    pthread_mutex_t lock;    /* guards the lag table and health_detail */
    char health_detail[256]; /* why the handler is failing (its last error) */
    char kafka_detail[512];  /* why the consumer is not consuming */
    size_t n_lag;
    int32_t lag_partition[DM_LAG_PARTITIONS];
    int64_t lag_messages[DM_LAG_PARTITIONS];
} dm_metrics_t;

/* Zeroes every metric; handler_healthy and kafka_healthy start at 1, watermark unknown. */
void dm_metrics_init(dm_metrics_t *m);
void dm_metrics_destroy(dm_metrics_t *m);

/* One processed batch of `seconds`. */
void dm_metrics_observe_batch(dm_metrics_t *m, double seconds);

/* The model's prequential metrics after a batch. */
void dm_metrics_set_model(dm_metrics_t *m, uint64_t labels, uint64_t version, double auc,
                          double logloss);

/* The experts' weights and graded log-losses after a batch (3 each: recency, bgnbd,
 * logreg), and the BTYD expert's shape k. */
void dm_metrics_set_experts(dm_metrics_t *m, const double weight[3], const double logloss[3],
                            int shape_k);

/* Counts n outcomes of one (arm, kind, action, outcome), e.g. (0, "lapsed", "win-back
 * campaign", "retained"): strings are copied (truncated to the cell's fields). */
void dm_metrics_add_outcome(dm_metrics_t *m, int arm, const char *kind, const char *action,
                            const char *outcome, uint64_t n);

/* Replaces the lag table (partition -> high watermark - next offset to process). */
void dm_metrics_set_lag(dm_metrics_t *m, const int32_t *partitions, const int64_t *lag, size_t n);

/* Records the handler's health and, when failing, why (shown by /healthz). */
void dm_metrics_set_health(dm_metrics_t *m, int healthy, const char *detail);
/* Records whether the consumer got its assignment and, when not, why (shown by /healthz). */
void dm_metrics_set_kafka(dm_metrics_t *m, int healthy, const char *detail);
/* Writes the /healthz verdict into buf; returns the HTTP status (200 or 503). */
int dm_metrics_health(dm_metrics_t *m, char *buf, size_t size);

/* Renders every metric; returns a malloc'd NUL-terminated string (caller frees) or NULL. */
char *dm_metrics_render(dm_metrics_t *m, int64_t now_ms);

/* Upper bounds of the batch_seconds buckets (DM_HIST_BUCKETS of them). */
extern const double dm_hist_bounds[DM_HIST_BUCKETS];

#endif
