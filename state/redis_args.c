/* Binary-safe command building for the Redis store: every argument carries its length and
 * the command is written as RESP here (redisFormatCommandArgv's bytes, without its per-command
 * allocation and generic formatting: a hot path, every record and score of every batch), so
 * user ids with spaces, colons, quotes or any UTF-8 never meet a format string. Also the
 * pipeline's read side and printable key names. */
#include "clock.h"
#include "redis_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int args_reserve(rc_args_t *a, size_t extra_bytes)
{
    if (a->oom)
        return -1;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        const char **p = realloc(a->ptr, cap * sizeof(*p));
        if (p)
            a->ptr = p;
        size_t *o = realloc(a->off, cap * sizeof(*o));
        if (o)
            a->off = o;
        size_t *l = realloc(a->len, cap * sizeof(*l));
        if (l)
            a->len = l;
        if (!p || !o || !l) {
            a->oom = 1;
            return -1;
        }
        a->cap = cap;
    }
    if (a->buf_len + extra_bytes > a->buf_cap) {
        size_t cap = a->buf_cap ? a->buf_cap : 1024;
        while (cap < a->buf_len + extra_bytes)
            cap *= 2;
        char *b = realloc(a->buf, cap);
        if (!b) {
            a->oom = 1;
            return -1;
        }
        a->buf = b;
        a->buf_cap = cap;
    }
    return 0;
}

void rc_args_reset(rc_args_t *a)
{
    a->n = 0;
    a->buf_len = 0;
    a->oom = 0;
}

void rc_args_free(rc_args_t *a)
{
    free(a->ptr);
    free(a->off);
    free(a->len);
    free(a->buf);
    free(a->resp);
    memset(a, 0, sizeof(*a));
}

void rc_args_cat(rc_args_t *a, const char *p1, size_t l1, const char *p2, size_t l2, const void *p3,
                 size_t l3)
{
    if (args_reserve(a, l1 + l2 + l3) != 0)
        return;
    size_t off = a->buf_len;
    if (l1)
        memcpy(a->buf + a->buf_len, p1, l1);
    a->buf_len += l1;
    if (l2)
        memcpy(a->buf + a->buf_len, p2, l2);
    a->buf_len += l2;
    if (l3)
        memcpy(a->buf + a->buf_len, p3, l3);
    a->buf_len += l3;
    a->ptr[a->n] = NULL;
    a->off[a->n] = off;
    a->len[a->n] = l1 + l2 + l3;
    a->n++;
}

void rc_args_add(rc_args_t *a, const void *p, size_t len)
{
    rc_args_cat(a, NULL, 0, NULL, 0, p, len);
}

void rc_args_ref(rc_args_t *a, const void *p, size_t len)
{
    if (args_reserve(a, 0) != 0)
        return;
    a->ptr[a->n] = p;
    a->off[a->n] = 0;
    a->len[a->n] = len;
    a->n++;
}

void rc_args_str(rc_args_t *a, const char *s)
{
    rc_args_add(a, s, strlen(s));
}

/* v in decimal at the end of b[24]; returns where it starts. As "%" PRId64 writes it. */
static char *decimal(char b[24], int64_t v)
{
    char *p = b + 24;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return p;
}

void rc_args_i64(rc_args_t *a, int64_t v)
{
    char b[24], *p = decimal(b, v); /* a hot path: scores and offsets of every batch */
    rc_args_add(a, p, (size_t)(b + sizeof b - p));
}

/* Appends a RESP header: the type byte, n in decimal, CRLF. */
static char *put_header(char *out, char type, size_t n)
{
    char b[24], *p = decimal(b, (int64_t)n);
    size_t len = (size_t)(b + sizeof b - p);
    *out++ = type;
    memcpy(out, p, len);
    out += len;
    *out++ = '\r';
    *out++ = '\n';
    return out;
}

size_t rc_args_resp(rc_args_t *a)
{
    if (a->oom || a->n == 0)
        return 0;
    /* headers: a type byte, at most 20 digits and CRLF each; each bulk string adds CRLF */
    size_t need = 23;
    for (size_t i = 0; i < a->n; i++) {
        if (a->len[i] > SIZE_MAX / 2 - need - 25)
            return 0;
        need += 25 + a->len[i];
    }
    if (need > a->resp_cap) {
        size_t cap = a->resp_cap ? a->resp_cap : 256;
        while (cap < need)
            cap *= 2;
        char *r = realloc(a->resp, cap);
        if (!r)
            return 0;
        a->resp = r;
        a->resp_cap = cap;
    }
    char *out = put_header(a->resp, '*', a->n);
    for (size_t i = 0; i < a->n; i++) {
        const char *arg = a->ptr[i] ? a->ptr[i] : a->buf + a->off[i];
        out = put_header(out, '$', a->len[i]);
        if (a->len[i])
            memcpy(out, arg, a->len[i]);
        out += a->len[i];
        *out++ = '\r';
        *out++ = '\n';
    }
    return (size_t)(out - a->resp);
}

int rc_append(rc_conn_t *rc, rc_args_t *a, char *errstr, size_t errstr_size)
{
    if (rc_check(rc, errstr, errstr_size) != 0) {
        rc_args_reset(a);
        return -1;
    }
    size_t resp_len = a->n <= INT32_MAX ? rc_args_resp(a) : 0;
    if (resp_len == 0) {
        rc_args_reset(a);
        snprintf(errstr, errstr_size, "redis %s: out of memory building a command", rc->addr);
        /* Commands queued before this one would get replies nobody reads: drop them. */
        if (rc->ctx->obuf && sdslen(rc->ctx->obuf) > 0) {
            redisFree(rc->ctx);
            rc->ctx = NULL;
        }
        return -1;
    }
    const char *name = a->ptr[0] ? a->ptr[0] : a->buf + a->off[0];
    /* Cluster ASK redirection: ASKING before each command outside MULTI; inside, the flag
     * set before MULTI lasts until EXEC, and queued ASKINGs would change EXEC's reply. */
    int is_multi = a->len[0] == 5 && memcmp(name, "MULTI", 5) == 0;
    int is_exec = a->len[0] == 4 && memcmp(name, "EXEC", 4) == 0;
    int in_multi = rc->in_multi;
    if (is_multi)
        rc->in_multi = 1;
    else if (is_exec)
        rc->in_multi = 0;
    if (rc->asking && !in_multi) {
        if (redisAppendCommand(rc->ctx, "ASKING") != REDIS_OK) {
            rc_args_reset(a);
            return rc_io_error(rc, "appending a command", errstr, errstr_size);
        }
        rc->asking_unread++;
    }
    int r = redisAppendFormattedCommand(rc->ctx, a->resp, resp_len);
    rc_args_reset(a);
    if (r != REDIS_OK)
        return rc_io_error(rc, "appending a command", errstr, errstr_size);
    rc->commands++;
    return 0;
}

int rc_read(rc_conn_t *rc, redisReply **reply, const char *what, char *errstr, size_t errstr_size)
{
    void *r = NULL;
    *reply = NULL;
    rc_drain(rc); /* a commit's replies come first */
    if (rc_check(rc, errstr, errstr_size) != 0)
        return -1;
    /* A read with commands still unsent flushes them first: one round trip begins. */
    if (rc->ctx->obuf && sdslen(rc->ctx->obuf) > 0)
        rc->round_trips++;
    errno = 0;
    if (rc->asking_unread > 0) { /* the reply of the ASKING sent before this command */
        if (redisGetReply(rc->ctx, &r) != REDIS_OK || !r)
            return rc_io_error(rc, what, errstr, errstr_size);
        freeReplyObject(r);
        r = NULL;
        rc->asking_unread--;
    }
    /* A reply already received costs no wait; else the time blocked (the flush, the round
     * trip, the server's work) is counted (st_redis_counters' wait_us). */
    if (redisGetReplyFromReader(rc->ctx, &r) != REDIS_OK)
        return rc_io_error(rc, what, errstr, errstr_size);
    if (!r) {
        int64_t t0 = cs_mono_us();
        int ok = redisGetReply(rc->ctx, &r) == REDIS_OK && r;
        rc->wait_us += (uint64_t)(cs_mono_us() - t0);
        if (!ok)
            return rc_io_error(rc, what, errstr, errstr_size);
    }
    *reply = r;
    /* Cluster redirections are noted whatever the caller makes of the error (an element of
     * MGET's reply is never one: a redirection always answers a whole command). */
    const redisReply *rr = r;
    if (rr->type == REDIS_REPLY_ERROR && rc->redirect.kind == RCL_REDIR_NONE)
        rcl_parse_redirect(rr->str, rr->len, &rc->redirect);
    return 0;
}

int rc_try_read(rc_conn_t *rc, redisReply **reply, const char *what, char *errstr,
                size_t errstr_size)
{
    void *r = NULL;
    *reply = NULL;
    if (rc_check(rc, errstr, errstr_size) != 0)
        return -1;
    if (redisGetReplyFromReader(rc->ctx, &r) != REDIS_OK)
        return rc_io_error(rc, what, errstr, errstr_size);
    if (!r) {
        /* Readable now: one read() takes what has arrived without blocking. */
        struct pollfd pfd = {.fd = rc->ctx->fd, .events = POLLIN};
        if (poll(&pfd, 1, 0) <= 0)
            return 0;
        errno = 0;
        if (redisBufferRead(rc->ctx) != REDIS_OK ||
            redisGetReplyFromReader(rc->ctx, &r) != REDIS_OK)
            return rc_io_error(rc, what, errstr, errstr_size);
        if (!r)
            return 0;
    }
    *reply = r;
    return 1;
}

int rc_flush(rc_conn_t *rc, const char *what, char *errstr, size_t errstr_size)
{
    if (rc_check(rc, errstr, errstr_size) != 0)
        return -1;
    int done = 0;
    errno = 0;
    while (!done)
        if (redisBufferWrite(rc->ctx, &done) != REDIS_OK)
            return rc_io_error(rc, what, errstr, errstr_size);
    rc->round_trips++;
    return 0;
}

redisReply *rc_command(rc_conn_t *rc, rc_args_t *a, const char *what, char *errstr,
                       size_t errstr_size)
{
    redisReply *r;
    if (rc_append(rc, a, errstr, errstr_size) != 0)
        return NULL;
    if (rc_read(rc, &r, what, errstr, errstr_size) != 0)
        return NULL;
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(errstr, errstr_size, "redis %s: %s: %s", rc->addr, what, r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

void rc_printable(const void *p, size_t len, char *buf, size_t cap)
{
    const unsigned char *s = p;
    size_t o = 0;
    if (cap == 0)
        return;
    for (size_t i = 0; i < len; i++) {
        char tmp[5];
        size_t n;
        if (s[i] < 0x20 || s[i] == 0x7f || s[i] == '"' || s[i] == '\\') {
            n = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", s[i]);
        } else {
            tmp[0] = (char)s[i];
            n = 1;
        }
        if (o + n + 4 > cap) { /* room for "..." and the NUL */
            if (o + 4 <= cap) {
                memcpy(buf + o, "...", 3);
                o += 3;
            }
            break;
        }
        memcpy(buf + o, tmp, n);
        o += n;
    }
    buf[o < cap ? o : cap - 1] = '\0';
}
