/* Helper of tests/e2e/test_run_exactly_once.sh: creates the events topic with the admin API,
 * waits until `churnstream run` has stored offsets equal to the topic's end offsets, and
 * compares every user's record in Redis with an uninterrupted in-memory replay of the same
 * events (feat_apply per user in file order: the event-derived part needs nothing else).
 * Not installed. Every failure prints one line starting with "eo_tool: FAIL" and exits 1.
 * EO_REDIS_CLUSTER=1: REDIS_HOST:REDIS_PORT is a seed of a Redis Cluster, and the store is
 * read in cluster mode (keys P{pN}:..., see state/redis_cluster.h). */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "config.h"
#include "feat.h"
#include "model.h"
#include "store_redis.h"
#include "user.h"

#define EO_MAX_PARTS 64

static void usage(void)
{
    fputs("usage: eo_tool create-topic BROKERS TOPIC PARTITIONS\n"
          "       eo_tool end-offsets BROKERS TOPIC   (0 when the broker says the topic does not "
          "exist)\n"
          "       eo_tool wait-offsets BROKERS TOPIC REDIS_HOST REDIS_PORT PREFIX TIMEOUT_S\n"
          "       eo_tool verify FILE.avro BROKERS TOPIC REDIS_HOST REDIS_PORT PREFIX\n"
          "       eo_tool model-stats REDIS_HOST REDIS_PORT PREFIX   (the stored model: "
          "examples, prequential labels and AUC, version)\n"
          "       eo_tool model-auc REDIS_HOST REDIS_PORT PREFIX SNAPSHOTS.csv   (AUC of the "
          "stored model's calibrated regression on replay --snapshots-out rows)\n",
          stderr);
    exit(2);
}

static void fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "eo_tool: FAIL: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static rd_kafka_t *kafka(const char *brokers, rd_kafka_type_t type)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)) != 0 ||
        (type == RD_KAFKA_CONSUMER &&
         rd_kafka_conf_set(conf, "group.id", "eo-tool", err, sizeof(err)) != 0))
        fail("kafka config: %s%s", err, "");
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
    if (!rk)
        fail("kafka client: %s%s", err, "");
    return rk;
}

/* ---- create-topic ---- */

static int create_topic(const char *brokers, const char *topic, int partitions)
{
    rd_kafka_t *rk = kafka(brokers, RD_KAFKA_PRODUCER);
    char err[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, err, sizeof(err));
    if (!nt)
        fail("new topic %s: %s", topic, err);
    /* gen stamps messages with their event times (2024): under the broker's default 7-day
     * time retention the next retention check (every 5 min) would delete them mid-test. */
    if (rd_kafka_NewTopic_set_config(nt, "retention.ms", "-1"))
        fail("topic %s: cannot set retention.ms%s", topic, "");
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    if (!ev)
        fail("create topic %s: no answer in 30 s%s", topic, "");
    if (rd_kafka_event_error(ev))
        fail("create topic %s: %s", topic, rd_kafka_event_error_string(ev));
    size_t n = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; i++)
        if (rd_kafka_topic_result_error(res[i]))
            fail("create topic %s: %s", topic, rd_kafka_topic_result_error_string(res[i]));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
    return 0;
}

/* ---- offsets ---- */

/* The topic's end offsets, partitions 0..*n-1 (from the metadata). */
static void end_offsets(rd_kafka_t *rk, const char *topic, int64_t *hi, int *n)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 10000);
    if (e || md->topic_cnt != 1 || md->topics[0].err)
        fail("metadata of %s: %s", topic,
             rd_kafka_err2str(e               ? e
                              : md->topic_cnt ? md->topics[0].err
                                              : RD_KAFKA_RESP_ERR_UNKNOWN));
    *n = md->topics[0].partition_cnt;
    if (*n > EO_MAX_PARTS)
        fail("topic %s has too many partitions%s", topic, "");
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    for (int p = 0; p < *n; p++) {
        int64_t lo;
        e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi[p], 10000);
        if (e)
            fail("watermarks of %s: %s", topic, rd_kafka_err2str(e));
        /* The comparison needs every message still on the broker. */
        if (lo != 0)
            fail("topic %s lost its first messages on the broker (retention?): %s", topic,
                 "a partition's low watermark is not 0");
    }
}

/* 1 when the broker answers that topic does not exist, 0 when it exists; exits on any
 * other metadata error. */
static int topic_absent(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 10000);
    if (e)
        fail("metadata of %s: %s", topic, rd_kafka_err2str(e));
    int absent = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    return absent;
}

static redisContext *redis(const char *host, const char *port)
{
    redisContext *rc = redisConnect(host, atoi(port));
    if (!rc || rc->err)
        fail("redis %s: %s", host, rc ? rc->errstr : "out of memory");
    return rc;
}

static int cluster_mode(void)
{
    const char *v = getenv("EO_REDIS_CLUSTER");
    return v && strcmp(v, "1") == 0;
}

/* The store, in cluster mode when EO_REDIS_CLUSTER=1. NULL with err when unreachable. */
static st_redis_t *store_open(cfg_t **cfg, const char *host, const char *port, const char *prefix,
                              char *err, size_t errsz)
{
    if (!(*cfg = cfg_new()) || cfg_set(*cfg, "redis.host", host, "eo_tool", err, errsz) != 0 ||
        cfg_set(*cfg, "redis.port", port, "eo_tool", err, errsz) != 0 ||
        cfg_set(*cfg, "state.prefix", prefix, "eo_tool", err, errsz) != 0 ||
        cfg_set(*cfg, "redis.cluster", cluster_mode() ? "true" : "false", "eo_tool", err, errsz) !=
            0)
        fail("config: %s%s", err, "");
    return st_redis_new(*cfg, err, errsz);
}

/* Cluster mode: each partition's stored offset through the store. */
static int stored_offsets_cluster(const char *host, const char *port, const char *prefix,
                                  int64_t *off, int n)
{
    char err[512];
    cfg_t *cfg;
    st_redis_t *s = store_open(&cfg, host, port, prefix, err, sizeof(err));
    int rc = s ? 0 : -1;
    for (int p = 0; s && p < n && rc == 0; p++) {
        int found;
        int64_t v;
        rc = st_redis_load_offset(s, p, &v, &found, err, sizeof(err));
        if (rc == 0 && found)
            off[p] = v;
    }
    st_redis_destroy(s);
    cfg_destroy(cfg);
    return rc;
}

/* Stored next offsets (HGETALL P offsets); -1 for a partition without one. -1 when Redis is
 * unreachable (the wait goes on: the crash test restarts Redis). */
static int stored_offsets(const char *host, const char *port, const char *prefix, int64_t *off,
                          int n)
{
    for (int p = 0; p < n; p++)
        off[p] = -1;
    if (cluster_mode())
        return stored_offsets_cluster(host, port, prefix, off, n);
    redisContext *rc = redisConnect(host, atoi(port));
    if (!rc || rc->err) {
        redisFree(rc);
        return -1;
    }
    char key[256];
    snprintf(key, sizeof(key), "%soffsets", prefix);
    redisReply *r = redisCommand(rc, "HGETALL %s", key);
    int ok = r && r->type == REDIS_REPLY_ARRAY;
    for (size_t i = 0; ok && i + 1 < r->elements; i += 2) {
        int p = atoi(r->element[i]->str);
        if (p < 0 || p >= n)
            fail("%s has partition %s, not in the topic", key, r->element[i]->str);
        off[p] = strtoll(r->element[i + 1]->str, NULL, 10);
    }
    if (r)
        freeReplyObject(r);
    redisFree(rc);
    return ok ? 0 : -1;
}

static void print_offsets(const char *what, const int64_t *off, int n)
{
    printf("%s:", what);
    for (int p = 0; p < n; p++)
        printf(" %d=%" PRId64, p, off[p]);
    printf("\n");
}

/* Equal when every partition with messages has its end offset stored (an empty partition
 * may have none). */
static int offsets_equal(const int64_t *hi, const int64_t *stored, int n)
{
    for (int p = 0; p < n; p++)
        if (stored[p] != hi[p] && !(hi[p] == 0 && stored[p] == -1))
            return 0;
    return 1;
}

static int wait_offsets(const char *brokers, const char *topic, const char *host, const char *port,
                        const char *prefix, double timeout_s)
{
    rd_kafka_t *rk = kafka(brokers, RD_KAFKA_CONSUMER);
    int64_t hi[EO_MAX_PARTS], st[EO_MAX_PARTS];
    int n;
    end_offsets(rk, topic, hi, &n);
    double t0 = now_s();
    for (;;) {
        if (stored_offsets(host, port, prefix, st, n) == 0 && offsets_equal(hi, st, n))
            break;
        if (now_s() - t0 > timeout_s) {
            print_offsets("end offsets", hi, n);
            print_offsets("stored offsets", st, n);
            fprintf(stderr,
                    "eo_tool: FAIL: the stored offsets did not reach the end offsets in "
                    "%.0f s\n",
                    timeout_s);
            exit(1);
        }
        usleep(100000);
    }
    printf("caught up in %.1f s: ", now_s() - t0);
    print_offsets("stored offsets == end offsets", st, n);
    rd_kafka_destroy(rk);
    return 0;
}

/* ---- verify ---- */

typedef struct user_s {
    char *id;
    feat_state_t feat;
    int seen_in_redis;
} user_t;

typedef struct users_s {
    user_t *slots;
    size_t cap, n;
} users_t;

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static user_t *users_find(users_t *u, const char *id, int create)
{
    if (create && (u->n + 1) * 2 > u->cap) {
        users_t g = {calloc(u->cap ? u->cap * 2 : 1024, sizeof(user_t)), u->cap ? u->cap * 2 : 1024,
                     0};
        if (!g.slots)
            fail("out of memory%s%s", "", "");
        for (size_t i = 0; i < u->cap; i++)
            if (u->slots[i].id) {
                size_t j = hash(u->slots[i].id) & (g.cap - 1);
                while (g.slots[j].id)
                    j = (j + 1) & (g.cap - 1);
                g.slots[j] = u->slots[i];
                g.n++;
            }
        free(u->slots);
        *u = g;
    }
    if (!u->cap)
        return NULL;
    size_t j = hash(id) & (u->cap - 1);
    while (u->slots[j].id) {
        if (strcmp(u->slots[j].id, id) == 0)
            return &u->slots[j];
        j = (j + 1) & (u->cap - 1);
    }
    if (!create)
        return NULL;
    if (!(u->slots[j].id = strdup(id)))
        fail("out of memory%s%s", "", "");
    feat_state_init(&u->slots[j].feat);
    u->n++;
    return &u->slots[j];
}

static void describe(const char *who, const feat_state_t *f)
{
    fprintf(stderr,
            "  %s: first %" PRId64 " last %" PRId64 " purchase %" PRId64 " t_ref %" PRId64
            " lifetime_days %u sessions_30d %.6g page_views_30d %.6g purchases_90d %.6g\n",
            who, f->first_activity_ms, f->last_activity_ms, f->last_purchase_ms, f->t_ref_ms,
            (unsigned)f->lifetime_active_days, (double)f->counter[FEAT_C_SESSIONS_30D],
            (double)f->counter[FEAT_C_PAGE_VIEWS_30D], (double)f->counter[FEAT_C_PURCHASES_90D]);
}

/* The nodes to SCAN: the given one, or every master of a cluster (CLUSTER NODES). */
static int redis_nodes(const char *host, const char *port, char ports[][16])
{
    if (!cluster_mode()) {
        snprintf(ports[0], 16, "%s", port);
        return 1;
    }
    redisContext *rc = redis(host, port);
    redisReply *r = redisCommand(rc, "CLUSTER NODES");
    if (!r || r->type != REDIS_REPLY_STRING)
        fail("CLUSTER NODES on %s:%s failed", host, port);
    int n = 0;
    for (char *save = NULL, *line = strtok_r(r->str, "\n", &save); line && n < EO_MAX_PARTS;
         line = strtok_r(NULL, "\n", &save)) {
        char id[64], addr[128], flags[128];
        char *colon;
        if (sscanf(line, "%63s %127s %127s", id, addr, flags) == 3 && strstr(flags, "master") &&
            (colon = strrchr(addr, ':')))
            snprintf(ports[n++], 16, "%d", atoi(colon + 1));
    }
    freeReplyObject(r);
    redisFree(rc);
    return n;
}

/* SCANs one node for the users' keys, marks them seen; returns how many were new. */
static size_t scan_users(const char *host, const char *port, const char *prefix, users_t *users)
{
    redisContext *rc = redis(host, port);
    char pattern[300];
    snprintf(pattern, sizeof(pattern), cluster_mode() ? "%s{p*}:u:*" : "%su:*", prefix);
    char cursor[32] = "0";
    size_t in_redis = 0;
    do {
        redisReply *x = redisCommand(rc, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!x || x->type != REDIS_REPLY_ARRAY || x->elements != 2)
            fail("SCAN on %s:%s failed", host, port);
        snprintf(cursor, sizeof(cursor), "%s", x->element[0]->str);
        for (size_t i = 0; i < x->element[1]->elements; i++) {
            const char *key = x->element[1]->element[i]->str;
            const char *id = key + strlen(prefix) + 2; /* after "P u:" */
            if (cluster_mode()) {
                const char *t = strstr(key + strlen(prefix), "}:u:");
                id = t ? t + 4 : key;
            }
            user_t *u = users_find(users, id, 0);
            if (!u)
                fail("Redis holds %s, a user the events do not have", key, "");
            if (!u->seen_in_redis) {
                u->seen_in_redis = 1;
                in_redis++;
            }
        }
        freeReplyObject(x);
    } while (strcmp(cursor, "0") != 0);
    redisFree(rc);
    return in_redis;
}

static int verify(const char *file, const char *brokers, const char *topic, const char *host,
                  const char *port, const char *prefix)
{
    char err[512];
    /* 1. The uninterrupted replay: every event of the file, in file order, per user. */
    ev_file_reader_t *r = ev_file_reader_open(file, err, sizeof(err));
    if (!r)
        fail("%s: %s", file, err);
    users_t users = {0};
    ev_event_t ev;
    ev_reason_t why;
    long long events = 0;
    int got;
    while ((got = ev_file_reader_next(r, &ev, &why, err, sizeof(err))) == 1) {
        if (why != EV_OK)
            fail("%s holds an invalid event (%s): the test needs valid events only", file,
                 ev_reason_code(why));
        feat_apply(&users_find(&users, ev.user_id, 1)->feat, &ev);
        events++;
    }
    if (got < 0)
        fail("%s: %s", file, err);
    ev_file_reader_close(r);

    /* 2. Offsets: stored == end offsets (0 lost, 0 counted twice), and their sum == events. */
    rd_kafka_t *rk = kafka(brokers, RD_KAFKA_CONSUMER);
    int64_t hi[EO_MAX_PARTS], st[EO_MAX_PARTS];
    int np;
    end_offsets(rk, topic, hi, &np);
    rd_kafka_destroy(rk);
    if (stored_offsets(host, port, prefix, st, np) != 0)
        fail("redis %s:%s: cannot read the stored offsets", host, port);
    print_offsets("end offsets", hi, np);
    print_offsets("stored offsets", st, np);
    if (!offsets_equal(hi, st, np))
        fail("stored offsets differ from the topic's end offsets%s%s", "", "");
    long long total = 0;
    for (int p = 0; p < np; p++)
        total += hi[p];
    if (total != events) {
        fprintf(stderr, "eo_tool: FAIL: the topic holds %lld messages, the file %lld events\n",
                total, events);
        exit(1);
    }

    /* 3. Every P u:* key in Redis (P{pN}:u:* on every master of a cluster) is a user of
     * the file (SCAN), ... */
    char ports[EO_MAX_PARTS][16];
    int nports = redis_nodes(host, port, ports);
    size_t in_redis = 0;
    for (int k = 0; k < nports; k++)
        in_redis += scan_users(host, ports[k], prefix, &users);

    /* ... and every user of the file has a record whose event part equals the replay's. */
    cfg_t *cfg;
    st_redis_t *s = store_open(&cfg, host, port, prefix, err, sizeof(err));
    if (!s)
        fail("%s%s", err, "");
    size_t compared = 0, differ = 0, missing = 0;
    for (size_t i = 0; i < users.cap; i++) {
        user_t *u = &users.slots[i];
        if (!u->id)
            continue;
        user_rec_t rec;
        int found = 0;
        if (st_redis_get_user(s, u->id, &rec, &found, err, sizeof(err)) != 0)
            fail("user %s: %s", u->id, err);
        if (!found) {
            if (missing++ < 5)
                fprintf(stderr, "eo_tool: user %s: no record in Redis\n", u->id);
            continue;
        }
        compared++;
        if (!feat_event_part_equal(&rec.feat, &u->feat)) {
            if (differ++ < 5) {
                fprintf(stderr, "eo_tool: user %s: event part differs\n", u->id);
                describe("redis ", &rec.feat);
                describe("replay", &u->feat);
            }
        }
    }
    st_redis_destroy(s);
    cfg_destroy(cfg);
    printf("%lld events, %zu users in the replay, %zu in Redis, %zu compared, %zu differ, "
           "%zu missing\n",
           events, users.n, in_redis, compared, differ, missing);
    if (differ || missing || in_redis != users.n || compared != users.n || users.n == 0) {
        fprintf(stderr,
                "eo_tool: FAIL: Redis does not hold exactly the replay's users and states "
                "(%zu differ, %zu missing)\n",
                differ, missing);
        exit(1);
    }
    for (size_t i = 0; i < users.cap; i++)
        free(users.slots[i].id);
    free(users.slots);
    printf("verify: ok\n");
    return 0;
}

/* Prints "examples N labels N auc X version V" of the model stored under prefix. */
static int model_stats(const char *host, const char *port, const char *prefix)
{
    char err[512];
    cfg_t *cfg;
    st_redis_t *st = store_open(&cfg, host, port, prefix, err, sizeof err);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (!st || st_redis_load_model(st, &buf, &len, err, sizeof err) != 0)
        fail("model-stats: %s%s", err, "");
    if (!buf)
        fail("model-stats: no model stored under %s%s", prefix, "");
    model_t *m = model_decode(buf, len, err, sizeof err);
    if (!m)
        fail("model-stats: %s%s", err, "");
    const pm_t *pm = model_metrics(m);
    printf("examples %llu labels %llu auc %.6f version %llu\n",
           (unsigned long long)model_examples_seen(m), (unsigned long long)pm_count(pm), pm_auc(pm),
           (unsigned long long)model_version(m));
    model_destroy(m);
    free(buf);
    st_redis_destroy(st);
    cfg_destroy(cfg);
    return 0;
}

/* The stored model's calibrated regression (model_score without summaries) on every row
 * of a replay --snapshots-out file (user_id,tick_ms,y,score, then the FEAT_DIM features in
 * the build's order): prints "auc X rows N". */
static int model_auc(const char *host, const char *port, const char *prefix, const char *csv)
{
    char err[512];
    cfg_t *cfg;
    st_redis_t *st = store_open(&cfg, host, port, prefix, err, sizeof err);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (!st || st_redis_load_model(st, &buf, &len, err, sizeof err) != 0 || !buf)
        fail("model-auc: %s%s", buf ? err : "no model stored", "");
    model_t *m = model_decode(buf, len, err, sizeof err);
    FILE *f = fopen(csv, "r");
    pm_t *pm = pm_new(16);
    if (!m || !f || !pm)
        fail("model-auc: %s %s", m ? csv : err, f ? "" : "cannot be read");
    char line[8192];
    size_t rows = 0;
    if (!fgets(line, sizeof line, f))
        fail("model-auc: %s is empty%s", csv, "");
    while (fgets(line, sizeof line, f)) {
        float x[FEAT_DIM], z[FEAT_DIM], p, y;
        char *c = strchr(line, ',');       /* after user_id */
        c = c ? strchr(c + 1, ',') : NULL; /* after tick_ms */
        y = c ? strtof(c + 1, NULL) : 0;
        c = c ? strchr(c + 1, ',') : NULL; /* after y */
        c = c ? strchr(c + 1, ',') : NULL; /* after score */
        for (int k = 0; k < FEAT_DIM; k++) {
            if (!c)
                fail("model-auc: %s: a row with fewer than %s features", csv, "FEAT_DIM");
            x[k] = strtof(c + 1, NULL);
            c = strchr(c + 1, ',');
        }
        model_score(m, x, NULL, 1, z, &p, NULL, NULL);
        pm_add(pm, &p, &y, 1);
        rows++;
    }
    printf("auc %.6f rows %zu\n", pm_auc(pm), rows);
    fclose(f);
    pm_destroy(pm);
    model_destroy(m);
    free(buf);
    st_redis_destroy(st);
    cfg_destroy(cfg);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *cmd = argv[1];
    if (strcmp(cmd, "create-topic") == 0 && argc == 5)
        return create_topic(argv[2], argv[3], atoi(argv[4]));
    if (strcmp(cmd, "end-offsets") == 0 && argc == 4) {
        rd_kafka_t *rk = kafka(argv[2], RD_KAFKA_CONSUMER);
        int64_t hi[EO_MAX_PARTS];
        int n;
        if (topic_absent(rk, argv[3])) {
            /* Only a definite "unknown topic" from the broker means none: any other failure
             * exits 1, so a caller never reads an error as "nothing was produced". */
            printf("0\n");
            fprintf(stderr, "eo_tool: topic %s does not exist: 0 messages\n", argv[3]);
            rd_kafka_destroy(rk);
            return 0;
        }
        end_offsets(rk, argv[3], hi, &n);
        long long sum = 0;
        for (int p = 0; p < n; p++)
            sum += hi[p];
        printf("%lld\n", sum);
        rd_kafka_destroy(rk);
        return 0;
    }
    if (strcmp(cmd, "wait-offsets") == 0 && argc == 8)
        return wait_offsets(argv[2], argv[3], argv[4], argv[5], argv[6], atof(argv[7]));
    if (strcmp(cmd, "model-auc") == 0 && argc == 6)
        return model_auc(argv[2], argv[3], argv[4], argv[5]);
    if (strcmp(cmd, "model-stats") == 0 && argc == 5)
        return model_stats(argv[2], argv[3], argv[4]);
    if (strcmp(cmd, "verify") == 0 && argc == 8)
        return verify(argv[2], argv[3], argv[4], argv[5], argv[6], argv[7]);
    usage();
    return 2;
}
