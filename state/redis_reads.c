/* The Redis store outside the batch path: what a restart reads back (offsets, progress,
 * model, pending outbox), one user's record for `inspect`, and `forget` (the record, the
 * latest-score hash, every seen index entry and the user's pending alerts, in one
 * MULTI/EXEC). */
#include "grow.h"
#include "redis_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* HGET P <hash> <partition>: *r is NULL when absent. */
static int hget_partition(st_redis_t *st, const char *hash, int32_t partition, redisReply **out,
                          char *errstr, size_t errstr_size)
{
    char what[64];
    snprintf(what, sizeof(what), "HGET %s", hash);
    rc_args_str(&st->args, "HGET");
    st_redis_key(st, hash, NULL, 0);
    rc_args_i64(&st->args, partition);
    redisReply *r = rc_command(&st->conn, &st->args, what, errstr, errstr_size);
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        r = NULL;
    } else if (r->type != REDIS_REPLY_STRING) {
        snprintf(errstr, errstr_size, "redis %s: %s: unexpected reply type %d", st->conn.addr, what,
                 r->type);
        freeReplyObject(r);
        return -1;
    }
    *out = r;
    return 0;
}

int st_redis_load_offset(st_redis_t *st, int32_t partition, int64_t *next_offset, int *found,
                         char *errstr, size_t errstr_size)
{
    redisReply *r;
    *found = 0;
    if (rcl_wrap(st)) {
        int rc;
        RCL_CALL(st, partition, rc,
                 st_redis_load_offset(st, partition, next_offset, found, errstr, errstr_size),
                 errstr, errstr_size);
        return rc;
    }
    if (hget_partition(st, "offsets", partition, &r, errstr, errstr_size) != 0)
        return -1;
    if (!r)
        return 0;
    char buf[32], *end;
    int ok = r->len > 0 && r->len < sizeof(buf);
    if (ok) {
        memcpy(buf, r->str, r->len);
        buf[r->len] = '\0';
        errno = 0;
        long long v = strtoll(buf, &end, 10);
        ok = errno == 0 && *end == '\0' && v >= 0;
        *next_offset = v;
    }
    if (!ok) {
        char shown[64];
        rc_printable(r->str, r->len, shown, sizeof(shown));
        snprintf(errstr, errstr_size, "redis %s: %soffsets[%d]: expected an offset, got \"%s\"",
                 st->conn.addr, st->prefix, (int)partition, shown);
    }
    freeReplyObject(r);
    *found = ok;
    return ok ? 0 : -1;
}

int st_redis_load_progress(st_redis_t *st, int32_t partition, store_progress_t *out, int *found,
                           char *errstr, size_t errstr_size)
{
    redisReply *r;
    *found = 0;
    if (rcl_wrap(st)) {
        int rc;
        RCL_CALL(st, partition, rc,
                 st_redis_load_progress(st, partition, out, found, errstr, errstr_size), errstr,
                 errstr_size);
        return rc;
    }
    if (hget_partition(st, "progress", partition, &r, errstr, errstr_size) != 0)
        return -1;
    if (!r)
        return 0;
    if (r->len != STORE_PROGRESS_BYTES) {
        snprintf(errstr, errstr_size,
                 "redis %s: %sprogress[%d]: %zu bytes, expected %d (a pre-release layout, or "
                 "corrupt)",
                 st->conn.addr, st->prefix, (int)partition, (size_t)r->len, STORE_PROGRESS_BYTES);
        freeReplyObject(r);
        return -1;
    }
    memcpy(out->b, r->str, STORE_PROGRESS_BYTES);
    freeReplyObject(r);
    *found = 1;
    return 0;
}

/* GET of one of the store's keys (prefix + mid + id): *r NULL when absent. */
static int get_key(st_redis_t *st, const char *mid, const char *id, size_t len, redisReply **out,
                   char *errstr, size_t errstr_size)
{
    rc_args_str(&st->args, "GET");
    st_redis_key(st, mid, id, len);
    redisReply *r = rc_command(&st->conn, &st->args, "GET", errstr, errstr_size);
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        r = NULL;
    } else if (r->type != REDIS_REPLY_STRING) {
        snprintf(errstr, errstr_size, "redis %s: GET %s: unexpected reply type %d", st->conn.addr,
                 mid, r->type);
        freeReplyObject(r);
        return -1;
    }
    *out = r;
    return 0;
}

int st_redis_load_model(st_redis_t *st, uint8_t **buf, size_t *len, char *errstr,
                        size_t errstr_size)
{
    redisReply *r;
    *buf = NULL;
    *len = 0;
    if (rcl_wrap(st)) {
        int rc;
        RCL_CALL(st, RCL_MODEL_PARTITION, rc,
                 st_redis_load_model(st, buf, len, errstr, errstr_size), errstr, errstr_size);
        return rc;
    }
    if (get_key(st, "model", NULL, 0, &r, errstr, errstr_size) != 0)
        return -1;
    if (!r)
        return 0;
    *buf = malloc(r->len ? r->len : 1);
    if (!*buf) {
        freeReplyObject(r);
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    memcpy(*buf, r->str, r->len);
    *len = r->len;
    freeReplyObject(r);
    return 0;
}

int st_redis_get_user(st_redis_t *st, const char *user_id, user_rec_t *rec, int *found,
                      char *errstr, size_t errstr_size)
{
    redisReply *r;
    size_t len = strlen(user_id);
    *found = 0;
    if (rcl_wrap(st))
        return rcl_get_user(st, user_id, rec, found, errstr, errstr_size);
    if (get_key(st, "u:", user_id, len, &r, errstr, errstr_size) != 0)
        return -1;
    if (!r)
        return 0;
    char why[256];
    int rc = user_rec_decode(rec, (const uint8_t *)r->str, r->len, why, sizeof(why));
    freeReplyObject(r);
    if (rc != 0) {
        char pfx[128], id[300];
        rc_printable(st->prefix, st->prefix_len, pfx, sizeof(pfx));
        rc_printable(user_id, len, id, sizeof(id));
        snprintf(errstr, errstr_size, "redis %s: key \"%su:%s\": %s", st->conn.addr, pfx, id, why);
        return -1;
    }
    *found = 1;
    return 0;
}

/* ---- outbox ---- */

/* Splits an outbox value into the user id and the alert. -1 when malformed. */
static int outbox_split(const redisReply *v, const char **uid, size_t *uid_len,
                        const char **payload, size_t *payload_len)
{
    if (v->type != REDIS_REPLY_STRING || v->len < 2)
        return -1;
    const uint8_t *p = (const uint8_t *)v->str;
    size_t ul = (size_t)p[0] | (size_t)p[1] << 8;
    if (2 + ul > v->len)
        return -1;
    *uid = v->str + 2;
    *uid_len = ul;
    *payload = v->str + 2 + ul;
    *payload_len = v->len - 2 - ul;
    return 0;
}

static redisReply *hgetall_outbox(st_redis_t *st, char *errstr, size_t errstr_size)
{
    rc_args_str(&st->args, "HGETALL");
    st_redis_key(st, "outbox", NULL, 0);
    redisReply *r = rc_command(&st->conn, &st->args, "HGETALL outbox", errstr, errstr_size);
    if (r && (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)) {
        snprintf(errstr, errstr_size, "redis %s: HGETALL outbox: unexpected reply", st->conn.addr);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

void st_redis_outbox_free(st_outbox_t *ob)
{
    for (size_t i = 0; i < ob->n; i++) {
        free(ob->ids[i]);
        if (ob->user_ids)
            free(ob->user_ids[i]);
        free(ob->values[i]);
    }
    free(ob->ids);
    free(ob->user_ids);
    free(ob->values);
    free(ob->lens);
    memset(ob, 0, sizeof(*ob));
}

int st_redis_outbox_load(st_redis_t *st, st_outbox_t *out, char *errstr, size_t errstr_size)
{
    if (rcl_wrap(st))
        return rcl_outbox_load(st, out, errstr, errstr_size);
    memset(out, 0, sizeof(*out));
    redisReply *r = hgetall_outbox(st, errstr, errstr_size);
    if (!r)
        return -1;
    size_t n = r->elements / 2;
    out->ids = calloc(n ? n : 1, sizeof(*out->ids));
    out->user_ids = calloc(n ? n : 1, sizeof(*out->user_ids));
    out->values = calloc(n ? n : 1, sizeof(*out->values));
    out->lens = calloc(n ? n : 1, sizeof(*out->lens));
    if (!out->ids || !out->user_ids || !out->values || !out->lens)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        const redisReply *f = r->element[2 * i], *v = r->element[2 * i + 1];
        const char *uid, *payload;
        size_t ul, pl;
        if (f->type != REDIS_REPLY_STRING || outbox_split(v, &uid, &ul, &payload, &pl) != 0) {
            char shown[128];
            rc_printable(f->str, f->type == REDIS_REPLY_STRING ? f->len : 0, shown, sizeof(shown));
            snprintf(errstr, errstr_size, "redis %s: %soutbox[%s]: malformed entry", st->conn.addr,
                     st->prefix, shown);
            freeReplyObject(r);
            st_redis_outbox_free(out);
            return -1;
        }
        out->ids[i] = strndup(f->str, f->len);
        out->user_ids[i] = strndup(uid, ul);
        out->values[i] = malloc(pl ? pl : 1);
        out->n = i + 1;
        if (!out->ids[i] || !out->user_ids[i] || !out->values[i])
            goto oom;
        memcpy(out->values[i], payload, pl);
        out->lens[i] = pl;
    }
    freeReplyObject(r);
    return 0;
oom:
    freeReplyObject(r);
    st_redis_outbox_free(out);
    snprintf(errstr, errstr_size, "out of memory");
    return -1;
}

int st_redis_outbox_remove(st_redis_t *st, const char *const *ids, size_t n, char *errstr,
                           size_t errstr_size)
{
    if (n == 0)
        return 0;
    if (rcl_wrap(st))
        return rcl_outbox_remove(st, ids, n, errstr, errstr_size);
    /* HDEL and SREM pipelined: one round trip. */
    rc_args_str(&st->args, "HDEL");
    st_redis_key(st, "outbox", NULL, 0);
    for (size_t i = 0; i < n; i++)
        rc_args_str(&st->args, ids[i]);
    if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0)
        return -1;
    rc_args_str(&st->args, "SREM");
    st_redis_key(st, "outbox:sending", NULL, 0);
    for (size_t i = 0; i < n; i++)
        rc_args_str(&st->args, ids[i]);
    if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0)
        return -1;
    static const char *const what[2] = {"HDEL outbox", "SREM outbox:sending"};
    int rc = 0;
    for (int k = 0; k < 2; k++) {
        redisReply *r;
        if (rc_read(&st->conn, &r, what[k], errstr, errstr_size) != 0)
            return -1; /* the connection is dropped: nothing left out of step */
        if (r->type == REDIS_REPLY_ERROR && rc == 0) {
            snprintf(errstr, errstr_size, "redis %s: %s: %s", st->conn.addr, what[k], r->str);
            rc = -1;
        }
        freeReplyObject(r);
    }
    return rc;
}

/* Atomic against forget's transaction (a script runs alone): an alert is either gone from the
 * outbox before it is claimed (forgotten: never sent) or claimed first (forget then counts
 * it as already handed to Kafka). */
static const char claim_script[] = "local out = {}\n"
                                   "for i, id in ipairs(ARGV) do\n"
                                   "  if redis.call('HEXISTS', KEYS[1], id) == 1 then\n"
                                   "    redis.call('SADD', KEYS[2], id)\n"
                                   "    out[i] = 1\n"
                                   "  else\n"
                                   "    out[i] = 0\n"
                                   "  end\n"
                                   "end\n"
                                   "return out\n";

int st_redis_outbox_claim(st_redis_t *st, const char *const *ids, size_t n, uint8_t *claimed,
                          char *errstr, size_t errstr_size)
{
    if (n == 0)
        return 0;
    if (rcl_wrap(st))
        return rcl_outbox_claim(st, ids, n, claimed, errstr, errstr_size);
    rc_args_str(&st->args, "EVAL");
    rc_args_str(&st->args, claim_script);
    rc_args_str(&st->args, "2");
    st_redis_key(st, "outbox", NULL, 0);
    st_redis_key(st, "outbox:sending", NULL, 0);
    for (size_t i = 0; i < n; i++)
        rc_args_str(&st->args, ids[i]);
    redisReply *r = rc_command(&st->conn, &st->args, "claim outbox alerts", errstr, errstr_size);
    if (!r)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        snprintf(errstr, errstr_size, "redis %s: claim outbox alerts: unexpected reply%s%s",
                 st->conn.addr, r->type == REDIS_REPLY_ERROR ? ": " : "",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
        freeReplyObject(r);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        claimed[i] = r->element[i]->type == REDIS_REPLY_INTEGER && r->element[i]->integer == 1;
    freeReplyObject(r);
    return 0;
}

int st_redis_outbox_unclaim_all(st_redis_t *st, char *errstr, size_t errstr_size)
{
    if (rcl_wrap(st))
        return rcl_outbox_unclaim_all(st, errstr, errstr_size);
    rc_args_str(&st->args, "DEL");
    st_redis_key(st, "outbox:sending", NULL, 0);
    redisReply *r = rc_command(&st->conn, &st->args, "DEL outbox:sending", errstr, errstr_size);
    if (!r)
        return -1;
    freeReplyObject(r);
    return 0;
}

/* ---- forget ---- */

/* The SCAN pattern matching "P seen:*", with the prefix's glob characters escaped. */
size_t st_redis_glob_escape(char *out, const char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '\\')
            out[o++] = '\\';
        out[o++] = ch;
    }
    return o;
}

typedef struct strs_s {
    char **v;
    size_t *len;
    size_t n, cap;
} strs_t;

static int strs_push(void *ctx, const char *p, size_t len)
{
    strs_t *s = ctx;
    if (CS_GROW2(s->v, s->len, s->cap, s->n + 1, 8) != 0 || !(s->v[s->n] = malloc(len + 1)))
        return -1;
    memcpy(s->v[s->n], p, len);
    s->v[s->n][len] = '\0';
    s->len[s->n++] = len;
    return 0;
}

static void strs_free(strs_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    free(s->len);
    memset(s, 0, sizeof(*s));
}

/* Checks a SCAN reply (cursor, array of keys) and copies its next cursor into cursor (cap
 * bytes). 0, or -1 with errstr and r freed. */
static int scan_cursor(st_redis_t *st, redisReply *r, char *cursor, size_t cap, char *errstr,
                       size_t errstr_size)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= cap ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
        snprintf(errstr, errstr_size, "redis %s: SCAN: unexpected reply", st->conn.addr);
        freeReplyObject(r);
        return -1;
    }
    memcpy(cursor, r->element[0]->str, r->element[0]->len);
    cursor[r->element[0]->len] = '\0';
    return 0;
}

int st_redis_scan(st_redis_t *st, const char *pat, size_t pat_len, const char *type,
                  int (*visit)(void *ctx, const char *key, size_t len), void *ctx, char *errstr,
                  size_t errstr_size)
{
    char cursor[32] = "0";
    do {
        rc_args_str(&st->args, "SCAN");
        rc_args_str(&st->args, cursor);
        rc_args_str(&st->args, "MATCH");
        rc_args_add(&st->args, pat, pat_len);
        rc_args_str(&st->args, "COUNT");
        rc_args_str(&st->args, "1000");
        if (type) {
            rc_args_str(&st->args, "TYPE");
            rc_args_str(&st->args, type);
        }
        redisReply *r = rc_command(&st->conn, &st->args, "SCAN", errstr, errstr_size);
        if (!r)
            return -1;
        if (scan_cursor(st, r, cursor, sizeof(cursor), errstr, errstr_size) != 0)
            return -1;
        const redisReply *ks = r->element[1];
        for (size_t i = 0; i < ks->elements; i++) {
            if (ks->element[i]->type == REDIS_REPLY_STRING &&
                visit(ctx, ks->element[i]->str, ks->element[i]->len) != 0) {
                freeReplyObject(r);
                snprintf(errstr, errstr_size, "out of memory");
                return -1;
            }
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* Every "P seen:*" key, by SCAN. */
static int scan_seen_keys(st_redis_t *st, strs_t *keys, char *errstr, size_t errstr_size)
{
    char *pat = malloc(2 * st->prefix_len + 8);
    if (!pat) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    size_t o = st_redis_glob_escape(pat, st->prefix, st->prefix_len);
    memcpy(pat + o, "seen:*", 6);
    int rc = st_redis_scan(st, pat, o + 6, "zset", strs_push, keys, errstr, errstr_size);
    free(pat);
    return rc;
}

/* Queues forget's MULTI and its commands (record, score hash, the user in every seen
 * index, its outbox alerts and their claims). Returns the number of commands queued after
 * MULTI, or -1 with errstr. */
static int queue_forget(st_redis_t *st, const char *user_id, size_t ul, const strs_t *seen,
                        const strs_t *alerts, char *errstr, size_t errstr_size)
{
    int q = 0;
    rc_args_str(&st->args, "MULTI");
    if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0)
        return -1;
    rc_args_str(&st->args, "DEL");
    st_redis_key(st, "u:", user_id, ul);
    if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0)
        return -1;
    q++;
    rc_args_str(&st->args, "DEL");
    st_redis_key(st, "score:", user_id, ul);
    if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0)
        return -1;
    q++;
    for (size_t i = 0; i < seen->n; i++) {
        rc_args_str(&st->args, "ZREM");
        rc_args_add(&st->args, seen->v[i], seen->len[i]);
        rc_args_add(&st->args, user_id, ul);
        if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0)
            return -1;
        q++;
    }
    if (alerts->n) {
        rc_args_str(&st->args, "HDEL");
        st_redis_key(st, "outbox", NULL, 0);
        for (size_t i = 0; i < alerts->n; i++)
            rc_args_add(&st->args, alerts->v[i], alerts->len[i]);
        if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0)
            return -1;
        q++;
        /* Those a running daemon already claimed for sending are on their way to Kafka. */
        rc_args_str(&st->args, "SREM");
        st_redis_key(st, "outbox:sending", NULL, 0);
        for (size_t i = 0; i < alerts->n; i++)
            rc_args_add(&st->args, alerts->v[i], alerts->len[i]);
        if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0)
            return -1;
        q++;
    }
    return q;
}

int st_redis_forget(st_redis_t *st, const char *user_id, st_forget_t *out, char *errstr,
                    size_t errstr_size)
{
    if (rcl_wrap(st))
        return rcl_forget(st, user_id, out, errstr, errstr_size);
    st_forget_t res = {0};
    strs_t seen = {0}, alerts = {0};
    size_t ul = strlen(user_id);
    int rc = -1;
    redisReply *r = NULL;
    if (out)
        *out = res;
    if (scan_seen_keys(st, &seen, errstr, errstr_size) != 0)
        goto done;
    if (!(r = hgetall_outbox(st, errstr, errstr_size)))
        goto done;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *uid, *payload;
        size_t len, pl;
        const redisReply *f = r->element[i];
        if (f->type == REDIS_REPLY_STRING &&
            outbox_split(r->element[i + 1], &uid, &len, &payload, &pl) == 0 && len == ul &&
            memcmp(uid, user_id, ul) == 0 && strs_push(&alerts, f->str, f->len) != 0) {
            snprintf(errstr, errstr_size, "out of memory");
            goto done;
        }
    }
    freeReplyObject(r);
    r = NULL;

    /* One transaction: a reader never sees the user half forgotten. */
    int q = queue_forget(st, user_id, ul, &seen, &alerts, errstr, errstr_size);
    if (q < 0)
        goto done;
    rc_args_str(&st->args, "EXEC");
    if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0)
        goto done;
    for (int i = 0; i < q + 1; i++) {
        if (rc_read(&st->conn, &r, "forget", errstr, errstr_size) != 0)
            goto done;
        freeReplyObject(r);
        r = NULL;
    }
    if (rc_read(&st->conn, &r, "forget (EXEC)", errstr, errstr_size) != 0)
        goto done;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)q) {
        snprintf(errstr, errstr_size, "redis %s: forget: transaction failed%s%s", st->conn.addr,
                 r->type == REDIS_REPLY_ERROR ? ": " : "",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
        goto done;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_INTEGER) {
            snprintf(errstr, errstr_size, "redis %s: forget: command %zu failed: %s", st->conn.addr,
                     i + 1, e->type == REDIS_REPLY_ERROR ? e->str : "bad reply");
            goto done;
        }
        /* Replies in the order queued: record, score hash, seen entries, outbox, claims. */
        if (i == 0)
            res.record = e->integer > 0;
        else if (i == 1)
            res.score = e->integer > 0;
        else if (i <= seen.n + 1)
            res.seen_entries += (size_t)e->integer;
        else if (i == seen.n + 2)
            res.outbox_alerts += (size_t)e->integer;
        else
            res.outbox_in_flight += (size_t)e->integer;
    }
    /* outbox_alerts counts what forget stopped; the claimed ones were already on their way */
    res.outbox_alerts -=
        res.outbox_in_flight < res.outbox_alerts ? res.outbox_in_flight : res.outbox_alerts;
    if (out)
        *out = res;
    rc = res.record || res.score || res.seen_entries || res.outbox_alerts || res.outbox_in_flight;
done:
    if (r)
        freeReplyObject(r);
    strs_free(&seen);
    strs_free(&alerts);
    return rc;
}
