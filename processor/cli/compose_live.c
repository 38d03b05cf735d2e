/* Live mode of `churnstream compose` (compose_live.h). A pipeline on one thread: read an
 * alert while the composer has a free slot, drive the endpoint's requests (cm_next), produce
 * each message as it is answered (any order), and commit per partition the offsets whose
 * alert and every earlier alert of the partition have their message acknowledged
 * (compose_track.h). A crash re-sends what was not committed, never loses. */
#include "compose_live.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "alert.h"
#include "alert_resolve.h"
#include "cli_args.h"
#include "compose.h"
#include "compose_track.h"
#include "kafka.h"
#include "log.h"

/* Read alerts waiting for their commit, at most: past it reading pauses until the oldest
 * (a slow request) is done, so undecodable or duplicate alerts behind it cannot pile up. */
#define LIVE_PENDING_MAX 4096

/* The live loop's state: what it reads and writes with, and what it counted. */
typedef struct live_s {
    cfg_t *cfg;
    ar_t *dec;
    cm_composer_t *cm;
    rd_kafka_t *ck, *pk; /* consumer of the alerts, producer of the messages */
    ct_seen_t seen;      /* alert ids answered in this run */
    ct_pending_t *pending;
    uint8_t *buf; /* encoded message, bufcap bytes */
    size_t bufcap;
    int print;         /* --print: each message as JSON on stdout */
    int failed;        /* a message not produced or a fatal Kafka error: stop reading */
    long long in_acks; /* messages produced and not yet acknowledged or failed */
    long long answering, produced, undecodable, dup;
} live_t;

/* Delivery report: the message's opaque is its pending handle; the handle's opaque the
 * live_t. A failure is final (the idempotent producer retried by itself). */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    live_t *l = opaque;
    int64_t h = (int64_t)(intptr_t)m->_private;
    l->in_acks--;
    if (m->err) {
        log_error("compose",
                  "message for %.*s not delivered: %s; its alert's offset is not "
                  "committed, it will be read again",
                  (int)m->key_len, (const char *)m->key, rd_kafka_err2str(m->err));
        l->failed = 1;
        return;
    }
    l->produced++;
    ct_pending_done(l->pending, h);
}

static rd_kafka_t *open_consumer(cfg_t *cfg, char *err, size_t errsz)
{
    static const char *const extra[] = {
        "enable.auto.commit", "false", "enable.auto.offset.store", "false", "auto.offset.reset",
        "earliest",           NULL};
    rd_kafka_conf_t *conf = kf_conf(cfg, RD_KAFKA_CONSUMER, extra, err, errsz);
    if (!conf)
        return NULL;
    /* the daemon's group (kafka.group.id) must never be shared: it commits other offsets */
    if (rd_kafka_conf_set(conf, "group.id", cfg->compose_group_id, err, errsz) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = kf_new(RD_KAFKA_CONSUMER, conf, err, errsz);
    if (!rk)
        return NULL;
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, cfg->topic_alerts, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, t);
    rd_kafka_topic_partition_list_destroy(t);
    if (e) {
        snprintf(err, errsz, "subscribe %s: %s", cfg->topic_alerts, rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

static rd_kafka_t *open_producer(live_t *l, char *err, size_t errsz)
{
    static const char *const extra[] = {"enable.idempotence", "true", "acks", "all", NULL};
    rd_kafka_conf_t *conf = kf_conf(l->cfg, RD_KAFKA_PRODUCER, extra, err, errsz);
    if (!conf)
        return NULL;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, l);
    return kf_new(RD_KAFKA_PRODUCER, conf, err, errsz);
}

/* Takes one alert message: recorded as pending, then handed to the composer, or done at once
 * when there is nothing to answer (undecodable, an alert id already answered in the run).
 * 0, or -1 when out of memory. */
static int read_alert(live_t *l, const rd_kafka_message_t *m)
{
    int64_t h = ct_pending_add(l->pending, m->partition, m->offset);
    if (h < 0)
        return -1;
    alert_t a;
    char why[256];
    if (ar_decode(l->dec, m->payload, m->len, &a, why, sizeof why) != 0) {
        /* Nothing to answer: logged and committed past, like tail skips it. */
        log_warn("compose", "%s [%d] offset %lld: undecodable alert skipped: %s",
                 l->cfg->topic_alerts, m->partition, (long long)m->offset, why);
        l->undecodable++;
        ct_pending_done(l->pending, h);
        return 0;
    }
    int s = ct_seen_add(&l->seen, a.alert_id);
    if (s < 0)
        return -1;
    if (s == 1) {
        log_info("compose", "alert %s already answered in this run: skipped", a.alert_id);
        l->dup++;
        ct_pending_done(l->pending, h);
        return 0;
    }
    if (cm_submit(l->cm, &a, (void *)(intptr_t)h) != 0)
        return -1; /* never: the loop reads only while a slot is free */
    l->answering++;
    return 0;
}

/* Produces the message of an answered alert (acknowledged later, in dr_cb). */
static void produce_answer(live_t *l, const cm_result_t *r, void *tag)
{
    int64_t len = cm_encode(r, l->cfg->llm_model, l->buf, l->bufcap);
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
    while (len >= 0) {
        e = rd_kafka_producev(l->pk, RD_KAFKA_V_TOPIC(l->cfg->topic_messages),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_KEY(r->user_id, strlen(r->user_id)),
                              RD_KAFKA_V_VALUE(l->buf, (size_t)len), RD_KAFKA_V_OPAQUE(tag),
                              RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(l->pk, 100);
    }
    if (e) {
        fprintf(stderr,
                "churnstream compose: alert %s: message not produced to %s: %s; offset not "
                "committed, it will be read again\n",
                r->alert_id, l->cfg->topic_messages, rd_kafka_err2str(e));
        l->failed = 1;
        return;
    }
    l->in_acks++;
    char *js = l->print ? cm_result_to_json(r, l->cfg->llm_model) : NULL;
    if (js) {
        printf("%s\n", js);
        fflush(stdout);
        free(js);
    }
    log_debug("compose", "alert %s -> %s%s%s in %lld ms", r->alert_id,
              r->from_llm ? "llm" : "template", r->from_llm ? "" : " ", r->fallback_reason,
              (long long)r->latency_ms);
}

/* Commits, synchronously, every partition whose done prefix moved. */
static void commit_done(live_t *l)
{
    ct_commit_t c[64];
    size_t n;
    while ((n = ct_pending_commits(l->pending, c, sizeof c / sizeof c[0])) > 0) {
        rd_kafka_topic_partition_list_t *o = rd_kafka_topic_partition_list_new((int)n);
        for (size_t i = 0; i < n; i++)
            rd_kafka_topic_partition_list_add(o, l->cfg->topic_alerts, c[i].partition)->offset =
                c[i].offset;
        rd_kafka_resp_err_t ce = rd_kafka_commit(l->ck, o, 0 /* sync */);
        rd_kafka_topic_partition_list_destroy(o);
        if (ce) /* a rebalance moved the partition: the new owner re-reads; not an error */
            log_warn("compose", "commit %s (%zu partitions): %s", l->cfg->topic_alerts, n,
                     rd_kafka_err2str(ce));
        if (n < sizeof c / sizeof c[0])
            break;
    }
}

/* Reads one message: 1 when it was an alert (answered, or skipped with nothing to answer), 0
 * when none came within wait_ms or it was a consumer event (partition EOF, an error), -1 on a
 * fatal error. */
static int poll_alert(live_t *l, int wait_ms)
{
    rd_kafka_message_t *m = rd_kafka_consumer_poll(l->ck, wait_ms);
    if (!m)
        return 0;
    int rc = 1;
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            log_warn("compose", "%s: %s", l->cfg->topic_alerts, rd_kafka_message_errstr(m));
        rc = m->err == RD_KAFKA_RESP_ERR__FATAL ? -1 : 0;
    } else if (read_alert(l, m) != 0) {
        fprintf(stderr, "churnstream compose: out of memory\n");
        rc = -1;
    }
    rd_kafka_message_destroy(m);
    return rc;
}

/* Reads alerts until a signal, max_messages answered, timeout_s without an alert or a
 * failure, then lets the alerts in flight finish. 0, or 1 on a failure. */
static int live_loop(live_t *l, long long max_messages, double timeout_s)
{
    double last_s = kf_mono_s();
    int reading = 1;
    for (;;) {
        if (cli_stop_requested || l->failed || (max_messages > 0 && l->answering >= max_messages))
            reading = 0;
        int busy = cm_pending(l->cm) > 0, got = 0;
        rd_kafka_poll(l->pk, 0);
        if (reading && cm_ready(l->cm) && ct_pending_count(l->pending) < LIVE_PENDING_MAX) {
            got = poll_alert(l, busy || l->in_acks ? 0 : 200);
            if (got < 0)
                l->failed = 1;
            else if (got)
                last_s = kf_mono_s();
            else if (!busy && timeout_s > 0 && kf_mono_s() - last_s > timeout_s)
                reading = 0;
        }
        cm_result_t r;
        void *tag;
        /* wait on the endpoint only when no alert is being read */
        int wait_ms = busy && got <= 0 ? 50 : 0;
        while (cm_next(l->cm, wait_ms, &r, &tag) == 1) {
            produce_answer(l, &r, tag);
            wait_ms = 0;
        }
        if (!busy && l->in_acks > 0)
            rd_kafka_poll(l->pk, got > 0 ? 0 : 20);
        commit_done(l);
        if (!reading && cm_pending(l->cm) == 0)
            break;
    }
    /* every answered alert is produced: wait for the acknowledgements, commit the rest */
    if (rd_kafka_flush(l->pk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "churnstream compose: producer flush timed out\n");
        l->failed = 1;
    }
    commit_done(l);
    return l->failed ? 1 : 0;
}

int compose_live(cfg_t *cfg, long long max_messages, double timeout_s, int print)
{
    char err[512];
    live_t l = {.cfg = cfg, .print = print, .bufcap = 16384};
    if (!(l.dec = ar_new(cfg->alerts_schemas_dir, err, sizeof err)) ||
        !(l.cm = cm_new(cfg, NULL, err, sizeof err)) ||
        !(l.ck = open_consumer(cfg, err, sizeof err)) ||
        !(l.pk = open_producer(&l, err, sizeof err))) {
        fprintf(stderr, "churnstream compose: %s\n", err);
        if (l.ck)
            rd_kafka_destroy(l.ck);
        cm_destroy(l.cm);
        ar_destroy(l.dec);
        return 2;
    }
    cli_catch_stop_signals();
    log_info("compose",
             "reading %s in group %s, writing %s; endpoint model %s, %d request(s) in flight",
             cfg->topic_alerts, cfg->compose_group_id, cfg->topic_messages, cfg->llm_model,
             cfg->llm_concurrency);
    int rc = 0;
    l.buf = malloc(l.bufcap);
    l.pending = ct_pending_new();
    if (!l.buf || !l.pending) {
        fprintf(stderr, "churnstream compose: out of memory\n");
        rc = 1;
    } else {
        rc = live_loop(&l, max_messages, timeout_s);
    }
    cm_print_summary(l.cm, stdout);
    printf("compose: kafka: %lld produced to %s, %lld undecodable alerts skipped, %lld duplicate "
           "alert ids skipped\n",
           l.produced, cfg->topic_messages, l.undecodable, l.dup);
    fflush(stdout);
    rd_kafka_consumer_close(l.ck);
    rd_kafka_destroy(l.ck);
    rd_kafka_destroy(l.pk);
    free(l.buf);
    ct_pending_destroy(l.pending);
    ct_seen_free(&l.seen);
    cm_destroy(l.cm);
    ar_destroy(l.dec);
    return rc;
}
