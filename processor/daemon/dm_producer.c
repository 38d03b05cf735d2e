/* The daemon's producer (idempotent): rejected messages, raw, to topic.dlq with `error` and
 * `source.*` headers, and alerts to topic.alerts, whose deliveries go back to the handler
 * so it can trim its outbox. librdkafka retries transient failures itself; a permanent
 * failure is logged and counted, never fatal. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "dm_internal.h"
#include "grow.h"
#include "kafka.h"
#include "log.h"

/* Alert ids per on_alerts_delivered call (one HDEL + SREM pair of this many arguments). */
#define DM_TRIM_CHUNK 256

/* What a delivery report refers to (the message's opaque). */
typedef struct dm_sent_s {
    int is_alert;
    int arm, bucket;
    char id[]; /* alert id, NUL-terminated */
} dm_sent_t;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    dm_t *dm = opaque;
    dm_sent_t *s = m->_private;
    (void)rk;
    if (!s)
        return;
    if (!s->is_alert) {
        if (dm->dlq_outstanding)
            dm->dlq_outstanding--;
        if (m->err) {
            atomic_fetch_add(&dm->metrics.dlq_failed, 1);
            log_error("producer", "DLQ delivery to \"%s\" failed for good: %s", dm->cfg->topic_dlq,
                      rd_kafka_err2str(m->err));
        } else {
            atomic_fetch_add(&dm->metrics.dlq_produced, 1);
        }
    } else if (m->err) {
        if (dm->alerts_in_flight)
            dm->alerts_in_flight--;
        atomic_fetch_add(&dm->metrics.alerts_failed, 1);
        log_error("producer", "alert %s not delivered to \"%s\": %s (kept in the outbox)", s->id,
                  dm->cfg->topic_alerts, rd_kafka_err2str(m->err));
    } else {
        if (dm->alerts_in_flight)
            dm->alerts_in_flight--;
        int arm = s->arm == 1 ? 1 : 0;
        int bucket = s->bucket >= 0 && s->bucket < 3 ? s->bucket : 0;
        atomic_fetch_add(&dm->metrics.alerts[arm][bucket], 1);
        if (dm->h->on_alerts_delivered) {
            /* Trimmed with the others of this poll (trim_delivered); out of memory, alone. */
            if (CS_GROW(dm->delivered, dm->cap_delivered, dm->n_delivered + 1, 64) == 0) {
                dm->delivered[dm->n_delivered++] = s;
                return;
            }
            const char *ids[1] = {s->id};
            dm->h->on_alerts_delivered(dm->h->opaque, ids, 1);
        }
    }
    free(s);
}

/* Hands the alerts delivered during the last poll to the handler in one call (its outbox
 * trim is one round trip), then frees them. Called after every poll of the producer. */
static void trim_delivered(dm_t *dm)
{
    if (dm->n_delivered == 0)
        return;
    const char *ids[DM_TRIM_CHUNK];
    size_t i = 0;
    while (i < dm->n_delivered) {
        size_t k = 0;
        for (; k < DM_TRIM_CHUNK && i + k < dm->n_delivered; k++)
            ids[k] = ((dm_sent_t *)dm->delivered[i + k])->id;
        dm->h->on_alerts_delivered(dm->h->opaque, ids, k);
        i += k;
    }
    for (i = 0; i < dm->n_delivered; i++)
        free(dm->delivered[i]);
    dm->n_delivered = 0;
}

static void perror_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    log_warn("producer", "kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

int dm_producer_open(dm_t *dm, char *errstr, size_t errstr_size)
{
    static const char *const extra[] = {"linger.ms", "5", NULL};
    rd_kafka_conf_t *conf = kf_conf(dm->cfg, RD_KAFKA_PRODUCER, extra, errstr, errstr_size);
    if (!conf)
        return -1;
    /* The consumer-only keys are shared with the consumer's config; librdkafka ignores them
     * here (kf_log_cb keeps its warnings quiet). Idempotence is forced: retries must not duplicate
     * or reorder. */
    if (rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, errstr_size) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, perror_cb);
    rd_kafka_conf_set_opaque(conf, dm);
    if (!(dm->producer = kf_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size)))
        return -1;
    return 0;
}

/* Produces, waiting (serving delivery reports) while the local queue is full. Takes
 * ownership of s: freed here on a local error, else by dr_cb. */
static int produce(dm_t *dm, const char *topic, const void *key, size_t key_len, const void *value,
                   size_t len, rd_kafka_headers_t *hdrs, dm_sent_t *s)
{
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            dm->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)value, len),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(s), RD_KAFKA_V_END);
        if (!err)
            return 0; /* headers now belong to the message */
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(dm->producer, 100);
            trim_delivered(dm);
            continue;
        }
        log_error("producer", "cannot produce to \"%s\": %s", topic, rd_kafka_err2str(err));
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        free(s);
        return -1;
    }
}

void dm_produce_dlq(dm_t *dm, const dm_msg_t *m, const dm_reject_t *r)
{
    char error[DM_REJECT_TEXT_MAX + 64], part[16], off[24];
    snprintf(error, sizeof(error), "%s: %s", ev_reason_code((ev_reason_t)r->reason), r->text);
    snprintf(part, sizeof(part), "%" PRId32, m->partition);
    snprintf(off, sizeof(off), "%" PRId64, m->offset);
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    rd_kafka_header_add(h, "error", -1, error, -1);
    rd_kafka_header_add(h, "source.topic", -1, dm->cfg->topic_events, -1);
    rd_kafka_header_add(h, "source.partition", -1, part, -1);
    rd_kafka_header_add(h, "source.offset", -1, off, -1);
    dm_sent_t *s = calloc(1, sizeof(*s) + 1);
    if (!s) {
        rd_kafka_headers_destroy(h);
        atomic_fetch_add(&dm->metrics.dlq_failed, 1);
        log_error("producer", "out of memory producing a DLQ message");
        return;
    }
    if (produce(dm, dm->cfg->topic_dlq, m->key, m->key_len, m->value, m->len, h, s) == 0)
        dm->dlq_outstanding++;
    else
        atomic_fetch_add(&dm->metrics.dlq_failed, 1);
}

void dm_produce_alert(dm_t *dm, const dm_alert_t *a)
{
    if (!dm->cfg->alerts_enabled)
        return;
    size_t id_len = strlen(a->id);
    dm_sent_t *s = calloc(1, sizeof(*s) + id_len + 1);
    if (!s) {
        atomic_fetch_add(&dm->metrics.alerts_failed, 1);
        return;
    }
    s->is_alert = 1;
    s->arm = a->arm;
    s->bucket = a->bucket;
    memcpy(s->id, a->id, id_len + 1);
    /* kind and trigger as headers too, so a consumer can route without decoding Avro. */
    rd_kafka_headers_t *h = NULL;
    if (a->kind || a->trigger) {
        h = rd_kafka_headers_new(2);
        if (a->kind)
            rd_kafka_header_add(h, "kind", -1, a->kind, -1);
        if (a->trigger)
            rd_kafka_header_add(h, "trigger", -1, a->trigger, -1);
    }
    if (produce(dm, dm->cfg->topic_alerts, a->key, a->key_len, a->value, a->len, h, s) != 0)
        atomic_fetch_add(&dm->metrics.alerts_failed, 1);
    else
        dm->alerts_in_flight++;
}

static void qalert_free(dm_qalert_t *q)
{
    free(q->id);
    free(q->key);
    free(q->value);
}

void dm_queue_alert(dm_t *dm, const dm_alert_t *a)
{
    if (!dm->cfg->alerts_enabled)
        return;
    if (dm->aq_head > 0 && dm->aq_head + dm->aq_n == dm->aq_cap) {
        memmove(dm->aq, dm->aq + dm->aq_head, dm->aq_n * sizeof(*dm->aq));
        dm->aq_head = 0;
    }
    if (CS_GROW(dm->aq, dm->aq_cap, dm->aq_head + dm->aq_n + 1, 64) != 0)
        goto oom;
    dm_qalert_t *q = &dm->aq[dm->aq_head + dm->aq_n];
    memset(q, 0, sizeof(*q));
    q->id = strdup(a->id);
    q->key = malloc(a->key_len ? a->key_len : 1);
    q->value = malloc(a->len ? a->len : 1);
    if (!q->id || !q->key || !q->value) {
        qalert_free(q);
        goto oom;
    }
    memcpy(q->key, a->key, a->key_len);
    memcpy(q->value, a->value, a->len);
    q->key_len = a->key_len;
    q->len = a->len;
    q->arm = a->arm;
    q->bucket = a->bucket;
    q->kind = a->kind;
    q->trigger = a->trigger;
    dm->aq_n++;
    return;
oom:
    /* It stays in the store's outbox: the next start re-sends it. */
    atomic_fetch_add(&dm->metrics.alerts_failed, 1);
    log_error("producer", "out of memory queueing alert %s (kept in the outbox)", a->id);
}

void dm_alerts_pump(dm_t *dm)
{
    const char *ids[DM_ALERT_WINDOW];
    uint8_t keep[DM_ALERT_WINDOW];
    size_t forgotten = 0;
    while (dm->aq_n > 0 && dm->alerts_in_flight < DM_ALERT_WINDOW) {
        size_t k = DM_ALERT_WINDOW - dm->alerts_in_flight;
        if (k > dm->aq_n)
            k = dm->aq_n;
        dm_qalert_t *q = dm->aq + dm->aq_head;
        for (size_t i = 0; i < k; i++) {
            ids[i] = q[i].id;
            keep[i] = 1;
        }
        if (dm->h->claim_alerts) {
            char err[512] = "";
            if (dm->h->claim_alerts(dm->h->opaque, ids, k, keep, err, sizeof(err)) != 0) {
                if (!dm->claim_failing)
                    log_warn("producer",
                             "cannot check the outbox before sending %zu alerts: %s (they wait "
                             "and are checked again)",
                             dm->aq_n, err);
                dm->claim_failing = 1;
                break;
            }
            if (dm->claim_failing)
                log_info("producer", "outbox check works again: sending the waiting alerts");
            dm->claim_failing = 0;
        }
        for (size_t i = 0; i < k; i++) {
            if (keep[i]) {
                dm_alert_t a = {.id = q[i].id,
                                .key = q[i].key,
                                .key_len = q[i].key_len,
                                .value = q[i].value,
                                .len = q[i].len,
                                .arm = q[i].arm,
                                .bucket = q[i].bucket,
                                .kind = q[i].kind,
                                .trigger = q[i].trigger};
                dm_produce_alert(dm, &a);
            } else {
                forgotten++;
            }
            qalert_free(&q[i]);
        }
        dm->aq_head += k;
        dm->aq_n -= k;
        if (dm->aq_n == 0)
            dm->aq_head = 0;
    }
    if (forgotten)
        log_info("producer",
                 "%zu alerts were no longer in the outbox when their turn came (forgotten "
                 "users): not sent",
                 forgotten);
}

size_t dm_alerts_queued(dm_t *dm, int drop)
{
    size_t n = dm->aq_n;
    if (drop) {
        for (size_t i = 0; i < dm->aq_n; i++)
            qalert_free(&dm->aq[dm->aq_head + i]);
        dm->aq_head = dm->aq_n = 0;
    }
    return n;
}

void dm_producer_poll(dm_t *dm)
{
    if (!dm->producer)
        return;
    rd_kafka_poll(dm->producer, 0);
    trim_delivered(dm);
}

int dm_producer_flush(dm_t *dm, int timeout_ms)
{
    if (!dm->producer)
        return 0;
    rd_kafka_flush(dm->producer, timeout_ms);
    trim_delivered(dm);
    return rd_kafka_outq_len(dm->producer);
}

void dm_producer_close(dm_t *dm)
{
    if (!dm->producer)
        return;
    /* What the bounded flush left is purged so that each message's delivery report (and
     * its opaque) is served here: counted as failed and logged, never leaked. */
    rd_kafka_purge(dm->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(dm->producer, 100);
    trim_delivered(dm);
    rd_kafka_destroy(dm->producer);
    dm->producer = NULL;
    free(dm->delivered);
    dm->delivered = NULL;
    dm->cap_delivered = 0;
}
