/* One batch of the churn handler (churn_internal.h): checks that Redis still holds what this
 * instance committed, decodes and validates the messages (rejects go to the DLQ; a message
 * that moves event time past a tick is marked, see decode), reads
 * every user of the batch in one pipelined round per partition, runs the events through
 * their partition's pipeline, ends the batch on every partition (learn, watermark, sweeps),
 * and commits records, index, offsets, progress, model, outbox and latest scores in one
 * transaction. Anything short of the commit rolls back (chn_rollback) and the daemon retries
 * the same messages. The scratch arrays live in chn_t and are reused across batches. */
#include "churn_internal.h"
#include "clock.h"
#include "grow.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_reject(dm_batch_result_t *res, size_t index, ev_reason_t r, const char *why)
{
    if (res->n_rejects >= res->rejects_cap)
        return;
    dm_reject_t *x = &res->rejects[res->n_rejects++];
    x->index = index;
    x->reason = (int)r;
    snprintf(x->text, sizeof(x->text), "%s", why[0] ? why : ev_reason_code(r));
}

/* Before anything is applied: rebuilt after a rollback, Redis still holding what was
 * committed, no partition waiting to seek back. 0 to go on, else DM_BATCH_RETRY or _STALE. */
static int precheck(chn_t *ch, size_t n, char *err, size_t errsz)
{
    /* After a rollback the pipelines are rebuilt from Redis before anything else. */
    if (!ch->model && chn_reopen(ch, err, errsz) != 0) {
        chn_rollback(ch);
        return DM_BATCH_RETRY;
    }
    /* With no message in hand, check that Redis still holds what this instance committed:
     * a Redis that lost its data without dropping the connection (FLUSHALL, a failover to
     * an empty replica) is noticed here, not at the partition's next message, which may
     * never come. */
    if (n == 0) {
        int lost = chn_lost_commits(ch, err, errsz);
        if (lost < 0) {
            chn_rollback(ch);
            return DM_BATCH_RETRY;
        }
        if (lost) {
            chn_rollback(ch); /* the daemon's resync reopens everything from Redis */
            return DM_BATCH_STALE;
        }
    }
    /* A partition whose stored offset went back (found by reopen) is re-read now, whether
     * or not this batch holds its messages: the daemon seeks every assigned partition to
     * the stored offsets. */
    for (size_t i = 0; i < ch->nparts; i++)
        if (ch->parts[i].reseek) {
            snprintf(err, errsz,
                     "partition %d: Redis lost commits, its stored next offset %lld is behind "
                     "what this instance committed; seeking back to it",
                     (int)ch->parts[i].partition, (long long)ch->parts[i].next_offset);
            st_redis_discard(ch->st);
            return DM_BATCH_STALE;
        }
    batch_clear(&ch->batch);
    if (batch_reserve(&ch->batch, n ? n : 1) != 0) {
        snprintf(err, errsz, "out of memory");
        return DM_BATCH_RETRY;
    }
    return 0;
}

/* 1. Decodes and validates each message into ch->batch; skips what a previous, committed
 * attempt already applied; rejects go to res. 0, or DM_BATCH_RETRY / _STALE.
 *
 * An event that moves the watermark past a tick gets a tick mark (batch_mark_tick): when the
 * batch is applied, the events before it are followed by a batch end at the watermark it
 * sets (part_tick_mark: learn, move the watermark, sweep), all in the batch's one
 * transaction, so the tick's sweep scores with a model that learnt only the labels known
 * from events before it, as replay's batches, which end there (replay.c read_all). Without
 * it a catch-up batch spanning days of event time learnt every label its events resolve and
 * then swept those days' ticks with that later model (a look-ahead in the scores, alerts
 * and prequential metrics of a daemon catching up on a backlog). Ending the batch (and the
 * transaction) there instead wrote every touched user once per tick: measured with
 * bench/live.py, 2.6x the Redis commands per event and 0.21-0.24 of kcat's drain against
 * 0.30-0.39. With several partitions the watermark is their minimum, so a partition read
 * ahead of the others still brings labels past the slowest one's tick. */
static int decode(chn_t *ch, const dm_msg_t *msgs, size_t n, int64_t now, dm_batch_result_t *res,
                  char *err, size_t errsz)
{
    batch_t *b = &ch->batch;
    const int64_t tick_ms = ch->cfg->tick_interval_ms;
    int64_t wm = chn_watermark(ch, now, 1);
    if (ch->watermark_ms != INT64_MIN && (wm == INT64_MIN || ch->watermark_ms > wm))
        wm = ch->watermark_ms; /* swept up to there already */
    for (size_t i = 0; i < n; i++) {
        const dm_msg_t *m = &msgs[i];
        chn_part_t *p = chn_part_open(ch, m->partition, err, errsz);
        if (!p) {
            chn_rollback(ch);
            return DM_BATCH_RETRY;
        }
        if (p->reseek) {
            /* Nothing was applied yet: the pipelines are as reopened from Redis. */
            snprintf(err, errsz,
                     "partition %d: Redis lost commits, its stored next offset %lld is behind "
                     "this batch; seeking back to it",
                     (int)p->partition, (long long)p->next_offset);
            st_redis_discard(ch->st);
            return DM_BATCH_STALE;
        }
        p->in_batch = 1;
        p->last_msg_wall_ms = now;
        if (p->next_offset >= 0 && m->offset < p->next_offset)
            continue;
        char why[256] = "";
        ev_event_t *ev = &b->evs[b->n];
        ev_reason_t r = ev_decode(ch->dec, EV_WIRE_AUTO, m->value, m->len, ev, why, sizeof(why));
        if (r == EV_OK) {
            r = ev_check_time(ev, ch->watermark_ms, now, ch->cfg->events_max_past_ms,
                              ch->cfg->events_max_future_ms);
            if (r != EV_OK)
                ev_time_window_why(ev, ch->watermark_ms, now, ch->cfg->events_max_past_ms,
                                   ch->cfg->events_max_future_ms, why, sizeof(why));
        }
        if (r != EV_OK) {
            add_reject(res, i, r, why);
            continue;
        }
        if (ev->event_time_ms > p->max_event_ms) {
            /* Only a new maximum can move the watermark (now is fixed within the batch, and
             * a partition's message only ends its idle advance): the min over partitions
             * is recomputed here, not for every event. */
            p->max_event_ms = ev->event_time_ms;
            int64_t wm_next = chn_watermark(ch, now, 1);
            /* The batch's first event too: its tick is swept before it, not at the end. */
            if (wm != INT64_MIN && wm_next != INT64_MIN && eng_tick_floor(wm_next, tick_ms) > wm &&
                batch_mark_tick(b, wm_next) != 0) {
                snprintf(err, errsz, "out of memory");
                chn_rollback(ch);
                return DM_BATCH_RETRY;
            }
            if (wm_next != INT64_MIN && (wm == INT64_MIN || wm_next > wm))
                wm = wm_next;
        }
        b->part[b->n] = m->partition;
        b->off[b->n++] = m->offset;
    }
    return 0;
}

static pl_t *part_pipeline(void *opaque, int32_t partition)
{
    return chn_part_find(opaque, partition)->pl;
}

static int part_prefetch(void *opaque, int32_t partition, const char *const *ids, size_t n,
                         char *err, size_t errsz)
{
    return st_redis_prefetch(((chn_t *)opaque)->st, partition, ids, n, err, errsz);
}

/* The batch boundary on every open partition at watermark wm (learn, move the watermark,
 * sweep): at each tick mark within the batch (is_mark: on what is left of the batch's
 * sweep budget, engine.h) and at its end. 0, or -1 on out of memory. */
static int end_at(chn_t *ch, int64_t wm, int is_mark)
{
    if (wm != INT64_MIN && (ch->watermark_ms == INT64_MIN || wm > ch->watermark_ms))
        ch->watermark_ms = wm;
    for (size_t i = 0; i < ch->nparts; i++)
        if ((is_mark ? pl_tick_mark : pl_batch_end)(ch->parts[i].pl, ch->watermark_ms) != 0) {
            ch->alert_oom = 1;
            break;
        }
    return ch->alert_oom ? -1 : 0;
}

static int part_tick_mark(void *opaque, int64_t wm, char *err, size_t errsz)
{
    if (end_at(opaque, wm, 1) == 0)
        return 0;
    snprintf(err, errsz, "out of memory");
    return -1;
}

/* 2-4. The batch driver (one pipelined read of every user of the batch per partition, then
 * the events in order through their partition's pipeline, with a batch end at each tick
 * mark), then the batch boundary on every partition (learn, move the watermark, sweep).
 * 0, or DM_BATCH_RETRY (rolled back). */
static int apply(chn_t *ch, int64_t now, char *err, size_t errsz)
{
    batch_ops_t ops = {.opaque = ch,
                       .pipeline = part_pipeline,
                       .prefetch = part_prefetch,
                       .tick_mark = part_tick_mark};
    if (batch_apply(&ch->batch, &ops, err, errsz) != 0 ||
        end_at(ch, chn_watermark(ch, now, 1), 0) != 0) {
        if (ch->alert_oom)
            snprintf(err, errsz, "out of memory");
        chn_rollback(ch);
        return DM_BATCH_RETRY;
    }
    return 0;
}

/* 5. One transaction: records, index, offsets, progress, model, outbox, latest scores,
 * sent (st_redis_commit_send); commit_finish learns its outcome. 0, or -1 with err
 * (nothing in flight, nothing known to be applied: the caller rolls back). */
static int commit_send(chn_t *ch, const dm_msg_t *msgs, size_t n, char *err, size_t errsz)
{
    size_t np = ch->nparts, noff = 0;
    st_commit_t c = {0};
    if (CS_GROW4(ch->c_offset_parts, ch->c_progress_parts, ch->c_next_offsets, ch->c_progress,
                 ch->cap_c, np + 1, 16) != 0 ||
        ks_outbox(&ch->alerts, &c) != 0) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < np; i++) {
        chn_part_t *p = &ch->parts[i];
        ch->c_progress_parts[i] = p->partition;
        eng_progress_t ep;
        eng_get_progress(pl_engine(p->pl), &ep);
        eng_progress_pack(&ep, &ch->c_progress[i]);
        if (!p->in_batch)
            continue;
        int64_t next = -1;
        for (size_t j = 0; j < n; j++)
            if (msgs[j].partition == p->partition && msgs[j].offset + 1 > next)
                next = msgs[j].offset + 1;
        ch->c_offset_parts[noff] = p->partition;
        ch->c_next_offsets[noff++] = next;
    }
    c.n_offsets = noff;
    c.offset_partitions = ch->c_offset_parts;
    c.next_offsets = ch->c_next_offsets;
    c.n_progress = np;
    c.progress_partitions = ch->c_progress_parts;
    c.progress = ch->c_progress;
    uint8_t *mbuf = NULL;
    size_t mlen = 0;
    /* One model writer: the model goes with the batch. Shared: its partitions' journals. */
    if (sb_scores(ch->scores, &c.scores, &c.n_scores) != 0 ||
        (!ch->shared && model_version(ch->model) != ch->model_version_committed &&
         model_encode(ch->model, &mbuf, &mlen) != 0) ||
        chn_journals_stage(ch, &c) != 0) {
        chn_journals_done(ch, 0);
        free(mbuf);
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    c.model = mbuf;
    c.model_len = mlen;
    if (st_redis_commit_send(ch->st, &c, err, errsz) != 0) {
        chn_journals_done(ch, 0);
        free(mbuf);
        return -1;
    }
    ch->inflight = 1;
    ch->inflight_noff = noff;
    ch->inflight_model = mbuf;
    ch->inflight_model_len = mlen;
    return 0;
}

/* The outcome of the commit in flight: 0 committed (the stored offsets and the model's
 * rollback point move), 1 not known yet (wait = 0), -1 with err (the caller rolls back). */
static int commit_finish(chn_t *ch, int wait, char *err, size_t errsz)
{
    int rc = st_redis_commit_finish(ch->st, wait, err, errsz);
    if (rc == 1)
        return 1;
    ch->inflight = 0;
    chn_journals_done(ch, rc == 0);
    uint8_t *mbuf = ch->inflight_model;
    ch->inflight_model = NULL;
    if (rc != 0) {
        free(mbuf);
        return -1;
    }
    for (size_t i = 0; i < ch->inflight_noff; i++) {
        chn_part_find(ch, ch->c_offset_parts[i])->next_offset = ch->c_next_offsets[i];
        chn_note_stored(ch, ch->c_offset_parts[i], ch->c_next_offsets[i]);
    }
    if (mbuf) {
        free(ch->model_bytes);
        ch->model_bytes = mbuf; /* the new rollback point */
        ch->model_len = ch->inflight_model_len;
        ch->model_version_committed = model_version(ch->model);
    }
    return 0;
}

/* After the commit: the alerts to hand to Kafka (the sink's flush; the outbox keeps them
 * until delivered, and re-sends them at the next start when the flush fails), the outcomes
 * and the model's figures for /metrics. */
static void report(chn_t *ch, dm_batch_result_t *res)
{
    char err[256];
    if (alert_sink_flush(&ch->alerts, err, sizeof err) != 0)
        log_warn("alerts", "%s", err);
    res->alerts = ks_handed(&ch->alerts, &res->n_alerts);
    res->outcomes = ch->outcomes;
    res->n_outcomes = ch->noutcomes;
    res->watermark_ms = ch->watermark_ms;
    const pm_t *pm = model_metrics(ch->model);
    res->model_labels = pm_count(pm);
    res->model_version = model_version(ch->model);
    res->model_auc = pm_auc(pm);
    res->model_logloss = pm_logloss(pm);
    ex_weights(model_experts(ch->model), res->expert_weight);
    ex_mean_losses(model_experts(ch->model), res->expert_logloss);
    res->btyd_shape_k = ex_shape_k[ex_shape(model_experts(ch->model))];
    res->experts_known = 1;
}

int chn_settle(void *opaque, int wait, dm_batch_result_t *res, char *err, size_t errsz)
{
    chn_t *ch = opaque;
    if (!ch->inflight)
        return 0;
    int64_t t0 = cs_mono_us();
    int rc = commit_finish(ch, wait, err, errsz);
    if (rc == 1)
        return DM_BATCH_IN_FLIGHT;
    int64_t t1 = cs_mono_us();
    st_redis_counters_t k1;
    st_redis_counters(ch->st, &k1);
    res->redis_round_trips = k1.round_trips - ch->inflight_k0.round_trips;
    if (rc != 0) {
        chn_rollback(ch);
        return DM_BATCH_RETRY;
    }
    report(ch, res);
    int64_t t2 = cs_mono_us();
    for (int i = 0; i < DM_PHASES; i++)
        res->phase_us[i] = ch->inflight_phase_us[i];
    res->phase_us[DM_PHASE_COMMIT] += (uint64_t)(t1 - t0);
    res->phase_us[DM_PHASE_REPORT] = (uint64_t)(t2 - t1);
    res->redis_wait_us = k1.wait_us - ch->inflight_k0.wait_us;
    chn_model_sync(ch, ch->inflight_now, 0); /* after the alerts are handed over */
    res->merges_ok = ch->merges_ok;
    res->merges_failed = ch->merges_failed;
    res->merged_entries = ch->merged_entries;
    res->merges_held_back = ch->merges_held_back;
    return 0;
}

int chn_process_batch(void *opaque, const dm_msg_t *msgs, size_t n, dm_batch_result_t *res,
                      char *err, size_t errsz)
{
    chn_t *ch = opaque;
    if (ch->inflight) { /* the daemon settles before any other call (daemon.h): a bug */
        snprintf(err, errsz,
                 "a batch was handed over while the previous commit is in flight "
                 "(settle first): refused, nothing applied");
        return DM_BATCH_RETRY;
    }
    st_redis_counters(ch->st, &ch->inflight_k0);
    const int64_t now = chn_wall_ms();
    int rc = precheck(ch, n, err, errsz);
    if (rc != 0)
        return rc;
    chn_alerts_clear(ch);
    for (size_t i = 0; i < ch->nparts; i++)
        ch->parts[i].in_batch = 0;
    int64_t t0 = cs_mono_us();
    if ((rc = decode(ch, msgs, n, now, res, err, errsz)) != 0)
        return rc;
    int64_t t1 = cs_mono_us();
    if ((rc = apply(ch, now, err, errsz)) != 0)
        return rc;
    int64_t t2 = cs_mono_us();
    if (commit_send(ch, msgs, n, err, errsz) != 0) {
        st_redis_counters_t k1;
        st_redis_counters(ch->st, &k1);
        res->redis_round_trips = k1.round_trips - ch->inflight_k0.round_trips;
        chn_rollback(ch);
        return DM_BATCH_RETRY;
    }
    int64_t t3 = cs_mono_us();
    ch->inflight_now = now;
    memset(ch->inflight_phase_us, 0, sizeof(ch->inflight_phase_us));
    ch->inflight_phase_us[DM_PHASE_DECODE] = (uint64_t)(t1 - t0);
    ch->inflight_phase_us[DM_PHASE_APPLY] = (uint64_t)(t2 - t1);
    ch->inflight_phase_us[DM_PHASE_COMMIT] = (uint64_t)(t3 - t2);
    /* Redis executes the transaction while the daemon collects the next batch; a batch with
     * rejects waits (its DLQ messages must not leave before it is committed). */
    if (ch->cfg->batch_overlap_commit && res->n_rejects == 0)
        return DM_BATCH_IN_FLIGHT;
    return chn_settle(ch, 1, res, err, errsz);
}

void chn_batch_free(chn_t *ch)
{
    batch_free(&ch->batch);
    free(ch->c_offset_parts);
    free(ch->c_progress_parts);
    free(ch->c_next_offsets);
    free(ch->c_progress);
    free(ch->c_jparts);
    free(ch->c_jseqs);
    free(ch->c_jbufs);
    free(ch->c_jlens);
    free(ch->j_known);
    free(ch->merge_parts);
}
