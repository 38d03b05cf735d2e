/* The latest-score hash P score:<id> of the Redis store against the real redis-server of a
 * test run (tests/run-all.sh): written by st_redis_commit in the batch's MULTI/EXEC (fields
 * exactly as store_redis.h lays them out, a later commit overwriting them), with the record's
 * expiry (PX state.ttl, PERSIST with state.ttl = 0), read back with the record in one
 * transaction by st_redis_read_user (binary-safe ids, absent user, absent hash), the model
 * stamp, and deleted by forget. Every test works under its own prefix and deletes it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "config.h"
#include "feat.h"
#include "store_redis.h"
#include "testenv.h"
#include "user.h"

#define BASE_MS 1704067200000LL /* 2024-01-01 */
#define DAY_MS  86400000LL

typedef struct fx_s {
    redisContext *admin;
    char prefix[128];
    cfg_t *cfg;
    st_redis_t *st;
} fx_t;

static redisReply *admin_key(fx_t *fx, const char *cmd, const char *mid, const char *id,
                             size_t id_len)
{
    char key[512];
    size_t n = (size_t)snprintf(key, sizeof(key), "%s%s", fx->prefix, mid);
    memcpy(key + n, id, id_len);
    const char *argv[2] = {cmd, key};
    size_t lens[2] = {strlen(cmd), n + id_len};
    redisReply *r = redisCommandArgv(fx->admin, 2, argv, lens);
    if (!r)
        fail_msg("admin %s: %s", cmd, fx->admin->errstr);
    return r;
}

static long long admin_int(fx_t *fx, const char *cmd, const char *mid, const char *id)
{
    redisReply *r = admin_key(fx, cmd, mid, id, strlen(id));
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static void cfg_put(cfg_t *cfg, const char *key, const char *value)
{
    char err[512];
    if (cfg_set(cfg, key, value, "test", err, sizeof(err)) != 0)
        fail_msg("cfg_set %s=%s: %s", key, value, err);
}

static void open_store(fx_t *fx)
{
    char err[512];
    st_redis_destroy(fx->st);
    if (!(fx->st = st_redis_new(fx->cfg, err, sizeof(err))))
        fail_msg("st_redis_new: %s", err);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    struct timeval tv = {.tv_sec = 5};
    fx->admin = redisConnectWithTimeout(testenv_get("CS_REDIS_HOST"),
                                        testenv_get_port("CS_REDIS_PORT"), tv);
    if (!fx->admin || fx->admin->err)
        fail_msg("redis connect: %s", fx->admin ? fx->admin->errstr : "out of memory");
    char name[100], port[16];
    testenv_unique_name("sh", name, sizeof(name));
    snprintf(fx->prefix, sizeof(fx->prefix), "%s:", name);
    snprintf(port, sizeof(port), "%d", testenv_get_port("CS_REDIS_PORT"));
    assert_non_null(fx->cfg = cfg_new());
    cfg_put(fx->cfg, "redis.host", testenv_get("CS_REDIS_HOST"));
    cfg_put(fx->cfg, "redis.port", port);
    cfg_put(fx->cfg, "state.prefix", fx->prefix);
    cfg_put(fx->cfg, "state.ttl", "2d");
    open_store(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    st_redis_destroy(fx->st);
    char pattern[160], cursor[32] = "0";
    snprintf(pattern, sizeof(pattern), "%s*", fx->prefix);
    do { /* SCAN, never KEYS: the test server is shared */
        redisReply *r = redisCommand(fx->admin, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
            break;
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++)
            freeReplyObject(redisCommand(fx->admin, "DEL %b", r->element[1]->element[i]->str,
                                         (size_t)r->element[1]->element[i]->len));
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    redisFree(fx->admin);
    cfg_destroy(fx->cfg);
    free(fx);
    return 0;
}

/* One batch: uid's record (touched through the engine callbacks) and its scores. */
static void commit_user(fx_t *fx, const char *uid, size_t len, const st_score_t *scores, size_t n)
{
    char err[512];
    store_ops_t ops;
    assert_int_equal(st_redis_engine_ops(fx->st, 0, &ops), 0);
    user_rec_t *rec = ops.get(ops.opaque, uid, len);
    ev_event_t ev;
    memset(&ev, 0, sizeof(ev));
    memcpy(ev.user_id, uid, len);
    ev.user_id_len = (uint16_t)len;
    ev.type = EV_PURCHASE;
    ev.amount = 12.5;
    ev.event_time_ms = BASE_MS;
    feat_apply(&rec->feat, &ev);
    ops.touched(ops.opaque, uid, rec);
    st_commit_t c = {.n_scores = n, .scores = scores};
    if (st_redis_commit(fx->st, &c, err, sizeof(err)) != 0)
        fail_msg("commit: %s", err);
}

static const char *field(const st_fields_t *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0)
            return f->values[i];
    return NULL;
}

static void test_hash_layout_ttl_and_read(void **state)
{
    fx_t *fx = *state;
    st_score_t s = {.user_id = "u1",
                    .score = 0.8765432,
                    .bucket = "high",
                    .segment_id = 3,
                    .segment_name = "slipping regulars",
                    .kind = "lapsed",
                    .trigger = "tick",
                    .time_ms = BASE_MS + DAY_MS,
                    .alert_id = "0123456789abcdef0123456789abcdef"};
    commit_user(fx, "u1", 2, &s, 1);
    static const char *const names[] = {"score", "bucket",  "segment", "segment_name",
                                        "kind",  "trigger", "time_ms", "alert_id"};
    static const char *const want[] = {"0.876543",
                                       "high",
                                       "3",
                                       "slipping regulars",
                                       "lapsed",
                                       "tick",
                                       "1704153600000",
                                       "0123456789abcdef0123456789abcdef"};
    redisReply *r = admin_key(fx, "HGETALL", "score:", "u1", 2);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 16);
    for (size_t i = 0; i < 8; i++) {
        assert_string_equal(r->element[2 * i]->str, names[i]);
        assert_string_equal(r->element[2 * i + 1]->str, want[i]);
    }
    freeReplyObject(r);
    /* The record's expiry, set by the same commit. */
    long long ph = admin_int(fx, "PTTL", "score:", "u1"), pu = admin_int(fx, "PTTL", "u:", "u1");
    assert_true(ph > 2 * DAY_MS - 60000 && ph <= 2 * DAY_MS);
    assert_true(pu >= ph - 1000 && pu <= 2 * DAY_MS);

    /* Read back: record and hash in one transaction. */
    char err[512];
    user_rec_t rec;
    st_fields_t f;
    int found;
    assert_int_equal(st_redis_read_user(fx->st, "u1", 2, &rec, &found, &f, err, sizeof(err)), 0);
    assert_int_equal(found, 1);
    assert_int_equal(f.n, 8);
    assert_string_equal(field(&f, "segment_name"), "slipping regulars");
    assert_int_equal(feat_last_purchase_ms(&rec.feat), BASE_MS);
    st_fields_free(&f);
    /* A later scoring overwrites every field; an empty alert id is stored as "". */
    s.score = 0.1;
    s.bucket = "low";
    s.alert_id = "";
    s.trigger = "event";
    commit_user(fx, "u1", 2, &s, 1);
    assert_int_equal(st_redis_read_user(fx->st, "u1", 2, &rec, &found, &f, err, sizeof(err)), 0);
    assert_string_equal(field(&f, "score"), "0.100000");
    assert_string_equal(field(&f, "bucket"), "low");
    assert_string_equal(field(&f, "alert_id"), "");
    assert_string_equal(field(&f, "trigger"), "event");
    st_fields_free(&f);
    /* Unknown user: not found, no fields. A record without a hash: found, no fields. */
    assert_int_equal(st_redis_read_user(fx->st, "nobody", 6, &rec, &found, &f, err, sizeof(err)),
                     0);
    assert_int_equal(found, 0);
    assert_int_equal(f.n, 0);
    commit_user(fx, "plain", 5, NULL, 0);
    assert_int_equal(st_redis_read_user(fx->st, "plain", 5, &rec, &found, &f, err, sizeof(err)), 0);
    assert_int_equal(found, 1);
    assert_int_equal(f.n, 0);
    st_fields_free(&f);
}

static void test_no_ttl_persists(void **state)
{
    fx_t *fx = *state;
    st_score_t s = {.user_id = "p",
                    .bucket = "low",
                    .segment_name = "new",
                    .kind = "at_risk",
                    .trigger = "tick",
                    .alert_id = ""};
    commit_user(fx, "p", 1, &s, 1);
    assert_true(admin_int(fx, "PTTL", "score:", "p") > 0);
    /* state.ttl = 0 now: records are written without expiry, and so is the hash. */
    cfg_put(fx->cfg, "state.ttl", "0");
    open_store(fx);
    commit_user(fx, "p", 1, &s, 1);
    assert_int_equal(admin_int(fx, "PTTL", "score:", "p"), -1);
    assert_int_equal(admin_int(fx, "PTTL", "u:", "p"), -1);
}

static void test_binary_id_and_forget(void **state)
{
    fx_t *fx = *state;
    const char uid[] = "a b:\xe2\x82\xac\"x";
    size_t len = sizeof(uid) - 1;
    st_score_t s = {.user_id = uid,
                    .bucket = "medium",
                    .segment_id = -1,
                    .segment_name = "unsegmented",
                    .kind = "at_risk",
                    .trigger = "event",
                    .alert_id = ""};
    commit_user(fx, uid, len, &s, 1);
    redisReply *r = admin_key(fx, "EXISTS", "score:", uid, len);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    char err[512];
    st_forget_t res;
    assert_int_equal(st_redis_forget(fx->st, uid, &res, err, sizeof(err)), 1);
    assert_int_equal(res.record, 1);
    assert_int_equal(res.score, 1);
    r = admin_key(fx, "EXISTS", "score:", uid, len);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    /* Nothing left: forget says so. */
    assert_int_equal(st_redis_forget(fx->st, uid, &res, err, sizeof(err)), 0);
    assert_int_equal(res.score, 0);
}

static void test_model_stamp(void **state)
{
    fx_t *fx = *state;
    char err[512];
    uint8_t stamp[ST_MODEL_STAMP_BYTES];
    size_t len = 99;
    assert_int_equal(st_redis_model_stamp(fx->st, stamp, &len, err, sizeof(err)), 0);
    assert_int_equal(len, 0); /* no model */
    uint8_t model[100];
    for (size_t i = 0; i < sizeof(model); i++)
        model[i] = (uint8_t)i;
    st_commit_t c = {.model = model, .model_len = sizeof(model)};
    assert_int_equal(st_redis_commit(fx->st, &c, err, sizeof(err)), 0);
    assert_int_equal(st_redis_model_stamp(fx->st, stamp, &len, err, sizeof(err)), 0);
    assert_int_equal(len, ST_MODEL_STAMP_BYTES);
    assert_memory_equal(stamp, model, ST_MODEL_STAMP_BYTES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hash_layout_ttl_and_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_ttl_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_id_and_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_stamp, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
