/* Model journals in Redis (store_redis.h, "Model journals"): each batch's journal entry of a
 * partition is written by that partition's commit; a merge folds pending entries into the
 * stored model under WATCH and records, in the same transaction, up to which sequence each
 * partition is merged, so an entry is merged exactly once whoever merges and however often. */
#include "grow.h"
#include "redis_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MERGE_ATTEMPTS 20

static void journal_key(st_redis_t *st, int32_t partition)
{
    char pnum[16];
    snprintf(pnum, sizeof pnum, "%d", (int)partition);
    st_redis_key(st, "journal:", pnum, strlen(pnum));
}

int st_redis_queue_journals(st_redis_t *st, const st_commit_t *c, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < c->n_journals; i++) {
        rc_args_str(&st->args, "HSET");
        journal_key(st, c->journal_partitions[i]);
        rc_args_i64(&st->args, (int64_t)c->journal_seqs[i]);
        rc_args_ref(&st->args, c->journal_bytes[i], c->journal_lens[i]);
        rc_args_str(&st->args, "next");
        rc_args_i64(&st->args, (int64_t)c->journal_seqs[i] + 1);
        if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0)
            return -1;
    }
    return (int)c->n_journals;
}

/* A decimal field or value of at most 19 digits; -1 when it is not one. */
static int64_t parse_dec(const char *s, size_t len)
{
    if (len == 0 || len > 19)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static redisReply *hgetall(st_redis_t *st, const char *mid, int32_t partition, char *errstr,
                           size_t errstr_size)
{
    rc_args_str(&st->args, "HGETALL");
    if (partition >= 0)
        journal_key(st, partition);
    else
        st_redis_key(st, mid, NULL, 0);
    redisReply *r = rc_command(&st->conn, &st->args, "HGETALL", errstr, errstr_size);
    if (r && (r->type != REDIS_REPLY_ARRAY || r->elements % 2)) {
        snprintf(errstr, errstr_size, "redis %s: HGETALL %s: unexpected reply type %d",
                 st->conn.addr, partition >= 0 ? "journal" : mid, r->type);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

int st_redis_journal_next(st_redis_t *st, int32_t partition, uint64_t *next, char *errstr,
                          size_t errstr_size)
{
    if (rcl_wrap(st)) {
        int rc;
        RCL_CALL(st, partition, rc, st_redis_journal_next(st, partition, next, errstr, errstr_size),
                 errstr, errstr_size);
        return rc;
    }
    *next = 0;
    rc_args_str(&st->args, "HGET");
    journal_key(st, partition);
    rc_args_str(&st->args, "next");
    redisReply *r = rc_command(&st->conn, &st->args, "HGET journal next", errstr, errstr_size);
    if (!r)
        return -1;
    int rc = 0;
    if (r->type == REDIS_REPLY_STRING) {
        int64_t v = parse_dec(r->str, r->len);
        if (v < 0) {
            snprintf(errstr, errstr_size, "redis %s: journal of partition %d: bad next \"%.20s\"",
                     st->conn.addr, (int)partition, r->str);
            rc = -1;
        } else {
            *next = (uint64_t)v;
        }
    } else if (r->type != REDIS_REPLY_NIL) {
        snprintf(errstr, errstr_size, "redis %s: HGET journal next: unexpected reply type %d",
                 st->conn.addr, r->type);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

/* ---- merge ---- */

typedef struct merge_s {
    int32_t *parts; /* every partition to look at, ascending */
    size_t nparts, cap;
    st_journal_entry_t *e; /* pending entries read, by (partition, seq) */
    size_t ne, cape;
    uint64_t *applied; /* per parts[i]: the next sequence not merged, as last read */
    int64_t mark;      /* P mapplied "wm": the caller's mark of the stored model */
} merge_t;

typedef struct merge_call_s {
    merge_t *m;
    st_merge_fn fn;
    void *ctx;
    st_merge_result_t *res;
} merge_call_t;

/* One step of a merge, run where a partition's keys live (at()). */
typedef struct step_s {
    merge_t *m;
    merge_call_t *mc;
    int32_t p;       /* read_journal: the partition */
    size_t k;        /* trim: index in m->parts */
    int add_parts;   /* read_applied */
    size_t *removed; /* trim */
} step_t;
typedef int (*step_fn)(st_redis_t *st, step_t *a, char *errstr, size_t errstr_size);

/* fn where partition's keys live: in cluster mode routed there, redirections followed and
 * the step run again from its start (each step is safe to repeat). */
static int at(st_redis_t *st, int32_t partition, step_fn fn, step_t *a, char *errstr,
              size_t errstr_size)
{
    if (!rcl_wrap(st))
        return fn(st, a, errstr, errstr_size);
    int rc;
    RCL_CALL(st, partition, rc, fn(st, a, errstr, errstr_size), errstr, errstr_size);
    return rc;
}

static void merge_free(merge_t *m)
{
    for (size_t i = 0; i < m->ne; i++)
        free((void *)m->e[i].bytes);
    free(m->parts);
    free(m->e);
    free(m->applied);
}

static int add_part(merge_t *m, int32_t p)
{
    return rcl_parts_add(&m->parts, &m->nparts, &m->cap, p);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int cmp_entry(const void *a, const void *b)
{
    const st_journal_entry_t *x = a, *y = b;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Reads the model's applied marks (P mapplied) into m->applied; with add_parts, the
 * partitions named there join m->parts. Runs where the model's key lives. */
static int read_applied(st_redis_t *st, step_t *a, char *errstr, size_t errstr_size)
{
    merge_t *m = a->m;
    const int add_parts = a->add_parts;
    redisReply *r = hgetall(st, "mapplied", -1, errstr, errstr_size);
    if (!r)
        return -1;
    int rc = 0;
    m->mark = INT64_MIN;
    for (size_t i = 0; rc == 0 && i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        if (f->len == 2 && memcmp(f->str, "wm", 2) == 0) {
            char *end;
            long long w = strtoll(v->str, &end, 10);
            if (v->len == 0 || end != v->str + v->len) {
                snprintf(errstr, errstr_size, "redis %s: mapplied: bad wm \"%.20s\"", st->conn.addr,
                         v->str);
                rc = -1;
            }
            m->mark = w;
            continue;
        }
        int64_t p = parse_dec(f->str, f->len), mark = parse_dec(v->str, v->len);
        if (p < 0 || p > INT32_MAX || mark < 0) {
            snprintf(errstr, errstr_size, "redis %s: mapplied: bad entry \"%.20s\" -> \"%.20s\"",
                     st->conn.addr, f->str, v->str);
            rc = -1;
        } else if (add_parts) {
            rc = add_part(m, (int32_t)p) == 0 ? 0 : -1;
        } else {
            for (size_t k = 0; k < m->nparts; k++)
                if (m->parts[k] == (int32_t)p)
                    m->applied[k] = (uint64_t)mark;
        }
    }
    freeReplyObject(r);
    return rc;
}

/* Every entry of partition p's journal (HGETALL; "next" skipped) into m->e. */
static int read_journal(st_redis_t *st, step_t *a, char *errstr, size_t errstr_size)
{
    merge_t *m = a->m;
    const int32_t p = a->p;
    redisReply *r = hgetall(st, NULL, p, errstr, errstr_size);
    if (!r)
        return -1;
    size_t ne0 = m->ne;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        if (f->len == 4 && memcmp(f->str, "next", 4) == 0)
            continue;
        int64_t seq = parse_dec(f->str, f->len);
        uint8_t *b = malloc(v->len ? v->len : 1);
        if (seq < 0 || !b || (m->ne == m->cape && CS_GROW(m->e, m->cape, m->ne + 1, 16) != 0)) {
            free(b);
            snprintf(errstr, errstr_size,
                     seq < 0 ? "redis %s: journal of partition %d: bad field \"%.20s\""
                             : "redis %s: journal of partition %d: out of memory%.0s",
                     st->conn.addr, (int)p, f->str);
            rc = -1;
            break;
        }
        memcpy(b, v->str, v->len);
        m->e[m->ne++] =
            (st_journal_entry_t){.partition = p, .seq = (uint64_t)seq, .bytes = b, .len = v->len};
    }
    freeReplyObject(r);
    while (rc != 0 && m->ne > ne0) /* a retry reads the journal again */
        free((void *)m->e[--m->ne].bytes);
    return rc;
}

static int simple(st_redis_t *st, const char *cmd, const char *what, char *errstr,
                  size_t errstr_size)
{
    redisReply *r = rc_command(&st->conn, &st->args, what, errstr, errstr_size);
    if (!r)
        return -1;
    int rc = r->type == REDIS_REPLY_ERROR ? -1 : 0;
    if (rc)
        snprintf(errstr, errstr_size, "redis %s: %s: %s", st->conn.addr, cmd, r->str);
    freeReplyObject(r);
    return rc;
}

/* SET P model and HSET P mapplied (each merged partition -> its last sequence + 1, and
 * the mark), queued after MULTI. 0, or -1 with errstr. */
static int queue_merged(st_redis_t *st, const merge_t *m, const uint8_t *model, size_t len,
                        const uint64_t *upto, int64_t mark, char *errstr, size_t errstr_size)
{
    rc_args_str(&st->args, "SET");
    st_redis_key(st, "model", NULL, 0);
    rc_args_ref(&st->args, model, len);
    if (simple(st, "SET", "SET model", errstr, errstr_size) != 0)
        return -1;
    rc_args_str(&st->args, "HSET");
    st_redis_key(st, "mapplied", NULL, 0);
    for (size_t k = 0; k < m->nparts; k++)
        if (upto[k] > m->applied[k]) {
            rc_args_i64(&st->args, m->parts[k]);
            rc_args_i64(&st->args, (int64_t)upto[k]);
        }
    if (mark != INT64_MIN) {
        rc_args_str(&st->args, "wm");
        rc_args_i64(&st->args, mark);
    }
    return simple(st, "HSET", "HSET mapplied", errstr, errstr_size);
}

/* MULTI, queue_merged, EXEC. 1 when applied, 0 when a watched key changed (nothing
 * applied), -1 on error (a command refused inside MULTI: DISCARD, so the connection leaves
 * the transaction; a redirection is then followed by the caller's retry). */
static int write_merged(st_redis_t *st, const merge_t *m, const uint8_t *model, size_t len,
                        const uint64_t *upto, int64_t mark, char *errstr, size_t errstr_size)
{
    rc_args_str(&st->args, "MULTI");
    if (simple(st, "MULTI", "MULTI", errstr, errstr_size) != 0)
        return -1;
    if (queue_merged(st, m, model, len, upto, mark, errstr, errstr_size) != 0) {
        char e2[256];
        if (st->conn.ctx) {
            rc_args_str(&st->args, "DISCARD");
            (void)simple(st, "DISCARD", "DISCARD", e2, sizeof e2);
        }
        return -1;
    }
    rc_args_str(&st->args, "EXEC");
    redisReply *r = rc_command(&st->conn, &st->args, "EXEC", errstr, errstr_size);
    if (!r)
        return -1;
    int rc = r->type == REDIS_REPLY_NIL ? 0 : r->type == REDIS_REPLY_ARRAY ? 1 : -1;
    if (rc < 0)
        snprintf(errstr, errstr_size, "redis %s: merge EXEC: %s", st->conn.addr,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    return rc;
}

/* One optimistic attempt where the model lives: WATCH the model and the marks, read both,
 * hand the pending entries to the caller's merge, write the result. 1 merged, 0 nothing
 * pending, 2 lost a race (retry), -1 error. */
static int try_merge(st_redis_t *st, step_t *a, char *errstr, size_t errstr_size)
{
    merge_call_t *mc = a->mc;
    merge_t *m = mc->m;
    rc_args_str(&st->args, "WATCH");
    st_redis_key(st, "model", NULL, 0);
    st_redis_key(st, "mapplied", NULL, 0);
    if (simple(st, "WATCH", "WATCH", errstr, errstr_size) != 0)
        return -1;
    memset(m->applied, 0, m->nparts * sizeof(*m->applied));
    step_t ra = {.m = m};
    if (read_applied(st, &ra, errstr, errstr_size) != 0)
        return -1;
    size_t n = 0;
    uint64_t *upto = calloc(m->nparts + 1, sizeof(*upto));
    st_journal_entry_t *pend = malloc((m->ne + 1) * sizeof(*pend)); /* bytes borrowed */
    if (!upto || !pend) {
        free(upto);
        free(pend);
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (size_t k = 0; k < m->nparts; k++)
        upto[k] = m->applied[k];
    /* m->e is sorted by (partition, seq), and so is m->parts. */
    size_t k = 0;
    for (size_t i = 0; i < m->ne; i++) {
        while (m->parts[k] != m->e[i].partition)
            k++;
        if (m->e[i].seq < m->applied[k])
            continue;
        pend[n++] = m->e[i];
        upto[k] = m->e[i].seq + 1;
    }
    int rc = -1;
    redisReply *r = NULL;
    rc_args_str(&st->args, "GET");
    st_redis_key(st, "model", NULL, 0);
    if (!(r = rc_command(&st->conn, &st->args, "GET model", errstr, errstr_size)))
        goto out;
    if (r->type != REDIS_REPLY_NIL && r->type != REDIS_REPLY_STRING) {
        snprintf(errstr, errstr_size, "redis %s: GET model: unexpected reply type %d",
                 st->conn.addr, r->type);
        goto out;
    }
    const uint8_t *stored = r->type == REDIS_REPLY_STRING ? (const uint8_t *)r->str : NULL;
    size_t stored_len = stored ? r->len : 0;
    if (n == 0) { /* nothing to merge: the stored model as it is */
        rc_args_str(&st->args, "UNWATCH");
        if (simple(st, "UNWATCH", "UNWATCH", errstr, errstr_size) != 0)
            goto out;
        if (stored && !(mc->res->model = malloc(stored_len ? stored_len : 1))) {
            snprintf(errstr, errstr_size, "out of memory");
            goto out;
        }
        if (stored)
            memcpy(mc->res->model, stored, stored_len);
        mc->res->model_len = stored_len;
        mc->res->mark = m->mark;
        rc = 0;
        goto out;
    }
    uint8_t *out_buf = NULL;
    size_t out_len = 0;
    int64_t mark = m->mark;
    if (mc->fn(mc->ctx, stored, stored_len, pend, n, &out_buf, &out_len, &mark, errstr,
               errstr_size) != 0)
        goto out;
    int w = write_merged(st, m, out_buf, out_len, upto, mark, errstr, errstr_size);
    if (w <= 0) {
        free(out_buf);
        rc = w < 0 ? -1 : 2;
        goto out;
    }
    rc = 1;
    mc->res->entries = n;
    mc->res->model = out_buf;
    mc->res->model_len = out_len;
    mc->res->mark = mark;
    for (size_t q = 0; q < m->nparts; q++)
        m->applied[q] = upto[q] > m->applied[q] ? upto[q] : m->applied[q];
out:
    if (r)
        freeReplyObject(r);
    free(upto);
    free(pend);
    return rc;
}

/* HDEL of partition p's entries below its applied mark (merged by now, by anyone). */
static int trim_one(st_redis_t *st, step_t *a, char *errstr, size_t errstr_size)
{
    const merge_t *m = a->m;
    size_t n = 0;
    rc_args_str(&st->args, "HDEL");
    journal_key(st, m->parts[a->k]);
    for (size_t i = 0; i < m->ne; i++)
        if (m->e[i].partition == m->parts[a->k] && m->e[i].seq < m->applied[a->k]) {
            rc_args_i64(&st->args, (int64_t)m->e[i].seq);
            n++;
        }
    if (n == 0) {
        rc_args_reset(&st->args);
        return 0;
    }
    if (simple(st, "HDEL", "HDEL journal", errstr, errstr_size) != 0)
        return -1;
    *a->removed += n;
    return 0;
}

int st_redis_model_merge(st_redis_t *st, const int32_t *parts, size_t nparts, st_merge_fn fn,
                         void *ctx, st_merge_result_t *res, char *errstr, size_t errstr_size)
{
    merge_t m = {0};
    merge_call_t mc = {.m = &m, .fn = fn, .ctx = ctx, .res = res};
    memset(res, 0, sizeof(*res));
    res->mark = INT64_MIN;
    int rc = -1;
    for (size_t i = 0; i < nparts; i++)
        if (parts[i] >= 0 && add_part(&m, parts[i]) != 0)
            goto oom;
    step_t ra = {.m = &m, .add_parts = 1};
    if (at(st, RCL_MODEL_PARTITION, read_applied, &ra, errstr, errstr_size) != 0)
        goto out;
    if (m.nparts > 1)
        qsort(m.parts, m.nparts, sizeof(*m.parts), cmp_i32);
    if (!(m.applied = calloc(m.nparts + 1, sizeof(*m.applied))))
        goto oom;
    for (size_t k = 0; k < m.nparts; k++) {
        step_t rj = {.m = &m, .p = m.parts[k]};
        if (at(st, m.parts[k], read_journal, &rj, errstr, errstr_size) != 0)
            goto out;
    }
    if (m.ne > 1)
        qsort(m.e, m.ne, sizeof(*m.e), cmp_entry);
    int t;
    step_t tm = {.mc = &mc};
    do
        t = at(st, RCL_MODEL_PARTITION, try_merge, &tm, errstr, errstr_size);
    while (t == 2 && ++res->conflicts < MERGE_ATTEMPTS);
    if (t < 0) {
        if (st->conn.ctx) { /* a WATCH must not outlive the merge on this connection */
            char e2[256];
            rc_args_str(&st->args, "UNWATCH");
            (void)simple(st, "UNWATCH", "UNWATCH", e2, sizeof e2);
        }
        goto out;
    }
    if (t == 2) {
        snprintf(errstr, errstr_size,
                 "model merge: lost %d races in a row to other instances' merges; the journals "
                 "stay for the next merge",
                 MERGE_ATTEMPTS);
        goto out;
    }
    /* Whatever is below a partition's mark is merged (by this merge or an earlier one).
     * Best effort: an entry left behind is skipped and trimmed by the next merge. */
    for (size_t k = 0; k < m.nparts; k++) {
        step_t tr = {.m = &m, .k = k, .removed = &res->trimmed};
        char e2[256];
        (void)at(st, m.parts[k], trim_one, &tr, e2, sizeof e2);
    }
    res->partitions = m.nparts;
    rc = 0;
    goto out;
oom:
    snprintf(errstr, errstr_size, "out of memory");
out:
    if (rc != 0) {
        free(res->model);
        res->model = NULL;
    }
    merge_free(&m);
    return rc;
}

int st_redis_journal_status(st_redis_t *st, st_journal_status_t *out, char *errstr,
                            size_t errstr_size)
{
    merge_t m = {0};
    memset(out, 0, sizeof(*out));
    out->mark = INT64_MIN;
    step_t ra = {.m = &m, .add_parts = 1};
    int rc = -1;
    if (at(st, RCL_MODEL_PARTITION, read_applied, &ra, errstr, errstr_size) != 0)
        goto out;
    if (m.nparts > 1)
        qsort(m.parts, m.nparts, sizeof(*m.parts), cmp_i32);
    out->n = m.nparts;
    if (!(m.applied = calloc(m.nparts + 1, sizeof(*m.applied))) ||
        !(out->parts = calloc(m.nparts + 1, sizeof(*out->parts))) ||
        !(out->merged = calloc(m.nparts + 1, sizeof(*out->merged))) ||
        !(out->committed = calloc(m.nparts + 1, sizeof(*out->committed)))) {
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    ra.add_parts = 0; /* again, now with a slot per partition for its mark */
    if (at(st, RCL_MODEL_PARTITION, read_applied, &ra, errstr, errstr_size) != 0)
        goto out;
    out->mark = m.mark;
    for (size_t k = 0; k < m.nparts; k++) {
        out->parts[k] = m.parts[k];
        out->merged[k] = m.applied[k];
        if (st_redis_journal_next(st, m.parts[k], &out->committed[k], errstr, errstr_size) != 0)
            goto out;
    }
    rc = 0;
out:
    merge_free(&m);
    if (rc != 0)
        st_journal_status_free(out);
    return rc;
}

void st_journal_status_free(st_journal_status_t *s)
{
    free(s->parts);
    free(s->merged);
    free(s->committed);
    memset(s, 0, sizeof(*s));
    s->mark = INT64_MIN;
}
