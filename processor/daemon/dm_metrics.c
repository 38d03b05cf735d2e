/* Daemon metrics: atomic counters written by the main thread, rendered in the Prometheus
 * text format (0.0.4) on the HTTP thread. Every series is registered from the start, so a
 * scrape shows zeros rather than missing series (alerts_total stays 0 until a handler
 * reports alerts: that is the true count, not a placeholder value). */
#include "dm_metrics.h"
#include "numfmt.h"

#include <math.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const double dm_hist_bounds[DM_HIST_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                0.1,   0.25,   0.5,   1.0,  2.5,   10.0};

static const char *const arm_names[2] = {"treatment", "holdout"};
static const char *const bucket_names[3] = {"low", "medium", "high"};

void dm_metrics_init(dm_metrics_t *m)
{
    memset(m, 0, sizeof(*m));
    atomic_store(&m->handler_healthy, 1);
    atomic_store(&m->kafka_healthy, 1);
    atomic_store(&m->watermark_ms, INT64_MIN);
    pthread_mutex_init(&m->lock, NULL);
}

void dm_metrics_destroy(dm_metrics_t *m)
{
    pthread_mutex_destroy(&m->lock);
}

static uint64_t bits_of(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return u;
}

static double double_of(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

void dm_metrics_add_outcome(dm_metrics_t *m, int arm, const char *kind, const char *action,
                            const char *outcome, uint64_t n)
{
    pthread_mutex_lock(&m->lock);
    struct dm_outcome_cell_s *c = NULL;
    for (size_t i = 0; i < m->n_outcomes && !c; i++) {
        struct dm_outcome_cell_s *x = &m->outcome_cells[i];
        if (x->arm == arm && !strcmp(x->kind, kind) && !strcmp(x->action, action) &&
            !strcmp(x->outcome, outcome))
            c = x;
    }
    if (!c && m->n_outcomes < DM_OUTCOME_CELLS) {
        c = &m->outcome_cells[m->n_outcomes++];
        c->arm = arm ? 1 : 0;
        snprintf(c->kind, sizeof c->kind, "%s", kind);
        snprintf(c->action, sizeof c->action, "%s", action);
        snprintf(c->outcome, sizeof c->outcome, "%s", outcome);
        c->count = 0;
    }
    if (c)
        c->count += n;
    else
        m->outcome_cells_dropped += n;
    pthread_mutex_unlock(&m->lock);
}

void dm_metrics_set_model(dm_metrics_t *m, uint64_t labels, uint64_t version, double auc,
                          double logloss)
{
    atomic_store(&m->model_labels, labels);
    atomic_store(&m->model_version, version);
    atomic_store(&m->model_auc_bits, bits_of(auc));
    atomic_store(&m->model_logloss_bits, bits_of(logloss));
}

void dm_metrics_set_experts(dm_metrics_t *m, const double weight[3], const double logloss[3],
                            int shape_k)
{
    for (int i = 0; i < 3; i++) {
        atomic_store(&m->expert_weight_bits[i], bits_of(weight[i]));
        atomic_store(&m->expert_logloss_bits[i], bits_of(logloss[i]));
    }
    atomic_store(&m->btyd_shape_k, shape_k);
    atomic_store(&m->experts_known, 1);
}

void dm_metrics_observe_batch(dm_metrics_t *m, double seconds)
{
    size_t b = 0;
    while (b < DM_HIST_BUCKETS && seconds > dm_hist_bounds[b])
        b++;
    atomic_fetch_add(&m->hist_counts[b], 1);
    atomic_fetch_add(&m->hist_sum_us, (uint_fast64_t)(seconds * 1e6 + 0.5));
}

void dm_metrics_set_lag(dm_metrics_t *m, const int32_t *partitions, const int64_t *lag, size_t n)
{
    if (n > DM_LAG_PARTITIONS)
        n = DM_LAG_PARTITIONS;
    pthread_mutex_lock(&m->lock);
    m->n_lag = n;
    memcpy(m->lag_partition, partitions, n * sizeof(*partitions));
    memcpy(m->lag_messages, lag, n * sizeof(*lag));
    pthread_mutex_unlock(&m->lock);
}

void dm_metrics_set_health(dm_metrics_t *m, int healthy, const char *detail)
{
    pthread_mutex_lock(&m->lock);
    snprintf(m->health_detail, sizeof(m->health_detail), "%s", detail ? detail : "");
    atomic_store(&m->handler_healthy, healthy ? 1 : 0);
    pthread_mutex_unlock(&m->lock);
}

void dm_metrics_set_kafka(dm_metrics_t *m, int healthy, const char *detail)
{
    pthread_mutex_lock(&m->lock);
    snprintf(m->kafka_detail, sizeof(m->kafka_detail), "%s", detail ? detail : "");
    atomic_store(&m->kafka_healthy, healthy ? 1 : 0);
    pthread_mutex_unlock(&m->lock);
}

int dm_metrics_health(dm_metrics_t *m, char *buf, size_t size)
{
    int status = 200;
    pthread_mutex_lock(&m->lock);
    if (atomic_load(&m->consumer_fatal)) {
        snprintf(buf, size, "fail: fatal Kafka error\n");
        status = 503;
    } else if (!atomic_load(&m->kafka_healthy)) {
        snprintf(buf, size, "fail: kafka: %s\n", m->kafka_detail);
        status = 503;
    } else if (!atomic_load(&m->handler_healthy)) {
        snprintf(buf, size, "fail: handler: %s\n", m->health_detail);
        status = 503;
    } else if (atomic_load(&m->stopping)) {
        snprintf(buf, size, "fail: shutting down\n");
        status = 503;
    } else {
        snprintf(buf, size, "ok: %d partitions assigned%s\n", atomic_load(&m->assigned_partitions),
                 atomic_load(&m->assigned_partitions) ? "" : " (waiting for an assignment)");
    }
    pthread_mutex_unlock(&m->lock);
    return status;
}

/* A growing text buffer; on out of memory it latches failure and ignores later writes. */
typedef struct sbuf_s {
    char *p;
    size_t len, cap;
    int failed;
} sbuf_t;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

static void counter(sbuf_t *b, const char *name, const char *help, uint64_t v)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help, name, name, v);
}

/* One sample line: `series value`, the value as Prometheus spells it (NaN, +Inf, -Inf;
 * printf would write nan) and otherwise in the shortest form that reads back exactly. */
static void sample(sbuf_t *b, const char *series, double v)
{
    if (isnan(v))
        sb_printf(b, "%s NaN\n", series);
    else if (isinf(v))
        sb_printf(b, "%s %s\n", series, v > 0 ? "+Inf" : "-Inf");
    else {
        char num[40];
        nf_shortest(num, sizeof num, v);
        sb_printf(b, "%s %s\n", series, num);
    }
}

/* One sample of a series labelled by expert. */
static void expert_sample(sbuf_t *b, const char *name, const char *expert, double v)
{
    char series[128];
    snprintf(series, sizeof series, "%s{expert=\"%s\"}", name, expert);
    sample(b, series, v);
}

static void gauge(sbuf_t *b, const char *name, const char *help, double v)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
    sample(b, name, v);
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void label_value(char *out, size_t size, const char *v)
{
    size_t o = 0;
    for (; *v && o + 3 < size; v++) {
        if (*v == '\\' || *v == '"') {
            out[o++] = '\\';
            out[o++] = *v;
        } else if (*v == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *v;
        }
    }
    out[o] = '\0';
}

/* outcomes_total per cell, then the uplift of all outcomes so far and of each kind
 * (treatment minus holdout retained share, 95% Wald interval; NaN while an arm has none). */
static void render_outcomes(sbuf_t *b, dm_metrics_t *m)
{
    static const char *const kinds[3] = {"all", "at_risk", "lapsed"};
    uint64_t n[3][2] = {{0}}, r[3][2] = {{0}};
    sb_printf(b, "# HELP churnstream_alert_outcomes_total Alert outcomes decided since start: "
                 "retained (active again within outcome.window), not_retained, repeat (an alert "
                 "while the user's previous outcome was open; not counted).\n"
                 "# TYPE churnstream_alert_outcomes_total counter\n");
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_outcomes; i++) {
        const struct dm_outcome_cell_s *c = &m->outcome_cells[i];
        char action[2 * sizeof c->action];
        label_value(action, sizeof action, c->action);
        sb_printf(b,
                  "churnstream_alert_outcomes_total{arm=\"%s\",kind=\"%s\",action=\"%s\","
                  "outcome=\"%s\"} %" PRIu64 "\n",
                  arm_names[c->arm], c->kind, action, c->outcome, c->count);
        int decided = !strcmp(c->outcome, "retained") || !strcmp(c->outcome, "not_retained");
        for (int k = 0; k < 3 && decided; k++) {
            if (k > 0 && strcmp(c->kind, kinds[k]) != 0)
                continue;
            n[k][c->arm] += c->count;
            if (!strcmp(c->outcome, "retained"))
                r[k][c->arm] += c->count;
        }
    }
    pthread_mutex_unlock(&m->lock);
    static const char *const series[3] = {"churnstream_alert_uplift", "churnstream_alert_uplift_lo",
                                          "churnstream_alert_uplift_hi"};
    static const char *const help[3] = {
        "Treatment minus holdout retained share of alert outcomes decided since start.",
        "Lower end of the uplift's 95% interval (normal approximation, unpooled).",
        "Upper end of the uplift's 95% interval."};
    for (int s = 0; s < 3; s++) {
        sb_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", series[s], help[s], series[s]);
        for (int k = 0; k < 3; k++) {
            double v = NAN;
            if (n[k][0] && n[k][1]) {
                double p1 = (double)r[k][0] / (double)n[k][0];
                double p0 = (double)r[k][1] / (double)n[k][1];
                double se = sqrt(p1 * (1 - p1) / (double)n[k][0] + p0 * (1 - p0) / (double)n[k][1]);
                v = p1 - p0 + (s == 0 ? 0 : s == 1 ? -1.959964 * se : 1.959964 * se);
            }
            char name[96];
            snprintf(name, sizeof name, "%s{kind=\"%s\"}", series[s], kinds[k]);
            sample(b, name, v);
        }
    }
}

/* The model's prequential figures and the experts' weights and losses. */
static void render_model(sbuf_t *bp, dm_metrics_t *m)
{
    uint64_t labels = atomic_load(&m->model_labels);
    counter(bp, "churnstream_model_labels_total",
            "Labelled snapshots scored before learning (prequential).", labels);
    sb_printf(bp,
              "# HELP churnstream_model_merges_total Merges of the shared model's journals "
              "by this instance (model.sync_interval > 0).\n"
              "# TYPE churnstream_model_merges_total counter\n"
              "churnstream_model_merges_total{result=\"ok\"} %" PRIu64 "\n"
              "churnstream_model_merges_total{result=\"failed\"} %" PRIu64 "\n",
              (uint64_t)atomic_load(&m->merges_ok), (uint64_t)atomic_load(&m->merges_failed));
    counter(bp, "churnstream_model_journal_entries_merged_total",
            "Journal entries (one per partition and batch, any instance's) this instance merged "
            "into the shared model.",
            atomic_load(&m->merged_entries));
    counter(bp, "churnstream_model_merges_held_back_total",
            "Merged models not taken: they held labels more than one tick past this instance's "
            "watermark (it lags the group in event time; it learns locally meanwhile).",
            atomic_load(&m->merges_held_back));
    gauge(bp, "churnstream_model_version", "Model snapshot version.",
          (double)atomic_load(&m->model_version));
    gauge(bp, "churnstream_model_auc", "Prequential ROC AUC of the model (NaN until labels).",
          labels ? double_of(atomic_load(&m->model_auc_bits)) : NAN);
    gauge(bp, "churnstream_model_logloss", "Prequential log-loss of the model (NaN until labels).",
          labels ? double_of(atomic_load(&m->model_logloss_bits)) : NAN);
    static const char *const expert_names[3] = {"recency", "bgnbd", "logreg"};
    int ek = atomic_load(&m->experts_known);
    sb_printf(bp, "# HELP churnstream_expert_weight Weight of each expert in the churn score "
                  "(NaN until known).\n# TYPE churnstream_expert_weight gauge\n");
    for (int i = 0; i < 3; i++)
        expert_sample(bp, "churnstream_expert_weight", expert_names[i],
                      ek ? double_of(atomic_load(&m->expert_weight_bits[i])) : NAN);
    sb_printf(bp, "# HELP churnstream_expert_logloss Each expert's log-loss per snapshot as "
                  "scored, discounted mean over complete ticks (NaN until one).\n"
                  "# TYPE churnstream_expert_logloss gauge\n");
    for (int i = 0; i < 3; i++)
        expert_sample(bp, "churnstream_expert_logloss", expert_names[i],
                      ek ? double_of(atomic_load(&m->expert_logloss_bits[i])) : NAN);
    gauge(bp, "churnstream_btyd_shape_k",
          "Erlang shape k the BTYD expert speaks with (1: BG/NBD; BG/CNBD-k chosen by labels; NaN "
          "until known).",
          ek ? (double)atomic_load(&m->btyd_shape_k) : NAN);
}

char *dm_metrics_render(dm_metrics_t *m, int64_t now_ms)
{
    sbuf_t b = {malloc(4096), 0, 4096, 0};
    if (!b.p)
        return NULL;
    b.p[0] = '\0';

    counter(&b, "churnstream_events_in_total", "Events decoded, validated and committed.",
            atomic_load(&m->events_in));

    sb_printf(&b, "# HELP churnstream_events_rejected_total Messages sent to the DLQ, by "
                  "reason.\n# TYPE churnstream_events_rejected_total counter\n");
    for (int r = 1; r < EV_ERR_COUNT; r++)
        sb_printf(&b, "churnstream_events_rejected_total{reason=\"%s\"} %" PRIu64 "\n",
                  ev_reason_code((ev_reason_t)r), (uint64_t)atomic_load(&m->events_rejected[r]));

    counter(&b, "churnstream_dlq_produced_total", "DLQ messages acknowledged by the broker.",
            atomic_load(&m->dlq_produced));
    counter(&b, "churnstream_dlq_failed_total",
            "DLQ messages whose delivery failed permanently (logged).",
            atomic_load(&m->dlq_failed));

    sb_printf(&b, "# HELP churnstream_alerts_total Alerts acknowledged by the broker, by arm "
                  "and risk bucket.\n# TYPE churnstream_alerts_total counter\n");
    for (int a = 0; a < 2; a++)
        for (int k = 0; k < 3; k++)
            sb_printf(&b, "churnstream_alerts_total{arm=\"%s\",bucket=\"%s\"} %" PRIu64 "\n",
                      arm_names[a], bucket_names[k], (uint64_t)atomic_load(&m->alerts[a][k]));
    counter(&b, "churnstream_alerts_failed_total",
            "Alerts whose delivery failed permanently (they stay in the outbox).",
            atomic_load(&m->alerts_failed));

    counter(&b, "churnstream_batches_total", "Batches committed.", atomic_load(&m->batches));
    counter(&b, "churnstream_batch_failures_total",
            "Failed batch attempts (store unavailable); the batch is retried.",
            atomic_load(&m->batch_failures));
    counter(&b, "churnstream_batches_stale_total",
            "Batches dropped because the store was already past them.",
            atomic_load(&m->batches_stale));
    counter(&b, "churnstream_redis_round_trips_total", "Redis round trips reported by the handler.",
            atomic_load(&m->redis_round_trips));

    static const char *const phase_names[DM_METRICS_PHASES] = {"decode", "apply", "commit",
                                                               "report", "collect"};
    sb_printf(&b, "# HELP churnstream_batch_phase_seconds_total Main-thread time of committed "
                  "batches by phase: decode, apply (events, reads of uncached users, "
                  "snapshots, learning, sweeps), commit (the transaction built, sent and "
                  "answered), report, collect (polling the consumer).\n"
                  "# TYPE churnstream_batch_phase_seconds_total counter\n");
    for (int i = 0; i < DM_METRICS_PHASES; i++)
        sb_printf(&b, "churnstream_batch_phase_seconds_total{phase=\"%s\"} %.6f\n", phase_names[i],
                  (double)atomic_load(&m->phase_us[i]) / 1e6);
    sb_printf(&b,
              "# HELP churnstream_redis_wait_seconds_total Main-thread time blocked on "
              "Redis replies (round trips and the server's work), within the phases "
              "above.\n# TYPE churnstream_redis_wait_seconds_total counter\n"
              "churnstream_redis_wait_seconds_total %.6f\n",
              (double)atomic_load(&m->redis_wait_us) / 1e6);

    sb_printf(&b, "# HELP churnstream_batch_seconds Time to process and commit one batch.\n"
                  "# TYPE churnstream_batch_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < DM_HIST_BUCKETS; i++) {
        cum += atomic_load(&m->hist_counts[i]);
        sb_printf(&b, "churnstream_batch_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                  dm_hist_bounds[i], cum);
    }
    cum += atomic_load(&m->hist_counts[DM_HIST_BUCKETS]);
    sb_printf(&b, "churnstream_batch_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
    sb_printf(&b, "churnstream_batch_seconds_sum %.6f\n",
              (double)atomic_load(&m->hist_sum_us) / 1e6);
    sb_printf(&b, "churnstream_batch_seconds_count %" PRIu64 "\n", cum);

    sb_printf(&b,
              "# HELP churnstream_batch_target_messages Messages the next batch may hold: "
              "batch.max_messages when caught up, up to batch.catchup_factor times that while "
              "behind.\n# TYPE churnstream_batch_target_messages gauge\n"
              "churnstream_batch_target_messages %d\n",
              atomic_load(&m->batch_target));

    sb_printf(&b, "# HELP churnstream_consumer_lag Messages between the partition's high "
                  "watermark and the next offset to process.\n"
                  "# TYPE churnstream_consumer_lag gauge\n");
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n_lag; i++)
        sb_printf(&b, "churnstream_consumer_lag{partition=\"%" PRId32 "\"} %" PRId64 "\n",
                  m->lag_partition[i], m->lag_messages[i]);
    pthread_mutex_unlock(&m->lock);

    int64_t wm = atomic_load(&m->watermark_ms);
    sb_printf(&b, "# HELP churnstream_watermark_lag_seconds Wall clock minus the event-time "
                  "watermark (NaN until known).\n# TYPE churnstream_watermark_lag_seconds "
                  "gauge\n");
    if (wm == INT64_MIN)
        sb_printf(&b, "churnstream_watermark_lag_seconds NaN\n");
    else
        sb_printf(&b, "churnstream_watermark_lag_seconds %.3f\n", (double)(now_ms - wm) / 1e3);

    render_model(&b, m);
    render_outcomes(&b, m);
    gauge(&b, "churnstream_assigned_partitions", "Partitions currently assigned.",
          atomic_load(&m->assigned_partitions));
    gauge(&b, "churnstream_handler_healthy", "1 while the handler's store answers, else 0.",
          atomic_load(&m->handler_healthy));

    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
