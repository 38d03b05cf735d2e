/* Owns the HTTP side of the readable scores (user_api.h): its own Redis connection, alert
 * policy and model copy (refreshed when the stored model's stamp changes, at most every
 * UA_MODEL_CHECK_MS), behind one mutex. */
#include "user_api.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert.h"
#include "log.h"
#include "model.h"
#include "store_redis.h"
#include "user_view.h"

struct ua_s {
    pthread_mutex_t lock;
    const cfg_t *cfg;
    st_redis_t *st; /* NULL until connected, and after an error */
    alert_policy_t *ap;
    model_t *model; /* NULL: none stored (or not loaded yet) */
    uint8_t stamp[ST_MODEL_STAMP_BYTES];
    size_t stamp_len;
    int64_t checked_ms; /* monotonic time of the last stamp check; INT64_MIN = never */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

ua_t *ua_new(const cfg_t *cfg, char *errstr, size_t errstr_size)
{
    ua_t *ua = calloc(1, sizeof(*ua));
    if (!ua) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (!(ua->ap = alert_policy_new(cfg, errstr, errstr_size))) {
        free(ua);
        return NULL;
    }
    pthread_mutex_init(&ua->lock, NULL);
    ua->cfg = cfg;
    ua->checked_ms = INT64_MIN;
    return ua;
}

void ua_destroy(ua_t *ua)
{
    if (!ua)
        return;
    st_redis_destroy(ua->st);
    model_destroy(ua->model);
    alert_policy_destroy(ua->ap);
    pthread_mutex_destroy(&ua->lock);
    free(ua);
}

/* Drops the connection after an error: the next request connects again. */
static void drop(ua_t *ua)
{
    st_redis_destroy(ua->st);
    ua->st = NULL;
}

/* The model as Redis holds it, checked at most every UA_MODEL_CHECK_MS. 0, -1 with err. */
static int refresh_model(ua_t *ua, char *err, size_t errsz)
{
    int64_t now = mono_ms();
    if (ua->checked_ms != INT64_MIN && now - ua->checked_ms < UA_MODEL_CHECK_MS)
        return 0;
    uint8_t stamp[ST_MODEL_STAMP_BYTES];
    size_t len;
    if (st_redis_model_stamp(ua->st, stamp, &len, err, errsz) != 0)
        return -1;
    if (len == 0) { /* no model stored (yet) */
        model_destroy(ua->model);
        ua->model = NULL;
    } else if (!ua->model || len != ua->stamp_len || memcmp(stamp, ua->stamp, len) != 0) {
        uint8_t *buf;
        size_t blen;
        char why[400];
        if (st_redis_load_model(ua->st, &buf, &blen, err, errsz) != 0)
            return -1;
        model_t *m = buf ? model_decode(buf, blen, why, sizeof(why)) : NULL;
        free(buf);
        if (buf && !m) {
            snprintf(err, errsz, "redis %s: stored model: %s", st_redis_address(ua->st), why);
            return -1;
        }
        model_destroy(ua->model);
        ua->model = m;
    }
    memcpy(ua->stamp, stamp, len);
    ua->stamp_len = len;
    ua->checked_ms = now;
    return 0;
}

/* The locked part of ua_get_user. */
static int get_locked(ua_t *ua, const char *user_id, size_t len, int64_t at_ms, char **body)
{
    char err[512];
    user_rec_t rec;
    st_fields_t last = {0};
    int found = 0;
    /* One retry on a fresh connection: a connection Redis closed while idle is not an
     * outage. */
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!ua->st && !(ua->st = st_redis_new(ua->cfg, err, sizeof(err))))
            continue;
        if (st_redis_read_user(ua->st, user_id, len, &rec, &found, &last, err, sizeof(err)) == 0 &&
            refresh_model(ua, err, sizeof(err)) == 0)
            break;
        st_fields_free(&last);
        drop(ua);
    }
    if (!ua->st) {
        log_warn("http", "GET /v1/users: %s", err);
        *body = uv_error_json(err, NULL);
        return 503;
    }
    if (!found) {
        st_fields_free(&last);
        *body = uv_error_json("unknown user", user_id);
        return 404;
    }
    uv_input_t in = {.user_id = user_id,
                     .rec = &rec,
                     .model = ua->model,
                     .policy = ua->ap,
                     .last_score = &last,
                     .at_ms = at_ms};
    json_t *j = uv_user_json(&in);
    st_fields_free(&last);
    *body = j ? uv_dump(j) : NULL;
    json_decref(j);
    return *body ? 200 : 500;
}

int ua_get_user(void *opaque, const char *user_id, size_t len, const char *at, char **body)
{
    ua_t *ua = opaque;
    int64_t at_ms = wall_ms();
    *body = NULL;
    if (at && uv_parse_time(at, &at_ms) != 0) {
        *body = uv_error_json("bad at: expected epoch milliseconds or an ISO-8601 UTC time", NULL);
        return 400;
    }
    pthread_mutex_lock(&ua->lock);
    int status = get_locked(ua, user_id, len, at_ms, body);
    pthread_mutex_unlock(&ua->lock);
    return status;
}
