/* Churn handler: the daemon's batches through decode, per-partition pipelines on the Redis
 * store, and one transaction per batch (the batch itself: churn_batch.c). This file owns the
 * handler's lifecycle, the partitions' pipelines, the model and the daemon callbacks.
 * Memory ownership: the handler owns every pipeline, the model and predictor, and the
 * batch's alert copies (valid until the next call, as daemon.h requires). */
#include "churn_internal.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t chn_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- alerts of the batch ---- */

void chn_alerts_clear(chn_t *ch)
{
    ks_clear(&ch->alerts);
    ch->alert_oom = 0;
    ch->noutcomes = 0;
    sb_clear(ch->scores);
}

/* An outcome decided in this batch: counted in /metrics once the batch is committed (a
 * redone batch decides it again, from the same committed record). */
static void on_outcome(void *opaque, const char *user_id, const oc_result_t *r)
{
    chn_t *ch = opaque;
    if (ch->noutcomes == ch->capoutcomes) {
        size_t cap = ch->capoutcomes ? ch->capoutcomes * 2 : 64;
        dm_outcome_t *p = realloc(ch->outcomes, cap * sizeof(*p));
        if (!p)
            return; /* metrics only: the outcome itself is in the committed record */
        ch->outcomes = p;
        ch->capoutcomes = cap;
    }
    ch->outcomes[ch->noutcomes++] = (dm_outcome_t){.arm = (int)r->arm,
                                                   .kind = alert_kind_name(r->kind),
                                                   .action = r->action ? r->action : "",
                                                   .outcome = oc_outcome_name(r->outcome)};
}

/* ---- latest scores of the batch (committed to P score:<id>) ---- */

static void keep_score(chn_t *ch, const char *uid, const user_rec_t *rec, int64_t t_ms, float p,
                       int seg, alert_trigger_kind_t trigger)
{
    if (ch->cfg->state_scores && sb_put_scoring(ch->scores, ch->policy, ch->model, uid, &rec->feat,
                                                t_ms, p, seg, trigger) != 0)
        ch->alert_oom = 1;
}

static void on_scored(void *opaque, const eng_snapshot_t *s, float p, int seg,
                      const ex_scores_t *experts)
{
    (void)experts;
    keep_score(opaque, s->user_id, s->rec, s->tick_ms, p, seg, ALERT_BY_TICK);
}

static void on_rescored(void *opaque, const char *uid, user_rec_t *rec, int64_t t_ms, float p,
                        int seg)
{
    keep_score(opaque, uid, rec, t_ms, p, seg, ALERT_BY_EVENT);
}

static void on_alert(void *opaque, const alert_t *a)
{
    chn_t *ch = opaque;
    if (alert_sink_emit(&ch->alerts, a) != 0) {
        if (ks_out_of_memory(&ch->alerts))
            ch->alert_oom = 1; /* the batch is retried; an unencodable alert was dropped */
        return;
    }
    sb_alerted(ch->scores, a->user_id, a->event_time_ms, a->alert_id);
}

/* ---- model and partitions ---- */

static void parts_destroy(chn_t *ch)
{
    for (size_t i = 0; i < ch->nparts; i++)
        pl_destroy(ch->parts[i].pl);
    ch->nparts = 0;
}

chn_part_t *chn_part_find(chn_t *ch, int32_t partition)
{
    for (size_t i = 0; i < ch->nparts; i++)
        if (ch->parts[i].partition == partition)
            return &ch->parts[i];
    return NULL;
}

/* Opens a partition's pipeline from what Redis holds (next offset, engine progress). */
chn_part_t *chn_part_open(chn_t *ch, int32_t partition, char *err, size_t errsz)
{
    chn_part_t *p = chn_part_find(ch, partition);
    if (p)
        return p;
    int64_t off;
    int found_off = 0, found_pr = 0;
    store_progress_t blob;
    eng_progress_t pr;
    if (st_redis_load_offset(ch->st, partition, &off, &found_off, err, errsz) != 0 ||
        st_redis_load_progress(ch->st, partition, &blob, &found_pr, err, errsz) != 0)
        return NULL;
    if (found_pr && eng_progress_unpack(&pr, &blob) != 0) {
        snprintf(err, errsz,
                 "redis %s: %sprogress[%d]: unknown engine operation (a pre-release layout, or "
                 "corrupt)",
                 st_redis_address(ch->st), ch->cfg->state_prefix, (int)partition);
        return NULL;
    }
    if (ch->nparts == ch->capparts) {
        size_t cap = ch->capparts ? ch->capparts * 2 : 8;
        chn_part_t *q = realloc(ch->parts, cap * sizeof(*q));
        if (!q) {
            snprintf(err, errsz, "out of memory");
            return NULL;
        }
        ch->parts = q;
        ch->capparts = cap;
    }
    store_ops_t ops;
    if (st_redis_engine_ops(ch->st, partition, &ops) != 0) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    pl_hooks_t hooks = {.opaque = ch,
                        .scored = on_scored,
                        .rescored = on_rescored,
                        .alert = on_alert,
                        .outcome = on_outcome,
                        .prequential_metrics = 1,
                        .bounded_sweeps = 1,
                        .pool = ch->team};
    uint64_t jseq = 0;
    if (ch->shared && st_redis_journal_next(ch->st, partition, &jseq, err, errsz) != 0)
        return NULL;
    pl_t *pl = pl_new(ch->cfg, ch->model, ch->policy, &ops, &hooks, err, errsz);
    if (!pl)
        return NULL;
    pl_set_journaling(pl, ch->shared);
    p = &ch->parts[ch->nparts++];
    memset(p, 0, sizeof(*p));
    p->partition = partition;
    p->pl = pl;
    p->next_offset = found_off ? off : -1;
    p->max_event_ms = INT64_MIN;
    p->last_msg_wall_ms = chn_wall_ms();
    p->jseq = jseq;
    if (found_pr) {
        eng_set_progress(pl_engine(pl), &pr);
        /* The watermark a partition had reached bounds its event times from below. */
        if (pr.watermark_ms != ENG_NO_TIME)
            p->max_event_ms = pr.watermark_ms + ch->cfg->events_allowed_lateness_ms;
    }
    /* So does its latest committed activity, usually more tightly: the progress holds the
     * watermark of the instance that committed it, the minimum over all its partitions. A
     * partition reopened without new messages (fully consumed before a restart or a
     * rebalance) would otherwise hold every partition of this instance back to that bound
     * until tick.idle_advance. */
    int64_t last;
    int found_last = 0;
    if (st_redis_last_activity_max(ch->st, partition, &last, &found_last, err, errsz) != 0) {
        pl_destroy(pl);
        ch->nparts--;
        return NULL;
    }
    if (found_last && last > p->max_event_ms)
        p->max_event_ms = last;
    return p;
}

/* The global watermark after the set of open partitions changed (assignment, reopen):
 * DESIGN.md's min over assigned partitions, so it goes BACK when a partition that lags
 * behind is taken over (another instance died, or a restart finds partitions consumed
 * unevenly). Between such changes process_batch only moves it forward. Keeping the old,
 * higher value instead rejected the lagging partition's events as older than
 * events.max_past (time_out_of_window): lost events that an uninterrupted run applies.
 * The engines are unaffected: each keeps its own progress and never goes back. */
static void watermark_reset(chn_t *ch)
{
    ch->watermark_ms = chn_watermark(ch, 0, 0);
}

int64_t chn_watermark(const chn_t *ch, int64_t now, int idle)
{
    int64_t wm = INT64_MAX;
    for (size_t i = 0; i < ch->nparts; i++) {
        const chn_part_t *p = &ch->parts[i];
        int64_t c = p->max_event_ms == INT64_MIN
                        ? INT64_MIN
                        : p->max_event_ms - ch->cfg->events_allowed_lateness_ms;
        if (idle && now - p->last_msg_wall_ms >= ch->cfg->tick_idle_advance_ms) {
            int64_t w = now - ch->cfg->tick_idle_advance_ms;
            if (w > c)
                c = w;
        }
        if (c < wm)
            wm = c;
    }
    return wm == INT64_MAX ? INT64_MIN : wm;
}

/* Back to what Redis holds: model, engines, cache. Used after a failed commit (Redis down,
 * lost connection: the outcome is re-read from the stored offsets). The model and the
 * pipelines are rebuilt from Redis by the next process_batch (Redis may still be down). */
void chn_rollback(chn_t *ch)
{
    st_redis_discard(ch->st);
    chn_alerts_clear(ch);
    parts_destroy(ch);
    chn_model_drop(ch);
    ch->watermark_ms = INT64_MIN;
}

/* Re-opens the model and every assigned partition after a rollback. A stored offset behind
 * the one this instance had stored means Redis lost commits: the partition is marked for a
 * seek back (chn_part_t.reseek). */
int chn_reopen(chn_t *ch, char *err, size_t errsz)
{
    if (st_redis_reconnect(ch->st, err, errsz) != 0 || chn_model_load(ch, err, errsz) != 0)
        return -1;
    for (size_t i = 0; i < ch->nassigned; i++) {
        chn_part_t *p = chn_part_open(ch, ch->assigned[i], err, errsz);
        if (!p)
            return -1;
        if (ch->assigned_next[i] >= 0 && p->next_offset < ch->assigned_next[i]) {
            log_warn("run",
                     "partition %d: Redis holds next offset %lld, behind the %lld this instance "
                     "committed (Redis lost acknowledged writes): seeking back, the lost "
                     "batches are processed again",
                     (int)p->partition, (long long)p->next_offset, (long long)ch->assigned_next[i]);
            p->reseek = 1;
        }
        ch->assigned_next[i] = p->next_offset;
    }
    watermark_reset(ch);
    return 0;
}

/* 1 when Redis holds, for some assigned partition, a next offset behind (or none where) this
 * instance committed one: Redis lost acknowledged writes. 0 when not, -1 on a Redis error. */
int chn_lost_commits(chn_t *ch, char *err, size_t errsz)
{
    int lost = 0;
    for (size_t i = 0; i < ch->nassigned; i++) {
        if (ch->assigned_next[i] < 0)
            continue;
        int64_t off;
        int found = 0;
        if (st_redis_load_offset(ch->st, ch->assigned[i], &off, &found, err, errsz) != 0)
            return -1;
        if (!found || off < ch->assigned_next[i]) {
            log_warn("run",
                     "partition %d: Redis holds %s, behind the next offset %lld this instance "
                     "committed (Redis lost its data?): seeking back, the partition is read "
                     "again from there",
                     (int)ch->assigned[i], found ? "an older next offset" : "no offset",
                     (long long)ch->assigned_next[i]);
            snprintf(err, errsz,
                     "partition %d: Redis lost commits (stored next offset %lld, committed "
                     "%lld): re-reading from the stored offsets",
                     (int)ch->assigned[i], found ? (long long)off : -1LL,
                     (long long)ch->assigned_next[i]);
            lost = 1;
        }
    }
    return lost;
}

/* Remembers a partition's stored next offset (see chn_s.assigned_next). */
void chn_note_stored(chn_t *ch, int32_t partition, int64_t next_offset)
{
    for (size_t i = 0; i < ch->nassigned; i++)
        if (ch->assigned[i] == partition)
            ch->assigned_next[i] = next_offset;
}

/* ---- daemon callbacks ---- */

static int on_assign(void *opaque, const int32_t *partitions, size_t n, int64_t *start_offsets,
                     char *err, size_t errsz)
{
    chn_t *ch = opaque;
    if (ch->nassigned + n > ch->capassigned) {
        size_t cap = ch->nassigned + n + 8;
        int32_t *a = realloc(ch->assigned, cap * sizeof(*a));
        if (a)
            ch->assigned = a;
        int64_t *an = realloc(ch->assigned_next, cap * sizeof(*an));
        if (an)
            ch->assigned_next = an;
        if (!a || !an) {
            snprintf(err, errsz, "out of memory");
            return -1;
        }
        ch->capassigned = cap;
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < ch->nassigned && ch->assigned[j] != partitions[i])
            j++;
        if (j == ch->nassigned) {
            ch->assigned_next[ch->nassigned] = -1;
            ch->assigned[ch->nassigned++] = partitions[i];
        }
    }
    if (st_redis_reconnect(ch->st, err, errsz) != 0 || chn_model_load(ch, err, errsz) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        chn_part_t *p = chn_part_open(ch, partitions[i], err, errsz);
        if (!p)
            return -1;
        /* The daemon seeks to what is returned here (a new assignment, or a resync after
         * DM_BATCH_STALE): the consumer and Redis agree again. */
        start_offsets[i] = p->next_offset;
        p->reseek = 0;
        chn_note_stored(ch, partitions[i], p->next_offset);
    }
    watermark_reset(ch);
    return 0;
}

static void on_revoke(void *opaque, const int32_t *partitions, size_t n)
{
    chn_t *ch = opaque;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < ch->nassigned; j++)
            if (ch->assigned[j] == partitions[i]) {
                ch->assigned[j] = ch->assigned[--ch->nassigned];
                ch->assigned_next[j] = ch->assigned_next[ch->nassigned];
                break;
            }
        for (size_t j = 0; j < ch->nparts; j++) {
            if (ch->parts[j].partition != partitions[i])
                continue;
            pl_destroy(ch->parts[j].pl);
            ch->parts[j] = ch->parts[--ch->nparts];
            break;
        }
    }
    st_redis_discard(ch->st);
}

static void on_alerts_delivered(void *opaque, const char *const *ids, size_t n)
{
    chn_t *ch = opaque;
    char err[256];
    if (st_redis_outbox_remove(ch->st, ids, n, err, sizeof(err)) != 0)
        log_warn("alerts",
                 "outbox trim failed (the alerts will be re-sent with the same ids "
                 "at the next start): %s",
                 err);
}

static int claim_alerts(void *opaque, const char *const *ids, size_t n, uint8_t *keep, char *err,
                        size_t errsz)
{
    chn_t *ch = opaque;
    return st_redis_outbox_claim(ch->st, ids, n, keep, err, errsz);
}

static int pending_alerts(void *opaque, const dm_alert_t **alerts, size_t *n, char *err,
                          size_t errsz)
{
    chn_t *ch = opaque;
    st_redis_outbox_free(&ch->outbox);
    /* A starting daemon has nothing in flight: older claims are void (a crash left them). */
    if (st_redis_outbox_unclaim_all(ch->st, err, errsz) != 0 ||
        st_redis_outbox_load(ch->st, &ch->outbox, err, errsz) != 0)
        return -1;
    size_t k = ch->outbox.n;
    if (k > ch->cap_dm) {
        dm_alert_t *d = realloc(ch->dm_alerts, k * sizeof(*d));
        if (!d) {
            snprintf(err, errsz, "out of memory");
            return -1;
        }
        ch->dm_alerts = d;
        ch->cap_dm = k;
    }
    /* The outbox keeps the encoded alert only: its kind and trigger headers come from
     * decoding it (an alert the decoder refuses is re-sent without them). */
    alert_decoder_t *dec = k ? alert_decoder_new(err, errsz) : NULL;
    if (k && !dec)
        return -1;
    for (size_t i = 0; i < k; i++) {
        alert_t a;
        char why[160];
        int known =
            alert_decode(dec, ch->outbox.values[i], ch->outbox.lens[i], &a, why, sizeof why) == 0;
        if (!known)
            log_warn("alerts", "outbox alert %s: %s (re-sent without kind/trigger headers)",
                     ch->outbox.ids[i], why);
        ch->dm_alerts[i] = (dm_alert_t){.id = ch->outbox.ids[i],
                                        .key = ch->outbox.user_ids[i],
                                        .key_len = strlen(ch->outbox.user_ids[i]),
                                        .value = ch->outbox.values[i],
                                        .len = ch->outbox.lens[i],
                                        .arm = -1,
                                        .bucket = -1,
                                        .kind = known ? alert_kind_name(a.kind) : NULL,
                                        .trigger = known ? alert_trigger_name(a.trigger) : NULL};
    }
    alert_decoder_destroy(dec);
    *alerts = ch->dm_alerts;
    *n = k;
    if (k)
        log_info("alerts", "re-sending %zu alerts left in the outbox (same ids)", k);
    return 0;
}

chn_t *chn_new(const cfg_t *cfg, const char *model_in, char *errstr, size_t errstr_size)
{
    chn_t *ch = calloc(1, sizeof(*ch));
    if (!ch) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    ch->cfg = cfg;
    ch->watermark_ms = INT64_MIN;
    ch->shared = cfg->model_sync_interval_ms > 0;
    if ((model_in && !(ch->model_in = strdup(model_in))) ||
        !(ch->dec = ev_decoder_new(cfg->schemas_dir && *cfg->schemas_dir ? cfg->schemas_dir : NULL,
                                   errstr, errstr_size)) ||
        !(ch->policy = alert_policy_new(cfg, errstr, errstr_size)) ||
        ks_open(&ch->alerts, cfg, errstr, errstr_size) != 0 ||
        !(ch->st = st_redis_new(cfg, errstr, errstr_size))) {
        chn_destroy(ch);
        return NULL;
    }
    if (!(ch->scores = sb_new()) ||
        !(ch->team = cs_pool_new(cs_pool_default_threads(CHN_SWEEP_THREADS)))) {
        snprintf(errstr, errstr_size, "out of memory");
        chn_destroy(ch);
        return NULL;
    }
    if (!(ch->api = ua_new(cfg, errstr, errstr_size))) {
        chn_destroy(ch);
        return NULL;
    }
    return ch;
}

void chn_destroy(chn_t *ch)
{
    if (!ch)
        return;
    /* Shared model: what was committed since the last merge goes in now, so the stored model
     * holds all of this instance's learning when it stops (else the next merge, anyone's,
     * takes it). */
    if (ch->st)
        chn_model_sync(ch, chn_wall_ms(), 1);
    parts_destroy(ch);
    cs_pool_destroy(ch->team);
    free(ch->parts);
    free(ch->assigned);
    free(ch->assigned_next);
    chn_model_drop(ch);
    free(ch->model_bytes);
    free(ch->inflight_model); /* only when the daemon stopped without settling */
    chn_alerts_clear(ch);
    sb_destroy(ch->scores);
    ua_destroy(ch->api);
    free(ch->outcomes);
    free(ch->dm_alerts);
    chn_batch_free(ch);
    st_redis_outbox_free(&ch->outbox);
    st_redis_destroy(ch->st);
    alert_sink_close(&ch->alerts);
    alert_policy_destroy(ch->policy);
    ev_decoder_destroy(ch->dec);
    free(ch->model_in);
    free(ch);
}

void chn_handler(chn_t *ch, dm_handler_t *out)
{
    memset(out, 0, sizeof(*out));
    out->opaque = ch;
    out->on_assign = on_assign;
    out->on_revoke = on_revoke;
    out->process_batch = chn_process_batch;
    out->settle = chn_settle;
    out->on_alerts_delivered = on_alerts_delivered;
    out->pending_alerts = pending_alerts;
    out->claim_alerts = claim_alerts;
    out->user_get = ua_get_user;
    out->user_api = ch->api;
    out->name = "churn pipeline (engine, models, alerts; Redis state)";
    out->idle_call_ms = 1000;
}
