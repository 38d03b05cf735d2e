/* The Redis connection: connect within redis.connect_timeout, reply timeout
 * redis.command_timeout, then AUTH (ACL user or plain password), SELECT and a PING in one
 * round trip. Every error names the address and the cause; nothing here retries (the
 * daemon owns the backoff). */
#include "redis_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int rc_init(rc_conn_t *rc, const cfg_t *cfg, char *errstr, size_t errstr_size)
{
    memset(rc, 0, sizeof(*rc));
    rc->port = cfg->redis_port;
    rc->db = cfg->redis_db;
    rc->connect_timeout_ms = cfg->redis_connect_timeout_ms;
    rc->command_timeout_ms = cfg->redis_command_timeout_ms;
    rc->host = strdup(cfg->redis_host ? cfg->redis_host : "127.0.0.1");
    rc->user = dup_or_null(cfg->redis_user);
    rc->password = dup_or_null(cfg->redis_password);
    if (!rc->host || (cfg->redis_user && !rc->user) || (cfg->redis_password && !rc->password)) {
        rc_fini(rc);
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    /* IPv6 literals get brackets so the port stays readable. */
    snprintf(rc->addr, sizeof(rc->addr), strchr(rc->host, ':') ? "[%s]:%d" : "%s:%d", rc->host,
             rc->port);
    return 0;
}

void rc_fini(rc_conn_t *rc)
{
    if (rc->ctx)
        redisFree(rc->ctx);
    free(rc->host);
    free(rc->user);
    if (rc->password) {
        /* Do not leave the secret in freed heap memory. */
        memset(rc->password, 0, strlen(rc->password));
        free(rc->password);
    }
    memset(rc, 0, sizeof(*rc));
}

static struct timeval tv_of_ms(int64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* hiredis capitalizes strerror text ("Connection refused"); messages here read better in
 * lower case, as in "redis 127.0.0.1:6390: connection refused". */
static void lower_first(char *s)
{
    if (s[0] && isupper((unsigned char)s[0]) && islower((unsigned char)s[1]))
        s[0] = (char)tolower((unsigned char)s[0]);
}

int rc_io_error(rc_conn_t *rc, const char *what, char *errstr, size_t errstr_size)
{
    char cause[200];
    int saved_errno = errno;
    if (!rc->ctx) {
        snprintf(cause, sizeof(cause), "not connected");
    } else if (rc->ctx->err == REDIS_ERR_IO &&
               (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK ||
                strstr(rc->ctx->errstr, "temporarily unavailable"))) {
        snprintf(cause, sizeof(cause), "no reply within %lld ms (redis.command_timeout)",
                 (long long)rc->command_timeout_ms);
    } else if (rc->ctx->err == REDIS_ERR_EOF) {
        snprintf(cause, sizeof(cause), "connection closed by the server");
    } else {
        snprintf(cause, sizeof(cause), "%s", rc->ctx->errstr[0] ? rc->ctx->errstr : "I/O error");
        lower_first(cause);
    }
    snprintf(errstr, errstr_size, "redis %s: %s%s%s", rc->addr, what ? what : "", what ? ": " : "",
             cause);
    if (rc->ctx) {
        redisFree(rc->ctx);
        rc->ctx = NULL;
    }
    return -1;
}

int rc_check(rc_conn_t *rc, char *errstr, size_t errstr_size)
{
    if (rc->ctx)
        return 0;
    snprintf(errstr, errstr_size, "redis %s: not connected (the connection was lost; reconnect)",
             rc->addr);
    return -1;
}

/* The reply of one setup step: -1 with a message naming the step on an error reply. */
static int setup_reply(rc_conn_t *rc, const char *step, char *errstr, size_t errstr_size)
{
    redisReply *r;
    if (rc_read(rc, &r, step, errstr, errstr_size) != 0)
        return -1;
    int rc_ = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        const char *hint = "";
        if (strncmp(r->str, "NOAUTH", 6) == 0)
            hint = " (set redis.password, and redis.user for an ACL user)";
        snprintf(errstr, errstr_size, "redis %s: %s failed: %s%s", rc->addr, step, r->str, hint);
        rc_ = -1;
    }
    freeReplyObject(r);
    return rc_;
}

void rc_drain(rc_conn_t *rc)
{
    if (!rc->drain)
        return;
    void (*drain)(void *) = rc->drain;
    rc->drain = NULL; /* cleared first: the hook reads through rc_try_read, never rc_read */
    drain(rc->drain_opaque);
}

int rc_connect(rc_conn_t *rc, char *errstr, size_t errstr_size)
{
    rc_drain(rc); /* a commit in flight: its outcome is read on the old connection */
    if (rc->ctx) {
        redisFree(rc->ctx);
        rc->ctx = NULL;
    }
    redisContext *c = redisConnectWithTimeout(rc->host, rc->port, tv_of_ms(rc->connect_timeout_ms));
    if (!c) {
        snprintf(errstr, errstr_size, "redis %s: out of memory", rc->addr);
        return -1;
    }
    if (c->err) {
        char cause[200];
        snprintf(cause, sizeof(cause), "%s", c->errstr);
        lower_first(cause);
        if (strstr(cause, "timed out") || strstr(cause, "in progress"))
            snprintf(cause, sizeof(cause), "no connection within %lld ms (redis.connect_timeout)",
                     (long long)rc->connect_timeout_ms);
        snprintf(errstr, errstr_size, "redis %s: %s", rc->addr, cause);
        redisFree(c);
        return -1;
    }
    if (redisSetTimeout(c, tv_of_ms(rc->command_timeout_ms)) != REDIS_OK) {
        snprintf(errstr, errstr_size, "redis %s: cannot set the command timeout: %s", rc->addr,
                 c->errstr);
        redisFree(c);
        return -1;
    }
    rc->ctx = c;

    /* AUTH, SELECT, CLIENT SETNAME and PING go out together: one round trip. */
    rc_args_t a = {0};
    char auth_step[300];
    int steps = 0;
    const char *step_names[4];
    if (rc->password) {
        rc_args_str(&a, "AUTH");
        if (rc->user)
            rc_args_str(&a, rc->user);
        rc_args_str(&a, rc->password);
        if (rc->user)
            snprintf(auth_step, sizeof(auth_step), "AUTH as user \"%s\"", rc->user);
        else
            snprintf(auth_step, sizeof(auth_step), "AUTH");
        step_names[steps++] = auth_step;
        if (rc_append(rc, &a, errstr, errstr_size) != 0)
            goto fail;
    }
    if (rc->db != 0) {
        rc_args_str(&a, "SELECT");
        rc_args_i64(&a, rc->db);
        step_names[steps++] = "SELECT (redis.db)";
        if (rc_append(rc, &a, errstr, errstr_size) != 0)
            goto fail;
    }
    /* A name makes the daemon's connections findable in CLIENT LIST. */
    rc_args_str(&a, "CLIENT");
    rc_args_str(&a, "SETNAME");
    rc_args_str(&a, "churnstream");
    step_names[steps++] = "CLIENT SETNAME";
    if (rc_append(rc, &a, errstr, errstr_size) != 0)
        goto fail;
    rc_args_str(&a, "PING");
    step_names[steps++] = "PING";
    if (rc_append(rc, &a, errstr, errstr_size) != 0)
        goto fail;
    /* Read every reply even after an error reply, but report the first error. */
    int failed = 0;
    for (int i = 0; i < steps; i++) {
        char e[512];
        if (setup_reply(rc, step_names[i], e, sizeof(e)) != 0) {
            if (!failed)
                snprintf(errstr, errstr_size, "%s", e);
            failed = 1;
            if (!rc->ctx)
                break; /* I/O error: nothing more to read */
        }
    }
    rc_args_free(&a);
    if (failed) {
        if (rc->ctx) {
            redisFree(rc->ctx);
            rc->ctx = NULL;
        }
        return -1;
    }
    return 0;
fail:
    rc_args_free(&a);
    if (rc->ctx) {
        redisFree(rc->ctx);
        rc->ctx = NULL;
    }
    return -1;
}
