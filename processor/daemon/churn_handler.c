/* Churn handler: the daemon's batches through decode, per-partition pipelines on the Redis
 * store, and one transaction per batch. Memory ownership: the handler owns every pipeline,
 * the model and predictor, and the batch's alert copies (valid until the next call, as
 * daemon.h requires). */
#include "churn_handler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert.h"
#include "codec.h"
#include "log.h"
#include "model.h"
#include "pipeline.h"
#include "predictor.h"
#include "score_batch.h"
#include "store_redis.h"
#include "user_api.h"

typedef struct chn_part_s {
    int32_t partition;
    pl_t *pl;
    int64_t max_event_ms;     /* INT64_MIN before the first event seen by this instance */
    int64_t last_msg_wall_ms; /* wall time of the last message (idle detection) */
    int64_t next_offset;      /* the stored next offset; messages below it were applied */
    int in_batch;             /* the current batch holds messages of this partition */
    /* Reopened after a rollback with a stored offset behind what this instance had stored:
     * Redis lost acknowledged commits (restarted from an AOF missing its last second, a
     * failover to a lagging replica) while the consumer kept its position. The next batch
     * holding the partition is refused as DM_BATCH_STALE so the daemon seeks back to the
     * stored offset (dm_consumer_resync -> on_assign, which clears this). */
    int reseek;
} chn_part_t;

typedef struct chn_alert_s {
    char id[ALERT_ID_LEN + 1];
    char user_id[EV_USER_ID_MAX + 1];
    uint8_t *value;
    size_t len;
    int arm, bucket;
    alert_kind_t kind;
    alert_trigger_kind_t trigger;
} chn_alert_t;

struct chn_s {
    const cfg_t *cfg;
    char *model_in;
    st_redis_t *st;
    ev_decoder_t *dec;
    alert_policy_t *policy;
    alert_encoder_t *aenc;
    model_t *model;
    pred_t *pred;
    uint8_t *model_bytes; /* the snapshot last committed (or loaded): the rollback point */
    size_t model_len;
    uint64_t model_version_committed;
    chn_part_t *parts; /* open pipelines */
    size_t nparts, capparts;
    int32_t *assigned; /* the daemon's assignment (reopened after a rollback) */
    /* Per assigned partition: the next offset it had in Redis as this instance last knew it
     * (loaded at assignment, then written by its commits); -1 when none. Survives a
     * rollback, so a reload can tell that Redis went back in time. */
    int64_t *assigned_next;
    size_t nassigned, capassigned;
    int64_t watermark_ms; /* global, INT64_MIN before the first */
    /* batch scratch */
    ev_event_t *evs;
    int32_t *ev_part;
    int64_t *ev_off;
    const char **ids;
    size_t cap_evs;
    chn_alert_t *alerts;
    size_t nalerts, capalerts;
    dm_alert_t *dm_alerts;
    size_t cap_dm;
    int alert_oom; /* an alert or a latest score could not be kept: the batch is retried */
    /* outcomes decided in the batch (reported once it is committed) */
    dm_outcome_t *outcomes;
    size_t noutcomes, capoutcomes;
    sb_t *scores; /* the batch's latest scoring per user (P score:<id>) */
    ua_t *api;    /* GET /v1/users/{id}: its own connection, used by the HTTP threads */
    /* outbox re-send at start */
    st_outbox_t outbox;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- alerts of the batch ---- */

static void alerts_clear(chn_t *ch)
{
    for (size_t i = 0; i < ch->nalerts; i++)
        free(ch->alerts[i].value);
    ch->nalerts = 0;
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
    const void *buf;
    size_t len;
    if (alert_encode(ch->aenc, a, &buf, &len) != 0) {
        log_error("alerts", "alert %s for user %s cannot be encoded: dropped", a->alert_id,
                  a->user_id);
        return;
    }
    if (ch->nalerts == ch->capalerts) {
        size_t cap = ch->capalerts ? ch->capalerts * 2 : 64;
        chn_alert_t *p = realloc(ch->alerts, cap * sizeof(*p));
        if (!p) {
            ch->alert_oom = 1;
            return;
        }
        ch->alerts = p;
        ch->capalerts = cap;
    }
    chn_alert_t *x = &ch->alerts[ch->nalerts];
    if (!(x->value = malloc(len))) {
        ch->alert_oom = 1;
        return;
    }
    memcpy(x->value, buf, len);
    x->len = len;
    memcpy(x->id, a->alert_id, sizeof(x->id));
    snprintf(x->user_id, sizeof(x->user_id), "%s", a->user_id);
    x->arm = (int)a->arm;
    x->bucket = (int)a->risk_bucket;
    x->kind = a->kind;
    x->trigger = a->trigger;
    ch->nalerts++;
    sb_alerted(ch->scores, a->user_id, a->event_time_ms, a->alert_id);
}

/* ---- model and partitions ---- */

static void parts_destroy(chn_t *ch)
{
    for (size_t i = 0; i < ch->nparts; i++)
        pl_destroy(ch->parts[i].pl);
    ch->nparts = 0;
}

static void model_drop(chn_t *ch)
{
    pred_destroy(ch->pred);
    model_destroy(ch->model);
    ch->pred = NULL;
    ch->model = NULL;
}

static int model_from_bytes(chn_t *ch, char *err, size_t errsz)
{
    if (!(ch->model = model_decode(ch->model_bytes, ch->model_len, err, errsz)))
        return -1;
    if (model_dim(ch->model) != FEAT_DIM) {
        snprintf(err, errsz, "stored model has %d features, this build has %d",
                 model_dim(ch->model), FEAT_DIM);
        return -1;
    }
    return 0;
}

/* Loads the model once: Redis, else --model-in, else new. Sets the rollback point. */
static int model_load(chn_t *ch, char *err, size_t errsz)
{
    if (ch->model)
        return 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (st_redis_load_model(ch->st, &buf, &len, err, errsz) != 0)
        return -1;
    if (buf) {
        free(ch->model_bytes);
        ch->model_bytes = buf;
        ch->model_len = len;
        if (model_from_bytes(ch, err, errsz) != 0)
            return -1;
        log_info("run", "model version %llu loaded from Redis",
                 (unsigned long long)model_version(ch->model));
    } else if (ch->model_in) {
        if (!(ch->model = model_load_file(ch->model_in, err, errsz)))
            return -1;
        log_info("run", "warm start from %s: model version %llu, %llu examples", ch->model_in,
                 (unsigned long long)model_version(ch->model),
                 (unsigned long long)model_examples_seen(ch->model));
    } else if (!(ch->model = pl_model_new(ch->cfg, err, errsz))) {
        return -1;
    }
    if (!buf) { /* the rollback point is what a failed first batch returns to */
        free(ch->model_bytes);
        ch->model_bytes = NULL;
        if (model_encode(ch->model, &ch->model_bytes, &ch->model_len) != 0) {
            snprintf(err, errsz, "out of memory");
            return -1;
        }
    }
    ch->model_version_committed = model_version(ch->model);
    if (!(ch->pred = pred_new(ch->model))) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    return 0;
}

static chn_part_t *part_find(chn_t *ch, int32_t partition)
{
    for (size_t i = 0; i < ch->nparts; i++)
        if (ch->parts[i].partition == partition)
            return &ch->parts[i];
    return NULL;
}

/* Opens a partition's pipeline from what Redis holds (next offset, engine progress). */
static chn_part_t *part_open(chn_t *ch, int32_t partition, char *err, size_t errsz)
{
    chn_part_t *p = part_find(ch, partition);
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
                        .bounded_sweeps = 1};
    pl_t *pl = pl_new(ch->cfg, ch->pred, ch->policy, &ops, &hooks, err, errsz);
    if (!pl)
        return NULL;
    p = &ch->parts[ch->nparts++];
    memset(p, 0, sizeof(*p));
    p->partition = partition;
    p->pl = pl;
    p->next_offset = found_off ? off : -1;
    p->max_event_ms = INT64_MIN;
    p->last_msg_wall_ms = wall_ms();
    if (found_pr) {
        eng_set_progress(pl_engine(pl), &pr);
        /* The watermark a partition had reached bounds its event times from below. */
        if (pr.watermark_ms != ENG_NO_TIME)
            p->max_event_ms = pr.watermark_ms + ch->cfg->events_allowed_lateness_ms;
    }
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
    int64_t wm = INT64_MAX;
    for (size_t i = 0; i < ch->nparts; i++) {
        const chn_part_t *p = &ch->parts[i];
        int64_t c = p->max_event_ms == INT64_MIN
                        ? INT64_MIN
                        : p->max_event_ms - ch->cfg->events_allowed_lateness_ms;
        if (c < wm)
            wm = c;
    }
    ch->watermark_ms = wm == INT64_MAX ? INT64_MIN : wm;
}

/* Back to what Redis holds: model, engines, cache. Used after a failed commit (Redis down,
 * lost connection: the outcome is re-read from the stored offsets). The model and the
 * pipelines are rebuilt from Redis by the next process_batch (Redis may still be down). */
static void rollback(chn_t *ch)
{
    st_redis_discard(ch->st);
    alerts_clear(ch);
    parts_destroy(ch);
    model_drop(ch);
    ch->watermark_ms = INT64_MIN;
}

/* Re-opens the model and every assigned partition after a rollback. A stored offset behind
 * the one this instance had stored means Redis lost commits: the partition is marked for a
 * seek back (chn_part_t.reseek). */
static int reopen(chn_t *ch, char *err, size_t errsz)
{
    if (st_redis_reconnect(ch->st, err, errsz) != 0 || model_load(ch, err, errsz) != 0)
        return -1;
    for (size_t i = 0; i < ch->nassigned; i++) {
        chn_part_t *p = part_open(ch, ch->assigned[i], err, errsz);
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
static int lost_commits(chn_t *ch, char *err, size_t errsz)
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
static void note_stored(chn_t *ch, int32_t partition, int64_t next_offset)
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
    if (st_redis_reconnect(ch->st, err, errsz) != 0 || model_load(ch, err, errsz) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        chn_part_t *p = part_open(ch, partitions[i], err, errsz);
        if (!p)
            return -1;
        /* The daemon seeks to what is returned here (a new assignment, or a resync after
         * DM_BATCH_STALE): the consumer and Redis agree again. */
        start_offsets[i] = p->next_offset;
        p->reseek = 0;
        note_stored(ch, partitions[i], p->next_offset);
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

static int grow_batch(chn_t *ch, size_t n)
{
    if (n <= ch->cap_evs)
        return 0;
    ev_event_t *e = realloc(ch->evs, n * sizeof(*e));
    if (e)
        ch->evs = e;
    int32_t *p = realloc(ch->ev_part, n * sizeof(*p));
    if (p)
        ch->ev_part = p;
    int64_t *o = realloc(ch->ev_off, n * sizeof(*o));
    if (o)
        ch->ev_off = o;
    const char **ids = realloc(ch->ids, n * sizeof(*ids));
    if (ids)
        ch->ids = ids;
    if (!e || !p || !o || !ids)
        return -1;
    ch->cap_evs = n;
    return 0;
}

static void add_reject(dm_batch_result_t *res, size_t index, ev_reason_t r, const char *why)
{
    if (res->n_rejects >= res->rejects_cap)
        return;
    dm_reject_t *x = &res->rejects[res->n_rejects++];
    x->index = index;
    x->reason = (int)r;
    snprintf(x->text, sizeof(x->text), "%s", why[0] ? why : ev_reason_code(r));
}

/* Global watermark: min over assigned partitions of (max event time - lateness); a
 * partition without messages for tick.idle_advance of wall time follows the wall clock
 * (now - idle_advance) instead, so silence still moves ticks forward. */
static int64_t watermark(const chn_t *ch, int64_t now)
{
    int64_t wm = INT64_MAX;
    for (size_t i = 0; i < ch->nparts; i++) {
        const chn_part_t *p = &ch->parts[i];
        int64_t c = p->max_event_ms == INT64_MIN
                        ? INT64_MIN
                        : p->max_event_ms - ch->cfg->events_allowed_lateness_ms;
        if (now - p->last_msg_wall_ms >= ch->cfg->tick_idle_advance_ms) {
            int64_t idle = now - ch->cfg->tick_idle_advance_ms;
            if (idle > c)
                c = idle;
        }
        if (c < wm)
            wm = c;
    }
    return wm == INT64_MAX ? INT64_MIN : wm;
}

static int process_batch(void *opaque, const dm_msg_t *msgs, size_t n, dm_batch_result_t *res,
                         char *err, size_t errsz)
{
    chn_t *ch = opaque;
    st_redis_counters_t k0, k1;
    st_redis_counters(ch->st, &k0);
    const int64_t now = wall_ms();

    /* After a rollback the pipelines are rebuilt from Redis before anything else. */
    if (!ch->model && reopen(ch, err, errsz) != 0) {
        rollback(ch);
        return DM_BATCH_RETRY;
    }
    /* With no message in hand, check that Redis still holds what this instance committed:
     * a Redis that lost its data without dropping the connection (FLUSHALL, a failover to
     * an empty replica) is noticed here, not at the partition's next message, which may
     * never come. */
    if (n == 0) {
        int lost = lost_commits(ch, err, errsz);
        if (lost < 0) {
            rollback(ch);
            return DM_BATCH_RETRY;
        }
        if (lost) {
            rollback(ch); /* the daemon's resync reopens everything from Redis */
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
    if (grow_batch(ch, n ? n : 1) != 0) {
        snprintf(err, errsz, "out of memory");
        return DM_BATCH_RETRY;
    }
    alerts_clear(ch);
    for (size_t i = 0; i < ch->nparts; i++)
        ch->parts[i].in_batch = 0;

    /* 1. Decode and validate; skip what a previous, committed attempt already applied. */
    size_t nev = 0;
    for (size_t i = 0; i < n; i++) {
        const dm_msg_t *m = &msgs[i];
        chn_part_t *p = part_open(ch, m->partition, err, errsz);
        if (!p) {
            rollback(ch);
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
        ev_event_t *ev = &ch->evs[nev];
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
        ch->ev_part[nev] = m->partition;
        ch->ev_off[nev] = m->offset;
        nev++;
    }

    /* 2. One pipelined read of every user of the batch, per partition. */
    for (size_t i = 0; i < ch->nparts; i++) {
        size_t k = 0;
        for (size_t j = 0; j < nev; j++)
            if (ch->ev_part[j] == ch->parts[i].partition)
                ch->ids[k++] = ch->evs[j].user_id;
        if (k && st_redis_prefetch(ch->st, ch->parts[i].partition, ch->ids, k, err, errsz) != 0) {
            rollback(ch);
            return DM_BATCH_RETRY;
        }
    }

    /* 3. Events in order through their partition's pipeline. */
    for (size_t j = 0; j < nev; j++) {
        chn_part_t *p = part_find(ch, ch->ev_part[j]);
        pl_event(p->pl, &ch->evs[j], ch->ev_part[j], ch->ev_off[j]);
        if (ch->evs[j].event_time_ms > p->max_event_ms)
            p->max_event_ms = ch->evs[j].event_time_ms;
    }

    /* 4. Batch boundary on every partition: learn, move the watermark, sweep. */
    int64_t wm = watermark(ch, now);
    if (wm != INT64_MIN && (ch->watermark_ms == INT64_MIN || wm > ch->watermark_ms))
        ch->watermark_ms = wm;
    for (size_t i = 0; i < ch->nparts; i++) {
        if (pl_batch_end(ch->parts[i].pl, ch->watermark_ms) != 0) {
            snprintf(err, errsz, "out of memory");
            rollback(ch);
            return DM_BATCH_RETRY;
        }
    }
    if (ch->alert_oom) {
        snprintf(err, errsz, "out of memory");
        rollback(ch);
        return DM_BATCH_RETRY;
    }

    /* 5. One transaction: records, index, offsets, progress, model, outbox. */
    size_t np = ch->nparts;
    int32_t *op = calloc(np ? np : 1, sizeof(*op)), *pp = calloc(np ? np : 1, sizeof(*pp));
    int64_t *oo = calloc(np ? np : 1, sizeof(*oo));
    store_progress_t *prog = calloc(np ? np : 1, sizeof(*prog));
    const char **ob_ids = calloc(ch->nalerts ? ch->nalerts : 1, sizeof(char *));
    const char **ob_uids = calloc(ch->nalerts ? ch->nalerts : 1, sizeof(char *));
    const uint8_t **ob_vals = calloc(ch->nalerts ? ch->nalerts : 1, sizeof(uint8_t *));
    size_t *ob_lens = calloc(ch->nalerts ? ch->nalerts : 1, sizeof(size_t));
    uint8_t *mbuf = NULL;
    size_t mlen = 0, noff = 0;
    int rc = -1;
    if (!op || !pp || !oo || !prog || !ob_ids || !ob_uids || !ob_vals || !ob_lens) {
        snprintf(err, errsz, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < np; i++) {
        chn_part_t *p = &ch->parts[i];
        pp[i] = p->partition;
        eng_progress_t ep;
        eng_get_progress(pl_engine(p->pl), &ep);
        eng_progress_pack(&ep, &prog[i]);
        if (!p->in_batch)
            continue;
        int64_t next = -1;
        for (size_t j = 0; j < n; j++)
            if (msgs[j].partition == p->partition && msgs[j].offset + 1 > next)
                next = msgs[j].offset + 1;
        op[noff] = p->partition;
        oo[noff++] = next;
    }
    for (size_t i = 0; i < ch->nalerts; i++) {
        ob_ids[i] = ch->alerts[i].id;
        ob_uids[i] = ch->alerts[i].user_id;
        ob_vals[i] = ch->alerts[i].value;
        ob_lens[i] = ch->alerts[i].len;
    }
    st_commit_t c = {.n_offsets = noff,
                     .offset_partitions = op,
                     .next_offsets = oo,
                     .n_progress = np,
                     .progress_partitions = pp,
                     .progress = prog,
                     .n_outbox = ch->nalerts,
                     .outbox_ids = ob_ids,
                     .outbox_user_ids = ob_uids,
                     .outbox_values = ob_vals,
                     .outbox_lens = ob_lens};
    if (sb_scores(ch->scores, &c.scores, &c.n_scores) != 0) {
        snprintf(err, errsz, "out of memory");
        goto done;
    }
    if (model_version(ch->model) != ch->model_version_committed) {
        if (model_encode(ch->model, &mbuf, &mlen) != 0) {
            snprintf(err, errsz, "out of memory");
            goto done;
        }
        c.model = mbuf;
        c.model_len = mlen;
    }
    if (st_redis_commit(ch->st, &c, err, errsz) != 0)
        goto done;
    rc = 0;
    for (size_t i = 0; i < noff; i++) {
        part_find(ch, op[i])->next_offset = oo[i];
        note_stored(ch, op[i], oo[i]);
    }
    if (mbuf) {
        free(ch->model_bytes);
        ch->model_bytes = mbuf;
        ch->model_len = mlen;
        mbuf = NULL;
        ch->model_version_committed = model_version(ch->model);
    }
done:
    free(mbuf);
    free(op);
    free(pp);
    free(oo);
    free(prog);
    free(ob_ids);
    free(ob_uids);
    free(ob_vals);
    free(ob_lens);
    st_redis_counters(ch->st, &k1);
    res->redis_round_trips = k1.round_trips - k0.round_trips;
    if (rc != 0) {
        rollback(ch);
        return DM_BATCH_RETRY;
    }
    /* The alerts go out after the commit; the outbox keeps them until delivered. */
    if (ch->nalerts > ch->cap_dm) {
        dm_alert_t *d = realloc(ch->dm_alerts, ch->nalerts * sizeof(*d));
        if (d) {
            ch->dm_alerts = d;
            ch->cap_dm = ch->nalerts;
        }
    }
    size_t na = ch->nalerts <= ch->cap_dm ? ch->nalerts : 0; /* OOM: the outbox re-sends */
    for (size_t i = 0; i < na; i++) {
        const chn_alert_t *a = &ch->alerts[i];
        ch->dm_alerts[i] = (dm_alert_t){.id = a->id,
                                        .key = a->user_id,
                                        .key_len = strlen(a->user_id),
                                        .value = a->value,
                                        .len = a->len,
                                        .arm = a->arm,
                                        .bucket = a->bucket,
                                        .kind = alert_kind_name(a->kind),
                                        .trigger = alert_trigger_name(a->trigger)};
    }
    res->alerts = ch->dm_alerts;
    res->n_alerts = na;
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
    res->experts_known = 1;
    return 0;
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
    ev_wire_t framing = cfg->alerts_framing == CFG_FRAMING_PLAIN           ? EV_WIRE_PLAIN
                        : cfg->alerts_framing == CFG_FRAMING_SINGLE_OBJECT ? EV_WIRE_SINGLE_OBJECT
                                                                           : EV_WIRE_CONFLUENT;
    if ((model_in && !(ch->model_in = strdup(model_in))) ||
        !(ch->dec = ev_decoder_new(cfg->schemas_dir && *cfg->schemas_dir ? cfg->schemas_dir : NULL,
                                   errstr, errstr_size)) ||
        !(ch->policy = alert_policy_new(cfg, errstr, errstr_size)) ||
        !(ch->aenc = alert_encoder_new(framing, cfg->alerts_schema_id, errstr, errstr_size)) ||
        !(ch->st = st_redis_new(cfg, errstr, errstr_size))) {
        chn_destroy(ch);
        return NULL;
    }
    if (!(ch->scores = sb_new())) {
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
    parts_destroy(ch);
    free(ch->parts);
    free(ch->assigned);
    free(ch->assigned_next);
    model_drop(ch);
    free(ch->model_bytes);
    alerts_clear(ch);
    sb_destroy(ch->scores);
    ua_destroy(ch->api);
    free(ch->alerts);
    free(ch->outcomes);
    free(ch->dm_alerts);
    free(ch->evs);
    free(ch->ev_part);
    free(ch->ev_off);
    free(ch->ids);
    st_redis_outbox_free(&ch->outbox);
    st_redis_destroy(ch->st);
    alert_encoder_destroy(ch->aenc);
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
    out->process_batch = process_batch;
    out->on_alerts_delivered = on_alerts_delivered;
    out->pending_alerts = pending_alerts;
    out->claim_alerts = claim_alerts;
    out->user_get = ua_get_user;
    out->user_api = ch->api;
    out->name = "churn pipeline (engine, models, alerts; Redis state)";
    out->idle_call_ms = 1000;
}
