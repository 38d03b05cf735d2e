/* /metrics (Prometheus text 0.0.4) and /healthz on metrics.bind:metrics.port, served by
 * libmicrohttpd's own thread. That thread only reads dm->metrics (atomics and a mutex), so
 * a scrape never waits for a batch and never touches Kafka or the store. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "dm_internal.h"
#include "log.h"

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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    dm_t *dm = cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
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
    return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found: try /metrics or /healthz\n",
                 MHD_RESPMEM_PERSISTENT);
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
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    dm->http = MHD_start_daemon(flags, (uint16_t)dm->cfg->metrics_port, NULL, NULL, on_request, dm,
                                MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_TIMEOUT,
                                (unsigned)10, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!dm->http) {
        snprintf(errstr, errstr_size,
                 "cannot serve metrics on %s:%d (port in use? set metrics.port, 0 = off)",
                 dm->cfg->metrics_bind, dm->cfg->metrics_port);
        return -1;
    }
    log_info("http", "serving /metrics and /healthz on %s:%d", dm->cfg->metrics_bind,
             dm->cfg->metrics_port);
    return 0;
}

void dm_http_stop(dm_t *dm)
{
    if (dm->http)
        MHD_stop_daemon(dm->http);
    dm->http = NULL;
}
