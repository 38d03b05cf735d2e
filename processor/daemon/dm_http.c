/* /metrics (Prometheus text 0.0.4), /healthz and GET /v1/users/{id} on
 * metrics.bind:metrics.port, served by libmicrohttpd with one thread per connection. Those
 * threads read dm->metrics (atomics and a mutex) and call the handler's user_get (its own
 * Redis connection), so a request never waits for a batch, never touches Kafka or the
 * batch's store, and a slow Redis read never holds a scrape. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "dm_internal.h"
#include "event.h"
#include "log.h"
#include "user_view.h"

#define USERS_PATH "/v1/users/"

/* The watermark is event time (epoch ms): its lag is against the wall clock, not the
 * monotonic clock the daemon's timers use. */
static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             char *body, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* The URL path and query arguments are left %-encoded (see dm_http_start): the user id is
 * decoded by uv_decode_id, which refuses a %00 instead of cutting the id short there. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, char *body)
{
    if (!body)
        return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "out of memory\n",
                     MHD_RESPMEM_PERSISTENT);
    return reply(c, status, "application/json", body, MHD_RESPMEM_MUST_FREE);
}

/* GET /v1/users/{id}[?at=TIME]: 400 for a bad id or time, else the handler's answer. */
static enum MHD_Result users_request(dm_t *dm, struct MHD_Connection *c, const char *raw_id)
{
    char id[EV_USER_ID_MAX + 1], at[64], why[128];
    size_t len, at_len;
    if (!dm->h->user_get)
        return reply_json(c, MHD_HTTP_NOT_FOUND,
                          uv_error_json("no user data in this daemon", NULL));
    if (uv_decode_id(raw_id, id, sizeof(id), &len, why, sizeof(why)) != 0)
        return reply_json(c, MHD_HTTP_BAD_REQUEST, uv_error_json(why, NULL));
    const char *at_raw = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "at");
    if (at_raw && uv_decode_id(at_raw, at, sizeof(at), &at_len, why, sizeof(why)) != 0)
        return reply_json(c, MHD_HTTP_BAD_REQUEST,
                          uv_error_json("bad at: expected epoch milliseconds or an ISO-8601 UTC "
                                        "time",
                                        NULL));
    char *body = NULL;
    int status = dm->h->user_get(dm->h->user_api, id, len, at_raw ? at : NULL, &body);
    return reply_json(c, (unsigned)status, body);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    dm_t *dm = cls;
    static int seen_marker;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    /* Answer at the second call, once MHD has read the whole request: a response queued at
     * the first one makes MHD close the connection (no keep-alive for a client that polls
     * or a bench that reuses its connection). */
    if (*req_cls == NULL) {
        *req_cls = &seen_marker;
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "GET only\n",
                     MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/metrics") == 0) {
        char *body = dm_metrics_render(&dm->metrics, wall_ms());
        if (!body)
            return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "out of memory\n",
                         MHD_RESPMEM_PERSISTENT);
        return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body,
                     MHD_RESPMEM_MUST_FREE);
    }
    if (strcmp(url, "/healthz") == 0) {
        char body[512];
        int status = dm_metrics_health(&dm->metrics, body, sizeof(body));
        return reply(c, (unsigned)status, "text/plain", body, MHD_RESPMEM_MUST_COPY);
    }
    if (strncmp(url, USERS_PATH, strlen(USERS_PATH)) == 0)
        return users_request(dm, c, url + strlen(USERS_PATH));
    return reply(c, MHD_HTTP_NOT_FOUND, "text/plain",
                 "not found: try /metrics, /healthz or /v1/users/{id}\n", MHD_RESPMEM_PERSISTENT);
}

int dm_http_start(dm_t *dm, char *errstr, size_t errstr_size)
{
    if (dm->cfg->metrics_port == 0)
        return 0;
    char port[16];
    snprintf(port, sizeof(port), "%d", dm->cfg->metrics_port);
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(dm->cfg->metrics_bind, port, &hints, &ai);
    if (gai != 0 || !ai) {
        snprintf(errstr, errstr_size, "metrics.bind: cannot resolve \"%s\": %s",
                 dm->cfg->metrics_bind, gai_strerror(gai));
        return -1;
    }
    /* A thread per connection: a user request waiting on Redis (up to
     * redis.command_timeout) must not hold /healthz or /metrics. */
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    dm->http = MHD_start_daemon(flags, (uint16_t)dm->cfg->metrics_port, NULL, NULL, on_request, dm,
                                MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_TIMEOUT,
                                (unsigned)10, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                                MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!dm->http) {
        snprintf(errstr, errstr_size,
                 "cannot serve metrics on %s:%d (port in use? set metrics.port, 0 = off)",
                 dm->cfg->metrics_bind, dm->cfg->metrics_port);
        return -1;
    }
    log_info("http", "serving /metrics, /healthz%s on %s:%d",
             dm->h->user_get ? " and /v1/users/{id}" : "", dm->cfg->metrics_bind,
             dm->cfg->metrics_port);
    return 0;
}

void dm_http_stop(dm_t *dm)
{
    if (dm->http)
        MHD_stop_daemon(dm->http);
    dm->http = NULL;
}
