/* The daemon's Kafka consumer: group membership with start offsets from the handler's store
 * (the store, not Kafka, is the source of truth for where to resume: DESIGN.md section 7),
 * micro-batch collection across the whole assignment, pause while a batch is retried, and
 * the asynchronous Kafka commit that keeps standard lag tools meaningful. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dm_internal.h"
#include "grow.h"
#include "kafka.h"
#include "log.h"

#define DM_POLL_SLICE_MS   100
#define DM_LAG_EVERY_MS    1000
#define DM_SEEK_TIMEOUT_MS 5000
#define DM_BACKOFF_MIN_MS  100
#define DM_BACKOFF_MAX_MS  10000
/* Messages between housekeeping calls while a backlog drains (dm_consumer_collect). */
#define DM_HOUSEKEEPING_EVERY 64
/* Messages between two looks for the answer to a commit in flight (dm_settle). */
#define DM_SETTLE_EVERY 64
/* Batches grow while at least this many more full batches wait (adapt_target). */
#define DM_CATCHUP_BATCHES 2

/* ---- the batch in hand ----------------------------------------------------------------- */

static int batch_reserve(dm_t *dm, size_t want)
{
    return CS_GROW3(dm->batch, dm->msgs, dm->rejects, dm->cap_batch, want, 64);
}

/* Takes ownership of msg. On out of memory the message cannot be kept, and dropping it
 * would skip an event: stop instead (the stored offsets make the restart exact). */
static void batch_append(dm_t *dm, rd_kafka_message_t *msg)
{
    if (batch_reserve(dm, dm->n_batch + 1) != 0) {
        log_error("consumer", "out of memory holding a batch of %zu messages: stopping",
                  dm->n_batch + 1);
        rd_kafka_message_destroy(msg);
        dm->fatal = 1;
        dm_stop_flag = 1;
        return;
    }
    dm->batch[dm->n_batch++] = msg;
}

void dm_batch_drop_front(dm_t *dm, size_t n)
{
    if (n > dm->n_batch)
        n = dm->n_batch;
    if (n == 0)
        return; /* also before the first message: dm->batch is still NULL */
    for (size_t i = 0; i < n; i++)
        rd_kafka_message_destroy(dm->batch[i]);
    memmove(dm->batch, dm->batch + n, (dm->n_batch - n) * sizeof(*dm->batch));
    dm->n_batch -= n;
}

/* Revoked partitions' messages leave the batch unprocessed: their new owner resumes from the
 * stored offsets, which do not include them. */
static void batch_drop_partitions(dm_t *dm, const int32_t *ids, size_t n)
{
    size_t kept = 0, dropped = 0;
    for (size_t i = 0; i < dm->n_batch; i++) {
        rd_kafka_message_t *m = dm->batch[i];
        int revoked = 0;
        for (size_t j = 0; j < n && !revoked; j++)
            revoked = m->partition == ids[j];
        if (revoked) {
            rd_kafka_message_destroy(m);
            dropped++;
        } else {
            dm->batch[kept++] = m;
        }
    }
    dm->n_batch = kept;
    if (dropped)
        log_info("consumer", "dropped %zu uncommitted messages of revoked partitions", dropped);
}

/* ---- the assignment table -------------------------------------------------------------- */

static dm_part_t *part_find(dm_t *dm, int32_t partition)
{
    for (size_t i = 0; i < dm->n_parts; i++)
        if (dm->parts[i].partition == partition)
            return &dm->parts[i];
    return NULL;
}

static int part_add(dm_t *dm, int32_t partition, int64_t next_offset)
{
    dm_part_t *p = part_find(dm, partition);
    if (!p) {
        if (CS_GROW(dm->parts, dm->cap_parts, dm->n_parts + 1, 16) != 0)
            return -1;
        p = &dm->parts[dm->n_parts++];
        p->partition = partition;
    }
    p->next_offset = next_offset;
    return 0;
}

static void part_remove(dm_t *dm, int32_t partition)
{
    dm_part_t *p = part_find(dm, partition);
    if (p)
        *p = dm->parts[--dm->n_parts];
}

/* ---- rebalances ------------------------------------------------------------------------ */

/* Asks the handler for stored offsets, retrying with capped exponential backoff while the
 * store is down. This blocks inside the rebalance callback on purpose: nothing can be
 * consumed before the offsets are known, heartbeats continue on librdkafka's own threads,
 * and the stop flag ends the wait. Returns 0, or -1 when stopping. */
static int handler_assign(dm_t *dm, const int32_t *ids, size_t n, int64_t *offsets)
{
    int64_t backoff_ms = DM_BACKOFF_MIN_MS;
    char err[512];
    for (;;) {
        err[0] = '\0';
        if (dm->h->on_assign(dm->h->opaque, ids, n, offsets, err, sizeof(err)) == 0) {
            dm_handler_state(dm, 1, "reading stored offsets", NULL);
            return 0;
        }
        dm_handler_state(dm, 0, "reading stored offsets", err);
        if (dm_sleep_ms(backoff_ms))
            return -1;
        backoff_ms = backoff_ms * 2 > DM_BACKOFF_MAX_MS ? DM_BACKOFF_MAX_MS : backoff_ms * 2;
    }
}

static void assign_error(const char *what, rd_kafka_error_t *error, rd_kafka_resp_err_t err)
{
    if (error) {
        log_error("consumer", "%s: %s", what, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (err) {
        log_error("consumer", "%s: %s", what, rd_kafka_err2str(err));
    }
}

static void on_assign(dm_t *dm, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                      const int32_t *ids, size_t n)
{
    int64_t *offsets = calloc(n ? n : 1, sizeof(*offsets));
    if (!offsets || handler_assign(dm, ids, n, offsets) != 0) {
        /* Stopping (or out of memory): take nothing; consumer_close leaves the group. */
        free(offsets);
        if (!dm->cooperative)
            assign_error("unassign", NULL, rd_kafka_assign(rk, NULL));
        if (!dm_stop_flag)
            dm->fatal = 1, dm_stop_flag = 1;
        return;
    }
    if (!dm->cooperative)
        dm->n_parts = 0; /* eager: the list is the whole new assignment */
    for (size_t i = 0; i < n; i++) {
        parts->elems[i].offset = offsets[i] >= 0 ? offsets[i] : dm->reset_offset;
        if (part_add(dm, ids[i], offsets[i]) != 0) {
            log_error("consumer", "out of memory recording the assignment: stopping");
            dm->fatal = 1;
            dm_stop_flag = 1;
        }
        log_info("consumer", "assigned partition %" PRId32 " from %s %" PRId64, ids[i],
                 offsets[i] >= 0 ? "stored offset" : "auto.offset.reset, stored offset",
                 offsets[i]);
    }
    free(offsets);
    if (dm->cooperative)
        assign_error("incremental assign", rd_kafka_incremental_assign(rk, parts), 0);
    else
        assign_error("assign", NULL, rd_kafka_assign(rk, parts));
    atomic_store(&dm->metrics.assigned_partitions, (int)dm->n_parts);
    dm->joined = 1;
    /* A rebalance in the middle of a retry: the new partitions must wait too. */
    if (dm->paused)
        dm_consumer_pause(dm, 1);
}

static void on_revoke(dm_t *dm, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                      const int32_t *ids, size_t n)
{
    batch_drop_partitions(dm, ids, n);
    dm->h->on_revoke(dm->h->opaque, ids, n);
    for (size_t i = 0; i < n; i++)
        part_remove(dm, ids[i]);
    int lost = rd_kafka_assignment_lost(rk);
    log_info("consumer", "%s %zu partitions", lost ? "lost" : "revoked", n);
    if (lost || dm->n_parts == 0) {
        dm->joined = 0; /* until the next assignment */
        dm->unjoined_since_ms = dm_now_ms();
    }
    if (dm->cooperative)
        assign_error("incremental unassign", rd_kafka_incremental_unassign(rk, parts), 0);
    else
        assign_error("unassign", NULL, rd_kafka_assign(rk, NULL));
    atomic_store(&dm->metrics.assigned_partitions, (int)dm->n_parts);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    dm_t *dm = opaque;
    /* A batch whose commit is in flight is settled first: the handler's assignment is only
     * touched between batches, and revoked partitions' messages leave a settled batch. */
    dm_settle(dm, 1);
    dm->cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    size_t n = (size_t)parts->cnt;
    int32_t *ids = malloc((n ? n : 1) * sizeof(*ids));
    if (!ids) {
        log_error("consumer", "out of memory in a rebalance: stopping");
        dm->fatal = 1;
        dm_stop_flag = 1;
        return;
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = parts->elems[i].partition;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(dm, rk, parts, ids, n);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        on_revoke(dm, rk, parts, ids, n);
    } else {
        log_error("consumer", "rebalance failed: %s", rd_kafka_err2str(err));
        on_revoke(dm, rk, parts, ids, n);
    }
    free(ids);
}

static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    (void)offsets;
    (void)opaque;
    /* The Kafka commit only feeds lag tools; the store holds the offsets that matter, so a
     * failed commit (typically during a rebalance) is logged, not retried. */
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        log_warn("consumer", "offset commit to Kafka failed: %s", rd_kafka_err2str(err));
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    dm_t *dm = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[512];
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        log_error("consumer", "fatal Kafka error: %s", fatal);
        dm->fatal = 1;
        dm_stop_flag = 1;
        return;
    }
    log_warn("consumer", "kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
    snprintf(dm->last_kafka_error, sizeof(dm->last_kafka_error), "%s: %s",
             rd_kafka_err2name((rd_kafka_resp_err_t)err),
             reason && *reason ? reason : rd_kafka_err2str((rd_kafka_resp_err_t)err));
}

/* /healthz says 503 (and the log says why, once) when no assignment came for join_wait_ms;
 * recovers with the next assignment. Runs on the main thread at every poll. */
static void check_assignment(dm_t *dm)
{
    int64_t now = dm_now_ms();
    if (dm->joined) {
        if (dm->kafka_unhealthy) {
            dm->kafka_unhealthy = 0;
            dm_metrics_set_kafka(&dm->metrics, 1, NULL);
            log_info("consumer", "assignment received: consuming again");
        }
        return;
    }
    if (dm->kafka_unhealthy || now - dm->unjoined_since_ms < dm->join_wait_ms)
        return;
    char detail[1024];
    snprintf(detail, sizeof(detail),
             "no partition assignment for %lld s from group \"%s\" on topic \"%s\" "
             "(kafka.bootstrap.servers=%s)%s%s",
             (long long)((now - dm->unjoined_since_ms) / 1000), dm->group, dm->cfg->topic_events,
             dm->bootstrap[0] ? dm->bootstrap : "(empty)",
             dm->last_kafka_error[0] ? "; last error: " : "", dm->last_kafka_error);
    log_warn("consumer", "%s: check the brokers, kafka.bootstrap.servers and the topic", detail);
    dm->kafka_unhealthy = 1;
    dm_metrics_set_kafka(&dm->metrics, 0, detail);
}

/* ---- setup ----------------------------------------------------------------------------- */

/* Sets a property run depends on; warns when the user's kafka.* keys asked otherwise. */
static int conf_force(const cfg_t *cfg, rd_kafka_conf_t *conf, const char *name, const char *value,
                      char *errstr, size_t errstr_size)
{
    for (int i = 0; i < cfg->kafka_count; i++)
        if (strcmp(cfg->kafka_keys[i], name) == 0 && strcmp(cfg->kafka_values[i], value) != 0)
            log_warn("consumer",
                     "kafka.%s=%s is overridden: run needs %s=%s (offsets live in "
                     "the store)",
                     name, cfg->kafka_values[i], name, value);
    if (rd_kafka_conf_set(conf, name, value, errstr, errstr_size) != RD_KAFKA_CONF_OK)
        return -1;
    return 0;
}

int dm_consumer_open(dm_t *dm, char *errstr, size_t errstr_size)
{
    /* Applied before the user's kafka.* keys, so those win. Without a stored offset, the
     * state is empty, so by default it is rebuilt from the oldest retained event. */
    static const char *const extra[] = {
        "auto.offset.reset", "earliest", "enable.partition.eof", "false", NULL,
    };
    rd_kafka_conf_t *conf = kf_conf(dm->cfg, RD_KAFKA_CONSUMER, extra, errstr, errstr_size);
    if (!conf)
        return -1;
    if (conf_force(dm->cfg, conf, "enable.auto.commit", "false", errstr, errstr_size) ||
        conf_force(dm->cfg, conf, "enable.auto.offset.store", "false", errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    char reset[32] = "earliest";
    size_t sz = sizeof(reset);
    if (rd_kafka_conf_get(conf, "auto.offset.reset", reset, &sz) != RD_KAFKA_CONF_OK)
        snprintf(reset, sizeof(reset), "earliest");
    if (!strcmp(reset, "earliest") || !strcmp(reset, "smallest") || !strcmp(reset, "beginning"))
        dm->reset_offset = RD_KAFKA_OFFSET_BEGINNING;
    else if (!strcmp(reset, "latest") || !strcmp(reset, "largest") || !strcmp(reset, "end"))
        dm->reset_offset = RD_KAFKA_OFFSET_END;
    else {
        /* "error": no automatic choice; Kafka's committed offset, then the error event. */
        dm->reset_offset = RD_KAFKA_OFFSET_INVALID;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, dm);
    if (!(dm->consumer = kf_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size)))
        return -1;
    rd_kafka_poll_set_consumer(dm->consumer);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, dm->cfg->topic_events, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(dm->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        snprintf(errstr, errstr_size, "cannot subscribe to topic \"%s\": %s", dm->cfg->topic_events,
                 rd_kafka_err2str(err));
        return -1;
    }
    /* How long a member may wait for its group before /healthz says so: a join takes up to
     * a session timeout (a previous member's leave), plus the broker's rebalance delay. */
    char sess[32] = "45000";
    size_t ssz = sizeof(sess);
    rd_kafka_conf_t *cur = (rd_kafka_conf_t *)rd_kafka_conf(dm->consumer);
    if (rd_kafka_conf_get(cur, "session.timeout.ms", sess, &ssz) != RD_KAFKA_CONF_OK)
        snprintf(sess, sizeof(sess), "45000");
    dm->join_wait_ms = atoll(sess) + 10000;
    dm->unjoined_since_ms = dm_now_ms();
    size_t bsz = sizeof(dm->bootstrap), gsz = sizeof(dm->group);
    if (rd_kafka_conf_get(cur, "bootstrap.servers", dm->bootstrap, &bsz) != RD_KAFKA_CONF_OK)
        dm->bootstrap[0] = '\0';
    if (rd_kafka_conf_get(cur, "group.id", dm->group, &gsz) != RD_KAFKA_CONF_OK)
        dm->group[0] = '\0';
    if (!dm->bootstrap[0]) {
        /* Never connects: say so at once (the wait would only delay the same verdict). */
        dm->join_wait_ms = 0;
        log_warn("consumer", "kafka.bootstrap.servers is empty: the consumer can never connect");
    }
    log_info("consumer",
             "subscribed to \"%s\" (auto.offset.reset=%s when the store has no "
             "offset)",
             dm->cfg->topic_events, reset);
    return 0;
}

/* ---- polling --------------------------------------------------------------------------- */

static void handle_message(dm_t *dm, rd_kafka_message_t *msg)
{
    if (!msg->err) {
        batch_append(dm, msg);
        return;
    }
    if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        log_warn("consumer", "consume error: %s", rd_kafka_message_errstr(msg));
    rd_kafka_message_destroy(msg);
}

static void housekeeping(dm_t *dm)
{
    dm_producer_poll(dm);
    dm_alerts_pump(dm);
    check_assignment(dm);
    int64_t now = dm_now_ms();
    if (now >= dm->next_lag_ms) {
        dm_consumer_update_lag(dm);
        dm->next_lag_ms = now + DM_LAG_EVERY_MS;
    }
}

static rd_kafka_topic_partition_list_t *assignment_list(dm_t *dm);

/* The high watermark of a partition of the events topic as the fetcher last saw it (cached:
 * no broker round trip on the main loop), or -1 when not known yet. */
static int64_t high_watermark(dm_t *dm, int32_t partition)
{
    int64_t lo = -1, hi = -1;
    if (rd_kafka_get_watermark_offsets(dm->consumer, dm->cfg->topic_events, partition, &lo, &hi) !=
        0)
        return -1;
    return hi;
}

/* Messages not yet handed to us: per assigned partition, its high watermark as the fetcher
 * last saw it minus the consumer's position (the offset after the last message polled);
 * partitions with either unknown count 0. Local state only: no broker round trip. */
static int64_t messages_waiting(dm_t *dm)
{
    if (dm->n_parts == 0)
        return 0;
    rd_kafka_topic_partition_list_t *l = assignment_list(dm);
    int64_t waiting = 0;
    if (rd_kafka_position(dm->consumer, l) == RD_KAFKA_RESP_ERR_NO_ERROR)
        for (int i = 0; i < l->cnt; i++) {
            int64_t pos = l->elems[i].offset;
            if (pos < 0)
                continue; /* nothing polled from it yet */
            int64_t hi = high_watermark(dm, l->elems[i].partition);
            if (hi > pos)
                waiting += hi - pos;
        }
    rd_kafka_topic_partition_list_destroy(l);
    return waiting;
}

/* Messages of the next batch in hand: the batch less the front one whose commit is in
 * flight. */
static size_t held(const dm_t *dm)
{
    return dm->inflight ? dm->n_batch - dm->inflight_n : dm->n_batch;
}

/* The next batch's size, after a batch of max messages was collected: while at least
 * DM_CATCHUP_BATCHES more full batches wait on the broker (a backlog: a restart, an outage, a
 * burst), twice as many, up to batch.catchup_factor x batch.max_messages; otherwise
 * batch.max_messages, so that a consumer that keeps up commits small batches at low latency.
 * Why: every transaction carries the whole model (~100 KB) and the batch's fixed costs;
 * while behind, bigger batches spread them over more events (bench/RESULTS.md, live path:
 * +14% events/s draining a backlog, 30% of the Redis commands per event). Tried and
 * not kept: growing whenever a batch filled before batch.max_wait (it grew at half load,
 * where 1,000 messages arrive in 15 ms: p50 latency 40 -> 120 ms). Growing only behind 8 full
 * batches did not lower the latency measurably and, since the position and high watermark
 * are known only for partitions fetched so far, grew too late on a backlog of 5,000 messages
 * a partition. */
static void adapt_target(dm_t *dm, size_t max)
{
    size_t base = (size_t)dm->cfg->batch_max_messages;
    size_t top = base * (size_t)dm->cfg->batch_catchup_factor;
    size_t next = base;
    if (top > base && held(dm) >= max &&
        messages_waiting(dm) >= (int64_t)(DM_CATCHUP_BATCHES * max))
        next = max * 2 < top ? max * 2 : top;
    dm->batch_target = next;
    atomic_store(&dm->metrics.batch_target, (int)next);
}

size_t dm_consumer_collect(dm_t *dm)
{
    size_t before = held(dm);
    size_t max = dm->batch_target;
    int64_t deadline_ms = -1;
    unsigned since_housekeeping = 0, since_settle = 0;
    while (held(dm) < max && !dm_stop_flag) {
        int timeout_ms = DM_POLL_SLICE_MS;
        if (deadline_ms >= 0) {
            int64_t left_ms = deadline_ms - dm_now_ms();
            if (left_ms <= 0)
                break;
            if (left_ms < timeout_ms)
                timeout_ms = (int)left_ms;
        }
        /* While a commit is in flight, messages already fetched are collected, its answer
         * looked for every DM_SETTLE_EVERY of them; once none is waiting, the answer is
         * waited for (blocking on Redis, not spinning on the consumer: on a busy machine a
         * spin takes the CPU the fetcher and Redis need). */
        if (dm->inflight)
            timeout_ms = 0;
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(dm->consumer, timeout_ms);
        if (dm->inflight && !msg) {
            dm_settle(dm, 1);
        } else if (dm->inflight && ++since_settle >= DM_SETTLE_EVERY) {
            dm_settle(dm, 0);
            since_settle = 0;
        }
        /* A commit that failed left its messages in hand without a window: they go back to
         * the caller now, for the retry, rather than wait for a message that may not come. */
        if (!dm->inflight && held(dm) > 0 && deadline_ms < 0)
            deadline_ms = dm_now_ms();
        /* after a quiet poll, and every DM_HOUSEKEEPING_EVERY messages of a backlog */
        if (!msg || ++since_housekeeping >= DM_HOUSEKEEPING_EVERY) {
            housekeeping(dm);
            since_housekeeping = 0;
        }
        /* A quiet slice with nothing in hand returns, so the caller's idle calls run (they
         * carry event time forward by the wall clock: tick.idle_advance). With a commit in
         * flight the loop goes on until it is settled. */
        if (!msg && held(dm) == 0 && !dm->inflight)
            break;
        if (!msg)
            continue;
        handle_message(dm, msg);
        /* The window opens with the batch's first message (a rebalance may have emptied it). */
        if (held(dm) > 0 && deadline_ms < 0)
            deadline_ms = dm_now_ms() + dm->cfg->batch_max_wait_ms;
        else if (held(dm) == 0)
            deadline_ms = -1;
    }
    adapt_target(dm, max);
    return held(dm) - before;
}

void dm_consumer_serve(dm_t *dm, int ms)
{
    int64_t end_ms = dm_now_ms() + ms;
    while (!dm_stop_flag) {
        int64_t left_ms = end_ms - dm_now_ms();
        if (left_ms <= 0)
            break;
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(
            dm->consumer, left_ms < DM_POLL_SLICE_MS ? (int)left_ms : DM_POLL_SLICE_MS);
        housekeeping(dm);
        if (msg)
            handle_message(dm, msg); /* fetched before the pause took effect: keep it */
    }
}

static rd_kafka_topic_partition_list_t *assignment_list(dm_t *dm)
{
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new((int)(dm->n_parts ? dm->n_parts : 1));
    for (size_t i = 0; i < dm->n_parts; i++)
        rd_kafka_topic_partition_list_add(l, dm->cfg->topic_events, dm->parts[i].partition);
    return l;
}

void dm_consumer_pause(dm_t *dm, int pause)
{
    dm->paused = pause;
    if (dm->n_parts == 0)
        return;
    rd_kafka_topic_partition_list_t *l = assignment_list(dm);
    rd_kafka_resp_err_t err = pause ? rd_kafka_pause_partitions(dm->consumer, l)
                                    : rd_kafka_resume_partitions(dm->consumer, l);
    if (err)
        log_warn("consumer", "%s partitions: %s", pause ? "pause" : "resume",
                 rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(l);
}

void dm_consumer_commit(dm_t *dm, const int32_t *partitions, const int64_t *next, size_t n,
                        int sync)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)(n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        dm_part_t *p = part_find(dm, partitions[i]);
        if (!p)
            continue; /* revoked meanwhile */
        p->next_offset = next[i];
        rd_kafka_topic_partition_list_add(l, dm->cfg->topic_events, partitions[i])->offset =
            next[i];
    }
    if (l->cnt > 0) {
        rd_kafka_resp_err_t err = rd_kafka_commit(dm->consumer, l, sync ? 0 : 1);
        if (err && sync)
            log_warn("consumer", "final offset commit to Kafka failed: %s", rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(l);
}

void dm_consumer_resync(dm_t *dm, const int32_t *partitions, size_t n)
{
    int64_t *offsets = calloc(n ? n : 1, sizeof(*offsets));
    if (!offsets || handler_assign(dm, partitions, n, offsets) != 0) {
        free(offsets);
        return;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)(n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        if (!part_find(dm, partitions[i]))
            continue;
        part_add(dm, partitions[i], offsets[i]);
        rd_kafka_topic_partition_list_add(l, dm->cfg->topic_events, partitions[i])->offset =
            offsets[i] >= 0 ? offsets[i] : dm->reset_offset;
        log_warn("consumer", "partition %" PRId32 ": resuming from stored offset %" PRId64,
                 partitions[i], offsets[i]);
    }
    if (l->cnt > 0)
        assign_error("seek to stored offsets",
                     rd_kafka_seek_partitions(dm->consumer, l, DM_SEEK_TIMEOUT_MS), 0);
    rd_kafka_topic_partition_list_destroy(l);
    free(offsets);
}

void dm_consumer_update_lag(dm_t *dm)
{
    int32_t ids[DM_LAG_PARTITIONS];
    int64_t lag[DM_LAG_PARTITIONS];
    size_t n = 0;
    for (size_t i = 0; i < dm->n_parts && n < DM_LAG_PARTITIONS; i++) {
        int64_t hi = high_watermark(dm, dm->parts[i].partition);
        if (hi < 0 || dm->parts[i].next_offset < 0)
            continue;
        ids[n] = dm->parts[i].partition;
        lag[n] = hi > dm->parts[i].next_offset ? hi - dm->parts[i].next_offset : 0;
        n++;
    }
    dm_metrics_set_lag(&dm->metrics, ids, lag, n);
}

void dm_consumer_close(dm_t *dm)
{
    if (!dm->consumer)
        return;
    /* Leaves the group; the revoke callback runs from here (on_revoke). */
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(dm->consumer);
    if (err)
        log_warn("consumer", "close: %s", rd_kafka_err2str(err));
    rd_kafka_destroy(dm->consumer);
    dm->consumer = NULL;
}

void dm_consumer_close_bounded(dm_t *dm, int timeout_ms)
{
    if (!dm->consumer)
        return;
    rd_kafka_queue_t *q = rd_kafka_queue_new(dm->consumer);
    rd_kafka_error_t *error = q ? rd_kafka_consumer_close_queue(dm->consumer, q) : NULL;
    if (!q || error) {
        if (error) {
            log_warn("consumer", "close: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
        if (q)
            rd_kafka_queue_destroy(q);
        dm_consumer_close(dm);
        return;
    }
    /* The rebalance (revoke) of the close arrives on q: serving it runs rebalance_cb. */
    int64_t deadline_ms = dm_now_ms() + timeout_ms;
    while (!rd_kafka_consumer_closed(dm->consumer) && dm_now_ms() < deadline_ms) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
        if (!ev)
            continue;
        if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
            rebalance_cb(dm->consumer, rd_kafka_event_error(ev),
                         rd_kafka_event_topic_partition_list(ev), dm);
        rd_kafka_event_destroy(ev);
    }
    int closed = rd_kafka_consumer_closed(dm->consumer);
    rd_kafka_queue_destroy(q);
    if (closed) {
        rd_kafka_destroy(dm->consumer);
    } else {
        log_warn("consumer",
                 "leaving the group did not finish within %d ms (broker unreachable?): "
                 "closing anyway; the group reassigns this member's partitions after "
                 "session.timeout.ms, from the offsets in the store",
                 timeout_ms);
        rd_kafka_destroy_flags(dm->consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    dm->consumer = NULL;
}
