/* `churnstream run` with the event-count handler against the real services of a test run:
 * 20,000 generated events plus a table of bad messages; exact per-user counts and stored
 * offsets in Redis, each bad message in the DLQ with its reason and source headers, metrics
 * that match, exit 0 on SIGTERM within 10 s; exact counts after three SIGKILLs at random
 * points; and a Redis outage mid-run (healthz 503, nothing skipped, exact after recovery). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "gen.h"
#include "testenv.h"

#define N_EVENTS     20000
#define N_PARTITIONS 4
#define NAME_SIZE    160
#define MAX_USERS    4096
#define CATCH_UP_MS  90000

/* ---- the input: generated events and a table of bad messages --------------------------- */

/* A bad message, what the DLQ must say about it, and where it landed. */
typedef struct bad_s {
    const char *name;
    ev_reason_t reason;
    uint8_t bytes[400];
    size_t len;
    int32_t partition; /* from the delivery report */
    int64_t offset;
    int seen_in_dlq;
} bad_t;

typedef struct user_count_s {
    char id[EV_USER_ID_MAX + 1];
    int64_t count;
} user_count_t;

typedef struct input_s {
    char topic[NAME_SIZE];
    bad_t *bad;
    size_t n_bad;
    user_count_t users[MAX_USERS];
    size_t n_users;
    int64_t n_good;
    int64_t end_offsets[N_PARTITIONS];
    int delivery_failures;
} input_t;

/* Avro binary pieces, written here independently of the codec under test. */
static size_t put_long(uint8_t *p, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (z >= 0x80) {
        p[n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    p[n++] = (uint8_t)z;
    return n;
}

/* Plain Avro body of an Event with the given fields, optional fields null. */
static size_t event_body(uint8_t *p, const char *user_id, size_t user_len, int64_t time_ms,
                         int type, double amount)
{
    size_t n = put_long(p, (int64_t)user_len);
    memcpy(p + n, user_id, user_len);
    n += user_len;
    n += put_long(p + n, time_ms);
    n += put_long(p + n, type);
    memcpy(p + n, &amount, 8); /* little-endian host: Avro doubles are little-endian */
    n += 8;
    for (int i = 0; i < 3; i++)
        p[n++] = 0; /* union branch 0 = null */
    return n;
}

static size_t confluent(uint8_t *p, uint32_t id, const uint8_t *body, size_t len)
{
    p[0] = 0;
    p[1] = (uint8_t)(id >> 24);
    p[2] = (uint8_t)(id >> 16);
    p[3] = (uint8_t)(id >> 8);
    p[4] = (uint8_t)id;
    memcpy(p + 5, body, len);
    return len + 5;
}

#define T_2024 1704067200000LL

/* The table: every rejection reason the count handler can give. */
static size_t make_bad_table(bad_t *t)
{
    uint8_t body[400];
    char long_id[300];
    size_t n = 0, len;
    memset(long_id, 'x', sizeof(long_id));

    t[n] = (bad_t){.name = "garbage bytes", .reason = EV_ERR_UNDECODABLE};
    memcpy(t[n].bytes, "garbage \xff\xfe\x01 not avro", 20);
    t[n++].len = 20;

    t[n] = (bad_t){.name = "empty message", .reason = EV_ERR_UNDECODABLE, .len = 0};
    n++;

    len = event_body(body, "u-trunc", 7, T_2024, 1, 0.0);
    t[n] = (bad_t){.name = "truncated record", .reason = EV_ERR_UNDECODABLE};
    t[n].len = confluent(t[n].bytes, 1, body, len - 6);
    n++;

    len = event_body(body, "u-schema", 8, T_2024, 1, 0.0);
    t[n] = (bad_t){.name = "unknown schema id", .reason = EV_ERR_UNKNOWN_SCHEMA};
    t[n].len = confluent(t[n].bytes, 999, body, len);
    n++;

    t[n] = (bad_t){.name = "unknown single-object fingerprint", .reason = EV_ERR_UNKNOWN_SCHEMA};
    t[n].bytes[0] = 0xC3;
    t[n].bytes[1] = 0x01;
    memcpy(t[n].bytes + 2, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    t[n].len = 10 + event_body(t[n].bytes + 10, "u-fp", 4, T_2024, 1, 0.0);
    n++;

    len = event_body(body, "", 0, T_2024, 1, 0.0);
    t[n] = (bad_t){.name = "empty user_id", .reason = EV_ERR_MISSING_USER_ID};
    t[n].len = confluent(t[n].bytes, 1, body, len);
    n++;

    len = event_body(body, long_id, sizeof(long_id), T_2024, 1, 0.0);
    t[n] = (bad_t){.name = "user_id of 300 bytes", .reason = EV_ERR_USER_ID_TOO_LONG};
    t[n].len = confluent(t[n].bytes, 1, body, len);
    n++;

    /* issue 11: Avro strings are UTF-8; a raw byte in the id must not become a Redis key */
    len = event_body(body, "u-\xff\xfe", 4, T_2024, 1, 0.0);
    t[n] = (bad_t){.name = "user_id not UTF-8", .reason = EV_ERR_INVALID_UTF8};
    t[n].len = confluent(t[n].bytes, 1, body, len);
    n++;

    len = event_body(body, "u-nan", 5, T_2024, 5, NAN);
    t[n] = (bad_t){.name = "NaN amount", .reason = EV_ERR_NON_FINITE_AMOUNT};
    t[n].len = confluent(t[n].bytes, 1, body, len);
    n++;

    len = event_body(body, "u-inf", 5, T_2024, 5, INFINITY);
    t[n] = (bad_t){.name = "infinite amount", .reason = EV_ERR_NON_FINITE_AMOUNT};
    t[n].len = confluent(t[n].bytes, 1, body, len);
    n++;

    /* Year 2200: past events.max_future (1 day) beyond the wall clock. */
    len = event_body(body, "u-future", 8, 7258118400000LL, 1, 0.0);
    t[n] = (bad_t){.name = "event far in the future", .reason = EV_ERR_TIME_OUT_OF_WINDOW};
    t[n].len = confluent(t[n].bytes, 1, body, len);
    n++;
    return n;
}

/* ---- Kafka helpers ---------------------------------------------------------------------- */

static const char *brokers;

static void conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        fail_msg("rd_kafka_conf_set(%s=%s): %s", name, value, errstr);
}

static rd_kafka_t *client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char errstr[512];
    conf_set(conf, "bootstrap.servers", brokers);
    conf_set(conf, "client.id", "test_daemon");
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (!rk)
        fail_msg("rd_kafka_new: %s", errstr);
    return rk;
}

static void create_topic(const char *topic, int partitions)
{
    char errstr[512];
    rd_kafka_t *rk = client_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new());
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof(errstr));
    assert_non_null(nt);
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opt, 10000, errstr, sizeof(errstr));
    rd_kafka_CreateTopics(rk, &nt, 1, opt, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 20000);
    assert_non_null(ev);
    size_t cnt = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
    assert_int_equal(cnt, 1);
    if (rd_kafka_topic_result_error(res[0]))
        fail_msg("CreateTopics(%s): %s", topic, rd_kafka_topic_result_error_string(res[0]));
    rd_kafka_event_destroy(ev);
    /* Wait until metadata shows every partition, so nobody races the creation. */
    int seen = -1;
    for (int64_t end = testenv_now_ms() + 20000; testenv_now_ms() < end && seen != partitions;) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == 0) {
            if (md->topic_cnt == 1 && !md->topics[0].err)
                seen = md->topics[0].partition_cnt;
            rd_kafka_metadata_destroy(md);
        }
        rd_kafka_topic_destroy(rkt);
    }
    assert_int_equal(seen, partitions);
    rd_kafka_AdminOptions_destroy(opt);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    input_t *in = opaque;
    (void)rk;
    if (m->err) {
        in->delivery_failures++;
        return;
    }
    if (m->_private) {
        bad_t *b = m->_private;
        b->partition = m->partition;
        b->offset = m->offset;
    }
}

static void produce_one(rd_kafka_t *rk, const char *topic, const void *key, size_t key_len,
                        const void *value, size_t len, void *opaque)
{
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
            RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (err)
                fail_msg("produce: %s", rd_kafka_err2str(err));
            break;
        }
        rd_kafka_poll(rk, 100);
    }
    rd_kafka_poll(rk, 0);
}

static void count_user(input_t *in, const ev_event_t *ev)
{
    for (size_t i = 0; i < in->n_users; i++)
        if (strcmp(in->users[i].id, ev->user_id) == 0) {
            in->users[i].count++;
            return;
        }
    assert_true(in->n_users < MAX_USERS);
    snprintf(in->users[in->n_users].id, sizeof(in->users[0].id), "%s", ev->user_id);
    in->users[in->n_users++].count = 1;
}

/* Produces events [from, to) of the generated stream (gen seed 3, 500 users, 60 days; keyed
 * by user_id, Confluent framing id 1) with the bad messages whose slot falls in that range
 * (bad i goes before event (i+1) * N_EVENTS / (n_bad+1)), and counts what it sent. */
static void produce_range(input_t *in, int64_t from, int64_t to)
{
    char err[512];
    gen_params_t gp;
    gen_params_default(&gp);
    gp.users = 500;
    gp.days = 60;
    gp.seed = 3;
    gen_t *g = gen_new(&gp, err, sizeof(err));
    assert_non_null(g);
    ev_encoder_t *enc = ev_encoder_new(EV_WIRE_CONFLUENT, 1, err, sizeof(err));
    assert_non_null(enc);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    conf_set(conf, "enable.idempotence", "true");
    conf_set(conf, "linger.ms", "5");
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, in);
    rd_kafka_t *rk = client_new(RD_KAFKA_PRODUCER, conf);
    ev_event_t ev;
    for (int64_t i = 0; i < to; i++) {
        assert_int_equal(gen_next(g, &ev), 1); /* the stream is longer than N_EVENTS */
        if (i < from)
            continue;
        for (size_t b = 0; b < in->n_bad; b++) {
            if ((int64_t)((b + 1) * N_EVENTS / (in->n_bad + 1)) != i)
                continue;
            char key[32];
            snprintf(key, sizeof(key), "bad-%zu", b);
            produce_one(rk, in->topic, key, strlen(key), in->bad[b].bytes, in->bad[b].len,
                        &in->bad[b]);
        }
        const void *buf;
        size_t len;
        assert_int_equal(ev_encode(enc, &ev, &buf, &len), 0);
        produce_one(rk, in->topic, ev.user_id, ev.user_id_len, buf, len, NULL);
        count_user(in, &ev);
        in->n_good++;
    }
    assert_int_equal(rd_kafka_flush(rk, 30000), 0);
    assert_int_equal(in->delivery_failures, 0);
    for (int p = 0; p < N_PARTITIONS; p++) {
        int64_t lo, hi;
        assert_int_equal(rd_kafka_query_watermark_offsets(rk, in->topic, p, &lo, &hi, 10000), 0);
        in->end_offsets[p] = hi;
    }
    rd_kafka_destroy(rk);
    ev_encoder_destroy(enc);
    gen_destroy(g);
}

/* Reads the whole DLQ topic and marks each bad message found; fails on anything that does
 * not match the table exactly (headers, bytes, source position) or on a duplicate. */
static void check_dlq(input_t *in, const char *dlq)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    conf_set(conf, "group.id", "unused-assign-only");
    conf_set(conf, "enable.partition.eof", "true");
    conf_set(conf, "enable.auto.commit", "false");
    rd_kafka_t *rk = client_new(RD_KAFKA_CONSUMER, conf);
    rd_kafka_poll_set_consumer(rk);
    /* The DLQ topic is auto-created with the broker's default 4 partitions. */
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(N_PARTITIONS);
    for (int p = 0; p < N_PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(l, dlq, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    int eofs = 0, total = 0;
    for (int64_t end = testenv_now_ms() + 30000; eofs < N_PARTITIONS && testenv_now_ms() < end;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err)
            fail_msg("DLQ consume: %s", rd_kafka_message_errstr(m));
        total++;
        char key[32];
        assert_true(m->key_len > 4 && m->key_len < sizeof(key));
        snprintf(key, sizeof(key), "%.*s", (int)m->key_len, (const char *)m->key);
        assert_true(strncmp(key, "bad-", 4) == 0);
        size_t b = (size_t)strtoul(key + 4, NULL, 10);
        assert_true(b < in->n_bad);
        bad_t *bad = &in->bad[b];
        assert_int_equal(m->len, bad->len);
        if (bad->len)
            assert_memory_equal(m->payload, bad->bytes, bad->len);
        rd_kafka_headers_t *h = NULL;
        assert_int_equal(rd_kafka_message_headers(m, &h), 0);
        const void *v;
        size_t vlen;
        char text[512], want[64];
        assert_int_equal(rd_kafka_header_get_last(h, "error", &v, &vlen), 0);
        snprintf(text, sizeof(text), "%.*s", (int)vlen, (const char *)v);
        snprintf(want, sizeof(want), "%s: ", ev_reason_code(bad->reason));
        if (strncmp(text, want, strlen(want)) != 0 || strlen(text) <= strlen(want))
            fail_msg("%s: DLQ error header \"%s\", want \"%s<detail>\"", bad->name, text, want);
        assert_int_equal(rd_kafka_header_get_last(h, "source.topic", &v, &vlen), 0);
        assert_int_equal(vlen, strlen(in->topic));
        assert_memory_equal(v, in->topic, vlen);
        assert_int_equal(rd_kafka_header_get_last(h, "source.partition", &v, &vlen), 0);
        snprintf(text, sizeof(text), "%.*s", (int)vlen, (const char *)v);
        assert_int_equal(strtoll(text, NULL, 10), bad->partition);
        assert_int_equal(rd_kafka_header_get_last(h, "source.offset", &v, &vlen), 0);
        snprintf(text, sizeof(text), "%.*s", (int)vlen, (const char *)v);
        assert_int_equal(strtoll(text, NULL, 10), bad->offset);
        if (bad->seen_in_dlq++)
            fail_msg("%s: twice in the DLQ", bad->name);
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(eofs, N_PARTITIONS);
    for (size_t b = 0; b < in->n_bad; b++)
        if (!in->bad[b].seen_in_dlq)
            fail_msg("%s: not in the DLQ", in->bad[b].name);
    assert_int_equal(total, (int)in->n_bad);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

/* ---- Redis helpers ---------------------------------------------------------------------- */

static redisContext *redis_open(int port)
{
    struct timeval tv = {2, 0};
    redisContext *rc = redisConnectWithTimeout(testenv_get("CS_REDIS_HOST"), port, tv);
    if (!rc || rc->err)
        fail_msg("redis connect port %d: %s", port, rc ? rc->errstr : "oom");
    return rc;
}

/* Stored next offsets of every partition (-1 when absent); -1 if Redis does not answer. */
static int stored_offsets(int port, const char *prefix, int64_t out[N_PARTITIONS])
{
    struct timeval tv = {1, 0};
    redisContext *rc = redisConnectWithTimeout(testenv_get("CS_REDIS_HOST"), port, tv);
    if (!rc || rc->err) {
        if (rc)
            redisFree(rc);
        return -1;
    }
    redisReply *r = redisCommand(rc, "HMGET %scount:offsets 0 1 2 3", prefix);
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == N_PARTITIONS;
    for (int p = 0; ok && p < N_PARTITIONS; p++)
        out[p] =
            r->element[p]->type == REDIS_REPLY_STRING ? strtoll(r->element[p]->str, NULL, 10) : -1;
    if (r)
        freeReplyObject(r);
    redisFree(rc);
    return ok ? 0 : -1;
}

static int caught_up(const input_t *in, int port, const char *prefix)
{
    int64_t s[N_PARTITIONS];
    if (stored_offsets(port, prefix, s) != 0)
        return 0;
    for (int p = 0; p < N_PARTITIONS; p++)
        if (in->end_offsets[p] > 0 && s[p] != in->end_offsets[p])
            return 0;
    return 1;
}

static int64_t stored_total(int port, const char *prefix)
{
    int64_t s[N_PARTITIONS], t = 0;
    if (stored_offsets(port, prefix, s) != 0)
        return -1;
    for (int p = 0; p < N_PARTITIONS; p++)
        t += s[p] > 0 ? s[p] : 0;
    return t;
}

static void check_counts(const input_t *in, int port, const char *prefix)
{
    redisContext *rc = redis_open(port);
    redisReply *r = redisCommand(rc, "HGETALL %scount:users", prefix);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    size_t mismatches = 0;
    if (r->elements != 2 * in->n_users)
        fail_msg("%zu users counted in Redis, %zu in the input", r->elements / 2, in->n_users);
    for (size_t i = 0; i < r->elements; i += 2) {
        const char *id = r->element[i]->str;
        int64_t got = strtoll(r->element[i + 1]->str, NULL, 10), want = -1;
        for (size_t u = 0; u < in->n_users && want < 0; u++)
            if (strcmp(in->users[u].id, id) == 0)
                want = in->users[u].count;
        if (got != want && mismatches++ < 5)
            print_error("user %s: %" PRId64 " counted, %" PRId64 " in the input\n", id, got, want);
    }
    freeReplyObject(r);
    redisFree(rc);
    assert_int_equal(mismatches, 0);
    int64_t s[N_PARTITIONS];
    assert_int_equal(stored_offsets(port, prefix, s), 0);
    for (int p = 0; p < N_PARTITIONS; p++)
        assert_int_equal(s[p], in->end_offsets[p] > 0 ? in->end_offsets[p] : -1);
}

/* ---- the daemon under test -------------------------------------------------------------- */

typedef struct run_s {
    char group[NAME_SIZE], prefix[NAME_SIZE + 8], dlq[NAME_SIZE + 8], log[NAME_SIZE + 512];
    int redis_port, metrics_port, batch_max;
    int catchup;     /* batch.catchup_factor: 1 (fixed batches, many commits) unless a test
                      * sets it */
    char extra[128]; /* one more flag, or "" */
} run_t;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Daemons started by the current test, so a failing assertion never leaves one running. */
static pid_t live[8];

static void live_forget(pid_t pid)
{
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
        if (live[i] == pid)
            live[i] = 0;
}

static int kill_leftovers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
        if (live[i] > 0) {
            kill(live[i], SIGKILL);
            waitpid(live[i], NULL, 0);
            live[i] = 0;
        }
    return 0;
}

static pid_t spawn_run(const run_t *r, const char *topic)
{
    char a[13][NAME_SIZE + 128];
    snprintf(a[0], sizeof(a[0]), "--topic.events=%s", topic);
    snprintf(a[1], sizeof(a[1]), "--topic.dlq=%s", r->dlq);
    snprintf(a[2], sizeof(a[2]), "--kafka.bootstrap.servers=%s", brokers);
    snprintf(a[3], sizeof(a[3]), "--kafka.group.id=%s", r->group);
    snprintf(a[4], sizeof(a[4]), "--redis.host=%s", testenv_get("CS_REDIS_HOST"));
    snprintf(a[5], sizeof(a[5]), "--redis.port=%d", r->redis_port);
    snprintf(a[6], sizeof(a[6]), "--state.prefix=%s", r->prefix);
    snprintf(a[7], sizeof(a[7]), "--metrics.port=%d", r->metrics_port);
    snprintf(a[8], sizeof(a[8]), "--batch.max_messages=%d", r->batch_max);
    /* A killed member's partitions wait for its session to expire before the restarted
     * instance gets them: keep that short (the broker's minimum is 6 s). */
    snprintf(a[9], sizeof(a[9]), "--kafka.session.timeout.ms=6000");
    snprintf(a[10], sizeof(a[10]), "--kafka.heartbeat.interval.ms=500");
    snprintf(a[11], sizeof(a[11]), "--redis.command_timeout=1s");
    snprintf(a[12], sizeof(a[12]), "--batch.catchup_factor=%d", r->catchup);
    const char *extra = r->extra[0] ? r->extra : "--log.level=info";
    const char *bin = testenv_get("CS_BIN");
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(r->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(bin, bin, "run", "--handler=count", a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
              a[8], a[9], a[10], a[11], a[12], extra, (char *)NULL);
        _exit(127);
    }
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
        if (live[i] == 0) {
            live[i] = pid;
            break;
        }
    return pid;
}

/* Waits up to timeout_ms for pid; returns its wait status, or -1 on timeout. */
static int wait_exit(pid_t pid, int64_t timeout_ms)
{
    int status;
    for (int64_t end = testenv_now_ms() + timeout_ms; testenv_now_ms() < end;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            live_forget(pid);
            return status;
        }
        usleep(10000);
    }
    return -1;
}

static void kill_and_reap(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    live_forget(pid);
}

/* Waits until the stored offsets reach the input's end offsets; fails if the daemon exits. */
static void wait_caught_up(const input_t *in, const run_t *r, pid_t pid, int64_t timeout_ms)
{
    for (int64_t end = testenv_now_ms() + timeout_ms; testenv_now_ms() < end;) {
        if (caught_up(in, r->redis_port, r->prefix))
            return;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            live_forget(pid);
            fail_msg("churnstream run exited early (status %d); log: %s", status, r->log);
        }
        usleep(20000);
    }
    kill_and_reap(pid);
    fail_msg("stored offsets did not reach the end offsets within %" PRId64 " ms; log: %s",
             timeout_ms, r->log);
}

/* SIGTERM, then the exit must be 0 within 10 s. Returns the shutdown time. */
static int64_t stop_run(pid_t pid, const run_t *r)
{
    int64_t t0 = testenv_now_ms();
    kill(pid, SIGTERM);
    int status = wait_exit(pid, 10000);
    if (status == -1) {
        kill_and_reap(pid);
        fail_msg("no exit within 10 s of SIGTERM; log: %s", r->log);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("exit status %d after SIGTERM (want 0); log: %s", status, r->log);
    return testenv_now_ms() - t0;
}

/* Minimal HTTP/1.0 GET; returns the status code and the body in buf. */
static int http_get(int port, const char *path, char *buf, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t len = 0;
    ssize_t k;
    while (len + 1 < size && (k = read(fd, buf + len, size - 1 - len)) > 0)
        len += (size_t)k;
    buf[len] = '\0';
    close(fd);
    int status = -1;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    char *body = strstr(buf, "\r\n\r\n");
    if (body)
        memmove(buf, body + 4, strlen(body + 4) + 1);
    return status;
}

/* Value of the sample whose name (with labels) is exactly `series`; fails when absent. */
static double metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    fail_msg("metric %s not found", series);
    return 0;
}

static int log_contains(const run_t *r, const char *needle)
{
    FILE *f = fopen(r->log, "r");
    if (!f)
        return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static void setup_run(run_t *r, int redis_port, int batch_max, const char *tag)
{
    memset(r, 0, sizeof(*r));
    char base[NAME_SIZE];
    snprintf(base, sizeof(base), "cs-run-%s", tag);
    testenv_unique_name(base, r->group, sizeof(r->group));
    snprintf(r->prefix, sizeof(r->prefix), "%s:", r->group);
    snprintf(r->dlq, sizeof(r->dlq), "%s.dlq", r->group);
    snprintf(r->log, sizeof(r->log), "%s/%s.log", testenv_get("CS_TMP"), r->group);
    r->redis_port = redis_port;
    r->metrics_port = free_port();
    r->batch_max = batch_max;
    r->catchup = 1;
}

static input_t *setup_input(const char *tag, bad_t *bad, size_t n_bad)
{
    input_t *in = calloc(1, sizeof(*in));
    assert_non_null(in);
    char base[NAME_SIZE];
    snprintf(base, sizeof(base), "cs-run-%s-events", tag);
    testenv_unique_name(base, in->topic, sizeof(in->topic));
    in->bad = bad;
    in->n_bad = n_bad;
    create_topic(in->topic, N_PARTITIONS);
    return in;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_run_exact_counts_dlq_metrics(void **state)
{
    (void)state;
    brokers = testenv_get("CS_KAFKA_BROKERS");
    bad_t bad[16];
    size_t n_bad = make_bad_table(bad);
    input_t *in = setup_input("exact", bad, n_bad);
    produce_range(in, 0, N_EVENTS);
    assert_int_equal(in->n_good, N_EVENTS);

    run_t r;
    setup_run(&r, testenv_get_port("CS_REDIS_PORT"), 1000, "exact");
    r.catchup = 16; /* the default: the backlog is drained in growing batches */
    int64_t t0 = testenv_now_ms();
    pid_t pid = spawn_run(&r, in->topic);
    wait_caught_up(in, &r, pid, CATCH_UP_MS);
    int64_t took_ms = testenv_now_ms() - t0;

    static char body[1 << 16];
    assert_int_equal(http_get(r.metrics_port, "/healthz", body, sizeof(body)), 200);
    /* DLQ deliveries are acknowledged asynchronously: wait for the counter. */
    for (int64_t end = testenv_now_ms() + 10000; testenv_now_ms() < end; usleep(50000)) {
        assert_int_equal(http_get(r.metrics_port, "/metrics", body, sizeof(body)), 200);
        if (metric(body, "churnstream_dlq_produced_total") == (double)n_bad)
            break;
    }
    assert_true(metric(body, "churnstream_events_in_total") == N_EVENTS);
    assert_true(metric(body, "churnstream_dlq_produced_total") == (double)n_bad);
    assert_true(metric(body, "churnstream_dlq_failed_total") == 0);
    for (int reason = 1; reason < EV_ERR_COUNT; reason++) {
        double want = 0;
        for (size_t b = 0; b < n_bad; b++)
            want += bad[b].reason == (ev_reason_t)reason;
        char series[128];
        snprintf(series, sizeof(series), "churnstream_events_rejected_total{reason=\"%s\"}",
                 ev_reason_code((ev_reason_t)reason));
        if (metric(body, series) != want)
            fail_msg("%s = %g, want %g", series, metric(body, series), want);
    }
    double batches = metric(body, "churnstream_batches_total");
    /* The topic was full before the daemon started: at least another full batch waited
     * after each of the first ones, so batches grew past batch.max_messages (1000), and
     * came back to it once caught up. */
    assert_true(batches >= (N_EVENTS + n_bad) / 16000.0);
    if (!(batches < (N_EVENTS + n_bad) / 1000.0))
        fail_msg("%.0f batches for %d messages: batches did not grow while behind", batches,
                 N_EVENTS + (int)n_bad);
    for (int64_t end = testenv_now_ms() + 5000; testenv_now_ms() < end; usleep(50000)) {
        assert_int_equal(http_get(r.metrics_port, "/metrics", body, sizeof(body)), 200);
        if (metric(body, "churnstream_batch_target_messages") == 1000)
            break;
    }
    if (metric(body, "churnstream_batch_target_messages") != 1000)
        fail_msg("batch target %g after catching up, want 1000",
                 metric(body, "churnstream_batch_target_messages"));
    assert_true(metric(body, "churnstream_batch_seconds_count") == batches);
    /* Two round trips per batch: WATCH+HMGET, then MULTI..EXEC. */
    assert_true(metric(body, "churnstream_redis_round_trips_total") == 2 * batches);
    assert_true(metric(body, "churnstream_handler_healthy") == 1);
    assert_true(metric(body, "churnstream_batches_stale_total") == 0);
    assert_true(metric(body, "churnstream_assigned_partitions") == N_PARTITIONS);
    for (int p = 0; p < N_PARTITIONS; p++) {
        char series[64];
        snprintf(series, sizeof(series), "churnstream_consumer_lag{partition=\"%d\"}", p);
        for (int64_t end = testenv_now_ms() + 5000; testenv_now_ms() < end; usleep(100000)) {
            assert_int_equal(http_get(r.metrics_port, "/metrics", body, sizeof(body)), 200);
            if (strstr(body, series) && metric(body, series) == 0)
                break;
        }
        if (metric(body, series) != 0)
            fail_msg("%s = %g after catching up", series, metric(body, series));
    }
    assert_true(metric(body, "churnstream_alerts_total{arm=\"treatment\",bucket=\"high\"}") == 0);

    int64_t stop_ms = stop_run(pid, &r);
    check_counts(in, r.redis_port, r.prefix);
    check_dlq(in, r.dlq);
    assert_true(log_contains(&r, "handler: event counts (diagnostic; no models, no alerts)"));
    print_message("run: %d events + %zu bad in %" PRId64 " ms from process start (%.0f events/s "
                  "including group join), %.0f batches, SIGTERM to exit %" PRId64 " ms\n",
                  N_EVENTS, n_bad, took_ms, N_EVENTS * 1000.0 / (double)took_ms, batches, stop_ms);
    free(in);
}

static void test_run_sigkill_restarts_exact(void **state)
{
    (void)state;
    brokers = testenv_get("CS_KAFKA_BROKERS");
    bad_t bad[16];
    size_t n_bad = make_bad_table(bad);
    input_t *in = setup_input("crash", bad, n_bad);
    produce_range(in, 0, N_EVENTS);
    run_t r;
    /* Small batches: many commits, so a kill lands between or inside transactions. */
    setup_run(&r, testenv_get_port("CS_REDIS_PORT"), 50, "crash");
    int64_t total = 0;
    for (int p = 0; p < N_PARTITIONS; p++)
        total += in->end_offsets[p];
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    srand(seed);
    print_message("crash test: seed %u\n", seed);
    int64_t last = 0;
    for (int k = 0; k < 3; k++) {
        /* A random target in the part of the log not yet processed. */
        int64_t target = last + 1 + (int64_t)((double)rand() / RAND_MAX * 0.3 * (double)total);
        pid_t pid = spawn_run(&r, in->topic);
        int64_t end = testenv_now_ms() + CATCH_UP_MS, now_total = 0;
        while (testenv_now_ms() < end &&
               (now_total = stored_total(r.redis_port, r.prefix)) < target)
            usleep(2000);
        usleep((useconds_t)(rand() % 3000));
        kill_and_reap(pid);
        now_total = stored_total(r.redis_port, r.prefix);
        print_message("crash test: SIGKILL %d at %" PRId64 " of %" PRId64 " offsets committed\n",
                      k + 1, now_total, total);
        assert_true(now_total >= target);
        assert_true(now_total < total); /* the kill landed mid-run */
        last = now_total;
    }
    pid_t pid = spawn_run(&r, in->topic);
    wait_caught_up(in, &r, pid, CATCH_UP_MS);
    /* The restart resumed exactly at the stored offsets: no batch had to be dropped as
     * already committed (the handler's guard would hide a wrong seek otherwise). */
    static char body[1 << 16];
    assert_int_equal(http_get(r.metrics_port, "/metrics", body, sizeof(body)), 200);
    assert_true(metric(body, "churnstream_batches_stale_total") == 0);
    assert_true(metric(body, "churnstream_events_in_total") > 0);
    stop_run(pid, &r);
    check_counts(in, r.redis_port, r.prefix);
    free(in);
}

/* tests/services/redis.sh CMD DIR [EXTRA]. */
static void redis_script(const char *cmd, const char *dir, const char *extra)
{
    char line[1200];
    snprintf(line, sizeof(line), "bash \"%s/tests/services/redis.sh\" %s \"%s\" %s >&2",
             testenv_get("CS_ROOT"), cmd, dir, extra);
    if (system(line) != 0)
        fail_msg("%s failed", line);
}

static char outage_dir[512];

/* The private Redis must not outlive a failed test. */
static int outage_teardown(void **state)
{
    kill_leftovers(state);
    if (outage_dir[0]) {
        char line[1200];
        snprintf(line, sizeof(line), "bash \"%s/tests/services/redis.sh\" stop \"%s\" >&2",
                 getenv("CS_ROOT") ? getenv("CS_ROOT") : ".", outage_dir);
        if (system(line) != 0)
            print_error("could not stop the redis in %s\n", outage_dir);
    }
    return 0;
}

static int wait_health(int port, int want, char *body, size_t size, int64_t timeout_ms)
{
    int status = -1;
    for (int64_t end = testenv_now_ms() + timeout_ms; testenv_now_ms() < end; usleep(100000))
        if ((status = http_get(port, "/healthz", body, size)) == want)
            break;
    return status;
}

static void test_run_redis_outage(void **state)
{
    (void)state;
    brokers = testenv_get("CS_KAFKA_BROKERS");
    /* A Redis of its own with AOF: a clean stop loses nothing, and no other test sees it. */
    snprintf(outage_dir, sizeof(outage_dir), "%s/redis-outage-%d", testenv_get("CS_TMP"),
             (int)getpid());
    redis_script("start", outage_dir, "--aof");
    char port_file[600];
    snprintf(port_file, sizeof(port_file), "%s/port", outage_dir);
    FILE *f = fopen(port_file, "r");
    assert_non_null(f);
    int port = 0;
    assert_int_equal(fscanf(f, "%d", &port), 1);
    fclose(f);

    bad_t bad[16];
    size_t n_bad = make_bad_table(bad);
    input_t *in = setup_input("outage", bad, n_bad);
    produce_range(in, 0, N_EVENTS / 2);
    run_t r;
    setup_run(&r, port, 200, "outage");
    pid_t pid = spawn_run(&r, in->topic);
    wait_caught_up(in, &r, pid, CATCH_UP_MS);
    static char body[1 << 16];
    assert_int_equal(wait_health(r.metrics_port, 200, body, sizeof(body), 5000), 200);

    /* Redis goes away; the second half arrives meanwhile. */
    redis_script("stop", outage_dir, "");
    produce_range(in, N_EVENTS / 2, N_EVENTS);
    assert_int_equal(wait_health(r.metrics_port, 503, body, sizeof(body), 20000), 503);
    assert_non_null(strstr(body, "handler"));
    assert_true(log_contains(&r, "handler failing"));
    usleep(1500000); /* a few retries with backoff */
    assert_int_equal(http_get(r.metrics_port, "/metrics", body, sizeof(body)), 200);
    assert_true(metric(body, "churnstream_batch_failures_total") >= 1);
    assert_true(metric(body, "churnstream_handler_healthy") == 0);
    assert_true(metric(body, "churnstream_events_in_total") < N_EVENTS);

    redis_script("restart", outage_dir, "");
    wait_caught_up(in, &r, pid, CATCH_UP_MS);
    assert_int_equal(wait_health(r.metrics_port, 200, body, sizeof(body), 5000), 200);
    assert_true(log_contains(&r, "handler recovered"));
    assert_int_equal(http_get(r.metrics_port, "/metrics", body, sizeof(body)), 200);
    assert_true(metric(body, "churnstream_events_in_total") == N_EVENTS);
    stop_run(pid, &r);
    check_counts(in, port, r.prefix);
    check_dlq(in, r.dlq);
    free(in);
}

/* Two instances in one group with the cooperative-sticky protocol: B joins while A runs
 * (incremental revoke/assign), then A leaves and B takes its partitions over. Every event is
 * counted once and every bad message reaches the DLQ once. */
static void test_run_two_instances_cooperative(void **state)
{
    (void)state;
    brokers = testenv_get("CS_KAFKA_BROKERS");
    bad_t bad[16];
    size_t n_bad = make_bad_table(bad);
    input_t *in = setup_input("coop", bad, n_bad);
    run_t a, b;
    setup_run(&a, testenv_get_port("CS_REDIS_PORT"), 100, "coop");
    snprintf(a.extra, sizeof(a.extra), "--kafka.partition.assignment.strategy=cooperative-sticky");
    b = a;
    b.metrics_port = free_port();
    snprintf(b.log, sizeof(b.log), "%s/%s-b.log", testenv_get("CS_TMP"), a.group);

    produce_range(in, 0, N_EVENTS / 3);
    pid_t pa = spawn_run(&a, in->topic);
    wait_caught_up(in, &a, pa, CATCH_UP_MS);
    pid_t pb = spawn_run(&b, in->topic);
    produce_range(in, N_EVENTS / 3, 2 * N_EVENTS / 3);
    wait_caught_up(in, &a, pa, CATCH_UP_MS);
    static char body[1 << 16];
    /* Both members hold partitions once the incremental rebalance settles. */
    double na = 0, nb = 0;
    for (int64_t end = testenv_now_ms() + 30000; testenv_now_ms() < end; usleep(200000)) {
        assert_int_equal(http_get(a.metrics_port, "/metrics", body, sizeof(body)), 200);
        na = metric(body, "churnstream_assigned_partitions");
        assert_int_equal(http_get(b.metrics_port, "/metrics", body, sizeof(body)), 200);
        nb = metric(body, "churnstream_assigned_partitions");
        if (na > 0 && nb > 0 && na + nb == N_PARTITIONS)
            break;
    }
    if (!(na > 0 && nb > 0 && na + nb == N_PARTITIONS))
        fail_msg("assignment did not split: A %g, B %g partitions", na, nb);
    assert_true(log_contains(&a, "revoked"));

    stop_run(pa, &a);
    produce_range(in, 2 * N_EVENTS / 3, N_EVENTS);
    wait_caught_up(in, &b, pb, CATCH_UP_MS);
    assert_int_equal(http_get(b.metrics_port, "/metrics", body, sizeof(body)), 200);
    assert_true(metric(body, "churnstream_assigned_partitions") == N_PARTITIONS);
    stop_run(pb, &b);
    check_counts(in, a.redis_port, a.prefix);
    check_dlq(in, a.dlq);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_run_exact_counts_dlq_metrics, kill_leftovers),
        cmocka_unit_test_teardown(test_run_sigkill_restarts_exact, kill_leftovers),
        cmocka_unit_test_teardown(test_run_redis_outage, outage_teardown),
        cmocka_unit_test_teardown(test_run_two_instances_cooperative, kill_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
