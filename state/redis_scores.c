/* The readable latest-score hash P score:<user_id> (layout in store_redis.h): queued into a
 * batch's MULTI/EXEC by st_redis_commit, and the reads serving `inspect user` and
 * GET /v1/users/{id} (record + hash in one round trip, the model's stamp). */
#include "redis_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends one field of the hash: its name, then the value. */
static void add_field(st_redis_t *st, const char *name, const char *value)
{
    rc_args_str(&st->args, name);
    rc_args_str(&st->args, value ? value : "");
}

int st_redis_queue_scores(st_redis_t *st, const st_commit_t *c, char *errstr, size_t errstr_size)
{
    int q = 0;
    for (size_t i = 0; c && i < c->n_scores; i++) {
        const st_score_t *s = &c->scores[i];
        char num[64];
        rc_args_str(&st->args, "HSET");
        st_redis_key(st, "score:", s->user_id, strlen(s->user_id));
        snprintf(num, sizeof(num), "%.6f", s->score);
        add_field(st, "score", num);
        add_field(st, "bucket", s->bucket);
        rc_args_str(&st->args, "segment");
        rc_args_i64(&st->args, s->segment_id);
        add_field(st, "segment_name", s->segment_name);
        add_field(st, "kind", s->kind);
        add_field(st, "trigger", s->trigger);
        rc_args_str(&st->args, "time_ms");
        rc_args_i64(&st->args, s->time_ms);
        add_field(st, "alert_id", s->alert_id);
        if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0)
            return -1;
        q++;
        /* The record's expiry: PX state.ttl from this write, like SET ... PX. With no TTL,
         * PERSIST clears one a previous configuration left (MSET does so for records). */
        if (st->ttl_ms > 0) {
            rc_args_str(&st->args, "PEXPIRE");
            st_redis_key(st, "score:", s->user_id, strlen(s->user_id));
            rc_args_i64(&st->args, st->ttl_ms);
        } else {
            rc_args_str(&st->args, "PERSIST");
            st_redis_key(st, "score:", s->user_id, strlen(s->user_id));
        }
        if (rc_append(&st->conn, &st->args, errstr, errstr_size) != 0)
            return -1;
        q++;
    }
    return q;
}

void st_fields_free(st_fields_t *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->names[i]);
        free(f->values[i]);
    }
    free(f->names);
    free(f->values);
    memset(f, 0, sizeof(*f));
}

static int fields_from_reply(st_fields_t *f, const redisReply *r)
{
    size_t n = r->elements / 2;
    if (n == 0)
        return 0;
    f->names = calloc(n, sizeof(*f->names));
    f->values = calloc(n, sizeof(*f->values));
    if (!f->names || !f->values)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const redisReply *k = r->element[2 * i], *v = r->element[2 * i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        f->names[f->n] = strndup(k->str, k->len);
        f->values[f->n] = strndup(v->str, v->len);
        if (!f->names[f->n] || !f->values[f->n]) {
            f->n++; /* freed by st_fields_free */
            return -1;
        }
        f->n++;
    }
    return 0;
}

/* Queues one command of the read transaction. */
static int queue_read(st_redis_t *st, const char *cmd, const char *mid, const char *user_id,
                      size_t len, char *errstr, size_t errstr_size)
{
    rc_args_str(&st->args, cmd);
    if (mid)
        st_redis_key(st, mid, user_id, len);
    return rc_append(&st->conn, &st->args, errstr, errstr_size);
}

int st_redis_read_user(st_redis_t *st, const char *user_id, size_t len, user_rec_t *rec, int *found,
                       st_fields_t *score, char *errstr, size_t errstr_size)
{
    redisReply *r = NULL;
    int rc = -1;
    if (rcl_wrap(st))
        return rcl_read_user(st, user_id, len, rec, found, score, errstr, errstr_size);
    *found = 0;
    memset(score, 0, sizeof(*score));
    /* MULTI/EXEC: the record and the hash as one batch commit left them (a commit landing
     * between two plain reads would pair an old record with a new score), and all four
     * commands before any reply: one round trip. */
    if (queue_read(st, "MULTI", NULL, NULL, 0, errstr, errstr_size) != 0 ||
        queue_read(st, "GET", "u:", user_id, len, errstr, errstr_size) != 0 ||
        queue_read(st, "HGETALL", "score:", user_id, len, errstr, errstr_size) != 0 ||
        queue_read(st, "EXEC", NULL, NULL, 0, errstr, errstr_size) != 0)
        return -1;
    for (int i = 0; i < 3; i++) { /* +OK, +QUEUED, +QUEUED */
        if (rc_read(&st->conn, &r, "read user", errstr, errstr_size) != 0)
            return -1;
        freeReplyObject(r);
    }
    if (rc_read(&st->conn, &r, "read user (EXEC)", errstr, errstr_size) != 0)
        return -1;
    char key[400], why[256];
    rc_printable(user_id, len, key, sizeof(key));
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        snprintf(errstr, errstr_size, "redis %s: read of user \"%s\" failed%s%s", st->conn.addr,
                 key, r->type == REDIS_REPLY_ERROR ? ": " : "",
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
        goto done;
    }
    const redisReply *rv = r->element[0], *hv = r->element[1];
    if (rv->type == REDIS_REPLY_STRING) {
        if (user_rec_decode(rec, (const uint8_t *)rv->str, rv->len, why, sizeof(why)) != 0) {
            snprintf(errstr, errstr_size, "redis %s: key \"%su:%s\": %s", st->conn.addr, st->prefix,
                     key, why);
            goto done;
        }
        *found = 1;
    } else if (rv->type != REDIS_REPLY_NIL) {
        snprintf(errstr, errstr_size, "redis %s: GET \"%su:%s\": %s", st->conn.addr, st->prefix,
                 key, rv->type == REDIS_REPLY_ERROR ? rv->str : "unexpected reply type");
        goto done;
    }
    if (hv->type != REDIS_REPLY_ARRAY) {
        snprintf(errstr, errstr_size, "redis %s: HGETALL \"%sscore:%s\": %s", st->conn.addr,
                 st->prefix, key,
                 hv->type == REDIS_REPLY_ERROR ? hv->str : "unexpected reply type");
        goto done;
    }
    if (fields_from_reply(score, hv) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    rc = 0;
done:
    freeReplyObject(r);
    if (rc != 0)
        st_fields_free(score);
    return rc;
}

int st_redis_model_stamp(st_redis_t *st, uint8_t stamp[ST_MODEL_STAMP_BYTES], size_t *len,
                         char *errstr, size_t errstr_size)
{
    *len = 0;
    rc_args_str(&st->args, "GETRANGE");
    st_redis_key(st, "model", NULL, 0);
    rc_args_i64(&st->args, 0);
    rc_args_i64(&st->args, ST_MODEL_STAMP_BYTES - 1);
    redisReply *r = rc_command(&st->conn, &st->args, "GETRANGE model", errstr, errstr_size);
    if (!r)
        return -1;
    int rc = 0;
    if (r->type == REDIS_REPLY_STRING) {
        *len = r->len < ST_MODEL_STAMP_BYTES ? r->len : ST_MODEL_STAMP_BYTES;
        memcpy(stamp, r->str, *len);
    } else {
        snprintf(errstr, errstr_size, "redis %s: GETRANGE model: %s", st->conn.addr,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply type");
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}
