/* The Redis store's batch commit (store_redis.h): every dirty record, the last-seen index
 * updates, offsets, progress, model, outbox and latest scores queued as one MULTI/EXEC. */
#include "redis_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void drain(void *opaque);

void st_redis_discard(st_redis_t *st)
{
    if (st->inflight.active) { /* read its outcome off the connection; the caller redoes */
        drain(st);
        st->inflight.active = 0;
    }
    rc_cache_clear(&st->cache);
    st->latched[0] = '\0';
}

/* Distinct partitions of the cache (unindex and owner), into a growing list. */
static int collect_partitions(const st_redis_t *st, int32_t **out, size_t *n)
{
    size_t cap = 4;
    int32_t *ps = malloc(cap * sizeof(*ps));
    if (!ps)
        return -1;
    *n = 0;
    for (size_t i = 0; i < st->cache.n; i++) {
        const rc_entry_t *e = st->cache.items[i];
        int32_t cand[2] = {e->partition, e->unindex_partition};
        for (int k = 0; k < 2; k++) {
            if (cand[k] < 0)
                continue;
            size_t j = 0;
            while (j < *n && ps[j] != cand[k])
                j++;
            if (j < *n)
                continue;
            if (*n == cap) {
                int32_t *g = realloc(ps, 2 * cap * sizeof(*ps));
                if (!g) {
                    free(ps);
                    return -1;
                }
                ps = g;
                cap *= 2;
            }
            ps[(*n)++] = cand[k];
        }
    }
    *out = ps;
    return 0;
}

static int needs_zadd(const rc_entry_t *e, int32_t partition)
{
    return e->dirty && e->partition == partition && e->last_now_ms != FEAT_NEVER &&
           e->last_now_ms != e->last_before_ms;
}

/* Appends one command per chunk of entries passing `want` (key first, then per entry the
 * arguments `add` writes). Returns commands appended, -1 on error. */
static int append_chunked(st_redis_t *st, const char *cmd, const char *mid, const char *key_id,
                          int (*want)(const rc_entry_t *, int32_t), int32_t partition,
                          void (*add)(st_redis_t *, const rc_entry_t *), char *errstr,
                          size_t errstr_size)
{
    int cmds = 0;
    size_t in_chunk = 0;
    for (size_t i = 0; i <= st->cache.n; i++) {
        const rc_entry_t *e = i < st->cache.n ? st->cache.items[i] : NULL;
        if (e && !want(e, partition))
            continue;
        if (in_chunk && (!e || in_chunk == RC_MGET_CHUNK)) {
            if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0)
                return -1;
            cmds++;
            in_chunk = 0;
        }
        if (!e)
            break;
        if (in_chunk == 0) {
            rc_args_str(&st->args, cmd);
            if (key_id)
                rc_args_cat(&st->args, st->prefix, st->prefix_len, mid, strlen(mid), key_id,
                            strlen(key_id));
        }
        add(st, e);
        in_chunk++;
    }
    return cmds;
}

static int want_unindex(const rc_entry_t *e, int32_t partition)
{
    return e->unindex_partition == partition;
}

static int want_dirty(const rc_entry_t *e, int32_t partition)
{
    (void)partition;
    return e->dirty;
}

static void add_member(st_redis_t *st, const rc_entry_t *e)
{
    rc_args_add(&st->args, e->uid, e->uid_len);
}

static void add_score_member(st_redis_t *st, const rc_entry_t *e)
{
    rc_args_i64(&st->args, e->last_now_ms);
    rc_args_add(&st->args, e->uid, e->uid_len);
}

static void add_key_record(st_redis_t *st, const rc_entry_t *e)
{
    uint8_t buf[USER_REC_MAX_BYTES];
    size_t n = user_rec_encode(&e->rec, buf, sizeof(buf));
    st_redis_key(st, "u:", e->uid, e->uid_len);
    rc_args_add(&st->args, buf, n);
}

/* Queues the transaction's commands after MULTI; returns how many, -1 on error. */
/* Queues what a commit carries besides the records: offsets, progress, the model and the
 * outbox. Returns the number of commands queued, or -1 with errstr. */
static int queue_extras(st_redis_t *st, const st_commit_t *c, char *errstr, size_t errstr_size)
{
    int q = 0;
    if (c->n_offsets) {
        rc_args_str(&st->args, "HSET");
        st_redis_key(st, "offsets", NULL, 0);
        for (size_t i = 0; i < c->n_offsets; i++) {
            rc_args_i64(&st->args, c->offset_partitions[i]);
            rc_args_i64(&st->args, c->next_offsets[i]);
        }
        if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0)
            return -1;
        q++;
    }
    if (c->n_progress) {
        rc_args_str(&st->args, "HSET");
        st_redis_key(st, "progress", NULL, 0);
        for (size_t i = 0; i < c->n_progress; i++) {
            rc_args_i64(&st->args, c->progress_partitions[i]);
            rc_args_add(&st->args, c->progress[i].b, STORE_PROGRESS_BYTES);
        }
        if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0)
            return -1;
        q++;
    }
    if (c->model) {
        rc_args_str(&st->args, "SET");
        st_redis_key(st, "model", NULL, 0);
        rc_args_ref(&st->args, c->model, c->model_len); /* borrowed until appended */
        if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0)
            return -1;
        q++;
    }
    if (c->n_outbox) {
        rc_args_str(&st->args, "HSET");
        st_redis_key(st, "outbox", NULL, 0);
        for (size_t i = 0; i < c->n_outbox; i++) {
            const char *uid = c->outbox_user_ids ? c->outbox_user_ids[i] : "";
            size_t ul = strlen(uid);
            if (ul > UINT16_MAX) {
                rc_args_reset(&st->args);
                snprintf(errstr, errstr_size, "outbox: user id of %zu bytes", ul);
                return -1;
            }
            uint8_t lb[2] = {(uint8_t)ul, (uint8_t)(ul >> 8)};
            rc_args_str(&st->args, c->outbox_ids[i]);
            rc_args_cat(&st->args, (const char *)lb, 2, uid, ul, c->outbox_values[i],
                        c->outbox_lens[i]);
        }
        if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0)
            return -1;
        q++;
    }
    return q;
}

static int queue_commit(st_redis_t *st, const st_commit_t *c, char *errstr, size_t errstr_size)
{
    int q = 0, k;
    int32_t *parts = NULL;
    size_t nparts = 0;
    char pnum[16];
    /* Every dirty record must encode before anything is queued: an unencodable state (a
     * broken invariant) must fail the batch, never be written as an empty value. */
    for (size_t i = 0; i < st->cache.n; i++) {
        const rc_entry_t *e = st->cache.items[i];
        uint8_t buf[USER_REC_MAX_BYTES];
        if (e->dirty && user_rec_encode(&e->rec, buf, sizeof(buf)) == 0) {
            snprintf(errstr, errstr_size, "user \"%.*s\": record cannot be encoded (invalid state)",
                     (int)(e->uid_len > 64 ? 64 : e->uid_len), e->uid);
            return -1;
        }
    }
    if (collect_partitions(st, &parts, &nparts) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    /* Stale index members go first, so a user who comes back in the same batch is re-added
     * by the ZADD below. */
    for (size_t i = 0; i < nparts; i++) {
        snprintf(pnum, sizeof(pnum), "%d", (int)parts[i]);
        if ((k = append_chunked(st, "ZREM", "seen:", pnum, want_unindex, parts[i], add_member,
                                errstr, errstr_size)) < 0)
            goto fail;
        q += k;
    }
    if (st->ttl_ms > 0) {
        for (size_t i = 0; i < st->cache.n; i++) {
            const rc_entry_t *e = st->cache.items[i];
            if (!e->dirty)
                continue;
            rc_args_str(&st->args, "SET");
            add_key_record(st, e);
            rc_args_str(&st->args, "PX");
            rc_args_i64(&st->args, st->ttl_ms);
            if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0)
                goto fail;
            q++;
        }
    } else {
        /* No expiry: one MSET per chunk instead of one SET per user. */
        if ((k = append_chunked(st, "MSET", NULL, NULL, want_dirty, 0, add_key_record, errstr,
                                errstr_size)) < 0)
            goto fail;
        q += k;
    }
    for (size_t i = 0; i < nparts; i++) {
        snprintf(pnum, sizeof(pnum), "%d", (int)parts[i]);
        if ((k = append_chunked(st, "ZADD", "seen:", pnum, needs_zadd, parts[i], add_score_member,
                                errstr, errstr_size)) < 0)
            goto fail;
        q += k;
    }
    free(parts);
    if (!c)
        return q;
    if ((k = queue_extras(st, c, errstr, errstr_size)) < 0)
        return -1;
    q += k;
    if ((k = st_redis_queue_scores(st, c, errstr, errstr_size)) < 0)
        return -1;
    q += k;
    if ((k = st_redis_queue_journals(st, c, errstr, errstr_size)) < 0)
        return -1;
    return q + k;
fail:
    free(parts);
    return -1;
}

static int has_writes(const st_redis_t *st, const st_commit_t *c)
{
    if (c &&
        (c->n_offsets || c->n_progress || c->model || c->n_outbox || c->n_scores || c->n_journals))
        return 1;
    for (size_t i = 0; i < st->cache.n; i++)
        if (st->cache.items[i]->dirty || st->cache.items[i]->unindex_partition >= 0)
            return 1;
    return 0;
}

/* Takes the next reply of the commit in flight (in order: MULTI's, the +QUEUED ones, EXEC's)
 * and frees it; EXEC's decides the outcome. */
static void take_reply(st_redis_t *st, redisReply *r)
{
    rc_inflight_t *f = &st->inflight;
    if (f->left > 1) {
        if (r->type == REDIS_REPLY_ERROR && !f->first_err[0])
            snprintf(f->first_err, sizeof(f->first_err), "%s", r->str);
    } else if (r->type == REDIS_REPLY_ERROR) {
        snprintf(f->err, sizeof(f->err), "redis %s: commit refused, nothing applied: %s%s%s%s",
                 st->conn.addr, r->str, f->first_err[0] ? " (" : "", f->first_err,
                 f->first_err[0] ? ")" : "");
        f->rc = -1;
    } else if (r->type != REDIS_REPLY_ARRAY) {
        snprintf(f->err, sizeof(f->err), "redis %s: commit aborted (EXEC returned no results)",
                 st->conn.addr);
        f->rc = -1;
    } else {
        /* Errors at run time (a key of the wrong type, written by something else) do not
         * roll the rest back: say so, the state needs attention. */
        for (size_t i = 0; i < r->elements && f->rc == 0; i++) {
            if (r->element[i]->type == REDIS_REPLY_ERROR) {
                snprintf(f->err, sizeof(f->err),
                         "redis %s: commit applied partially: command %zu of %d failed: %s",
                         st->conn.addr, i + 1, f->q, r->element[i]->str);
                f->rc = -1;
            }
        }
    }
    freeReplyObject(r);
    f->left--;
}

static void inflight_failed(st_redis_t *st, const char *err)
{
    st->inflight.rc = -1;
    st->inflight.left = 0;
    snprintf(st->inflight.err, sizeof(st->inflight.err), "%s", err);
}

/* Reads every reply of the commit in flight, blocking (rc_conn_t.drain, and _finish with
 * wait). */
static void drain(void *opaque)
{
    st_redis_t *st = opaque;
    char err[512];
    st->conn.drain = NULL;
    while (st->inflight.left > 0) {
        redisReply *r;
        if (rc_read(&st->conn, &r, "commit", err, sizeof(err)) != 0) {
            inflight_failed(st, err);
            return;
        }
        take_reply(st, r);
    }
}

int st_redis_commit_send(st_redis_t *st, const st_commit_t *c, char *errstr, size_t errstr_size)
{
    if (st->inflight.active) {
        snprintf(errstr, errstr_size, "redis %s: a commit is still in flight", st->conn.addr);
        return -1;
    }
    if (rcl_wrap(st))
        return rcl_commit(st, c, errstr, errstr_size); /* one transaction per partition */
    if (st->latched[0]) {
        snprintf(errstr, errstr_size, "%s", st->latched);
        return -1;
    }
    if (!has_writes(st, c)) {
        rc_cache_clear(&st->cache); /* a batch that changed nothing costs no round trip */
        return 0;
    }
    if (rc_check(&st->conn, errstr, errstr_size) != 0)
        return -1;
    rc_args_str(&st->args, "MULTI");
    if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0)
        return -1;
    int q = queue_commit(st, c, errstr, errstr_size);
    if (q < 0) {
        /* Commands may already sit in the output buffer: the stream is out of step. */
        if (st->conn.ctx) {
            redisFree(st->conn.ctx);
            st->conn.ctx = NULL;
        }
        return -1;
    }
    rc_args_str(&st->args, "EXEC");
    if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0 ||
        rc_flush(&st->conn, "commit", errstr, errstr_size) != 0)
        return -1;
    st->inflight.active = 1;
    st->inflight.left = q + 2;
    st->inflight.q = q;
    st->inflight.rc = 0;
    st->inflight.first_err[0] = st->inflight.err[0] = '\0';
    st->conn.drain = drain;
    st->conn.drain_opaque = st;
    return 0;
}

int st_redis_commit_finish(st_redis_t *st, int wait, char *errstr, size_t errstr_size)
{
    if (!st->inflight.active)
        return 0;
    if (wait) {
        drain(st);
    } else {
        while (st->inflight.left > 0) {
            redisReply *r;
            char err[512];
            int k = rc_try_read(&st->conn, &r, "commit", err, sizeof(err));
            if (k == 0)
                return 1;
            if (k < 0) {
                inflight_failed(st, err);
                break;
            }
            take_reply(st, r);
        }
        st->conn.drain = NULL;
    }
    st->inflight.active = 0;
    if (st->inflight.rc != 0) {
        snprintf(errstr, errstr_size, "%s", st->inflight.err);
        return -1;
    }
    for (size_t i = 0; i < st->cache.n; i++)
        if (st->cache.items[i]->dirty && !st->cache.items[i]->stored)
            st->users_created++;
    st->commits++;
    rc_cache_clear(&st->cache);
    return 0;
}

int st_redis_commit(st_redis_t *st, const st_commit_t *c, char *errstr, size_t errstr_size)
{
    if (st_redis_commit_send(st, c, errstr, errstr_size) != 0)
        return -1;
    return st_redis_commit_finish(st, 1, errstr, errstr_size);
}
