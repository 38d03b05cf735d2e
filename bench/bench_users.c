/* Latency of the readable scores from a C client, so the figures are the server's and the
 * loopback's, not a scripting language's: N requests GET /v1/users/{id} on one keep-alive
 * HTTP/1.1 connection (plain sockets, Content-Length bodies) and N HGETALL <prefix>score:<id>
 * on one hiredis connection, users drawn at random (seeded) from a file of ids (one a line,
 * URL-safe). Prints one JSON object on stdout: p50/p99/max in ms of each. Usage:
 *   bench_users HTTP_PORT REDIS_PORT PREFIX USERS_FILE N SEED */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "rng.h"

#define WARMUP 100

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void print_q(const char *name, int64_t *ns, size_t n, int last)
{
    qsort(ns, n, sizeof(*ns), cmp_i64);
    printf("\"%s\": {\"p50_ms\": %.4f, \"p99_ms\": %.4f, \"max_ms\": %.4f, \"n\": %zu}%s", name,
           ns[n / 2] / 1e6, ns[(size_t)(0.99 * (double)n)] / 1e6, ns[n - 1] / 1e6, n,
           last ? "" : ", ");
}

/* Reads one HTTP response (headers, then Content-Length bytes) into buf. Returns the
 * status, -1 on error. */
static int read_response(int fd, char *buf, size_t cap)
{
    size_t have = 0;
    char *end = NULL;
    while (!(end = have ? memmem(buf, have, "\r\n\r\n", 4) : NULL)) {
        ssize_t k = read(fd, buf + have, cap - have - 1);
        if (k <= 0)
            return -1;
        have += (size_t)k;
        if (have >= cap - 1)
            return -1;
    }
    buf[have] = '\0';
    const char *cl = strcasestr(buf, "Content-Length:");
    if (!cl || cl > end)
        return -1;
    size_t body = strtoul(cl + 15, NULL, 10), head = (size_t)(end + 4 - buf);
    while (have < head + body) {
        if (head + body >= cap)
            return -1;
        ssize_t k = read(fd, buf + have, cap - have - 1);
        if (k <= 0)
            return -1;
        have += (size_t)k;
    }
    return atoi(buf + 9); /* "HTTP/1.1 200" */
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: bench_users HTTP_PORT REDIS_PORT PREFIX USERS_FILE N SEED\n");
        return 2;
    }
    int http_port = atoi(argv[1]), redis_port = atoi(argv[2]);
    const char *prefix = argv[3];
    size_t n = strtoul(argv[5], NULL, 10);
    FILE *f = fopen(argv[4], "r");
    if (!f || n == 0) {
        perror(argv[4]);
        return 1;
    }
    char **users = NULL, line[512];
    size_t nu = 0, cap = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        if (nu == cap) {
            cap = cap ? 2 * cap : 1024;
            if (!(users = realloc(users, cap * sizeof(*users))))
                return 1;
        }
        if (!(users[nu++] = strdup(line)))
            return 1;
    }
    fclose(f);
    if (nu == 0) {
        fprintf(stderr, "bench_users: no user ids in %s\n", argv[4]);
        return 1;
    }
    rng_t r;
    rng_seed(&r, strtoull(argv[6], NULL, 10));
    int64_t *ns = malloc(n * sizeof(*ns));
    static char buf[1 << 20];
    if (!ns)
        return 1;

    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("connect");
        return 1;
    }
    for (size_t i = 0; i < n + WARMUP; i++) {
        const char *u = users[rng_below(&r, nu)];
        char req[600];
        int len =
            snprintf(req, sizeof req, "GET /v1/users/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", u);
        int64_t t0 = now_ns();
        if (write(fd, req, (size_t)len) != len) {
            perror("write");
            return 1;
        }
        int status = read_response(fd, buf, sizeof buf);
        int64_t dt = now_ns() - t0;
        if (status != 200) {
            fprintf(stderr, "bench_users: GET /v1/users/%s: status %d\n", u, status);
            return 1;
        }
        if (i >= WARMUP)
            ns[i - WARMUP] = dt;
    }
    close(fd);
    printf("{");
    print_q("http", ns, n, 0);

    redisContext *rc = redisConnect("127.0.0.1", redis_port);
    if (!rc || rc->err) {
        fprintf(stderr, "bench_users: redis: %s\n", rc ? rc->errstr : "out of memory");
        return 1;
    }
    for (size_t i = 0; i < n + WARMUP; i++) {
        const char *u = users[rng_below(&r, nu)];
        int64_t t0 = now_ns();
        redisReply *x = redisCommand(rc, "HGETALL %sscore:%s", prefix, u);
        int64_t dt = now_ns() - t0;
        if (!x || x->type != REDIS_REPLY_ARRAY || x->elements == 0) {
            fprintf(stderr, "bench_users: HGETALL %sscore:%s: empty\n", prefix, u);
            return 1;
        }
        freeReplyObject(x);
        if (i >= WARMUP)
            ns[i - WARMUP] = dt;
    }
    redisFree(rc);
    print_q("hgetall", ns, n, 1);
    printf("}\n");
    for (size_t i = 0; i < nu; i++)
        free(users[i]);
    free(users);
    free(ns);
    return 0;
}
