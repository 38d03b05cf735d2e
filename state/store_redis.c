/* The Redis store's batch path: prefetch (one pipelined round of MGETs) and the engine's
 * callbacks over the cache (get, range on P seen:<partition>, touched). The commit of
 * everything a batch changed in one MULTI/EXEC: redis_commit.c. Reads outside batches:
 * redis_reads.c; the latest-score hashes: redis_scores.c. */
#include "redis_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

st_redis_t *st_redis_new(const cfg_t *cfg, char *errstr, size_t errstr_size)
{
    st_redis_t *st = calloc(1, sizeof(*st));
    if (!st) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (rc_init(&st->conn, cfg, errstr, errstr_size) != 0) {
        free(st);
        return NULL;
    }
    st->prefix = strdup(cfg->state_prefix ? cfg->state_prefix : "cs:");
    st->scratch = malloc(sizeof(*st->scratch) + 1);
    if (!st->prefix || !st->scratch) {
        snprintf(errstr, errstr_size, "out of memory");
        st_redis_destroy(st);
        return NULL;
    }
    st->prefix_len = strlen(st->prefix);
    st->ttl_ms = cfg->state_ttl_ms;
    if (rc_connect(&st->conn, errstr, errstr_size) != 0 ||
        (cfg->redis_cluster && rcl_init(st, cfg, errstr, errstr_size) != 0)) {
        st_redis_destroy(st);
        return NULL;
    }
    return st;
}

void st_redis_destroy(st_redis_t *st)
{
    if (!st)
        return;
    rcl_destroy(st);
    rc_fini(&st->conn);
    rc_cache_free(&st->cache);
    rc_args_free(&st->args);
    for (rc_part_t *p = st->parts, *next; p; p = next) {
        next = p->next;
        free(p);
    }
    free(st->scratch);
    free(st->prefix);
    free(st);
}

int st_redis_reconnect(st_redis_t *st, char *errstr, size_t errstr_size)
{
    if (st->cl)
        return rcl_reconnect(st, errstr, errstr_size);
    return rc_connect(&st->conn, errstr, errstr_size);
}

const char *st_redis_address(const st_redis_t *st)
{
    return st->conn.addr;
}

void st_redis_counters(const st_redis_t *st, st_redis_counters_t *out)
{
    out->commands = st->conn.commands;
    out->round_trips = st->conn.round_trips;
    out->commits = st->commits;
    out->users_created = st->users_created;
    out->wait_us = st->conn.wait_us;
}

void st_redis_latch(st_redis_t *st, const char *msg)
{
    if (!st->latched[0])
        snprintf(st->latched, sizeof(st->latched), "%s", msg);
}

void st_redis_key(st_redis_t *st, const char *mid, const char *id, size_t len)
{
    rc_args_cat(&st->args, st->prefix, st->prefix_len, mid, strlen(mid), id, len);
}

/* "P u:<id>" printable, for messages about one user's key. */
static void user_key_printable(const st_redis_t *st, const rc_entry_t *e, char *buf, size_t cap)
{
    char pfx[128], id[300];
    rc_printable(st->prefix, st->prefix_len, pfx, sizeof(pfx));
    rc_printable(e->uid, e->uid_len, id, sizeof(id));
    snprintf(buf, cap, "%su:%s", pfx, id);
}

/* Fills a new entry from an MGET/GET element. -1 with errstr on a bad value. */
static int entry_from_reply(st_redis_t *st, rc_entry_t *e, const redisReply *r, char *errstr,
                            size_t errstr_size)
{
    char key[512], why[256];
    if (r->type == REDIS_REPLY_NIL) {
        e->stored = 0;
    } else if (r->type == REDIS_REPLY_STRING) {
        if (user_rec_decode(&e->rec, (const uint8_t *)r->str, r->len, why, sizeof(why)) != 0) {
            user_key_printable(st, e, key, sizeof(key));
            snprintf(errstr, errstr_size,
                     "redis %s: key \"%s\": %s (the record is kept as is; "
                     "inspect it, or forget the user)",
                     st->conn.addr, key, why);
            return -1;
        }
        e->stored = 1;
    } else {
        user_key_printable(st, e, key, sizeof(key));
        snprintf(errstr, errstr_size, "redis %s: key \"%s\": unexpected reply type %d%s%s",
                 st->conn.addr, key, r->type, r->type == REDIS_REPLY_ERROR ? ": " : "",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
        return -1;
    }
    e->last_before_ms = e->last_now_ms = feat_last_activity_ms(&e->rec.feat);
    return 0;
}

int st_redis_load(st_redis_t *st, int32_t partition, const char *const *ids, const size_t *lens,
                  size_t n, char *errstr, size_t errstr_size)
{
    size_t n0 = st->cache.n, nnew = 0;
    rc_entry_t **fresh = malloc((n ? n : 1) * sizeof(*fresh));
    if (!fresh) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    /* New entries go in first, so duplicates inside ids find them and are asked once. */
    for (size_t i = 0; i < n; i++) {
        size_t len = lens ? lens[i] : strlen(ids[i]);
        if (rc_cache_find(&st->cache, ids[i], len))
            continue;
        rc_entry_t *e = rc_cache_add(&st->cache, ids[i], len);
        if (!e) {
            snprintf(errstr, errstr_size, "out of memory caching %zu users", st->cache.n);
            goto fail;
        }
        fresh[nnew++] = e;
    }
    /* Every MGET is appended before any reply is read: one round trip for the batch. */
    for (size_t c = 0; c < nnew; c += RC_MGET_CHUNK) {
        size_t end = c + RC_MGET_CHUNK < nnew ? c + RC_MGET_CHUNK : nnew;
        rc_args_str(&st->args, nnew - c == 1 ? "GET" : "MGET");
        for (size_t i = c; i < end; i++)
            st_redis_key(st, "u:", fresh[i]->uid, fresh[i]->uid_len);
        if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0)
            goto fail;
    }
    int failed = 0;
    for (size_t c = 0; c < nnew; c += RC_MGET_CHUNK) {
        size_t end = c + RC_MGET_CHUNK < nnew ? c + RC_MGET_CHUNK : nnew;
        redisReply *r;
        if (rc_read(&st->conn, &r, "loading user records", errstr, errstr_size) != 0)
            goto fail; /* the connection is gone: nothing more to read */
        if (nnew - c == 1) {
            if (entry_from_reply(st, fresh[c], r, errstr, errstr_size) != 0)
                failed = 1;
        } else if (r->type != REDIS_REPLY_ARRAY || r->elements != end - c) {
            if (!failed)
                snprintf(errstr, errstr_size, "redis %s: MGET: unexpected reply%s%s", st->conn.addr,
                         r->type == REDIS_REPLY_ERROR ? ": " : "",
                         r->type == REDIS_REPLY_ERROR ? r->str : "");
            failed = 1;
        } else {
            /* Keep reading after a bad record so the pipeline stays in step; report the
             * first problem. */
            for (size_t i = c; i < end && !failed; i++)
                if (entry_from_reply(st, fresh[i], r->element[i - c], errstr, errstr_size) != 0)
                    failed = 1;
        }
        freeReplyObject(r);
    }
    if (failed)
        goto fail;
    for (size_t i = 0; i < nnew; i++)
        fresh[i]->partition = partition;
    free(fresh);
    return 0;
fail:
    rc_cache_truncate(&st->cache, n0);
    free(fresh);
    return -1;
}

int st_redis_prefetch(st_redis_t *st, int32_t partition, const char *const *user_ids, size_t n,
                      char *errstr, size_t errstr_size)
{
    if (rcl_wrap(st))
        return rcl_prefetch(st, partition, user_ids, n, errstr, errstr_size);
    if (st_redis_load(st, partition, user_ids, NULL, n, errstr, errstr_size) != 0)
        return -1;
    /* Users a range query loaded without an owner now belong to this partition's batch. */
    for (size_t i = 0; i < n; i++) {
        rc_entry_t *e = rc_cache_find(&st->cache, user_ids[i], strlen(user_ids[i]));
        if (e && e->partition < 0)
            e->partition = partition;
    }
    return 0;
}

/* ---- engine callbacks ---- */

static user_rec_t *scratch_rec(st_redis_t *st)
{
    user_rec_init(&st->scratch->rec);
    return &st->scratch->rec;
}

static user_rec_t *op_get(void *opaque, const char *uid, size_t len)
{
    rc_part_t *p = opaque;
    st_redis_t *st = p->st;
    rc_entry_t *e = rc_cache_find(&st->cache, uid, len);
    if (!e && !st->latched[0]) {
        char err[512];
        const char *ids[1] = {uid};
        size_t lens[1] = {len};
        if (st_redis_load(st, p->partition, ids, lens, 1, err, sizeof(err)) != 0)
            st_redis_latch(st, err);
        else
            e = rc_cache_find(&st->cache, uid, len);
    }
    if (!e)
        return scratch_rec(st); /* the batch will not commit (latched error) */
    if (e->partition < 0)
        e->partition = p->partition;
    return &e->rec;
}

static void op_touched(void *opaque, const char *uid, user_rec_t *rec)
{
    rc_part_t *p = opaque;
    (void)uid;
    if (rec == &p->st->scratch->rec)
        return;
    /* rec is the first member of its entry. */
    rc_entry_t *e = (rc_entry_t *)(void *)rec;
    e->dirty = 1;
    e->last_now_ms = feat_last_activity_ms(&rec->feat);
}

static int cmp_visit(const void *a, const void *b)
{
    const rc_entry_t *x = *(rc_entry_t *const *)a, *y = *(rc_entry_t *const *)b;
    if (x->last_now_ms != y->last_now_ms)
        return x->last_now_ms < y->last_now_ms ? -1 : 1;
    /* Redis orders members of equal score by their bytes, the shorter first on a tie. */
    size_t n = x->uid_len < y->uid_len ? x->uid_len : y->uid_len;
    int c = memcmp(x->uid, y->uid, n);
    if (c != 0)
        return c;
    return x->uid_len < y->uid_len ? -1 : x->uid_len > y->uid_len;
}

/* A score bound: integers below 2^53 are exact as doubles; beyond, an infinity. */
static void score_bound(st_redis_t *st, int64_t v, int exclusive)
{
    const int64_t lim = (int64_t)1 << 53;
    char b[40];
    int n;
    if (v <= -lim)
        n = snprintf(b, sizeof(b), "-inf");
    else if (v >= lim)
        n = snprintf(b, sizeof(b), "+inf");
    else
        n = snprintf(b, sizeof(b), "%s%lld", exclusive ? "(" : "", (long long)v);
    rc_args_add(&st->args, b, (size_t)n);
}

static void op_range(void *opaque, int64_t lo_ms, int64_t hi_ms,
                     void (*visit)(void *ctx, const char *user_id, user_rec_t *rec), void *ctx)
{
    rc_part_t *p = opaque;
    st_redis_t *st = p->st;
    char err[512], pnum[16];
    if (st->latched[0] || hi_ms <= lo_ms)
        return;
    snprintf(pnum, sizeof(pnum), "%d", (int)p->partition);

    /* 1. The committed index: who was last active in [lo, hi) as of the last commit. */
    rc_args_str(&st->args, "ZRANGEBYSCORE");
    rc_args_cat(&st->args, st->prefix, st->prefix_len, "seen:", 5, pnum, strlen(pnum));
    score_bound(st, lo_ms, 0);
    score_bound(st, hi_ms, 1);
    rc_args_str(&st->args, "WITHSCORES");
    redisReply *r = rc_command(&st->conn, &st->args, "ZRANGEBYSCORE", err, sizeof(err));
    if (!r) {
        st_redis_latch(st, err);
        return;
    }
    size_t m = r->type == REDIS_REPLY_ARRAY ? r->elements / 2 : 0;
    const char **ids = malloc((m ? m : 1) * sizeof(*ids));
    size_t *lens = malloc((m ? m : 1) * sizeof(*lens));
    size_t nload = 0;
    if (!ids || !lens) {
        st_redis_latch(st, "out of memory in a range query");
        goto out;
    }
    for (size_t i = 0; i < m; i++) {
        const redisReply *mem = r->element[2 * i];
        if (mem->type != REDIS_REPLY_STRING) {
            st_redis_latch(st, "ZRANGEBYSCORE: unexpected reply");
            goto out;
        }
        if (!rc_cache_find(&st->cache, mem->str, mem->len)) {
            ids[nload] = mem->str;
            lens[nload++] = mem->len;
        }
    }
    /* 2. Records not cached yet, in one pipelined round. */
    if (nload && st_redis_load(st, -1, ids, lens, nload, err, sizeof(err)) != 0) {
        st_redis_latch(st, err);
        goto out;
    }
    /* 3. Reconcile members with their records (see the invariant in store_redis.h). */
    for (size_t i = 0; i < m; i++) {
        const redisReply *mem = r->element[2 * i], *sc = r->element[2 * i + 1];
        rc_entry_t *e = rc_cache_find(&st->cache, mem->str, mem->len);
        int64_t score = sc->type == REDIS_REPLY_STRING ? (int64_t)strtod(sc->str, NULL) : 0;
        if (!e->stored || e->last_before_ms != score)
            e->unindex_partition = p->partition; /* expired, or moved to another partition */
        else if (e->partition < 0)
            e->partition = p->partition;
    }
    /* 4. Visit, from the cache, every user of the partition active in [lo, hi) as of now:
     * members loaded above and users of this batch whose activity moved into the range. */
    size_t nv = 0;
    rc_entry_t **v = malloc((st->cache.n ? st->cache.n : 1) * sizeof(*v));
    if (!v) {
        st_redis_latch(st, "out of memory in a range query");
        goto out;
    }
    for (size_t i = 0; i < st->cache.n; i++) {
        rc_entry_t *e = st->cache.items[i];
        if (e->partition == p->partition && e->last_now_ms >= lo_ms && e->last_now_ms < hi_ms)
            v[nv++] = e;
    }
    /* The index's order (score, then id bytes), so the visit order, and with it the model,
     * depends on the state only, not on the order users happened to be loaded. */
    qsort(v, nv, sizeof(*v), cmp_visit);
    for (size_t i = 0; i < nv; i++)
        visit(ctx, v[i]->uid, &v[i]->rec);
    free(v);
out:
    free(ids);
    free(lens);
    freeReplyObject(r);
}

int st_redis_engine_ops(st_redis_t *st, int32_t partition, store_ops_t *ops)
{
    rc_part_t *p = st->parts;
    while (p && p->partition != partition)
        p = p->next;
    if (!p) {
        if (!(p = calloc(1, sizeof(*p))))
            return -1;
        p->st = st;
        p->partition = partition;
        p->next = st->parts;
        st->parts = p;
    }
    ops->opaque = p;
    ops->get = op_get;
    ops->range = op_range;
    ops->touched = op_touched;
    ops->each = NULL; /* a range's replies come sorted anyway */
    if (st->cl)
        rcl_wrap_ops(st, ops);
    return 0;
}

int st_redis_last_activity_max(st_redis_t *st, int32_t partition, int64_t *max_ms, int *found,
                               char *errstr, size_t errstr_size)
{
    *found = 0;
    if (rcl_wrap(st)) {
        int rc;
        RCL_CALL(st, partition, rc,
                 st_redis_last_activity_max(st, partition, max_ms, found, errstr, errstr_size),
                 errstr, errstr_size);
        return rc;
    }
    char pnum[16];
    snprintf(pnum, sizeof pnum, "%d", (int)partition);
    rc_args_str(&st->args, "ZREVRANGE");
    st_redis_key(st, "seen:", pnum, strlen(pnum));
    rc_args_str(&st->args, "0");
    rc_args_str(&st->args, "0");
    rc_args_str(&st->args, "WITHSCORES");
    redisReply *r = rc_command(&st->conn, &st->args, "ZREVRANGE seen", errstr, errstr_size);
    if (!r)
        return -1;
    int rc = 0;
    if (r->type != REDIS_REPLY_ARRAY) {
        snprintf(errstr, errstr_size, "redis %s: ZREVRANGE %sseen:%d: unexpected reply type %d",
                 st->conn.addr, st->prefix, (int)partition, r->type);
        rc = -1;
    } else if (r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING) {
        char *end;
        double v = strtod(r->element[1]->str, &end); /* scores are ms, exact below 2^53 */
        if (end != r->element[1]->str && v >= -9.0e15 && v <= 9.0e15) {
            *max_ms = (int64_t)v;
            *found = 1;
        }
    }
    freeReplyObject(r);
    return rc;
}
