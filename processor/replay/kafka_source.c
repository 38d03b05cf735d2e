/* Kafka time-range source for replay: assign (no group join), read each partition from the
 * offset for `from` to the offset for `to`, decode, keep compact records, sort by event time. */
#include "kafka_source.h"
#include "grow.h"
#include "kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "log.h"

typedef struct ks_rec_s {
    int64_t t_ms, offset;
    double amount;
    uint32_t str_off; /* user id (accepted) or reject detail, in the pool */
    uint16_t str_len;
    int16_t partition;
    uint8_t type, reason;
} ks_rec_t;

struct ks_s {
    ks_rec_t *recs;
    size_t n, cap;
    char *pool;
    size_t pool_len, pool_cap;
};

static int pool_add(ks_t *ks, const char *s, size_t n, uint32_t *off)
{
    if (ks->pool_len + n > UINT32_MAX)
        return -1;
    if (CS_GROW(ks->pool, ks->pool_cap, ks->pool_len + n, 1 << 20) != 0)
        return -1;
    memcpy(ks->pool + ks->pool_len, s, n);
    *off = (uint32_t)ks->pool_len;
    ks->pool_len += n;
    return 0;
}

static ks_rec_t *rec_new(ks_t *ks)
{
    if (CS_GROW(ks->recs, ks->cap, ks->n + 1, 65536) != 0)
        return NULL;
    return &ks->recs[ks->n++];
}

int ks_parse_time(const char *text, int64_t *out_ms)
{
    char *end;
    long long v = strtoll(text, &end, 10);
    if (*text && *end == '\0') {
        *out_ms = v;
        return 0;
    }
    return ev_parse_iso_ms(text, out_ms);
}

static int cmp_rec(const void *a, const void *b)
{
    const ks_rec_t *x = a, *y = b;
    /* rejects first (they carry no trustworthy time), then event time, partition, offset */
    if ((x->reason != EV_OK) != (y->reason != EV_OK))
        return x->reason != EV_OK ? -1 : 1;
    if (x->reason == EV_OK && x->t_ms != y->t_ms)
        return x->t_ms < y->t_ms ? -1 : 1;
    if (x->partition != y->partition)
        return x->partition - y->partition;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int keep(ks_t *ks, ev_decoder_t *dec, const rd_kafka_message_t *m)
{
    ev_event_t ev;
    char why[256] = "";
    ev_reason_t r = ev_decode(dec, EV_WIRE_AUTO, m->payload, m->len, &ev, why, sizeof(why));
    ks_rec_t *rec = rec_new(ks);
    if (!rec)
        return -1;
    memset(rec, 0, sizeof(*rec));
    rec->partition = (int16_t)m->partition;
    rec->offset = m->offset;
    rec->reason = (uint8_t)r;
    if (r == EV_OK) {
        rec->t_ms = ev.event_time_ms;
        rec->amount = ev.amount;
        rec->type = (uint8_t)ev.type;
        rec->str_len = ev.user_id_len;
        return pool_add(ks, ev.user_id, ev.user_id_len, &rec->str_off);
    }
    size_t n = strnlen(why, sizeof(why));
    rec->str_len = (uint16_t)n;
    return pool_add(ks, why, n, &rec->str_off);
}

/* Sets start and end (one entry per partition of md's topic) to the offsets of [from_ms,
 * to_ms) (INT64_MIN / INT64_MAX: the partition's low / high watermark). Returns the number
 * of partitions with something to read, or -1 with errstr. */
static int resolve_range(rd_kafka_t *rk, const char *topic, const rd_kafka_metadata_t *md,
                         int64_t from_ms, int64_t to_ms, int timeout_ms,
                         rd_kafka_topic_partition_list_t *start,
                         rd_kafka_topic_partition_list_t *end, char *errstr, size_t errstr_size)
{
    int nparts = md->topics[0].partition_cnt, active = -1;
    int64_t *hi = calloc((size_t)nparts + 1, sizeof(int64_t));
    if (!hi) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    rd_kafka_resp_err_t err;
    for (int i = 0; i < nparts; i++) {
        int32_t p = md->topics[0].partitions[i].id;
        int64_t lo;
        if ((err = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi[i], timeout_ms))) {
            snprintf(errstr, errstr_size, "kafka: %s [%d]: watermarks: %s", topic, p,
                     rd_kafka_err2str(err));
            goto out;
        }
        rd_kafka_topic_partition_list_add(start, topic, p)->offset =
            from_ms == INT64_MIN ? lo : from_ms;
        rd_kafka_topic_partition_list_add(end, topic, p)->offset =
            to_ms == INT64_MAX ? hi[i] : to_ms;
    }
    if ((from_ms != INT64_MIN && (err = rd_kafka_offsets_for_times(rk, start, timeout_ms))) ||
        (to_ms != INT64_MAX && (err = rd_kafka_offsets_for_times(rk, end, timeout_ms)))) {
        snprintf(errstr, errstr_size, "kafka: %s: offsets for times: %s", topic,
                 rd_kafka_err2str(err));
        goto out;
    }
    /* offsets_for_times answers -1 (end) when no message is at or after the time. */
    active = 0;
    for (int i = 0; i < nparts; i++) {
        if (start->elems[i].offset < 0)
            start->elems[i].offset = hi[i];
        if (end->elems[i].offset < 0)
            end->elems[i].offset = hi[i];
        if (start->elems[i].offset < end->elems[i].offset)
            active++;
    }
out:
    free(hi);
    return active;
}

/* Reads every assigned partition from start to end, keeping the records. 0, or -1 with
 * errstr (a Kafka error, no progress for timeout_ms, out of memory). */
static int read_range(ks_t *ks, ev_decoder_t *dec, rd_kafka_t *rk, const char *topic,
                      const rd_kafka_topic_partition_list_t *start,
                      const rd_kafka_topic_partition_list_t *end, int active, int timeout_ms,
                      char *errstr, size_t errstr_size)
{
    int nparts = start->cnt, rc = -1;
    int *done = calloc((size_t)nparts + 1, sizeof(int));
    if (!done) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (int i = 0; i < nparts; i++)
        done[i] = start->elems[i].offset >= end->elems[i].offset;
    struct timespec last_progress;
    clock_gettime(CLOCK_MONOTONIC, &last_progress);
    while (active > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!m) {
            long idle_ms = (now.tv_sec - last_progress.tv_sec) * 1000 +
                           (now.tv_nsec - last_progress.tv_nsec) / 1000000;
            if (idle_ms > timeout_ms) {
                snprintf(errstr, errstr_size,
                         "kafka: no progress reading %s for %d ms (%d partitions unfinished)",
                         topic, timeout_ms, active);
                goto out;
            }
            continue;
        }
        last_progress = now;
        int idx = -1;
        for (int i = 0; i < nparts; i++)
            if (start->elems[i].partition == m->partition)
                idx = i;
        if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            snprintf(errstr, errstr_size, "kafka: %s [%d]: %s", topic, m->partition,
                     rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            goto out;
        }
        if (idx >= 0 && !done[idx]) {
            int64_t end_off = end->elems[idx].offset;
            if (!m->err && m->offset < end_off && keep(ks, dec, m) != 0) {
                snprintf(errstr, errstr_size, "out of memory");
                rd_kafka_message_destroy(m);
                goto out;
            }
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF || m->offset + 1 >= end_off) {
                done[idx] = 1;
                active--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    rc = 0;
out:
    free(done);
    return rc;
}

ks_t *ks_load(const cfg_t *cfg, const char *topic, int64_t from_ms, int64_t to_ms, int timeout_ms,
              char *errstr, size_t errstr_size)
{
    static const char *const extra[] = {"enable.auto.commit",
                                        "false",
                                        "enable.partition.eof",
                                        "true",
                                        "auto.offset.reset",
                                        "error",
                                        NULL};
    ks_t *ks = calloc(1, sizeof(*ks));
    ev_decoder_t *dec = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *start = NULL, *end = NULL;
    const rd_kafka_metadata_t *md = NULL;
    int ok = 0;
    if (!ks) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (!(dec = ev_decoder_new(cfg->schemas_dir && *cfg->schemas_dir ? cfg->schemas_dir : NULL,
                               errstr, errstr_size)))
        goto out;
    rd_kafka_conf_t *conf = kf_conf(cfg, RD_KAFKA_CONSUMER, extra, errstr, errstr_size);
    if (!conf || !(rk = kf_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size)))
        goto out;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (err || md->topic_cnt != 1 || md->topics[0].err) {
        snprintf(errstr, errstr_size, "kafka: topic \"%s\": %s", topic,
                 rd_kafka_err2str(err             ? err
                                  : md->topic_cnt ? md->topics[0].err
                                                  : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        goto out;
    }
    start = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    end = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    int active =
        resolve_range(rk, topic, md, from_ms, to_ms, timeout_ms, start, end, errstr, errstr_size);
    if (active < 0)
        goto out;
    if (active > 0 && (err = rd_kafka_assign(rk, start))) {
        snprintf(errstr, errstr_size, "kafka: assign: %s", rd_kafka_err2str(err));
        goto out;
    }
    if (read_range(ks, dec, rk, topic, start, end, active, timeout_ms, errstr, errstr_size) != 0)
        goto out;
    qsort(ks->recs, ks->n, sizeof(ks_rec_t), cmp_rec);
    ok = 1;
out:
    if (start)
        rd_kafka_topic_partition_list_destroy(start);
    if (end)
        rd_kafka_topic_partition_list_destroy(end);
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    ev_decoder_destroy(dec);
    if (!ok) {
        ks_destroy(ks);
        return NULL;
    }
    return ks;
}

void ks_destroy(ks_t *ks)
{
    if (!ks)
        return;
    free(ks->recs);
    free(ks->pool);
    free(ks);
}

size_t ks_count(const ks_t *ks)
{
    return ks->n;
}

ev_reason_t ks_get(const ks_t *ks, size_t i, ev_event_t *ev, char *why, size_t why_size)
{
    const ks_rec_t *r = &ks->recs[i];
    memset(ev, 0, sizeof(*ev));
    if (r->reason != EV_OK) {
        snprintf(why, why_size, "%.*s (partition %d, offset %lld)", (int)r->str_len,
                 ks->pool + r->str_off, r->partition, (long long)r->offset);
        return (ev_reason_t)r->reason;
    }
    memcpy(ev->user_id, ks->pool + r->str_off, r->str_len);
    ev->user_id[r->str_len] = '\0';
    ev->user_id_len = r->str_len;
    ev->event_time_ms = r->t_ms;
    ev->type = (ev_type_t)r->type;
    ev->amount = r->amount;
    return EV_OK;
}
