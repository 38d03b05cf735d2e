/* The `run` daemon around a batch processor: a Kafka consumer group whose start offsets come
 * from the processor's store, micro-batches handed to a dm_handler_t, the DLQ and alert
 * producer, /metrics and /healthz, and the signal-driven shutdown (DESIGN.md sections 1, 7).
 * The handler (count_handler.h now, the churn pipeline later) owns decoding and state. */
#ifndef CS_DAEMON_H
#define CS_DAEMON_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* One consumed message, a view into librdkafka's message: valid only during the call it is
 * passed to. key may be NULL (key_len 0); value may be NULL only when len is 0. */
typedef struct dm_msg_s {
    int32_t partition;
    int64_t offset;
    const void *key;
    size_t key_len;
    const void *value;
    size_t len;
    int64_t ts_ms; /* Kafka message timestamp, -1 when the broker gave none */
} dm_msg_t;

#define DM_REJECT_TEXT_MAX 200

/* A message the handler refused. The daemon produces it raw to topic.dlq with the header
 * error = "<ev_reason_code(reason)>: <text>" plus source.topic/partition/offset. */
typedef struct dm_reject_s {
    size_t index; /* into the batch's msgs[] */
    int reason;   /* ev_reason_t (codec.h), 1 .. EV_ERR_COUNT-1 */
    char text[DM_REJECT_TEXT_MAX];
} dm_reject_t;

/* An alert the handler committed to its outbox in the batch transaction; the daemon produces
 * it to topic.alerts and reports its delivery back (on_alerts_delivered). */
typedef struct dm_alert_s {
    const char *id; /* stable alert_id */
    const void *key;
    size_t key_len;
    const void *value;
    size_t len;
    int arm;    /* alert_arm_t, for alerts_total{arm} */
    int bucket; /* alert_bucket_t, for alerts_total{bucket} */
    /* Values of the message's `kind` and `trigger` headers (static strings, e.g.
     * alert_kind_name()); NULL = that header is not sent. */
    const char *kind, *trigger;
} dm_alert_t;

/* An alert outcome decided in the batch (outcome.h), for outcomes_total. Strings are static
 * or the handler's, valid until its next call. */
typedef struct dm_outcome_s {
    int arm; /* alert_arm_t */
    const char *kind, *action, *outcome;
} dm_outcome_t;

/* Where a batch's time goes (dm_batch_result_t.phase_us; /metrics
 * churnstream_batch_phase_seconds_total{phase}): decoding the messages, applying the events
 * and the batch's end (reads of users not cached, features, snapshots, scoring, learning,
 * sweeps), the commit (the transaction built and sent, and the settle that learnt its
 * answer: the wait collecting did not cover) and the report (alerts to the sink, the
 * model's figures). The daemon adds "collect": polling the consumer for the batch's
 * messages. */
enum { DM_PHASE_DECODE, DM_PHASE_APPLY, DM_PHASE_COMMIT, DM_PHASE_REPORT, DM_PHASES };

/* What one process_batch call reports. The daemon sets rejects/rejects_cap (cap >= the batch
 * size) and zeroes the rest before each call; the handler fills it. alerts point into
 * handler memory that stays valid until the handler's next call. */
typedef struct dm_batch_result_s {
    dm_reject_t *rejects;
    size_t rejects_cap;
    size_t n_rejects;
    const dm_alert_t *alerts;
    size_t n_alerts;
    const dm_outcome_t *outcomes; /* committed with the batch */
    size_t n_outcomes;
    uint64_t redis_round_trips;
    uint64_t phase_us[DM_PHASES]; /* us per phase of this attempt (clock.h; 0: not measured) */
    uint64_t redis_wait_us;       /* of which blocked on Redis replies (round trips + server) */
    int64_t watermark_ms;         /* event-time watermark after the batch; INT64_MIN = unknown */
    /* The model's prequential metrics (each label scored before it is learnt) and version;
     * model_labels = 0 when the handler has none. */
    uint64_t model_labels, model_version;
    double model_auc, model_logloss;
    /* The experts (experts.h): weights in the score and graded log-loss per snapshot
     * (discounted mean over complete ticks; NaN before the first); experts_known = 0 when
     * the handler has no model. */
    int experts_known;
    double expert_weight[3], expert_logloss[3];
    int btyd_shape_k; /* the BTYD expert's Erlang shape (experts.h), with the experts */
    /* A shared model (model.sync_interval > 0), since the handler started: merges that
     * succeeded and failed, journal entries this instance merged, and merged models not
     * taken because they held labels past this instance's watermark. */
    uint64_t merges_ok, merges_failed, merged_entries, merges_held_back;
} dm_batch_result_t;

/* process_batch return values besides 0. */
#define DM_BATCH_RETRY (-1) /* nothing applied; retry the same batch later (store down) */
#define DM_BATCH_STALE                                                                             \
    (-2) /* the store is past this batch (another owner committed it), or behind what this         \
          * instance committed (the store lost writes): drop the batch and resume every            \
          * assigned partition from the stored offsets (also with n = 0: an idle partition         \
          * whose stored offset went back is re-read without waiting for a message) */
#define DM_BATCH_IN_FLIGHT                                                                         \
    (-3) /* applied and its commit sent, the outcome not known yet: the daemon collects the        \
          * next batch's messages meanwhile and learns the outcome from settle */

/* The batch processor. Every callback runs on the daemon's main thread, never concurrently.
 * The handler is owned by the caller and must outlive dm_run(). */
typedef struct dm_handler_s {
    void *opaque;
    /* Partitions were assigned: write each one's stored next offset to start_offsets[i], or
     * -1 when the store has none (the consumer then starts at kafka.auto.offset.reset).
     * Returns 0, or -1 with err set when the store cannot be read (retried with backoff). */
    int (*on_assign)(void *opaque, const int32_t *partitions, size_t n, int64_t *start_offsets,
                     char *err, size_t errsz);
    /* Partitions were revoked or lost: drop whatever is cached for them. */
    void (*on_revoke)(void *opaque, const int32_t *partitions, size_t n);
    /* Decodes, validates, processes and commits one batch (messages of several partitions,
     * in consumption order; each partition's offsets ascending), including each partition's
     * next offset, in ONE store transaction: all or nothing. Returns 0, DM_BATCH_RETRY or
     * DM_BATCH_STALE, with err set on failure. */
    int (*process_batch)(void *opaque, const dm_msg_t *msgs, size_t n, dm_batch_result_t *res,
                         char *err, size_t errsz);
    /* Optional; required when process_batch may return DM_BATCH_IN_FLIGHT (only for a batch
     * without rejects: res->n_rejects == 0). The outcome of that batch's commit: 0 committed
     * (res filled as process_batch fills it: alerts, outcomes, figures), DM_BATCH_RETRY
     * (rolled back: the daemon retries its messages with those collected since), or with
     * wait = 0 DM_BATCH_IN_FLIGHT while Redis has not answered yet (nothing blocks). The
     * daemon settles before any other handler call, so a handler never sees two batches
     * at once, and nothing a batch makes visible (alerts, DLQ, Kafka offsets) leaves
     * before it is committed. */
    int (*settle)(void *opaque, int wait, dm_batch_result_t *res, char *err, size_t errsz);
    /* Optional (NULL = none): alerts were acknowledged by the broker, trim the outbox. */
    void (*on_alerts_delivered)(void *opaque, const char *const *ids, size_t n);
    /* Optional (NULL = alerts are produced unchecked): claims alerts for sending just before
     * they are handed to Kafka; keep[i] = 1 when ids[i] is still pending (now marked as being
     * sent), 0 when it is gone (forget removed it): it is then not sent. 0, or -1 with err
     * set when the store cannot answer (the alerts wait and are claimed again later). */
    int (*claim_alerts)(void *opaque, const char *const *ids, size_t n, uint8_t *keep, char *err,
                        size_t errsz);
    /* Optional (NULL = none): called once at start, returns the outbox alerts to re-send
     * (handler memory, valid until the next handler call). 0 or -1 with err set. */
    int (*pending_alerts)(void *opaque, const dm_alert_t **alerts, size_t *n, char *err,
                          size_t errsz);
    /* Optional (NULL = /v1/users/ answers 404): GET /v1/users/{id} on the metrics server.
     * Called on the HTTP server's threads, concurrently with every other callback and with
     * itself: it must use only user_api (a Redis connection of its own, never the batch's).
     * user_id is decoded and checked (uv_decode_id: UTF-8, no NUL, 1..EV_USER_ID_MAX bytes),
     * at the decoded `at` query argument or NULL. Returns the HTTP status and a malloc'd
     * JSON body in *body (NULL = out of memory). */
    int (*user_get)(void *user_api, const char *user_id, size_t len, const char *at, char **body);
    void *user_api;
    /* Optional: one line naming the handler, for the startup log. */
    const char *name;
    /* When > 0: while no message arrives, process_batch is called with n = 0 at most every
     * idle_call_ms, so the handler can advance event time by the wall clock. 0 = never. */
    int64_t idle_call_ms;
} dm_handler_t;

typedef struct dm_s dm_t;

/* Creates the consumer (subscribed to topic.events), the producer and, when metrics.port is
 * not 0, the HTTP server. Keeps pointers to cfg and handler: both must outlive the dm_t.
 * Returns NULL with errstr set. */
dm_t *dm_new(const cfg_t *cfg, const dm_handler_t *handler, char *errstr, size_t errstr_size);

/* Runs until dm_request_stop() (or SIGTERM/SIGINT after dm_install_signals()), then shuts
 * down in order: stop polling, finish the batch in hand (commit it when the store is up),
 * commit offsets to Kafka (async), flush the producer (bounded by DM_FLUSH_TIMEOUT_MS),
 * close the consumer (bounded by DM_CLOSE_TIMEOUT_MS: an unreachable broker cannot hold the
 * exit); a watchdog armed by the stop request (DM_SHUTDOWN_MAX_S) exits with status 1 if
 * the whole stop, dm_destroy included, still hangs. Returns the exit status: 0 clean, 1
 * fatal Kafka error. The caller ends with dm_shutdown_done(). */
int dm_run(dm_t *dm);

/* Milliseconds since the first stop request (signal or dm_request_stop), 0 before one. */
int64_t dm_stop_elapsed_ms(void);
/* Disarms the shutdown watchdog and logs the true stop time (from the request to this call,
 * after every resource is freed) with the exit status. Call last, after dm_destroy. */
void dm_shutdown_done(int status);

/* Frees everything dm_new made; NULL is a no-op. */
void dm_destroy(dm_t *dm);

/* Async-signal-safe: asks every running dm_run() to stop. */
void dm_request_stop(void);

/* SIGTERM/SIGINT: the first sets the stop flag, a second exits at once with 128+signal
 * (the uncommitted batch is re-read from the stored offsets on restart, so nothing is
 * lost). SIGPIPE is ignored. */
void dm_install_signals(void);

/* The stop budget, from the signal: the store call in progress (redis.command_timeout,
 * default 5 s), the producer flush (10 s, the README's promise), the consumer close (3 s).
 * The watchdog is above their sum and below the service managers' kill (systemd
 * TimeoutStopSec=30 in processor/churnstream.service, stop_grace_period: 30s in
 * docker-compose.yml; tests/python/test_compose.py holds the three together). */
/* Alerts handed to Kafka and not yet acknowledged, at most: the rest wait in the daemon (and
 * in the store's outbox) and are claimed (re-checked) just before they are produced, so an
 * alert that `forget` removed meanwhile is never sent, even during a broker outage. */
#define DM_ALERT_WINDOW     100
#define DM_FLUSH_TIMEOUT_MS 10000
#define DM_CLOSE_TIMEOUT_MS 3000
#define DM_SHUTDOWN_MAX_S   25 /* watchdog of the whole shutdown: then _exit(1) */

#endif
