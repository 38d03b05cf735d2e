/* The Redis user store against the real redis-server of a test run (tests/run-all.sh):
 * byte-identical round trips, one pipelined round for 10,000 users, MULTI/EXEC atomicity,
 * range boundaries and order, TTL, forget, binary ids, ACL, SELECT, unreachable and silent
 * servers, corrupt records, offsets/progress/model/outbox, and a Redis restart. Every test
 * works under its own key prefix and deletes it afterwards. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "config.h"
#include "engine.h"
#include "feat.h"
#include "store_redis.h"
#include "testenv.h"
#include "user.h"

#define BASE_MS 1704067200000LL /* 2024-01-01 */
#define HOUR_MS 3600000LL

typedef struct fx_s {
    redisContext *admin; /* the test's own connection, for checks behind the store's back */
    char prefix[128];
    cfg_t *cfg;
    st_redis_t *st;
} fx_t;

/* ---- admin connection helpers (argv with lengths: binary ids) ---- */

static redisReply *admin_argv(redisContext *c, int argc, const char **argv, const size_t *lens)
{
    redisReply *r = redisCommandArgv(c, argc, argv, lens);
    if (!r)
        fail_msg("admin command %s: %s", argv[0], c->errstr);
    return r;
}

/* A command of NUL-terminated words, "|"-separated (none of the words here contain "|"). */
static redisReply *admin(redisContext *c, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    const char *argv[64];
    size_t lens[64];
    int argc = 0;
    for (char *save = NULL, *tok = strtok_r(line, "|", &save); tok && argc < 64;
         tok = strtok_r(NULL, "|", &save)) {
        argv[argc] = tok;
        lens[argc++] = strlen(tok);
    }
    return admin_argv(c, argc, argv, lens);
}

static long long admin_int(redisContext *c, const char *fmt, const char *a, const char *b)
{
    redisReply *r = admin(c, fmt, a, b);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* A key made of the prefix and raw bytes (binary-safe EXISTS / PTTL / GET). */
static redisReply *admin_key_cmd(redisContext *c, const char *cmd, const char *prefix,
                                 const char *mid, const char *id)
{
    char key[1024];
    size_t n = (size_t)snprintf(key, sizeof(key), "%s%s%s", prefix, mid, id);
    const char *argv[2] = {cmd, key};
    size_t lens[2] = {strlen(cmd), n};
    return admin_argv(c, 2, argv, lens);
}

static long long admin_key_int(redisContext *c, const char *cmd, const char *prefix,
                               const char *mid, const char *id)
{
    redisReply *r = admin_key_cmd(c, cmd, prefix, mid, id);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static long long commandstat_calls(redisContext *c, const char *cmd)
{
    redisReply *r = admin(c, "INFO|commandstats");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    char needle[64];
    snprintf(needle, sizeof(needle), "cmdstat_%s:calls=", cmd);
    const char *p = strstr(r->str, needle);
    long long v = p ? strtoll(p + strlen(needle), NULL, 10) : 0;
    freeReplyObject(r);
    return v;
}

/* Deletes every key under prefix in the current db (SCAN, never KEYS). */
static long long drop_prefix(redisContext *c, const char *prefix)
{
    char cursor[32] = "0";
    long long dropped = 0;
    do {
        redisReply *r = admin(c, "SCAN|%s|MATCH|%s*|COUNT|1000", cursor, prefix);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            const char *argv[2] = {"DEL", keys->element[i]->str};
            size_t lens[2] = {3, keys->element[i]->len};
            redisReply *d = admin_argv(c, 2, argv, lens);
            dropped += d->integer;
            freeReplyObject(d);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return dropped;
}

static redisContext *admin_connect(void)
{
    struct timeval tv = {.tv_sec = 5};
    const char *host = testenv_get("CS_REDIS_HOST");
    int port = testenv_get_port("CS_REDIS_PORT");
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err)
        fail_msg("redis connect %s:%d: %s", host, port, c ? c->errstr : "out of memory");
    redisSetTimeout(c, tv);
    return c;
}

/* ---- fixture ---- */

static void cfg_put(cfg_t *cfg, const char *key, const char *value)
{
    char err[512];
    if (cfg_set(cfg, key, value, "test", err, sizeof(err)) != 0)
        fail_msg("cfg_set %s=%s: %s", key, value, err);
}

static void cfg_put_int(cfg_t *cfg, const char *key, long long v)
{
    char b[32];
    snprintf(b, sizeof(b), "%lld", v);
    cfg_put(cfg, key, b);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->admin = admin_connect();
    char name[100];
    testenv_unique_name("t", name, sizeof(name));
    snprintf(fx->prefix, sizeof(fx->prefix), "%s:", name);
    fx->cfg = cfg_new();
    assert_non_null(fx->cfg);
    cfg_put(fx->cfg, "redis.host", testenv_get("CS_REDIS_HOST"));
    cfg_put_int(fx->cfg, "redis.port", testenv_get_port("CS_REDIS_PORT"));
    cfg_put(fx->cfg, "state.prefix", fx->prefix);
    cfg_put(fx->cfg, "state.ttl", "0");
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    st_redis_destroy(fx->st);
    if (fx->admin) {
        drop_prefix(fx->admin, fx->prefix);
        redisFree(fx->admin);
    }
    cfg_destroy(fx->cfg);
    free(fx);
    return 0;
}

static st_redis_t *open_store(fx_t *fx)
{
    char err[512];
    st_redis_t *st = st_redis_new(fx->cfg, err, sizeof(err));
    if (!st)
        fail_msg("st_redis_new: %s", err);
    return st;
}

/* ---- records ---- */

/* A record that differs per i in every part: activity, purchase, counters, ticks. */
static void make_rec(user_rec_t *r, int i)
{
    user_rec_init(r);
    ev_event_t ev;
    memset(&ev, 0, sizeof(ev));
    snprintf(ev.user_id, sizeof(ev.user_id), "u%d", i);
    ev.user_id_len = (uint16_t)strlen(ev.user_id);
    ev.type = EV_SESSION_START;
    ev.event_time_ms = BASE_MS + i * HOUR_MS;
    feat_apply(&r->feat, &ev);
    ev.type = EV_PURCHASE;
    ev.amount = 10.5 + i;
    ev.event_time_ms += 3 * 86400000LL + i;
    feat_apply(&r->feat, &ev);
    feat_set_cooldown_until_ms(&r->feat, BASE_MS + 7 * i);
    r->scored_tick_ms = BASE_MS + 86400000LL * (i % 5);
    r->resolved_tick_ms = i % 2 ? INT64_MIN : BASE_MS;
    r->pending_positive_ms = i % 3 ? INT64_MIN : BASE_MS - i;
}

static size_t rec_bytes(const user_rec_t *r, uint8_t *buf)
{
    size_t n = user_rec_encode(r, buf, USER_REC_MAX_BYTES);
    assert_true(n > 0);
    return n;
}

/* A batch that writes recs[i] for ids[i] through the engine callbacks, not
 * committed yet. */
static void stage_users(st_redis_t *st, int32_t partition, const char *const *ids,
                        const user_rec_t *recs, size_t n)
{
    char err[512];
    store_ops_t ops;
    assert_int_equal(st_redis_engine_ops(st, partition, &ops), 0);
    if (st_redis_prefetch(st, partition, ids, n, err, sizeof(err)) != 0)
        fail_msg("prefetch: %s", err);
    for (size_t i = 0; i < n; i++) {
        user_rec_t *rec = ops.get(ops.opaque, ids[i], strlen(ids[i]));
        *rec = recs[i];
        ops.touched(ops.opaque, ids[i], rec);
    }
}

/* One batch that writes recs[i] for ids[i] through the engine callbacks, then commits c. */
static void put_users(st_redis_t *st, int32_t partition, const char *const *ids,
                      const user_rec_t *recs, size_t n, const st_commit_t *c)
{
    char err[512];
    stage_users(st, partition, ids, recs, n);
    if (st_redis_commit(st, c, err, sizeof(err)) != 0)
        fail_msg("commit: %s", err);
}

/* The record as a new batch sees it (prefetch + get), encoded; the batch is dropped. */
static size_t batch_bytes(st_redis_t *st, const char *id, uint8_t *buf)
{
    char err[512];
    store_ops_t ops;
    assert_int_equal(st_redis_engine_ops(st, 0, &ops), 0);
    const char *ids[1] = {id};
    if (st_redis_prefetch(st, 0, ids, 1, err, sizeof(err)) != 0)
        fail_msg("prefetch: %s", err);
    size_t n = rec_bytes(ops.get(ops.opaque, id, strlen(id)), buf);
    st_redis_discard(st);
    return n;
}

/* ---- tests ---- */

static void test_roundtrip_byte_identical(void **state)
{
    fx_t *fx = *state;
    fx->st = open_store(fx);
    enum { N = 40 };
    char names[N][16];
    const char *ids[N];
    user_rec_t recs[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "user-%02d", i);
        ids[i] = names[i];
        make_rec(&recs[i], i);
    }
    put_users(fx->st, 0, ids, recs, N, NULL);
    for (int i = 0; i < N; i++) {
        uint8_t want[USER_REC_MAX_BYTES], got[USER_REC_MAX_BYTES];
        size_t wn = rec_bytes(&recs[i], want);
        size_t gn = batch_bytes(fx->st, ids[i], got);
        assert_int_equal(gn, wn);
        assert_memory_equal(got, want, wn);
        /* st_redis_get_user reads the same bytes outside a batch. */
        user_rec_t r;
        int found = 0;
        char err[512];
        assert_int_equal(st_redis_get_user(fx->st, ids[i], &r, &found, err, sizeof(err)), 0);
        assert_int_equal(found, 1);
        assert_int_equal(rec_bytes(&r, got), wn);
        assert_memory_equal(got, want, wn);
        /* the seen index holds the last activity */
        redisReply *z = admin(fx->admin, "ZSCORE|%sseen:0|%s", fx->prefix, ids[i]);
        assert_int_equal(z->type, REDIS_REPLY_STRING);
        assert_int_equal(strtoll(z->str, NULL, 10), feat_last_activity_ms(&recs[i].feat));
        freeReplyObject(z);
    }
    /* An absent user reads as user_rec_init, and a clean batch writes nothing. */
    uint8_t want[USER_REC_MAX_BYTES], got[USER_REC_MAX_BYTES];
    user_rec_t empty;
    user_rec_init(&empty);
    size_t wn = rec_bytes(&empty, want);
    assert_int_equal(batch_bytes(fx->st, "nobody", got), wn);
    assert_memory_equal(got, want, wn);
    assert_int_equal(admin_key_int(fx->admin, "EXISTS", fx->prefix, "u:", "nobody"), 0);
    st_redis_counters_t k;
    st_redis_counters(fx->st, &k);
    assert_int_equal(k.users_created, N);
    assert_int_equal(k.commits, 1);
}

/* Users "a" and "b" (make_rec 1 and 2) and a commit of offset off on partition 0; c points
 * into the struct (set off before each commit). */
typedef struct {
    const char *ids[2];
    user_rec_t recs[2];
    int32_t part;
    int64_t off;
    st_commit_t c;
} two_users_t;

static void two_users(two_users_t *u, int64_t off)
{
    u->ids[0] = "a";
    u->ids[1] = "b";
    make_rec(&u->recs[0], 1);
    make_rec(&u->recs[1], 2);
    u->part = 0;
    u->off = off;
    u->c = (st_commit_t){.n_offsets = 1, .offset_partitions = &u->part, .next_offsets = &u->off};
}

static void test_prefetch_10000_users_one_round(void **state)
{
    fx_t *fx = *state;
    fx->st = open_store(fx);
    enum { N = 10000, CHUNK = 512 };
    char(*names)[16] = malloc(N * sizeof(*names));
    const char **ids = malloc(N * sizeof(*ids));
    user_rec_t *recs = malloc(N * sizeof(*recs));
    assert_true(names && ids && recs);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "u%05d", i);
        ids[i] = names[i];
        make_rec(&recs[i], i);
    }
    /* Half of them stored, half absent: both kinds count. */
    put_users(fx->st, 0, ids, recs, N / 2, NULL);

    char err[512];
    st_redis_counters_t before, after;
    st_redis_counters(fx->st, &before);
    long long mget_before = commandstat_calls(fx->admin, "mget");
    assert_int_equal(st_redis_prefetch(fx->st, 0, ids, N, err, sizeof(err)), 0);
    long long mget_after = commandstat_calls(fx->admin, "mget");
    st_redis_counters(fx->st, &after);
    assert_int_equal(mget_after - mget_before, (N + CHUNK - 1) / CHUNK);
    assert_int_equal(after.round_trips - before.round_trips, 1);
    assert_int_equal(after.commands - before.commands, (N + CHUNK - 1) / CHUNK);
    /* Everything is now cached: a second prefetch and the gets cost nothing. */
    assert_int_equal(st_redis_prefetch(fx->st, 0, ids, N, err, sizeof(err)), 0);
    store_ops_t ops;
    assert_int_equal(st_redis_engine_ops(fx->st, 0, &ops), 0);
    for (int i = 0; i < N; i += 997) {
        uint8_t want[USER_REC_MAX_BYTES], got[USER_REC_MAX_BYTES];
        user_rec_t empty;
        user_rec_init(&empty);
        size_t wn = rec_bytes(i < N / 2 ? &recs[i] : &empty, want);
        assert_int_equal(rec_bytes(ops.get(ops.opaque, ids[i], strlen(ids[i])), got), wn);
        assert_memory_equal(got, want, wn);
    }
    st_redis_counters(fx->st, &after);
    assert_int_equal(after.round_trips - before.round_trips, 1);
    st_redis_discard(fx->st);
    free(names);
    free(ids);
    free(recs);
}

/* EXEC refused (a queued command the ACL forbids): nothing of the batch is applied. */
static void test_commit_refused_applies_nothing(void **state)
{
    fx_t *fx = *state;
    char user[100];
    testenv_unique_name("nohset", user, sizeof(user));
    redisReply *r = admin(fx->admin, "ACL|SETUSER|%s|on|>pw1|~*|&*|+@all|-hset", user);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    cfg_put(fx->cfg, "redis.user", user);
    cfg_put(fx->cfg, "redis.password", "pw1");
    fx->st = open_store(fx);

    two_users_t u;
    two_users(&u, 42);
    char err[512];
    stage_users(fx->st, 0, u.ids, u.recs, 2);
    assert_int_equal(st_redis_commit(fx->st, &u.c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nothing applied"));
    assert_non_null(strstr(err, "EXECABORT"));
    assert_non_null(strstr(err, st_redis_address(fx->st)));
    assert_int_equal(admin_key_int(fx->admin, "EXISTS", fx->prefix, "u:", "a"), 0);
    assert_int_equal(admin_key_int(fx->admin, "EXISTS", fx->prefix, "u:", "b"), 0);
    assert_int_equal(admin_key_int(fx->admin, "EXISTS", fx->prefix, "seen:", "0"), 0);
    assert_int_equal(admin_key_int(fx->admin, "EXISTS", fx->prefix, "offsets", ""), 0);
    st_redis_discard(fx->st);
    st_redis_destroy(fx->st);
    fx->st = NULL;
    r = admin(fx->admin, "ACL|DELUSER|%s", user);
    freeReplyObject(r);
}

/* The store's connection killed between prefetch and commit: the commit fails naming the
 * address, nothing is written; reconnect, redo the batch, and it lands. */
static void test_commit_after_connection_killed(void **state)
{
    fx_t *fx = *state;
    fx->st = open_store(fx);
    const char *ids[2] = {"k1", "k2"};
    user_rec_t recs[2];
    make_rec(&recs[0], 3);
    make_rec(&recs[1], 4);
    char err[512];
    store_ops_t ops;
    assert_int_equal(st_redis_engine_ops(fx->st, 0, &ops), 0);
    assert_int_equal(st_redis_prefetch(fx->st, 0, ids, 2, err, sizeof(err)), 0);
    for (int i = 0; i < 2; i++) {
        user_rec_t *rec = ops.get(ops.opaque, ids[i], 2);
        *rec = recs[i];
        ops.touched(ops.opaque, ids[i], rec);
    }
    long long killed = admin_int(fx->admin, "CLIENT|KILL|USER|default|SKIPME|yes", "", "");
    assert_true(killed >= 1);
    assert_int_equal(st_redis_commit(fx->st, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, st_redis_address(fx->st)));
    assert_int_equal(admin_key_int(fx->admin, "EXISTS", fx->prefix, "u:", "k1"), 0);
    assert_int_equal(admin_key_int(fx->admin, "EXISTS", fx->prefix, "seen:", "0"), 0);
    st_redis_discard(fx->st);
    assert_int_equal(st_redis_reconnect(fx->st, err, sizeof(err)), 0);

    /* Killed while the engine runs: get of an uncached user hands out a scratch record and
     * latches the error, which the commit returns. */
    assert_true(admin_int(fx->admin, "CLIENT|KILL|USER|default|SKIPME|yes", "", "") >= 1);
    user_rec_t *scratch = ops.get(ops.opaque, "k3", 2);
    assert_non_null(scratch);
    ops.touched(ops.opaque, "k3", scratch);
    assert_int_equal(st_redis_commit(fx->st, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, st_redis_address(fx->st)));
    assert_int_equal(admin_key_int(fx->admin, "EXISTS", fx->prefix, "u:", "k3"), 0);
    st_redis_discard(fx->st);
    assert_int_equal(st_redis_reconnect(fx->st, err, sizeof(err)), 0);
    put_users(fx->st, 0, ids, recs, 2, NULL);
    uint8_t want[USER_REC_MAX_BYTES], got[USER_REC_MAX_BYTES];
    size_t wn = rec_bytes(&recs[1], want);
    assert_int_equal(batch_bytes(fx->st, "k2", got), wn);
    assert_memory_equal(got, want, wn);
}

typedef struct visits_s {
    int n;
    char ids[16][64];
} visits_t;

static void collect(void *ctx, const char *uid, user_rec_t *rec)
{
    visits_t *v = ctx;
    (void)rec;
    assert_true(v->n < 16);
    snprintf(v->ids[v->n++], sizeof(v->ids[0]), "%s", uid);
}

/* A record whose only (and last) activity is at t_ms. */
static void rec_active_at(user_rec_t *r, int64_t t_ms)
{
    user_rec_init(r);
    ev_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = EV_PAGE_VIEW;
    ev.event_time_ms = t_ms;
    feat_apply(&r->feat, &ev);
}

static void test_range_boundaries_and_order(void **state)
{
    fx_t *fx = *state;
    fx->st = open_store(fx);
    const int64_t lo = BASE_MS, hi = BASE_MS + 10 * HOUR_MS;
    /* Stored: before lo, at lo, two at hi-1 (a tie: byte order), at hi, and one whose
     * activity this batch moves out of the range; one in another partition. */
    const char *ids[6] = {"before", "at-lo", "tie-b", "tie-a", "at-hi", "moves-out"};
    int64_t t[6] = {lo - 1, lo, hi - 1, hi - 1, hi, lo + HOUR_MS};
    user_rec_t recs[6];
    for (int i = 0; i < 6; i++)
        rec_active_at(&recs[i], t[i]);
    put_users(fx->st, 0, ids, recs, 6, NULL);
    const char *other[1] = {"other-partition"};
    user_rec_t orec;
    rec_active_at(&orec, lo + 2 * HOUR_MS);
    put_users(fx->st, 5, other, &orec, 1, NULL);

    char err[512];
    store_ops_t ops;
    assert_int_equal(st_redis_engine_ops(fx->st, 0, &ops), 0);
    /* This batch: "moves-out" becomes active past hi, "new" becomes active inside;
     * "tie-b" is loaded before "tie-a", so only the id order can put "tie-a" first. */
    const char *batch[3] = {"tie-b", "moves-out", "new"};
    assert_int_equal(st_redis_prefetch(fx->st, 0, batch, 3, err, sizeof(err)), 0);
    user_rec_t *m = ops.get(ops.opaque, "moves-out", 9);
    ev_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = EV_SEARCH;
    ev.event_time_ms = hi + 5;
    feat_apply(&m->feat, &ev);
    ops.touched(ops.opaque, "moves-out", m);
    user_rec_t *n = ops.get(ops.opaque, "new", 3);
    ev.event_time_ms = lo + 3 * HOUR_MS;
    feat_apply(&n->feat, &ev);
    ops.touched(ops.opaque, "new", n);

    visits_t v = {0};
    ops.range(ops.opaque, lo, hi, collect, &v);
    assert_int_equal(v.n, 4);
    assert_string_equal(v.ids[0], "at-lo");
    assert_string_equal(v.ids[1], "new");
    assert_string_equal(v.ids[2], "tie-a");
    assert_string_equal(v.ids[3], "tie-b");
    /* The committed index follows the batch. */
    assert_int_equal(st_redis_commit(fx->st, NULL, err, sizeof(err)), 0);
    redisReply *z = admin(fx->admin, "ZSCORE|%sseen:0|moves-out", fx->prefix);
    assert_int_equal(strtoll(z->str, NULL, 10), hi + 5);
    freeReplyObject(z);
    visits_t v2 = {0};
    ops.range(ops.opaque, lo, hi, collect, &v2);
    assert_int_equal(v2.n, 4);
    assert_string_equal(v2.ids[1], "new");
    st_redis_discard(fx->st);
    /* Partition 5's index holds only its user. */
    store_ops_t ops5;
    assert_int_equal(st_redis_engine_ops(fx->st, 5, &ops5), 0);
    visits_t v5 = {0};
    ops5.range(ops5.opaque, lo, hi, collect, &v5);
    assert_int_equal(v5.n, 1);
    assert_string_equal(v5.ids[0], "other-partition");
    st_redis_discard(fx->st);
}

static void test_expired_member_skipped_and_removed(void **state)
{
    fx_t *fx = *state;
    fx->st = open_store(fx);
    const char *ids[2] = {"stays", "expires"};
    user_rec_t recs[2];
    rec_active_at(&recs[0], BASE_MS + 1);
    rec_active_at(&recs[1], BASE_MS + 2);
    put_users(fx->st, 0, ids, recs, 2, NULL);
    /* What a TTL expiry does: the record goes, the index entry stays. */
    assert_int_equal(admin_key_int(fx->admin, "DEL", fx->prefix, "u:", "expires"), 1);
    char err[512];
    store_ops_t ops;
    assert_int_equal(st_redis_engine_ops(fx->st, 0, &ops), 0);
    visits_t v = {0};
    ops.range(ops.opaque, BASE_MS, BASE_MS + HOUR_MS, collect, &v);
    assert_int_equal(v.n, 1);
    assert_string_equal(v.ids[0], "stays");
    assert_int_equal(st_redis_commit(fx->st, NULL, err, sizeof(err)), 0);
    redisReply *z = admin(fx->admin, "ZSCORE|%sseen:0|expires", fx->prefix);
    assert_int_equal(z->type, REDIS_REPLY_NIL);
    freeReplyObject(z);
    z = admin(fx->admin, "ZSCORE|%sseen:0|stays", fx->prefix);
    assert_int_equal(z->type, REDIS_REPLY_STRING);
    freeReplyObject(z);
}

static void test_ttl(void **state)
{
    fx_t *fx = *state;
    const char *ids[1] = {"ttl-user"};
    user_rec_t rec;
    make_rec(&rec, 5);
    /* state.ttl = 0 (the fixture): no expiry. */
    fx->st = open_store(fx);
    put_users(fx->st, 0, ids, &rec, 1, NULL);
    assert_int_equal(admin_key_int(fx->admin, "PTTL", fx->prefix, "u:", "ttl-user"), -1);
    st_redis_destroy(fx->st);
    /* state.ttl = 2d: PX on every write. */
    cfg_put(fx->cfg, "state.ttl", "2d");
    fx->st = open_store(fx);
    put_users(fx->st, 0, ids, &rec, 1, NULL);
    long long pttl = admin_key_int(fx->admin, "PTTL", fx->prefix, "u:", "ttl-user");
    assert_true(pttl > 2 * 86400000LL - 60000 && pttl <= 2 * 86400000LL);
}

static void test_forget_everywhere(void **state)
{
    fx_t *fx = *state;
    fx->st = open_store(fx);
    const char *ids[2] = {"gone", "kept"};
    user_rec_t recs[2];
    make_rec(&recs[0], 6);
    make_rec(&recs[1], 7);
    const char *alert_ids[3] = {"al-1", "al-2", "al-3"};
    const char *alert_users[3] = {"gone", "kept", "gone"};
    const uint8_t v1[] = {1, 2, 0, 3}, v2[] = {9}, v3[] = {0};
    const uint8_t *vals[3] = {v1, v2, v3};
    size_t lens[3] = {sizeof(v1), sizeof(v2), sizeof(v3)};
    st_commit_t c = {.n_outbox = 3,
                     .outbox_ids = alert_ids,
                     .outbox_user_ids = alert_users,
                     .outbox_values = vals,
                     .outbox_lens = lens};
    put_users(fx->st, 0, ids, recs, 2, &c);
    /* The same user in a second partition's index (as after a repartition). */
    put_users(fx->st, 3, ids, recs, 1, NULL);
    /* Second put in partition 3 did not move the activity, so add the entry by hand. */
    redisReply *r = admin(fx->admin, "ZADD|%sseen:3|1|gone", fx->prefix);
    freeReplyObject(r);

    char err[512];
    st_forget_t res;
    assert_int_equal(st_redis_forget(fx->st, "gone", &res, err, sizeof(err)), 1);
    assert_int_equal(res.record, 1);
    assert_int_equal(res.seen_entries, 2);
    assert_int_equal(res.outbox_alerts, 2);
    assert_int_equal(admin_key_int(fx->admin, "EXISTS", fx->prefix, "u:", "gone"), 0);
    r = admin(fx->admin, "ZSCORE|%sseen:0|gone", fx->prefix);
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    /* The other user and their alert are untouched. */
    assert_int_equal(admin_key_int(fx->admin, "EXISTS", fx->prefix, "u:", "kept"), 1);
    st_outbox_t ob;
    assert_int_equal(st_redis_outbox_load(fx->st, &ob, err, sizeof(err)), 0);
    assert_int_equal(ob.n, 1);
    assert_string_equal(ob.ids[0], "al-2");
    assert_int_equal(ob.lens[0], 1);
    assert_int_equal(ob.values[0][0], 9);
    st_redis_outbox_free(&ob);
    /* Nothing left: 0, and says so. */
    assert_int_equal(st_redis_forget(fx->st, "gone", &res, err, sizeof(err)), 0);
    assert_int_equal(res.record + (int)res.seen_entries + (int)res.outbox_alerts, 0);
}

/* The daemon claims alerts just before it hands them to Kafka; forget and the claim agree on
 * which alerts were on their way (issue 11, item 4). */
static void test_outbox_claim_and_forget(void **state)
{
    fx_t *fx = *state;
    fx->st = open_store(fx);
    const char *ids[1] = {"who"};
    user_rec_t recs[1];
    make_rec(&recs[0], 6);
    const char *alert_ids[4] = {"c-1", "c-2", "c-3", "c-4"};
    const char *alert_users[4] = {"who", "who", "who", "other"};
    const uint8_t v[] = {7};
    const uint8_t *vals[4] = {v, v, v, v};
    size_t lens[4] = {1, 1, 1, 1};
    st_commit_t c = {.n_outbox = 4,
                     .outbox_ids = alert_ids,
                     .outbox_user_ids = alert_users,
                     .outbox_values = vals,
                     .outbox_lens = lens};
    put_users(fx->st, 0, ids, recs, 1, &c);
    char err[512];
    /* c-1 claimed (handed to Kafka); c-2, c-3 still waiting; "nope" never existed. */
    const char *claim1[2] = {"c-1", "nope"};
    uint8_t keep[3] = {9, 9, 9};
    assert_int_equal(st_redis_outbox_claim(fx->st, claim1, 2, keep, err, sizeof(err)), 0);
    assert_int_equal(keep[0], 1);
    assert_int_equal(keep[1], 0);
    st_forget_t res;
    assert_int_equal(st_redis_forget(fx->st, "who", &res, err, sizeof(err)), 1);
    assert_int_equal(res.outbox_alerts, 2);    /* c-2, c-3: never sent */
    assert_int_equal(res.outbox_in_flight, 1); /* c-1: already on its way */
    /* The daemon's later claims: the forgotten alerts are refused, the other user's kept. */
    const char *claim2[3] = {"c-2", "c-3", "c-4"};
    assert_int_equal(st_redis_outbox_claim(fx->st, claim2, 3, keep, err, sizeof(err)), 0);
    assert_int_equal(keep[0], 0);
    assert_int_equal(keep[1], 0);
    assert_int_equal(keep[2], 1);
    /* Delivery trims the outbox and the claim; a new daemon clears stale claims. */
    const char *done[1] = {"c-4"};
    assert_int_equal(st_redis_outbox_remove(fx->st, done, 1, err, sizeof(err)), 0);
    redisReply *r = admin(fx->admin, "SCARD|%soutbox:sending", fx->prefix);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    assert_int_equal(st_redis_outbox_unclaim_all(fx->st, err, sizeof(err)), 0);
}

/* A commit in two steps (st_redis_commit_send / _finish), as the daemon overlaps Redis's work
 * with collecting the next batch: polled without blocking until applied; read through by
 * another command in between (whose own answer stays its own); a failed one reports as the
 * one-step commit does; a second send before the outcome is refused. */
static void test_commit_in_flight(void **state)
{
    fx_t *fx = *state;
    fx->st = open_store(fx);
    char err[512];
    two_users_t u;
    two_users(&u, 7);

    /* 1. Sent, then polled until Redis has answered. */
    stage_users(fx->st, 0, u.ids, u.recs, 2);
    assert_int_equal(st_redis_commit_send(fx->st, &u.c, err, sizeof(err)), 0);
    assert_int_equal(st_redis_commit_send(fx->st, &u.c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "still in flight"));
    int rc, polls = 0;
    while ((rc = st_redis_commit_finish(fx->st, 0, err, sizeof(err))) == 1) {
        polls++;
        usleep(200);
        assert_true(polls < 50000);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(st_redis_commit_finish(fx->st, 0, err, sizeof(err)), 0); /* nothing left */
    assert_int_equal(admin_key_int(fx->admin, "EXISTS", fx->prefix, "u:", "a"), 1);
    int64_t got = -1;
    int found = 0;
    assert_int_equal(st_redis_load_offset(fx->st, 0, &got, &found, err, sizeof(err)), 0);
    assert_true(found);
    assert_int_equal(got, 7);

    /* 2. Another command before the outcome is collected: it reads the commit's replies
     * first and gets its own answer (the offset the commit wrote). */
    u.off = 9;
    stage_users(fx->st, 0, u.ids, u.recs, 2);
    assert_int_equal(st_redis_commit_send(fx->st, &u.c, err, sizeof(err)), 0);
    assert_int_equal(st_redis_load_offset(fx->st, 0, &got, &found, err, sizeof(err)), 0);
    assert_int_equal(got, 9);
    assert_int_equal(st_redis_commit_finish(fx->st, 0, err, sizeof(err)), 0);

    /* 3. A commit Redis refuses at EXEC: reported by _finish, after another command read it
     * through; nothing applied. The record key made a string of the wrong type for ZADD. */
    redisReply *r = admin(fx->admin, "SET|%sseen:0|not-a-zset", fx->prefix);
    freeReplyObject(r);
    u.off = 11;
    const char *ids2[1] = {"c"};
    user_rec_t rec2[1];
    make_rec(&rec2[0], 3);
    stage_users(fx->st, 0, ids2, rec2, 1);
    assert_int_equal(st_redis_commit_send(fx->st, &u.c, err, sizeof(err)), 0);
    assert_int_equal(st_redis_load_offset(fx->st, 0, &got, &found, err, sizeof(err)), 0);
    assert_int_equal(st_redis_commit_finish(fx->st, 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "commit applied partially"));
    assert_non_null(strstr(err, "WRONGTYPE"));
    st_redis_discard(fx->st);
}

/* The daemon trims the alerts one poll of its producer delivered in one call (HDEL and SREM
 * pipelined): several ids, one unknown, both structures emptied, the stream left in step. */
static void test_outbox_remove_several(void **state)
{
    fx_t *fx = *state;
    fx->st = open_store(fx);
    const char *ids[1] = {"who"};
    user_rec_t recs[1];
    make_rec(&recs[0], 6);
    const char *alert_ids[3] = {"t-1", "t-2", "t-3"};
    const char *alert_users[3] = {"who", "who", "who"};
    const uint8_t v[] = {7};
    const uint8_t *vals[3] = {v, v, v};
    size_t lens[3] = {1, 1, 1};
    st_commit_t c = {.n_outbox = 3,
                     .outbox_ids = alert_ids,
                     .outbox_user_ids = alert_users,
                     .outbox_values = vals,
                     .outbox_lens = lens};
    put_users(fx->st, 0, ids, recs, 1, &c);
    char err[512];
    uint8_t keep[3];
    assert_int_equal(st_redis_outbox_claim(fx->st, alert_ids, 3, keep, err, sizeof(err)), 0);
    const char *done[3] = {"t-1", "never-there", "t-3"};
    assert_int_equal(st_redis_outbox_remove(fx->st, done, 3, err, sizeof(err)), 0);
    redisReply *r = admin(fx->admin, "HLEN|%soutbox", fx->prefix);
    assert_int_equal(r->integer, 1); /* t-2 */
    freeReplyObject(r);
    r = admin(fx->admin, "SCARD|%soutbox:sending", fx->prefix);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    /* Both replies were read: the next command gets its own answer. */
    st_outbox_t ob = {0};
    assert_int_equal(st_redis_outbox_load(fx->st, &ob, err, sizeof(err)), 0);
    assert_int_equal(ob.n, 1);
    assert_string_equal(ob.ids[0], "t-2");
    st_redis_outbox_free(&ob);
}

static void test_binary_user_ids(void **state)
{
    fx_t *fx = *state;
    fx->st = open_store(fx);
    const char *ids[7] = {"with space",
                          "co:lo:ns",
                          "\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80",
                          "quote\"back\\slash",
                          "new\nline\r",
                          "%s%n%d",
                          "*?[glob]"};
    user_rec_t recs[7];
    for (int i = 0; i < 7; i++)
        rec_active_at(&recs[i], BASE_MS + i);
    put_users(fx->st, 0, ids, recs, 7, NULL);
    char err[512];
    for (int i = 0; i < 7; i++) {
        assert_int_equal(admin_key_int(fx->admin, "EXISTS", fx->prefix, "u:", ids[i]), 1);
        user_rec_t r;
        int found;
        assert_int_equal(st_redis_get_user(fx->st, ids[i], &r, &found, err, sizeof(err)), 0);
        assert_int_equal(found, 1);
        assert_int_equal(feat_last_activity_ms(&r.feat), BASE_MS + i);
    }
    store_ops_t ops;
    assert_int_equal(st_redis_engine_ops(fx->st, 0, &ops), 0);
    visits_t v = {0};
    ops.range(ops.opaque, BASE_MS, BASE_MS + 7, collect, &v);
    assert_int_equal(v.n, 7);
    for (int i = 0; i < 7; i++)
        assert_string_equal(v.ids[i], ids[i]);
    st_redis_discard(fx->st);
    st_forget_t res;
    assert_int_equal(st_redis_forget(fx->st, "*?[glob]", &res, err, sizeof(err)), 1);
    assert_int_equal(res.seen_entries, 1);
    assert_int_equal(admin_key_int(fx->admin, "EXISTS", fx->prefix, "u:", "co:lo:ns"), 1);
}

static void test_acl_user_and_bad_passwords(void **state)
{
    fx_t *fx = *state;
    char user[100], err[512];
    testenv_unique_name("acl", user, sizeof(user));
    redisReply *r = admin(fx->admin, "ACL|SETUSER|%s|on|>s3cret|~%s*|&*|+@all", user, fx->prefix);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    cfg_put(fx->cfg, "redis.user", user);
    cfg_put(fx->cfg, "redis.password", "s3cret");
    fx->st = open_store(fx);
    const char *ids[1] = {"acl-user"};
    user_rec_t rec;
    make_rec(&rec, 8);
    put_users(fx->st, 0, ids, &rec, 1, NULL);
    assert_int_equal(admin_key_int(fx->admin, "EXISTS", fx->prefix, "u:", "acl-user"), 1);
    st_redis_destroy(fx->st);
    fx->st = NULL;

    cfg_put(fx->cfg, "redis.password", "wrong");
    assert_null(st_redis_new(fx->cfg, err, sizeof(err)));
    char want[400];
    snprintf(want, sizeof(want), "redis %s:%d: AUTH as user \"%s\" failed: WRONGPASS",
             testenv_get("CS_REDIS_HOST"), testenv_get_port("CS_REDIS_PORT"), user);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("got \"%s\", want it to start with \"%s\"", err, want);
    assert_null(strstr(err, "wrong")); /* the password never shows */

    /* A password for the default user, which has none here. */
    cfg_put(fx->cfg, "redis.user", "");
    cfg_put(fx->cfg, "redis.password", "pw");
    assert_null(st_redis_new(fx->cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "AUTH failed"));
    r = admin(fx->admin, "ACL|DELUSER|%s", user);
    freeReplyObject(r);
}

static void test_select_db(void **state)
{
    fx_t *fx = *state;
    cfg_put(fx->cfg, "redis.db", "3");
    fx->st = open_store(fx);
    const char *ids[1] = {"db3-user"};
    user_rec_t rec;
    make_rec(&rec, 9);
    put_users(fx->st, 0, ids, &rec, 1, NULL);
    assert_int_equal(admin_key_int(fx->admin, "EXISTS", fx->prefix, "u:", "db3-user"), 0);
    redisReply *r = admin(fx->admin, "SELECT|3");
    freeReplyObject(r);
    assert_int_equal(admin_key_int(fx->admin, "EXISTS", fx->prefix, "u:", "db3-user"), 1);
    drop_prefix(fx->admin, fx->prefix);
    r = admin(fx->admin, "SELECT|0");
    freeReplyObject(r);
    /* A db the server does not have. */
    st_redis_destroy(fx->st);
    fx->st = NULL;
    cfg_put(fx->cfg, "redis.db", "1000");
    char err[512];
    assert_null(st_redis_new(fx->cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "SELECT (redis.db) failed"));
}

/* A loopback port nobody listens on (bound, then closed). */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_unreachable_and_silent_servers(void **state)
{
    fx_t *fx = *state;
    char err[512], want[128];
    cfg_put(fx->cfg, "redis.host", "127.0.0.1");
    cfg_put(fx->cfg, "redis.connect_timeout", "500ms");
    cfg_put(fx->cfg, "redis.command_timeout", "300ms");

    int port = closed_port();
    cfg_put_int(fx->cfg, "redis.port", port);
    int64_t t0 = testenv_now_ms();
    assert_null(st_redis_new(fx->cfg, err, sizeof(err)));
    assert_true(testenv_now_ms() - t0 < 1000);
    snprintf(want, sizeof(want), "redis 127.0.0.1:%d: connection refused", port);
    assert_string_equal(err, want);

    /* A server that accepts the connection (the kernel does, from the backlog) but never
     * answers: the PING times out after the command timeout, no hang. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    cfg_put_int(fx->cfg, "redis.port", ntohs(a.sin_port));
    t0 = testenv_now_ms();
    assert_null(st_redis_new(fx->cfg, err, sizeof(err)));
    int64_t took = testenv_now_ms() - t0;
    close(fd);
    assert_true(took >= 250 && took < 2000);
    snprintf(want, sizeof(want), "redis 127.0.0.1:%d: ", ntohs(a.sin_port));
    assert_int_equal(strncmp(err, want, strlen(want)), 0);
    assert_non_null(strstr(err, "no reply within 300 ms"));
}

static void test_corrupt_record_names_the_key(void **state)
{
    fx_t *fx = *state;
    fx->st = open_store(fx);
    redisReply *r = admin(fx->admin, "SET|%su:bad one|garbage", fx->prefix);
    freeReplyObject(r);
    const char *ids[2] = {"fine", "bad one"};
    char err[512], want[256];
    assert_int_equal(st_redis_prefetch(fx->st, 0, ids, 2, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "key \"%su:bad one\"", fx->prefix);
    if (!strstr(err, want))
        fail_msg("\"%s\" does not name %s", err, want);
    /* Nothing was reset: the bad value is still there, and the cache unchanged. */
    r = admin(fx->admin, "GET|%su:bad one", fx->prefix);
    assert_string_equal(r->str, "garbage");
    freeReplyObject(r);
    user_rec_t rec;
    int found;
    assert_int_equal(st_redis_get_user(fx->st, "bad one", &rec, &found, err, sizeof(err)), -1);
    assert_non_null(strstr(err, want));
    /* The engine path latches it and the commit refuses. */
    store_ops_t ops;
    assert_int_equal(st_redis_engine_ops(fx->st, 0, &ops), 0);
    user_rec_t *x = ops.get(ops.opaque, "bad one", 7);
    ops.touched(ops.opaque, "bad one", x);
    assert_int_equal(st_redis_commit(fx->st, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, want));
    st_redis_discard(fx->st);
    r = admin(fx->admin, "GET|%su:bad one", fx->prefix);
    assert_string_equal(r->str, "garbage");
    freeReplyObject(r);
}

static void test_offsets_progress_model_outbox(void **state)
{
    fx_t *fx = *state;
    fx->st = open_store(fx);
    char err[512];
    int found;
    int64_t off;
    store_progress_t blob;
    eng_progress_t pr;
    assert_int_equal(st_redis_load_offset(fx->st, 0, &off, &found, err, sizeof(err)), 0);
    assert_int_equal(found, 0);
    assert_int_equal(st_redis_load_progress(fx->st, 0, &blob, &found, err, sizeof(err)), 0);
    assert_int_equal(found, 0);
    uint8_t *mb;
    size_t ml;
    assert_int_equal(st_redis_load_model(fx->st, &mb, &ml, err, sizeof(err)), 0);
    assert_null(mb);

    int32_t parts[2] = {0, 7};
    int64_t offs[2] = {12345, 9007199254740993LL}; /* 2^53 + 1: stored as text, exact */
    eng_progress_t progs[2] = {
        {ENG_NO_TIME, ENG_NO_TIME, ENG_NO_TIME, ENG_NO_TIME, 0, ENG_NO_TIME, ENG_NO_TIME},
        {BASE_MS, BASE_MS + 1, -5, INT64_MAX, 2, BASE_MS - 7, BASE_MS - 99}}; /* mid-sweep */
    store_progress_t blobs[2];
    for (int i = 0; i < 2; i++)
        eng_progress_pack(&progs[i], &blobs[i]);
    uint8_t model[300];
    for (size_t i = 0; i < sizeof(model); i++)
        model[i] = (uint8_t)(i * 37); /* NULs included */
    const char *alert_ids[2] = {"x:1", "y:2"};
    const char *alert_users[2] = {"some user", ""};
    const uint8_t a1[] = {0, 0, 1}, a2[] = {0xff};
    const uint8_t *avals[2] = {a1, a2};
    size_t alens[2] = {sizeof(a1), sizeof(a2)};
    st_commit_t c = {.n_offsets = 2,
                     .offset_partitions = parts,
                     .next_offsets = offs,
                     .n_progress = 2,
                     .progress_partitions = parts,
                     .progress = blobs,
                     .model = model,
                     .model_len = sizeof(model),
                     .n_outbox = 2,
                     .outbox_ids = alert_ids,
                     .outbox_user_ids = alert_users,
                     .outbox_values = avals,
                     .outbox_lens = alens};
    assert_int_equal(st_redis_commit(fx->st, &c, err, sizeof(err)), 0);

    for (int i = 0; i < 2; i++) {
        assert_int_equal(st_redis_load_offset(fx->st, parts[i], &off, &found, err, sizeof(err)), 0);
        assert_int_equal(found, 1);
        assert_int_equal(off, offs[i]);
        assert_int_equal(st_redis_load_progress(fx->st, parts[i], &blob, &found, err, sizeof(err)),
                         0);
        assert_int_equal(found, 1);
        assert_int_equal(eng_progress_unpack(&pr, &blob), 0);
        assert_memory_equal(&pr, &progs[i], sizeof(pr));
    }
    assert_int_equal(st_redis_load_model(fx->st, &mb, &ml, err, sizeof(err)), 0);
    assert_int_equal(ml, sizeof(model));
    assert_memory_equal(mb, model, ml);
    free(mb);
    st_outbox_t ob;
    assert_int_equal(st_redis_outbox_load(fx->st, &ob, err, sizeof(err)), 0);
    assert_int_equal(ob.n, 2);
    for (size_t i = 0; i < ob.n; i++) {
        int j = strcmp(ob.ids[i], "x:1") == 0 ? 0 : 1;
        assert_string_equal(ob.ids[i], alert_ids[j]);
        assert_int_equal(ob.lens[i], alens[j]);
        assert_memory_equal(ob.values[i], avals[j], alens[j]);
    }
    st_redis_outbox_free(&ob);
    const char *del[1] = {"x:1"};
    assert_int_equal(st_redis_outbox_remove(fx->st, del, 1, err, sizeof(err)), 0);
    assert_int_equal(st_redis_outbox_load(fx->st, &ob, err, sizeof(err)), 0);
    assert_int_equal(ob.n, 1);
    assert_string_equal(ob.ids[0], "y:2");
    st_redis_outbox_free(&ob);
    /* A model-less commit leaves the model alone. */
    int64_t off2 = 12346;
    st_commit_t c2 = {.n_offsets = 1, .offset_partitions = parts, .next_offsets = &off2};
    assert_int_equal(st_redis_commit(fx->st, &c2, err, sizeof(err)), 0);
    assert_int_equal(st_redis_load_model(fx->st, &mb, &ml, err, sizeof(err)), 0);
    assert_int_equal(ml, sizeof(model));
    free(mb);
    /* A corrupt offset is an error, not a zero. */
    redisReply *r = admin(fx->admin, "HSET|%soffsets|0|12x", fx->prefix);
    freeReplyObject(r);
    assert_int_equal(st_redis_load_offset(fx->st, 0, &off, &found, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "12x"));
}

/* Redis killed and restarted (tests/services/redis.sh): operations fail fast naming the
 * address; st_redis_reconnect brings the store back. Last: the restarted server is empty. */
static void test_redis_restart(void **state)
{
    fx_t *fx = *state;
    fx->st = open_store(fx);
    const char *dir = testenv_get("CS_REDIS_DIR"), *root = testenv_get("CS_ROOT");
    char cmd[2048], err[512];
    snprintf(cmd, sizeof(cmd), "bash '%s/tests/services/redis.sh' kill '%s' >/dev/null", root, dir);
    assert_int_equal(system(cmd), 0);
    redisFree(fx->admin);
    fx->admin = NULL;

    const char *ids[1] = {"after-restart"};
    int64_t t0 = testenv_now_ms();
    assert_int_equal(st_redis_prefetch(fx->st, 0, ids, 1, err, sizeof(err)), -1);
    assert_true(testenv_now_ms() - t0 < 6000);
    assert_non_null(strstr(err, st_redis_address(fx->st)));
    assert_int_equal(st_redis_reconnect(fx->st, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "connection refused"));

    snprintf(cmd, sizeof(cmd), "bash '%s/tests/services/redis.sh' restart '%s' >/dev/null", root,
             dir);
    assert_int_equal(system(cmd), 0);
    fx->admin = admin_connect();
    assert_int_equal(st_redis_reconnect(fx->st, err, sizeof(err)), 0);
    user_rec_t rec;
    make_rec(&rec, 11);
    put_users(fx->st, 0, ids, &rec, 1, NULL);
    assert_int_equal(admin_key_int(fx->admin, "EXISTS", fx->prefix, "u:", "after-restart"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_byte_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefetch_10000_users_one_round, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_refused_applies_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_after_connection_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_boundaries_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_member_skipped_and_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget_everywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_claim_and_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_remove_several, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_user_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acl_user_and_bad_passwords, setup, teardown),
        cmocka_unit_test_setup_teardown(test_select_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_and_silent_servers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record_names_the_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offsets_progress_model_outbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_restart, setup, teardown),
    };
    return cmocka_run_group_tests_name("store_redis", tests, NULL, NULL);
}
