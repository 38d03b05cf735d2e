/* The Redis store's operations in cluster mode: a batch commit split into one MULTI/EXEC
 * per partition (each in its partition's slot) and the model's own, the engine callbacks
 * routed to their partition's slot, and what spans partitions (outbox, inspect, forget).
 *
 * Exactly-once with one transaction per partition: partition N's transaction holds every
 * record of N's users, N's last-seen index, N's next offset, N's engine progress and the
 * alerts N's users raised, so N's offset moves iff N's state does. A crash between two
 * partitions' transactions leaves some partitions committed and others not; on restart each
 * partition resumes from its own stored offset, so only the uncommitted partitions' messages
 * are read again, against state that never saw them. A user's events all come from one
 * partition (Kafka key = user id), so no record is written by two transactions.
 * What is not exact here with one model owner: the model (one key, its own slot, committed
 * after the partitions) loses the learning of a batch whose partitions committed but whose
 * model write did not. A shared model's journal entries (store_redis.h) commit with their
 * partition and lose nothing. */
#include "grow.h"
#include "redis_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- partition lists ---- */

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int rcl_parts_add(int32_t **v, size_t *n, size_t *cap, int32_t p)
{
    for (size_t i = 0; i < *n; i++)
        if ((*v)[i] == p)
            return 0;
    if (CS_GROW(*v, *cap, *n + 1, 8) != 0)
        return -1;
    (*v)[(*n)++] = p;
    return 0;
}

/* A partition list being filled by a SCAN of "<base>{pN}..." keys. */
typedef struct parts_scan_s {
    size_t off; /* after "<base>{p" */
    int32_t **v;
    size_t *n, *cap;
} parts_scan_t;

static int scan_part_key(void *ctx, const char *key, size_t len)
{
    parts_scan_t *ps = ctx;
    if (len <= ps->off)
        return 0;
    char *end;
    long p = strtol(key + ps->off, &end, 10);
    if (end < key + len && *end == '}' && p >= 0 && p <= INT32_MAX)
        return rcl_parts_add(ps->v, ps->n, ps->cap, (int32_t)p);
    return 0;
}

int rcl_scan_partitions(st_redis_t *st, const char *suffix_glob, int32_t **parts, size_t *n,
                        char *errstr, size_t errstr_size)
{
    rcl_t *cl = st->cl;
    size_t sl = strlen(suffix_glob), cap = 0;
    char *pat = malloc(2 * cl->base_len + sl + 8);
    uint8_t *done = calloc(cl->n_nodes ? cl->n_nodes : 1, 1);
    *parts = NULL;
    *n = 0;
    int rc = 0;
    if (!pat || !done) {
        snprintf(errstr, errstr_size, "out of memory");
        rc = -1;
        goto out;
    }
    size_t o = st_redis_glob_escape(pat, cl->base, cl->base_len);
    memcpy(pat + o, "{p*}:", 5);
    memcpy(pat + o + 5, suffix_glob, sl);
    /* Every master of the map, once (SCAN walks one node's keys). */
    for (size_t s = 0; s < RCL_SLOTS && rc == 0; s++) {
        uint16_t node = cl->slot_node[s];
        if (node == RCL_NO_NODE || node >= cl->n_nodes || done[node])
            continue;
        done[node] = 1;
        rcl_node_select(st, node);
        if ((!st->conn.ctx && rc_connect(&st->conn, errstr, errstr_size) != 0) ||
            st_redis_scan(st, pat, o + 5 + sl, NULL, scan_part_key,
                          &(parts_scan_t){cl->base_len + 2, parts, n, &cap}, errstr,
                          errstr_size) != 0)
            rc = -1;
    }
    if (rc == 0 && *n)
        qsort(*parts, *n, sizeof(**parts), cmp_i32);
out:
    free(pat);
    free(done);
    if (rc != 0) {
        free(*parts);
        *parts = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- commit ---- */

/* The partition whose transaction writes an entry: its owner, else the index it must leave;
 * -1 = nothing to write (a range load that was not visited). */
static int32_t entry_group(rc_entry_t *e)
{
    if (e->partition >= 0) {
        /* A stale member in another partition's index: only after a repartitioning, which
         * cluster mode does not follow (README); range queries keep skipping it. */
        e->unindex_partition = e->unindex_partition == e->partition ? e->partition : -1;
        return e->partition;
    }
    return e->unindex_partition;
}

/* Commits one partition's part of c with the entries in `sub` (which st->cache becomes for
 * the call). 0 = committed (the entries are freed), -1 = not (the entries are back in sub). */
static int commit_one(st_redis_t *st, int32_t p, rc_cache_t *sub, const st_commit_t *c,
                      const int32_t *alert_part, const int32_t *score_part, char *errstr,
                      size_t errstr_size)
{
    st_commit_t pc = {0};
    size_t nob = 0, nsc = 0;
    st_score_t *scores = malloc((c->n_scores + 1) * sizeof(*scores));
    const char **ids = malloc((c->n_outbox + 1) * sizeof(*ids));
    const char **uids = malloc((c->n_outbox + 1) * sizeof(*uids));
    const uint8_t **vals = malloc((c->n_outbox + 1) * sizeof(*vals));
    size_t *lens = malloc((c->n_outbox + 1) * sizeof(*lens));
    int rc = -1;
    if (!ids || !uids || !vals || !lens || !scores) {
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < c->n_scores; i++)
        if (score_part[i] == p)
            scores[nsc++] = c->scores[i];
    pc.n_scores = nsc;
    pc.scores = scores;
    for (size_t i = 0; i < c->n_offsets; i++)
        if (c->offset_partitions[i] == p) {
            pc.n_offsets = 1;
            pc.offset_partitions = &c->offset_partitions[i];
            pc.next_offsets = &c->next_offsets[i];
        }
    for (size_t i = 0; i < c->n_journals; i++)
        if (c->journal_partitions[i] == p) {
            pc.n_journals = 1;
            pc.journal_partitions = &c->journal_partitions[i];
            pc.journal_seqs = &c->journal_seqs[i];
            pc.journal_bytes = &c->journal_bytes[i];
            pc.journal_lens = &c->journal_lens[i];
        }
    for (size_t i = 0; i < c->n_progress; i++)
        if (c->progress_partitions[i] == p) {
            pc.n_progress = 1;
            pc.progress_partitions = &c->progress_partitions[i];
            pc.progress = &c->progress[i];
        }
    for (size_t i = 0; i < c->n_outbox; i++)
        if (alert_part[i] == p) {
            ids[nob] = c->outbox_ids[i];
            uids[nob] = c->outbox_user_ids ? c->outbox_user_ids[i] : "";
            vals[nob] = c->outbox_values[i];
            lens[nob++] = c->outbox_lens[i];
        }
    pc.n_outbox = nob;
    pc.outbox_ids = ids;
    pc.outbox_user_ids = uids;
    pc.outbox_values = vals;
    pc.outbox_lens = lens;
    if (nob &&
        rcl_parts_add(&st->cl->ob_parts, &st->cl->n_ob_parts, &st->cl->cap_ob_parts, p) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    rc_cache_t keep = st->cache;
    st->cache = *sub;
    RCL_CALL(st, p, rc, st_redis_commit(st, &pc, errstr, errstr_size), errstr, errstr_size);
    *sub = st->cache; /* cleared on success */
    st->cache = keep;
out:
    free(ids);
    free(uids);
    free(vals);
    free(lens);
    free(scores);
    return rc;
}

/* 1 when p's progress is the one this store last committed (nothing else to write then). */
static int progress_unchanged(const rcl_t *cl, int32_t p, const store_progress_t *pr)
{
    return p >= 0 && (size_t)p < cl->n_last_prog && cl->last_prog_ok[p] &&
           memcmp(cl->last_prog[p].b, pr->b, STORE_PROGRESS_BYTES) == 0;
}

/* Notes p's committed progress (best effort: on OOM the next batch just writes it again). */
static void progress_note(rcl_t *cl, int32_t p, const store_progress_t *pr)
{
    if (p < 0)
        return;
    if ((size_t)p >= cl->n_last_prog) {
        size_t n = (size_t)p + 16;
        store_progress_t *g = realloc(cl->last_prog, n * sizeof(*g));
        if (g)
            cl->last_prog = g;
        uint8_t *ok = realloc(cl->last_prog_ok, n);
        if (ok)
            cl->last_prog_ok = ok;
        if (!g || !ok)
            return;
        memset(ok + cl->n_last_prog, 0, n - cl->n_last_prog);
        cl->n_last_prog = n;
    }
    cl->last_prog[p] = *pr;
    cl->last_prog_ok[p] = 1;
}

/* Puts the entries not committed yet back into st->cache after a failed partition. */
static void restore(st_redis_t *st, rc_entry_t **all, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (all[i] && rc_cache_adopt(&st->cache, all[i]) != 0) {
            free(all[i]); /* out of memory: the batch is lost anyway (it is redone) */
            all[i] = NULL;
        }
}

/* The partition of each alert and latest score: their user's, in the batch cache (the batch
 * made them from that record); those partitions join parts. 0, or -1 with errstr. */
static int place_user_writes(st_redis_t *st, const st_commit_t *c, int32_t *alert_part,
                             int32_t *score_part, int32_t **parts, size_t *np, size_t *cap,
                             char *errstr, size_t errstr_size)
{
    /* Each latest-score hash goes with its user's record (the batch scored that record). */
    for (size_t i = 0; i < c->n_scores; i++) {
        const char *u = c->scores[i].user_id;
        rc_entry_t *e = rc_cache_find(&st->cache, u, strlen(u));
        if (!e || e->partition < 0) {
            snprintf(errstr, errstr_size,
                     "redis cluster: a score of user \"%.64s\", who is not in the batch: no "
                     "partition to commit it with",
                     u);
            return -1;
        }
        score_part[i] = e->partition;
        if (rcl_parts_add(parts, np, cap, e->partition) != 0)
            goto oom;
    }
    /* Each alert goes to the outbox of its user's partition (in the cache: the batch made
     * the alert from that record). */
    for (size_t i = 0; i < c->n_outbox; i++) {
        const char *u = c->outbox_user_ids ? c->outbox_user_ids[i] : "";
        rc_entry_t *e = rc_cache_find(&st->cache, u, strlen(u));
        if (!e || e->partition < 0) {
            snprintf(errstr, errstr_size,
                     "redis cluster: alert %s is about user \"%.64s\", who is not in the batch: "
                     "no partition to commit it with",
                     c->outbox_ids[i], u);
            return -1;
        }
        alert_part[i] = e->partition;
        if (rcl_parts_add(parts, np, cap, e->partition) != 0)
            goto oom;
    }
    return 0;
oom:
    snprintf(errstr, errstr_size, "out of memory");
    return -1;
}

int rcl_commit(st_redis_t *st, const void *commit, char *errstr, size_t errstr_size)
{
    const st_commit_t *c = commit, empty = {0};
    if (!c)
        c = &empty;
    if (st->latched[0]) {
        snprintf(errstr, errstr_size, "%s", st->latched);
        return -1;
    }
    size_t n = st->cache.n, np = 0, cap = 0;
    int32_t *parts = NULL, *grp = malloc((n + 1) * sizeof(*grp));
    int32_t *alert_part = malloc((c->n_outbox + 1) * sizeof(*alert_part));
    int32_t *score_part = malloc((c->n_scores + 1) * sizeof(*score_part));
    rc_entry_t **all = malloc((n + 1) * sizeof(*all));
    int rc = -1;
    if (!grp || !alert_part || !score_part || !all)
        goto oom;
    if ((rc = place_user_writes(st, c, alert_part, score_part, &parts, &np, &cap, errstr,
                                errstr_size)) != 0)
        goto out;
    rc = -1;
    for (size_t i = 0; i < n; i++) {
        all[i] = st->cache.items[i];
        grp[i] = entry_group(all[i]);
        if (grp[i] >= 0 && rcl_parts_add(&parts, &np, &cap, grp[i]) != 0)
            goto oom;
    }
    for (size_t i = 0; i < c->n_offsets; i++)
        if (rcl_parts_add(&parts, &np, &cap, c->offset_partitions[i]) != 0)
            goto oom;
    for (size_t i = 0; i < c->n_journals; i++)
        if (rcl_parts_add(&parts, &np, &cap, c->journal_partitions[i]) != 0)
            goto oom;
    /* A partition whose only write is the progress it already has costs no transaction. */
    for (size_t i = 0; i < c->n_progress; i++)
        if (!progress_unchanged(st->cl, c->progress_partitions[i], &c->progress[i]) &&
            rcl_parts_add(&parts, &np, &cap, c->progress_partitions[i]) != 0)
            goto oom;
    if (np)
        qsort(parts, np, sizeof(*parts), cmp_i32);
    /* The entries leave the batch cache: each partition's go in a cache of their own. */
    st->cache.n = 0;
    rc_cache_clear(&st->cache);
    for (size_t k = 0; k < np; k++) {
        rc_cache_t sub = {0};
        for (size_t i = 0; i < n; i++)
            if (all[i] && grp[i] == parts[k] && rc_cache_adopt(&sub, all[i]) != 0) {
                sub.n = 0; /* the entries are still in all[] */
                rc_cache_free(&sub);
                restore(st, all, n);
                goto oom;
            }
        if (commit_one(st, parts[k], &sub, c, alert_part, score_part, errstr, errstr_size) != 0) {
            if (st->cl->n_last_prog) /* the outcome is unknown */
                memset(st->cl->last_prog_ok, 0, st->cl->n_last_prog);
            sub.n = 0;
            rc_cache_free(&sub);
            restore(st, all, n);
            goto out;
        }
        rc_cache_free(&sub); /* empty: the commit freed the entries */
        for (size_t i = 0; i < c->n_progress; i++)
            if (c->progress_partitions[i] == parts[k])
                progress_note(st->cl, parts[k], &c->progress[i]);
        for (size_t i = 0; i < n; i++)
            if (grp[i] == parts[k])
                all[i] = NULL;
    }
    for (size_t i = 0; i < n; i++)
        free(all[i]); /* nothing to write */
    /* The model last, alone in its slot. */
    rc = 0;
    if (c->model) {
        st_commit_t mc = {.model = c->model, .model_len = c->model_len};
        RCL_CALL(st, RCL_MODEL_PARTITION, rc, st_redis_commit(st, &mc, errstr, errstr_size), errstr,
                 errstr_size);
    }
    goto out;
oom:
    snprintf(errstr, errstr_size, "out of memory");
    rc = -1;
out:
    free(parts);
    free(grp);
    free(alert_part);
    free(score_part);
    free(all);
    return rc;
}

/* ---- batch reads, routed ---- */

int rcl_prefetch(st_redis_t *st, int32_t partition, const char *const *user_ids, size_t n,
                 char *errstr, size_t errstr_size)
{
    int rc;
    RCL_CALL(st, partition, rc, st_redis_prefetch(st, partition, user_ids, n, errstr, errstr_size),
             errstr, errstr_size);
    return rc;
}

/* ---- engine callbacks, routed ---- */

/* The single-node callbacks (store_redis.c's op_get and op_range), wrapped. */
static user_rec_t *(*orig_get)(void *opaque, const char *uid, size_t len);
static void (*orig_range)(void *opaque, int64_t lo_ms, int64_t hi_ms,
                          void (*visit)(void *ctx, const char *user_id, user_rec_t *rec),
                          void *ctx);

static user_rec_t *routed_get(void *opaque, const char *uid, size_t len)
{
    rc_part_t *p = opaque;
    st_redis_t *st = p->st;
    if (st->latched[0] || rc_cache_find(&st->cache, uid, len))
        return orig_get(opaque, uid, len); /* no I/O */
    int was = rcl_enter(st);
    user_rec_t *rec = NULL;
    char err[512];
    for (int a = 0;; a++) {
        if (rcl_route(st, p->partition, err, sizeof(err)) != 0) {
            st_redis_latch(st, err);
            break;
        }
        rec = orig_get(opaque, uid, len);
        if (!st->latched[0])
            break;
        snprintf(err, sizeof(err), "%s", st->latched);
        if (!rcl_retry(st, a, err, sizeof(err)))
            break;
        st->latched[0] = '\0'; /* the failed load left the cache as it was: try again */
    }
    rcl_leave(st, was);
    return rec ? rec : orig_get(opaque, uid, len);
}

typedef struct visit_shim_s {
    void (*visit)(void *ctx, const char *user_id, user_rec_t *rec);
    void *ctx;
    size_t visited;
} visit_shim_t;

static void shim_visit(void *ctx, const char *user_id, user_rec_t *rec)
{
    visit_shim_t *v = ctx;
    v->visited++;
    v->visit(v->ctx, user_id, rec);
}

static void routed_range(void *opaque, int64_t lo_ms, int64_t hi_ms,
                         void (*visit)(void *ctx, const char *user_id, user_rec_t *rec), void *ctx)
{
    rc_part_t *p = opaque;
    st_redis_t *st = p->st;
    if (st->latched[0])
        return;
    int was = rcl_enter(st);
    visit_shim_t shim = {visit, ctx, 0};
    char err[512];
    for (int a = 0;; a++) {
        if (rcl_route(st, p->partition, err, sizeof(err)) != 0) {
            st_redis_latch(st, err);
            break;
        }
        orig_range(opaque, lo_ms, hi_ms, shim_visit, &shim);
        /* A failure after the first visit is the visitor's (a get): never visit twice. */
        if (!st->latched[0] || shim.visited)
            break;
        snprintf(err, sizeof(err), "%s", st->latched);
        if (!rcl_retry(st, a, err, sizeof(err)))
            break;
        st->latched[0] = '\0';
    }
    rcl_leave(st, was);
}

void rcl_wrap_ops(st_redis_t *st, store_ops_t *ops)
{
    (void)st;
    if (ops->get == routed_get)
        return;
    orig_get = ops->get;
    orig_range = ops->range;
    ops->get = routed_get;
    ops->range = routed_range;
}
