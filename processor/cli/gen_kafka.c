/* The Kafka sink of `churnstream gen` (cmd_gen.h): an idempotent producer that waits for a
 * new topic, rides out a broker outage for kafka.message.timeout.ms and then fails with the
 * count of undelivered messages (never a silent loss). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd_gen.h"
#include "kafka.h"
#include "log.h"

#define GEN_METADATA_TIMEOUT_MS 10000

int64_t gen_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t gen_now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void gen_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    gen_kafka_t *k = opaque;
    (void)rk;
    if (m->err) {
        if (k->failed++ == 0)
            snprintf(k->first_error, sizeof(k->first_error), "%s", rd_kafka_err2str(m->err));
    } else {
        k->delivered++;
    }
}

int gen_kafka_open(cfg_t *cfg, const char *topic, gen_kafka_t *k, char *errstr, size_t errstr_size)
{
    /* Applied before the user's kafka.* keys, so those win. The message timeout bounds how
     * long librdkafka retries (with backoff) through a broker outage: 2 minutes, then a clear
     * failure with the count of undelivered messages instead of an endless retry. */
    static const char *const extra[] = {
        "enable.idempotence",
        "true",
        "message.timeout.ms",
        "120000",
        "linger.ms",
        "20",
        "queue.buffering.max.messages",
        "500000",
        NULL,
    };
    memset(k, 0, sizeof(*k));
    rd_kafka_conf_t *conf = kf_conf(cfg, RD_KAFKA_PRODUCER, extra, errstr, errstr_size);
    if (!conf)
        return -1;
    size_t sz = sizeof(k->brokers);
    if (rd_kafka_conf_get(conf, "bootstrap.servers", k->brokers, &sz) != RD_KAFKA_CONF_OK ||
        !k->brokers[0])
        snprintf(k->brokers, sizeof(k->brokers), "(kafka.bootstrap.servers not set)");
    char tbuf[32];
    sz = sizeof(tbuf);
    k->timeout_ms = 120000;
    if (rd_kafka_conf_get(conf, "message.timeout.ms", tbuf, &sz) == RD_KAFKA_CONF_OK)
        k->timeout_ms = atoll(tbuf);
    rd_kafka_conf_set_dr_msg_cb(conf, gen_dr_cb);
    rd_kafka_conf_set_opaque(conf, k);
    if (!(k->rk = kf_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size)))
        return -1;
    k->rkt = rd_kafka_topic_new(k->rk, topic, NULL);
    if (!k->rkt) {
        snprintf(errstr, errstr_size, "topic \"%s\": %s", topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    /* Fail fast (and in bounded time) when no broker answers. A broker that auto-creates
     * topics answers the first request for a new one with "unknown topic" or "leader not
     * available" while it creates it: ask again until every partition has a leader, for
     * GEN_METADATA_TIMEOUT_MS at most. */
    int64_t t0 = gen_now_ns();
    for (int attempt = 1;; attempt++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(k->rk, 0, k->rkt, &md, GEN_METADATA_TIMEOUT_MS);
        if (err) {
            snprintf(errstr, errstr_size,
                     "cannot reach Kafka at %s within %d ms: %s (check kafka.bootstrap.servers)",
                     k->brokers, GEN_METADATA_TIMEOUT_MS, rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_resp_err_t terr =
            md->topic_cnt > 0 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        int ready = terr == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[0].partition_cnt > 0;
        for (int p = 0; ready && p < md->topics[0].partition_cnt; p++)
            ready = md->topics[0].partitions[p].leader >= 0 && !md->topics[0].partitions[p].err;
        rd_kafka_metadata_destroy(md);
        if (ready)
            return 0;
        int64_t waited_ms = (gen_now_ns() - t0) / 1000000;
        if (waited_ms >= GEN_METADATA_TIMEOUT_MS) {
            if (terr == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
                snprintf(errstr, errstr_size,
                         "topic \"%s\" does not exist on %s and was not created within %lld ms "
                         "(%d metadata requests): create it, or enable "
                         "auto.create.topics.enable on the broker",
                         topic, k->brokers, (long long)waited_ms, attempt);
            else
                snprintf(errstr, errstr_size,
                         "topic \"%s\" on %s has no leader for every partition after %lld ms: "
                         "%s",
                         topic, k->brokers, (long long)waited_ms,
                         rd_kafka_err2str(terr ? terr : RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE));
            return -1;
        }
        if (attempt == 1)
            log_info("gen", "topic \"%s\" not ready on %s (%s): waiting up to %d ms for it", topic,
                     k->brokers, rd_kafka_err2str(terr), GEN_METADATA_TIMEOUT_MS);
        rd_kafka_poll(k->rk, 250);
    }
}

int gen_kafka_produce(gen_kafka_t *k, const ev_event_t *ev, const void *buf, size_t len,
                      char *errstr, size_t errstr_size)
{
    for (;;) {
        /* With --event-timestamps the message timestamp is the event time, so `replay
         * kafka:TOPIC --from/--to` (offsets for times) selects event-time ranges. 0 lets
         * librdkafka stamp the produce time. */
        rd_kafka_resp_err_t err = rd_kafka_producev(
            k->rk, RD_KAFKA_V_RKT(k->rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE((void *)buf, len),
            RD_KAFKA_V_KEY(ev->user_id, ev->user_id_len),
            RD_KAFKA_V_TIMESTAMP(k->event_timestamps ? ev->event_time_ms : 0), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            snprintf(errstr, errstr_size, "produce failed: %s", rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_poll(k->rk, 100); /* the local queue is full: let deliveries drain it */
        if (k->failed)
            break;
    }
    rd_kafka_poll(k->rk, 0);
    if (k->failed) {
        snprintf(errstr, errstr_size,
                 "delivery to %s failed after retrying for kafka.message.timeout.ms (%lld ms): "
                 "%s; %lld messages delivered, %lld not (the run stops here)",
                 k->brokers, (long long)k->timeout_ms, k->first_error, (long long)k->delivered,
                 (long long)k->failed);
        return -1;
    }
    char fatal[256];
    if (rd_kafka_fatal_error(k->rk, fatal, sizeof(fatal))) {
        snprintf(errstr, errstr_size, "producer fatal error: %s", fatal);
        return -1;
    }
    return 0;
}

int gen_kafka_finish(gen_kafka_t *k, char *errstr, size_t errstr_size)
{
    rd_kafka_flush(k->rk, (int)(k->timeout_ms + 5000));
    int left = rd_kafka_outq_len(k->rk);
    if (k->failed) {
        snprintf(errstr, errstr_size, "%lld messages not delivered to %s: %s",
                 (long long)k->failed + left, k->brokers, k->first_error);
        return -1;
    }
    if (left > 0) {
        snprintf(errstr, errstr_size, "%d messages still undelivered after %lld ms (broker %s)",
                 left, (long long)k->timeout_ms + 5000, k->brokers);
        return -1;
    }
    return 0;
}

void gen_kafka_close(gen_kafka_t *k)
{
    if (k->rkt)
        rd_kafka_topic_destroy(k->rkt);
    if (k->rk)
        rd_kafka_destroy(k->rk);
    k->rkt = NULL;
    k->rk = NULL;
}

void gen_kafka_pace(gen_kafka_t *k, double rate_eps, int64_t t0_ns, int64_t n,
                    volatile const sig_atomic_t *stop)
{
    int64_t due_ns = t0_ns + (int64_t)((double)n / rate_eps * 1e9);
    for (;;) {
        int64_t ahead_ns = due_ns - gen_now_ns();
        if (ahead_ns <= 0 || *stop)
            return;
        if (ahead_ns >= 1000000) {
            rd_kafka_poll(k->rk, (int)(ahead_ns / 1000000));
        } else {
            struct timespec ts = {0, (long)ahead_ns};
            nanosleep(&ts, NULL);
        }
    }
}
