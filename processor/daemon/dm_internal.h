/* State shared by the daemon's files (daemon.c main loop, dm_consumer.c, dm_producer.c,
 * dm_http.c). Not a public header: everything here is touched by the main thread only,
 * except `metrics` (atomics/mutex) which the HTTP thread reads. */
#ifndef CS_DM_INTERNAL_H
#define CS_DM_INTERNAL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "daemon.h"
#include "dm_metrics.h"

struct MHD_Daemon;

/* One assigned partition and the next offset this instance will process (-1 = not known
 * yet: the consumer starts at auto.offset.reset). */
/* An alert waiting to be claimed and produced (owned copies). */
typedef struct dm_qalert_s {
    char *id;
    void *key, *value;
    size_t key_len, len;
    int arm, bucket;
    const char *kind, *trigger; /* static strings (dm_alert_t's), not owned */
} dm_qalert_t;

typedef struct dm_part_s {
    int32_t partition;
    int64_t next_offset;
} dm_part_t;

struct dm_s {
    const cfg_t *cfg;
    const dm_handler_t *h;
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    int cooperative;      /* rebalance protocol of the group, known after the first one */
    int64_t reset_offset; /* RD_KAFKA_OFFSET_BEGINNING or _END: auto.offset.reset */

    dm_part_t *parts; /* current assignment */
    size_t n_parts, cap_parts;

    /* The batch in hand: messages owned until processed (or dropped on revoke). */
    rd_kafka_message_t **batch;
    size_t n_batch, cap_batch;
    /* Messages the next batch may hold: batch.max_messages, doubled after each batch that
     * filled while DM_CATCHUP_BATCHES more full batches waited, up to batch.catchup_factor x
     * that, back to batch.max_messages otherwise (dm_consumer.c, adapt_target). */
    size_t batch_target;
    dm_msg_t *msgs;       /* views, same capacity */
    dm_reject_t *rejects; /* same capacity */
    int paused;           /* the assignment is paused while a failed batch is retried */

    int handler_failing; /* for logging once per state change */
    /* Assignment health: a consumer that never hears from its group (no broker reachable,
     * empty bootstrap.servers, a topic that does not exist) must not look healthy. */
    int joined;                      /* an assignment (possibly empty) came from the group */
    int kafka_unhealthy;             /* reported: no assignment within join_wait_ms */
    int64_t unjoined_since_ms;       /* since when there has been no assignment */
    int64_t join_wait_ms;            /* session.timeout.ms + 10 s */
    char last_kafka_error[256];      /* the consumer's last error callback, for the reason */
    char bootstrap[256], group[128]; /* as the consumer was configured, for messages */
    int fatal;                       /* a fatal Kafka error: stop with status 1 */
    int64_t next_lag_ms;             /* when to refresh the lag gauges */
    size_t dlq_outstanding;
    /* A batch whose commit is in flight (process_batch returned DM_BATCH_IN_FLIGHT): its
     * inflight_n messages stay at the front of the batch until dm_settle; messages
     * collected meanwhile go behind them. */
    int inflight;
    size_t inflight_n;
    struct timespec inflight_t0; /* when its process_batch began */
    uint64_t settle_us;          /* time inside dm_settle, kept apart from the collect phase */

    /* Alerts waiting for their claim (DM_ALERT_WINDOW), in order: aq[aq_head .. +aq_n). */
    dm_qalert_t *aq;
    size_t aq_head, aq_n, aq_cap;
    size_t alerts_in_flight; /* handed to librdkafka, delivery report pending */
    int claim_failing;       /* for logging once per state change */
    /* Alerts acknowledged by the broker within one poll of the producer, handed to the
     * handler's on_alerts_delivered together when the poll returns (one outbox trim, one
     * round trip, instead of one per alert). Owned: each is a dm_sent_t (dm_producer.c). */
    void **delivered;
    size_t n_delivered, cap_delivered;

    dm_metrics_t metrics;
    struct MHD_Daemon *http;
};

/* The stop flag set by signals and dm_request_stop(). */
extern volatile sig_atomic_t dm_stop_flag;

int64_t dm_now_ms(void);
/* Sleeps ms in short slices; returns early (1) when the stop flag is set. */
int dm_sleep_ms(int64_t ms);
/* Logs a handler failure/recovery once per state change and updates the health gauge. */
void dm_handler_state(dm_t *dm, int ok, const char *what, const char *err);

/* dm_consumer.c */
int dm_consumer_open(dm_t *dm, char *errstr, size_t errstr_size);
/* Adds messages to the batch until batch.max_messages, batch.max_wait after the first one,
 * or the stop flag; with the batch empty, also after one poll slice without a message (so
 * the daemon's idle calls run). Returns the number added. */
size_t dm_consumer_collect(dm_t *dm);
/* Serves the consumer (rebalances) for up to ms while the assignment is paused; messages
 * that still arrive are appended to the batch, never dropped. */
void dm_consumer_serve(dm_t *dm, int ms);
void dm_consumer_pause(dm_t *dm, int pause);
/* Records the batch's next offsets in the assignment table and commits them to Kafka
 * (async, or sync when `sync`). */
void dm_consumer_commit(dm_t *dm, const int32_t *partitions, const int64_t *next, size_t n,
                        int sync);
/* Re-reads the stored offsets of `partitions` and seeks there (after a stale batch). */
void dm_consumer_resync(dm_t *dm, const int32_t *partitions, size_t n);
void dm_consumer_update_lag(dm_t *dm);
/* Destroys the first n messages of the batch and shifts the rest down. */
void dm_batch_drop_front(dm_t *dm, size_t n);
void dm_consumer_close(dm_t *dm);
/* Leaves the group like dm_consumer_close, but gives up after timeout_ms (broker
 * unreachable): then the consumer is destroyed without the group close, and the group
 * notices the member gone after session.timeout.ms. */
void dm_consumer_close_bounded(dm_t *dm, int timeout_ms);
/* rd_kafka_conf_set_log_cb target: librdkafka's log lines through log.h. */

/* dm_producer.c */
int dm_producer_open(dm_t *dm, char *errstr, size_t errstr_size);
/* Produces a rejected message raw to topic.dlq with error/source headers. */
void dm_produce_dlq(dm_t *dm, const dm_msg_t *m, const dm_reject_t *r);
void dm_produce_alert(dm_t *dm, const dm_alert_t *a);
/* Queues a copy of the alert for dm_alerts_pump (which claims, then produces it). */
void dm_queue_alert(dm_t *dm, const dm_alert_t *a);
/* Settles the batch whose commit is in flight, if any (dm_handler_t.settle): with wait,
 * blocks until Redis answers; without, returns 1 while it has not. Then as any batch:
 * accounted and dropped when committed, kept for a retry when not. Returns 0 when nothing
 * is in flight any more. */
int dm_settle(dm_t *dm, int wait);
/* Claims and produces queued alerts while fewer than DM_ALERT_WINDOW are in flight. */
void dm_alerts_pump(dm_t *dm);
/* Alerts still queued (not handed to Kafka); frees them all when `drop`. */
size_t dm_alerts_queued(dm_t *dm, int drop);
void dm_producer_poll(dm_t *dm);
/* Waits up to timeout_ms for outstanding deliveries; returns how many are left. */
int dm_producer_flush(dm_t *dm, int timeout_ms);
void dm_producer_close(dm_t *dm);

/* dm_http.c */
int dm_http_start(dm_t *dm, char *errstr, size_t errstr_size);
void dm_http_stop(dm_t *dm);

#endif
