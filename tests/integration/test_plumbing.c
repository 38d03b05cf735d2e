/* Plumbing check against the real services of a test run (tests/run-all.sh): a Kafka topic
 * made with the admin API, 10,000 keyed messages through an idempotent producer and a
 * consumer group with synchronous commits, and a pipelined hiredis round trip of 10,000
 * keys. If these fail, every higher-level integration test would fail for the same reason. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>

#include "testenv.h"

#define N_MESSAGES   10000
#define N_PARTITIONS 4
/* Keys repeat (10 messages per key) so that per-key partitioning is actually exercised. */
#define N_KEYS         1000
#define N_REDIS_KEYS   10000
#define NAME_SIZE      128
#define CONSUME_MAX_MS 60000
#define IDLE_CHECK_MS  20000

/* ---- Kafka helpers ---- */

/* What the delivery-report callback saw: totals and where each key landed. */
typedef struct {
    int delivered;
    int failed;
    rd_kafka_resp_err_t first_err;
    int per_partition[N_PARTITIONS];
    int key_partition[N_KEYS]; /* -1 until the key's first delivery */
    int key_partition_conflicts;
} delivery_t;

static void format_key(int i, char *buf, size_t size)
{
    snprintf(buf, size, "user-%04d", i % N_KEYS);
}

static void format_payload(int i, char *buf, size_t size)
{
    snprintf(buf, size, "event-%05d", i);
}

/* Parses "event-NNNNN" exactly; returns the index or -1. */
static int parse_payload(const void *data, size_t len)
{
    char buf[16];
    int idx = 0;

    if (len != 11 || memcmp(data, "event-", 6) != 0)
        return -1;
    memcpy(buf, data, len);
    buf[len] = '\0';
    for (size_t i = 6; i < len; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        idx = idx * 10 + (buf[i] - '0');
    }
    return idx < N_MESSAGES ? idx : -1;
}

/* Parses "user-NNNN" exactly; returns the key number or -1. */
static int parse_key(const void *data, size_t len)
{
    const char *text = data;
    int idx = 0;

    if (data == NULL || len != 9 || memcmp(text, "user-", 5) != 0)
        return -1;
    for (size_t i = 5; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        idx = idx * 10 + (text[i] - '0');
    }
    return idx < N_KEYS ? idx : -1;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    delivery_t *d = opaque;
    int key;

    (void)rk;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (d->failed++ == 0)
            d->first_err = msg->err;
        return;
    }
    d->delivered++;
    if (msg->partition >= 0 && msg->partition < N_PARTITIONS)
        d->per_partition[msg->partition]++;
    key = parse_key(msg->key, msg->key_len);
    if (key < 0)
        return;
    if (d->key_partition[key] == -1)
        d->key_partition[key] = msg->partition;
    else if (d->key_partition[key] != msg->partition)
        d->key_partition_conflicts++;
}

static void conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        fail_msg("rd_kafka_conf_set(%s=%s): %s", name, value, errstr);
}

/* The broker list, read once by the test before any client state exists, so that a missing
 * variable fails the test before anything needs freeing. */
static const char *brokers;

/* Takes ownership of conf. */
static rd_kafka_t *client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char errstr[512];
    rd_kafka_t *rk;

    conf_set(conf, "bootstrap.servers", brokers);
    conf_set(conf, "client.id", "test_plumbing");
    rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (rk == NULL)
        fail_msg("rd_kafka_new: %s", errstr);
    return rk;
}

/* Creates `topic` with N_PARTITIONS partitions through the admin API and waits until the
 * broker's metadata shows all of them, so producers never race the creation. */
static void create_topic(const char *topic)
{
    char errstr[512];
    rd_kafka_t *rk = client_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new());
    rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
    rd_kafka_NewTopic_t *new_topic;
    rd_kafka_AdminOptions_t *options;
    rd_kafka_event_t *event;
    const rd_kafka_CreateTopics_result_t *result;
    const rd_kafka_topic_result_t **topics;
    size_t topic_cnt = 0;
    int64_t deadline_ms;
    int partitions = -1;

    new_topic = rd_kafka_NewTopic_new(topic, N_PARTITIONS, 1, errstr, sizeof(errstr));
    assert_non_null(new_topic);
    options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    assert_int_equal(
        rd_kafka_AdminOptions_set_operation_timeout(options, 10000, errstr, sizeof(errstr)),
        RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_CreateTopics(rk, &new_topic, 1, options, queue);

    event = rd_kafka_queue_poll(queue, 20000);
    assert_non_null(event);
    assert_int_equal(rd_kafka_event_type(event), RD_KAFKA_EVENT_CREATETOPICS_RESULT);
    if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR)
        fail_msg("CreateTopics: %s", rd_kafka_event_error_string(event));
    result = rd_kafka_event_CreateTopics_result(event);
    topics = rd_kafka_CreateTopics_result_topics(result, &topic_cnt);
    assert_int_equal(topic_cnt, 1);
    assert_string_equal(rd_kafka_topic_result_name(topics[0]), topic);
    if (rd_kafka_topic_result_error(topics[0]) != RD_KAFKA_RESP_ERR_NO_ERROR)
        fail_msg("CreateTopics(%s): %s", topic, rd_kafka_topic_result_error_string(topics[0]));
    rd_kafka_event_destroy(event);

    deadline_ms = testenv_now_ms() + 20000;
    while (testenv_now_ms() < deadline_ms) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        const struct rd_kafka_metadata *md = NULL;

        if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
                partitions = md->topics[0].partition_cnt;
            rd_kafka_metadata_destroy(md);
        }
        rd_kafka_topic_destroy(rkt);
        if (partitions == N_PARTITIONS)
            break;
    }
    assert_int_equal(partitions, N_PARTITIONS);

    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_NewTopic_destroy(new_topic);
    rd_kafka_queue_destroy(queue);
    rd_kafka_destroy(rk);
}

/* Produces N_MESSAGES keyed messages and waits for every delivery report. */
static void produce_all(const char *topic, delivery_t *d)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    char key[16], payload[16];

    conf_set(conf, "enable.idempotence", "true");
    conf_set(conf, "linger.ms", "5");
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, d);
    rk = client_new(RD_KAFKA_PRODUCER, conf);

    for (int i = 0; i < N_MESSAGES; i++) {
        rd_kafka_resp_err_t err;

        format_key(i, key, sizeof(key));
        format_payload(i, payload, sizeof(payload));
        for (;;) {
            err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                                    RD_KAFKA_V_VALUE(payload, strlen(payload)),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                break;
            rd_kafka_poll(rk, 100); /* serve delivery reports to make room */
        }
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            fail_msg("produce #%d: %s", i, rd_kafka_err2str(err));
        rd_kafka_poll(rk, 0);
    }
    assert_int_equal(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_outq_len(rk), 0);
    rd_kafka_destroy(rk);
}

static rd_kafka_t *consumer_new(const char *topic, const char *group, int partition_eof)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *subscription;
    rd_kafka_t *rk;

    conf_set(conf, "group.id", group);
    conf_set(conf, "auto.offset.reset", "earliest");
    conf_set(conf, "enable.auto.commit", "false");
    conf_set(conf, "enable.partition.eof", partition_eof ? "true" : "false");
    conf_set(conf, "session.timeout.ms", "6000");
    rk = client_new(RD_KAFKA_CONSUMER, conf);
    rd_kafka_poll_set_consumer(rk);

    subscription = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subscription, topic, RD_KAFKA_PARTITION_UA);
    assert_int_equal(rd_kafka_subscribe(rk, subscription), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(subscription);
    return rk;
}

/* The group's committed offset of every partition, read back from the broker. */
static void committed_offsets(rd_kafka_t *rk, const char *topic, int64_t out[N_PARTITIONS])
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(N_PARTITIONS);

    for (int p = 0; p < N_PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p);
    assert_int_equal(rd_kafka_committed(rk, parts, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int i = 0; i < parts->cnt; i++) {
        assert_int_equal(parts->elems[i].err, RD_KAFKA_RESP_ERR_NO_ERROR);
        out[parts->elems[i].partition] = parts->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(parts);
}

/* ---- Kafka test ---- */

static void test_kafka_produce_consume_commit(void **state)
{
    char topic[NAME_SIZE], group[NAME_SIZE];
    delivery_t d;
    static unsigned char seen[N_MESSAGES];
    int64_t last_offset[N_PARTITIONS], committed[N_PARTITIONS];
    int distinct = 0, duplicates = 0, malformed = 0, misplaced = 0, out_of_order = 0;
    int64_t deadline_ms;
    rd_kafka_t *rk;

    (void)state;
    brokers = testenv_get("CS_KAFKA_BROKERS");
    testenv_unique_name("cs-plumbing", topic, sizeof(topic));
    testenv_unique_name("cs-plumbing-group", group, sizeof(group));
    memset(&d, 0, sizeof(d));
    for (int k = 0; k < N_KEYS; k++)
        d.key_partition[k] = -1;
    memset(seen, 0, sizeof(seen));

    create_topic(topic);
    produce_all(topic, &d);
    if (d.failed != 0)
        fail_msg("%d delivery failures, first: %s", d.failed, rd_kafka_err2str(d.first_err));
    assert_int_equal(d.delivered, N_MESSAGES);
    assert_int_equal(d.key_partition_conflicts, 0);
    for (int p = 0; p < N_PARTITIONS; p++)
        assert_true(d.per_partition[p] > 0); /* 1000 keys hash onto all 4 partitions */

    /* First member of a new group: reads everything from the start, commits at the end. */
    for (int p = 0; p < N_PARTITIONS; p++)
        last_offset[p] = -1;
    rk = consumer_new(topic, group, 0);
    deadline_ms = testenv_now_ms() + CONSUME_MAX_MS;
    while (distinct < N_MESSAGES && testenv_now_ms() < deadline_ms) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 200);
        int idx, key;

        if (msg == NULL)
            continue;
        if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            /* Transient client errors are logged by librdkafka and retried; a message count
             * short of N_MESSAGES at the deadline is what fails the test. */
            print_message("consumer: %s\n", rd_kafka_message_errstr(msg));
            rd_kafka_message_destroy(msg);
            continue;
        }
        idx = parse_payload(msg->payload, msg->len);
        key = parse_key(msg->key, msg->key_len);
        if (idx < 0 || key != idx % N_KEYS) {
            malformed++;
        } else if (seen[idx]++) {
            duplicates++;
        } else {
            distinct++;
            if (msg->partition != d.key_partition[key])
                misplaced++;
        }
        if (msg->partition >= 0 && msg->partition < N_PARTITIONS) {
            if (msg->offset <= last_offset[msg->partition])
                out_of_order++;
            last_offset[msg->partition] = msg->offset;
        }
        rd_kafka_message_destroy(msg);
    }
    assert_int_equal(distinct, N_MESSAGES);
    assert_int_equal(duplicates, 0);
    assert_int_equal(malformed, 0);
    assert_int_equal(misplaced, 0);
    assert_int_equal(out_of_order, 0);

    assert_int_equal(rd_kafka_commit(rk, NULL, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
    /* The committed offset of each partition is the next one to read: its message count. */
    committed_offsets(rk, topic, committed);
    for (int p = 0; p < N_PARTITIONS; p++)
        assert_int_equal(committed[p], d.per_partition[p]);
    assert_int_equal(rd_kafka_consumer_close(rk), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);

    /* Second member of the same group: starts from the committed offsets, so it must reach
     * the end of all partitions (one EOF each) without a single message. Without the commit
     * auto.offset.reset=earliest would hand it all 10,000 again. */
    {
        int eof_seen[N_PARTITIONS] = {0};
        int eofs = 0, received = 0;

        rk = consumer_new(topic, group, 1);
        deadline_ms = testenv_now_ms() + IDLE_CHECK_MS;
        while (eofs < N_PARTITIONS && testenv_now_ms() < deadline_ms) {
            rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 200);

            if (msg == NULL)
                continue;
            if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (msg->partition >= 0 && msg->partition < N_PARTITIONS &&
                    !eof_seen[msg->partition]++)
                    eofs++;
            } else if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                received++;
            } else {
                print_message("second consumer: %s\n", rd_kafka_message_errstr(msg));
            }
            rd_kafka_message_destroy(msg);
        }
        /* Linger a little after the last EOF: a late fetch must not bring messages either. */
        deadline_ms = testenv_now_ms() + 1000;
        while (testenv_now_ms() < deadline_ms) {
            rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);

            if (msg == NULL)
                continue;
            if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
                received++;
            rd_kafka_message_destroy(msg);
        }
        assert_int_equal(eofs, N_PARTITIONS);
        assert_int_equal(received, 0);
        assert_int_equal(rd_kafka_consumer_close(rk), RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_destroy(rk);
    }
}

/* ---- Redis test ---- */

/* Value i: length i % 64 (so some are empty), bytes that include NUL, CR and LF. */
static size_t make_value(int i, unsigned char *buf)
{
    size_t len = (size_t)(i % 64);

    for (size_t j = 0; j < len; j++)
        buf[j] = (unsigned char)((i * 31 + (int)j * 7) & 0xff);
    return len;
}

static redisContext *redis_connect(void)
{
    struct timeval timeout = {.tv_sec = 5, .tv_usec = 0};
    const char *host = testenv_get("CS_REDIS_HOST");
    int port = testenv_get_port("CS_REDIS_PORT");
    redisContext *c = redisConnectWithTimeout(host, port, timeout);

    if (c == NULL || c->err)
        fail_msg("redis connect %s:%d: %s", host, port, c ? c->errstr : "out of memory");
    assert_int_equal(redisSetTimeout(c, timeout), REDIS_OK);
    return c;
}

static redisReply *next_reply(redisContext *c)
{
    void *reply = NULL;

    if (redisGetReply(c, &reply) != REDIS_OK || reply == NULL)
        fail_msg("redisGetReply: %s", c->errstr);
    return reply;
}

static void test_redis_pipeline_roundtrip(void **state)
{
    char prefix[NAME_SIZE], key[NAME_SIZE + 16];
    unsigned char value[64];
    redisContext *c = redis_connect();
    redisReply *reply;
    long long deleted = 0;

    (void)state;
    testenv_unique_name("cs:test:plumbing", prefix, sizeof(prefix));

    for (int i = 0; i < N_REDIS_KEYS; i++) {
        size_t len = make_value(i, value);

        snprintf(key, sizeof(key), "%s:%d", prefix, i);
        assert_int_equal(redisAppendCommand(c, "SET %s %b", key, value, len), REDIS_OK);
    }
    for (int i = 0; i < N_REDIS_KEYS; i++) {
        reply = next_reply(c);
        assert_int_equal(reply->type, REDIS_REPLY_STATUS);
        assert_string_equal(reply->str, "OK");
        freeReplyObject(reply);
    }

    /* Reads in reverse order, plus one key that was never written. */
    for (int i = N_REDIS_KEYS - 1; i >= 0; i--) {
        snprintf(key, sizeof(key), "%s:%d", prefix, i);
        assert_int_equal(redisAppendCommand(c, "GET %s", key), REDIS_OK);
    }
    snprintf(key, sizeof(key), "%s:missing", prefix);
    assert_int_equal(redisAppendCommand(c, "GET %s", key), REDIS_OK);
    for (int i = N_REDIS_KEYS - 1; i >= 0; i--) {
        size_t len = make_value(i, value);

        reply = next_reply(c);
        assert_int_equal(reply->type, REDIS_REPLY_STRING);
        assert_int_equal(reply->len, len);
        assert_memory_equal(reply->str, value, len);
        freeReplyObject(reply);
    }
    reply = next_reply(c);
    assert_int_equal(reply->type, REDIS_REPLY_NIL);
    freeReplyObject(reply);

    /* Clean up, and prove each key existed exactly once. */
    for (int i = 0; i < N_REDIS_KEYS; i++) {
        snprintf(key, sizeof(key), "%s:%d", prefix, i);
        assert_int_equal(redisAppendCommand(c, "DEL %s", key), REDIS_OK);
    }
    for (int i = 0; i < N_REDIS_KEYS; i++) {
        reply = next_reply(c);
        assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
        deleted += reply->integer;
        freeReplyObject(reply);
    }
    assert_int_equal(deleted, N_REDIS_KEYS);
    redisFree(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kafka_produce_consume_commit),
        cmocka_unit_test(test_redis_pipeline_roundtrip),
    };

    return cmocka_run_group_tests_name("plumbing", tests, NULL, NULL);
}
