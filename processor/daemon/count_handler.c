/* Event-count handler (count_handler.h): codec decode and validation, per-user counts and
 * per-partition next offsets in Redis through plain hiredis, one guarded MULTI/EXEC per
 * batch. Small on purpose: it exists to prove the daemon's offset plumbing, so every
 * correctness argument lives in the transaction and its offset check. */
#include "count_handler.h"
#include "grow.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "codec.h"
#include "log.h"

#define CH_WATCH_ATTEMPTS 3 /* immediate retries when another writer touched the offsets */

struct ch_s {
    char *host, *user, *password, *key_offsets, *key_users;
    int port, db;
    int64_t connect_timeout_ms, command_timeout_ms, max_future_ms;
    redisContext *rc;
    ev_decoder_t *dec;
    int64_t watermark_ms; /* max accepted event time so far; INT64_MIN before the first */

    /* Per-batch scratch, grown as needed and reused. */
    char *ids; /* accepted user ids, back to back */
    size_t ids_len, ids_cap;
    struct ch_ref_s *refs; /* one per accepted event: where its id lives in ids */
    size_t refs_cap;
    int32_t *parts;
    int64_t *first, *next, *stored;
    size_t parts_cap;
};

typedef struct ch_ref_s {
    size_t off;
    uint16_t len;
    const char *base; /* set after the ids buffer stops moving, for sorting */
} ch_ref_t;

__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t errsz, const char *fmt,
                                                         ...)
{
    if (!err || !errsz)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

static char *dupcat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

static struct timeval tv_ms(int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    return tv;
}

static void disconnect(ch_t *ch)
{
    if (ch->rc)
        redisFree(ch->rc);
    ch->rc = NULL;
}

/* Runs one command on the current connection; the caller frees the reply. A Redis error
 * reply is returned as NULL with err set, like a connection error (which also drops the
 * connection so the next call reconnects). */
static redisReply *command(ch_t *ch, char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(ch->rc, fmt, ap);
    va_end(ap);
    if (!r) {
        seterr(err, errsz, "redis %s:%d: %s", ch->host, ch->port, ch->rc->errstr);
        disconnect(ch);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        seterr(err, errsz, "redis %s:%d: %s", ch->host, ch->port, r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static int connect_redis(ch_t *ch, char *err, size_t errsz)
{
    if (ch->rc)
        return 0;
    ch->rc = redisConnectWithTimeout(ch->host, ch->port, tv_ms(ch->connect_timeout_ms));
    if (!ch->rc || ch->rc->err) {
        seterr(err, errsz, "cannot connect to redis %s:%d: %s", ch->host, ch->port,
               ch->rc ? ch->rc->errstr : "out of memory");
        disconnect(ch);
        return -1;
    }
    redisSetTimeout(ch->rc, tv_ms(ch->command_timeout_ms));
    redisEnableKeepAlive(ch->rc);
    redisReply *r = NULL;
    if (ch->password) {
        r = ch->user ? command(ch, err, errsz, "AUTH %s %s", ch->user, ch->password)
                     : command(ch, err, errsz, "AUTH %s", ch->password);
        if (!r) {
            disconnect(ch);
            return -1;
        }
        freeReplyObject(r);
    }
    if (ch->db != 0) {
        r = command(ch, err, errsz, "SELECT %d", ch->db);
        if (!r) {
            disconnect(ch);
            return -1;
        }
        freeReplyObject(r);
    }
    r = command(ch, err, errsz, "PING");
    if (!r) {
        disconnect(ch);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

ch_t *ch_new(const cfg_t *cfg, char *errstr, size_t errstr_size)
{
    ch_t *ch = calloc(1, sizeof(*ch));
    if (!ch) {
        seterr(errstr, errstr_size, "out of memory");
        return NULL;
    }
    ch->host = strdup(cfg->redis_host);
    ch->user = cfg->redis_user ? strdup(cfg->redis_user) : NULL;
    ch->password = cfg->redis_password ? strdup(cfg->redis_password) : NULL;
    ch->key_offsets = dupcat(cfg->state_prefix, "count:offsets");
    ch->key_users = dupcat(cfg->state_prefix, "count:users");
    ch->port = cfg->redis_port;
    ch->db = cfg->redis_db;
    ch->connect_timeout_ms = cfg->redis_connect_timeout_ms;
    ch->command_timeout_ms = cfg->redis_command_timeout_ms;
    ch->max_future_ms = cfg->events_max_future_ms;
    ch->watermark_ms = INT64_MIN;
    if (!ch->host || !ch->key_offsets || !ch->key_users || (cfg->redis_user && !ch->user) ||
        (cfg->redis_password && !ch->password)) {
        seterr(errstr, errstr_size, "out of memory");
        ch_destroy(ch);
        return NULL;
    }
    ch->dec = ev_decoder_new(cfg->schemas_dir && *cfg->schemas_dir ? cfg->schemas_dir : NULL,
                             errstr, errstr_size);
    if (!ch->dec || connect_redis(ch, errstr, errstr_size) != 0) {
        ch_destroy(ch);
        return NULL;
    }
    return ch;
}

void ch_destroy(ch_t *ch)
{
    if (!ch)
        return;
    disconnect(ch);
    ev_decoder_destroy(ch->dec);
    free(ch->host);
    free(ch->user);
    free(ch->password);
    free(ch->key_offsets);
    free(ch->key_users);
    free(ch->ids);
    free(ch->refs);
    free(ch->parts);
    free(ch->first);
    free(ch->next);
    free(ch->stored);
    free(ch);
}

/* ---- stored offsets -------------------------------------------------------------------- */

/* Appends HMGET key_offsets p... to the pipeline. */
static int append_hmget(ch_t *ch, const int32_t *parts, size_t n)
{
    size_t argc = n + 2;
    const char **argv = malloc(argc * sizeof(*argv));
    size_t *lens = malloc(argc * sizeof(*lens));
    char(*num)[16] = malloc((n ? n : 1) * sizeof(*num));
    if (!argv || !lens || !num) {
        free(argv);
        free(lens);
        free(num);
        return -1;
    }
    argv[0] = "HMGET";
    argv[1] = ch->key_offsets;
    for (size_t i = 0; i < n; i++) {
        snprintf(num[i], sizeof(num[i]), "%" PRId32, parts[i]);
        argv[i + 2] = num[i];
    }
    for (size_t i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    int rc = redisAppendCommandArgv(ch->rc, (int)argc, argv, lens);
    free(argv);
    free(lens);
    free(num);
    return rc == REDIS_OK ? 0 : -1;
}

/* Reads the HMGET reply into out[] (-1 where absent). */
static int read_offsets(ch_t *ch, size_t n, int64_t *out, char *err, size_t errsz)
{
    redisReply *r = NULL;
    if (redisGetReply(ch->rc, (void **)&r) != REDIS_OK || !r) {
        seterr(err, errsz, "redis %s:%d: %s", ch->host, ch->port, ch->rc->errstr);
        disconnect(ch);
        return -1;
    }
    int ok = r->type == REDIS_REPLY_ARRAY && r->elements == n;
    for (size_t i = 0; ok && i < n; i++) {
        redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_NIL) {
            out[i] = -1;
        } else if (e->type == REDIS_REPLY_STRING) {
            char *end;
            out[i] = strtoll(e->str, &end, 10);
            ok = *end == '\0' && out[i] >= 0;
        } else {
            ok = 0;
        }
    }
    if (!ok)
        seterr(err, errsz, "redis: unexpected reply to HMGET %s (%s)", ch->key_offsets,
               r->type == REDIS_REPLY_ERROR ? r->str : "not offsets");
    freeReplyObject(r);
    return ok ? 0 : -1;
}

static int on_assign(void *opaque, const int32_t *partitions, size_t n, int64_t *start_offsets,
                     char *err, size_t errsz)
{
    ch_t *ch = opaque;
    if (n == 0)
        return 0;
    if (connect_redis(ch, err, errsz) != 0)
        return -1;
    if (append_hmget(ch, partitions, n) != 0) {
        seterr(err, errsz, "out of memory");
        return -1;
    }
    return read_offsets(ch, n, start_offsets, err, errsz);
}

static void on_revoke(void *opaque, const int32_t *partitions, size_t n)
{
    (void)opaque;
    (void)partitions;
    (void)n; /* nothing is cached between batches */
}

/* ---- one batch ------------------------------------------------------------------------- */

static int ref_cmp(const void *a, const void *b)
{
    const ch_ref_t *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->base + x->off, y->base + y->off, x->len);
}

static void add_reject(dm_batch_result_t *res, size_t index, ev_reason_t reason, const char *text)
{
    if (res->n_rejects >= res->rejects_cap)
        return; /* cannot happen: cap >= batch size */
    dm_reject_t *r = &res->rejects[res->n_rejects++];
    r->index = index;
    r->reason = (int)reason;
    snprintf(r->text, sizeof(r->text), "%s", text);
}

/* Reads `n` pipelined replies, keeping the last; -1 on a connection error. */
static int drain(ch_t *ch, size_t n, redisReply **last, char *err, size_t errsz)
{
    *last = NULL;
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(ch->rc, (void **)&r) != REDIS_OK || !r) {
            seterr(err, errsz, "redis %s:%d: %s", ch->host, ch->port, ch->rc->errstr);
            disconnect(ch);
            if (*last)
                freeReplyObject(*last);
            *last = NULL;
            return -1;
        }
        if (*last)
            freeReplyObject(*last);
        *last = r;
    }
    return 0;
}

/* The guarded transaction. Returns 0 (committed now or found committed), DM_BATCH_STALE, or
 * DM_BATCH_RETRY (also for a concurrent write to the offsets hash, after a few tries). */
static int commit(ch_t *ch, size_t n_parts, size_t n_users, const int64_t *counts,
                  dm_batch_result_t *res, char *err, size_t errsz)
{
    for (int attempt = 0; attempt < CH_WATCH_ATTEMPTS; attempt++) {
        if (connect_redis(ch, err, errsz) != 0)
            return DM_BATCH_RETRY;
        /* Round trip 1: WATCH + the stored offsets of the batch's partitions. */
        redisAppendCommand(ch->rc, "WATCH %s", ch->key_offsets);
        if (append_hmget(ch, ch->parts, n_parts) != 0) {
            seterr(err, errsz, "out of memory");
            return DM_BATCH_RETRY;
        }
        redisReply *w = NULL;
        int rc = drain(ch, 1, &w, err, errsz);
        if (w)
            freeReplyObject(w);
        if (rc != 0 || read_offsets(ch, n_parts, ch->stored, err, errsz) != 0)
            return DM_BATCH_RETRY;
        res->redis_round_trips++;
        size_t applied = 0, behind = 0;
        for (size_t i = 0; i < n_parts; i++) {
            if (ch->stored[i] >= ch->next[i])
                applied++;
            else if (ch->stored[i] > ch->first[i])
                behind++;
        }
        if (applied || behind) {
            redisReply *u = command(ch, err, errsz, "UNWATCH");
            if (u)
                freeReplyObject(u);
            res->redis_round_trips++;
            if (applied == n_parts) {
                log_info("count", "batch already committed (a lost EXEC reply): not counted "
                                  "again");
                return 0;
            }
            seterr(err, errsz, "%s is past this batch in %zu of %zu partitions", ch->key_offsets,
                   applied + behind, n_parts);
            return DM_BATCH_STALE;
        }
        /* Round trip 2: the transaction. */
        redisAppendCommand(ch->rc, "MULTI");
        const ch_ref_t *refs = ch->refs;
        for (size_t u = 0; u < n_users; u++)
            redisAppendCommand(ch->rc, "HINCRBY %s %b %lld", ch->key_users, ch->ids + refs[u].off,
                               (size_t)refs[u].len, (long long)counts[u]);
        for (size_t i = 0; i < n_parts; i++)
            redisAppendCommand(ch->rc, "HSET %s %d %lld", ch->key_offsets, (int)ch->parts[i],
                               (long long)ch->next[i]);
        redisAppendCommand(ch->rc, "EXEC");
        redisReply *exec = NULL;
        if (drain(ch, 2 + n_users + n_parts, &exec, err, errsz) != 0)
            return DM_BATCH_RETRY; /* maybe applied: the next attempt's check tells */
        res->redis_round_trips++;
        if (exec->type == REDIS_REPLY_NIL) {
            freeReplyObject(exec);
            seterr(err, errsz, "%s changed during the transaction (another writer)",
                   ch->key_offsets);
            continue;
        }
        int ok = exec->type == REDIS_REPLY_ARRAY && exec->elements == n_users + n_parts;
        for (size_t i = 0; ok && i < exec->elements; i++)
            ok = exec->element[i]->type == REDIS_REPLY_INTEGER;
        if (!ok)
            seterr(err, errsz, "redis: EXEC failed: %s",
                   exec->type == REDIS_REPLY_ERROR ? exec->str : "a command inside failed");
        freeReplyObject(exec);
        return ok ? 0 : DM_BATCH_RETRY;
    }
    return DM_BATCH_RETRY;
}

static int process_batch(void *opaque, const dm_msg_t *msgs, size_t n, dm_batch_result_t *res,
                         char *err, size_t errsz)
{
    ch_t *ch = opaque;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t max_time_ms = ch->watermark_ms;
    size_t n_good = 0, n_parts = 0;
    ch->ids_len = 0;
    if (CS_GROW(ch->refs, ch->refs_cap, n, 64) != 0) {
        seterr(err, errsz, "out of memory");
        return DM_BATCH_RETRY;
    }
    ev_event_t ev;
    char why[DM_REJECT_TEXT_MAX];
    for (size_t i = 0; i < n; i++) {
        const dm_msg_t *m = &msgs[i];
        /* Partition bookkeeping covers rejected messages too: they are consumed. */
        size_t p = 0;
        while (p < n_parts && ch->parts[p] != m->partition)
            p++;
        if (p == n_parts) {
            if (CS_GROW4(ch->parts, ch->first, ch->next, ch->stored, ch->parts_cap, n_parts + 1,
                         16) != 0) {
                seterr(err, errsz, "out of memory");
                return DM_BATCH_RETRY;
            }
            ch->parts[p] = m->partition;
            ch->first[p] = m->offset;
            ch->next[p] = m->offset + 1;
            n_parts++;
        } else if (m->offset + 1 > ch->next[p]) {
            ch->next[p] = m->offset + 1;
        }
        why[0] = '\0';
        ev_reason_t reason =
            ev_decode(ch->dec, EV_WIRE_AUTO, m->value, m->len, &ev, why, sizeof(why));
        if (reason == EV_OK &&
            ev_check_time(&ev, INT64_MIN, now_ms, 0, ch->max_future_ms) != EV_OK) {
            reason = EV_ERR_TIME_OUT_OF_WINDOW;
            snprintf(why, sizeof(why),
                     "event_time %" PRId64 " is more than events.max_future (%" PRId64
                     " ms) ahead of the wall clock",
                     ev.event_time_ms, ch->max_future_ms);
        }
        if (reason != EV_OK) {
            add_reject(res, i, reason, why);
            continue;
        }
        if (CS_GROW(ch->ids, ch->ids_cap, ch->ids_len + ev.user_id_len, 64) != 0) {
            seterr(err, errsz, "out of memory");
            return DM_BATCH_RETRY;
        }
        memcpy(ch->ids + ch->ids_len, ev.user_id, ev.user_id_len);
        ch->refs[n_good++] = (ch_ref_t){ch->ids_len, ev.user_id_len, NULL};
        ch->ids_len += ev.user_id_len;
        if (ev.event_time_ms > max_time_ms)
            max_time_ms = ev.event_time_ms;
    }
    /* Distinct users and their counts: sort the ids, then run-length (in place). */
    for (size_t i = 0; i < n_good; i++)
        ch->refs[i].base = ch->ids;
    qsort(ch->refs, n_good, sizeof(*ch->refs), ref_cmp);
    int64_t *counts = malloc((n_good ? n_good : 1) * sizeof(*counts));
    if (!counts) {
        seterr(err, errsz, "out of memory");
        return DM_BATCH_RETRY;
    }
    size_t n_users = 0;
    for (size_t i = 0; i < n_good; i++) {
        if (n_users > 0 && ref_cmp(&ch->refs[n_users - 1], &ch->refs[i]) == 0) {
            counts[n_users - 1]++;
        } else {
            ch->refs[n_users] = ch->refs[i];
            counts[n_users++] = 1;
        }
    }
    int rc = commit(ch, n_parts, n_users, counts, res, err, errsz);
    free(counts);
    if (rc == 0) {
        ch->watermark_ms = max_time_ms;
        res->watermark_ms = max_time_ms;
    } else {
        res->n_rejects = 0; /* nothing happened: the retry decides again */
    }
    return rc;
}

void ch_handler(ch_t *ch, dm_handler_t *out)
{
    memset(out, 0, sizeof(*out));
    out->opaque = ch;
    out->on_assign = on_assign;
    out->on_revoke = on_revoke;
    out->process_batch = process_batch;
    out->name = "count (per-user event counts and offsets in Redis)";
}
