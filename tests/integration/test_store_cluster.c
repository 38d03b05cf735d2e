/* The Redis store in cluster mode (redis.cluster = true) against a real 3-master Redis
 * Cluster (tests/services/redis-cluster.sh; CS_REDIS_CLUSTER_PORT is a seed node): batches
 * over several partitions commit one transaction per partition's slot and read back
 * exactly; every key of partition N sits in the slot of {pN}; a slot migrated by hand while
 * the store works (ASK, TRYAGAIN, then MOVED) and by `redis-cli --cluster reshard` during
 * a stream of batches leaves the state exact, with the redirections counted. Every test
 * works under its own key prefix. */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "config.h"
#include "engine.h"
#include "feat.h"
#include "redis_cluster.h"
#include "store_redis.h"
#include "testenv.h"
#include "user.h"

#define BASE_MS 1704067200000LL /* 2024-01-01 */
#define DAY_MS  86400000LL
#define NPART   6
#define NUSER   12 /* per partition */

typedef struct fx_s {
    char prefix[128];
    cfg_t *cfg;
    st_redis_t *st;
    char ids[NPART][NUSER][32];
} fx_t;

/* ---- admin: plain hiredis connections to single nodes ---- */

static redisContext *connect_port(int port)
{
    struct timeval tv = {.tv_sec = 5};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err)
        fail_msg("connect 127.0.0.1:%d: %s", port, c ? c->errstr : "out of memory");
    redisSetTimeout(c, tv);
    return c;
}

static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r)
        fail_msg("admin command: %s", c->errstr);
    return r;
}

/* The master of slot: its port and node id (from CLUSTER SLOTS on the seed). */
static void slot_owner(int slot, int *port, char *id, size_t cap)
{
    redisContext *c = connect_port(testenv_get_port("CS_REDIS_CLUSTER_PORT"));
    redisReply *r = cmd(c, "CLUSTER SLOTS");
    *port = 0;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (slot >= e->element[0]->integer && slot <= e->element[1]->integer) {
            *port = (int)e->element[2]->element[1]->integer;
            snprintf(id, cap, "%s", e->element[2]->element[2]->str);
        }
    }
    freeReplyObject(r);
    redisFree(c);
    if (!*port)
        fail_msg("slot %d has no master", slot);
}

/* Another master than the one with this id (from CLUSTER NODES: a master a reshard
 * emptied is still one), and how many slots `from` owns up to slot (what
 * `redis-cli --cluster reshard` must move to take slot along: it moves a source's slots in
 * ascending order). */
static void other_master(const char *from, int slot, int *port, char *id, size_t cap,
                         int *slots_through)
{
    redisContext *c = connect_port(testenv_get_port("CS_REDIS_CLUSTER_PORT"));
    redisReply *r = cmd(c, "CLUSTER SLOTS");
    *port = 0;
    *slots_through = 0;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i], *m = e->element[2];
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        if (strcmp(m->element[2]->str, from) == 0 && lo <= slot)
            *slots_through += (int)((slot < hi ? slot : hi) - lo + 1);
    }
    freeReplyObject(r);
    r = cmd(c, "CLUSTER NODES");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    for (char *save = NULL, *line = strtok_r(r->str, "\n", &save); line && !*port;
         line = strtok_r(NULL, "\n", &save)) {
        char nid[64], addr[128], flags[128];
        if (sscanf(line, "%63s %127s %127s", nid, addr, flags) != 3 || !strstr(flags, "master") ||
            strcmp(nid, from) == 0)
            continue;
        char *colon = strrchr(addr, ':');
        if (colon) {
            *port = atoi(colon + 1); /* "host:port@busport": atoi stops at '@' */
            snprintf(id, cap, "%s", nid);
        }
    }
    freeReplyObject(r);
    redisFree(c);
    if (!*port)
        fail_msg("no other master than %s", from);
}

/* ---- fixture ---- */

static void cfg_put(cfg_t *cfg, const char *key, const char *value)
{
    char err[512];
    if (cfg_set(cfg, key, value, "test", err, sizeof(err)) != 0)
        fail_msg("cfg_set %s=%s: %s", key, value, err);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    char name[100], port[16];
    testenv_unique_name("tc", name, sizeof(name));
    snprintf(fx->prefix, sizeof(fx->prefix), "%s:", name);
    snprintf(port, sizeof(port), "%d", testenv_get_port("CS_REDIS_CLUSTER_PORT"));
    fx->cfg = cfg_new();
    assert_non_null(fx->cfg);
    cfg_put(fx->cfg, "redis.host", "127.0.0.1");
    cfg_put(fx->cfg, "redis.port", port);
    cfg_put(fx->cfg, "redis.cluster", "true");
    cfg_put(fx->cfg, "state.prefix", fx->prefix);
    cfg_put(fx->cfg, "state.ttl", "30d");
    for (int p = 0; p < NPART; p++)
        for (int u = 0; u < NUSER; u++)
            snprintf(fx->ids[p][u], sizeof(fx->ids[p][u]), "user %d:%d {x}", p, u);
    char err[512];
    if (!(fx->st = st_redis_new(fx->cfg, err, sizeof(err))))
        fail_msg("st_redis_new: %s", err);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    st_redis_destroy(fx->st);
    cfg_destroy(fx->cfg);
    free(fx);
    return 0;
}

/* ---- batches ---- */

/* User u's record after batch b: activity on day u, scored tick on day b. */
static void rec_of(user_rec_t *r, int u, int b)
{
    user_rec_init(r);
    ev_event_t ev;
    memset(&ev, 0, sizeof(ev));
    snprintf(ev.user_id, sizeof(ev.user_id), "x");
    ev.user_id_len = 1;
    ev.type = EV_SESSION_START;
    ev.event_time_ms = BASE_MS + u * DAY_MS;
    feat_apply(&r->feat, &ev);
    r->scored_tick_ms = BASE_MS + (int64_t)b * DAY_MS;
}

/* One daemon-like batch b over every partition: each user's record, each partition's next
 * offset b+1 and progress, one alert per partition, the model; one commit call. */
static int batch(fx_t *fx, st_redis_t *st, int b, char *err, size_t errsz)
{
    int32_t parts[NPART];
    int64_t offs[NPART];
    store_progress_t prog[NPART];
    char alert_ids[NPART][32];
    const char *ob_ids[NPART], *ob_uids[NPART];
    const uint8_t *ob_vals[NPART];
    size_t ob_lens[NPART];
    char model[64];
    for (int p = 0; p < NPART; p++) {
        store_ops_t ops;
        const char *ids[NUSER];
        for (int u = 0; u < NUSER; u++)
            ids[u] = fx->ids[p][u];
        if (st_redis_engine_ops(st, p, &ops) != 0 ||
            st_redis_prefetch(st, p, ids, NUSER, err, errsz) != 0)
            return -1;
        for (int u = 0; u < NUSER; u++) {
            user_rec_t *rec = ops.get(ops.opaque, ids[u], strlen(ids[u]));
            rec_of(rec, u, b);
            ops.touched(ops.opaque, ids[u], rec);
        }
        parts[p] = p;
        offs[p] = b + 1;
        memset(prog[p].b, 0, sizeof(prog[p].b));
        memcpy(prog[p].b, &b, sizeof(b));
        snprintf(alert_ids[p], sizeof(alert_ids[p]), "a-%d-%d", p, b);
        ob_ids[p] = alert_ids[p];
        ob_uids[p] = fx->ids[p][b % NUSER];
        ob_vals[p] = (const uint8_t *)alert_ids[p];
        ob_lens[p] = strlen(alert_ids[p]);
    }
    int ml = snprintf(model, sizeof(model), "model after batch %d", b);
    st_commit_t c = {.n_offsets = NPART,
                     .offset_partitions = parts,
                     .next_offsets = offs,
                     .n_progress = NPART,
                     .progress_partitions = parts,
                     .progress = prog,
                     .model = (const uint8_t *)model,
                     .model_len = (size_t)ml,
                     .n_outbox = NPART,
                     .outbox_ids = ob_ids,
                     .outbox_user_ids = ob_uids,
                     .outbox_values = ob_vals,
                     .outbox_lens = ob_lens};
    int rc = st_redis_commit(st, &c, err, errsz);
    if (rc != 0)
        st_redis_discard(st);
    return rc;
}

/* Reads everything back through a fresh store and checks it is batch b's state. */
static void check_state(fx_t *fx, int b, int n_alerts)
{
    char err[512];
    st_redis_t *st = st_redis_new(fx->cfg, err, sizeof(err));
    if (!st)
        fail_msg("st_redis_new: %s", err);
    for (int p = 0; p < NPART; p++) {
        int64_t off;
        int found;
        store_progress_t pr;
        assert_int_equal(st_redis_load_offset(st, p, &off, &found, err, sizeof(err)), 0);
        assert_true(found);
        assert_int_equal(off, b + 1);
        assert_int_equal(st_redis_load_progress(st, p, &pr, &found, err, sizeof(err)), 0);
        assert_true(found);
        int pb;
        memcpy(&pb, pr.b, sizeof(pb));
        assert_int_equal(pb, b);
        for (int u = 0; u < NUSER; u++) {
            user_rec_t got, want;
            if (st_redis_get_user(st, fx->ids[p][u], &got, &found, err, sizeof(err)) != 0)
                fail_msg("get_user: %s", err);
            assert_true(found);
            rec_of(&want, u, b);
            assert_true(user_rec_event_part_equal(&got, &want));
            assert_int_equal(got.scored_tick_ms, want.scored_tick_ms);
        }
    }
    uint8_t *m;
    size_t ml;
    char want_model[64];
    snprintf(want_model, sizeof(want_model), "model after batch %d", b);
    assert_int_equal(st_redis_load_model(st, &m, &ml, err, sizeof(err)), 0);
    assert_non_null(m);
    assert_int_equal(ml, strlen(want_model));
    assert_memory_equal(m, want_model, ml);
    free(m);
    st_outbox_t ob;
    if (st_redis_outbox_load(st, &ob, err, sizeof(err)) != 0)
        fail_msg("outbox_load: %s", err);
    assert_int_equal(ob.n, (size_t)n_alerts);
    st_redis_outbox_free(&ob);
    st_redis_destroy(st);
}

/* ---- tests ---- */

static void test_partitions_commit_in_their_slots(void **state)
{
    fx_t *fx = *state;
    char err[512];
    if (batch(fx, fx->st, 0, err, sizeof(err)) != 0)
        fail_msg("batch: %s", err);
    check_state(fx, 0, NPART);
    /* Every key of partition p lives in the slot of {pp}, on that slot's master. */
    for (int p = 0; p < NPART; p++) {
        char tag[16], key[256], id[64];
        int port;
        snprintf(tag, sizeof(tag), "{p%d}", p);
        slot_owner(rcl_keyslot(tag, strlen(tag)), &port, id, sizeof(id));
        redisContext *c = connect_port(port);
        snprintf(key, sizeof(key), "%s{p%d}:u:%s", fx->prefix, p, fx->ids[p][3]);
        redisReply *r = cmd(c, "EXISTS %b", key, strlen(key));
        assert_int_equal(r->integer, 1);
        freeReplyObject(r);
        r = cmd(c, "HGET %s{p%d}:offsets %d", fx->prefix, p, p);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_string_equal(r->str, "1");
        freeReplyObject(r);
        r = cmd(c, "ZCARD %s{p%d}:seen:%d", fx->prefix, p, p);
        assert_int_equal(r->integer, NUSER);
        freeReplyObject(r);
        redisFree(c);
    }
    /* Outbox across partitions: claim, remove; forget finds a user's partition. */
    const char *ids[2] = {"a-2-0", "a-9-9"};
    uint8_t claimed[2];
    assert_int_equal(st_redis_outbox_claim(fx->st, ids, 2, claimed, err, sizeof(err)), 0);
    assert_int_equal(claimed[0], 1);
    assert_int_equal(claimed[1], 0);
    assert_int_equal(st_redis_outbox_remove(fx->st, ids, 1, err, sizeof(err)), 0);
    st_forget_t fg;
    assert_int_equal(st_redis_forget(fx->st, fx->ids[4][0], &fg, err, sizeof(err)), 1);
    assert_int_equal(fg.record, 1);
    assert_int_equal(fg.seen_entries, 1);
    assert_int_equal(fg.outbox_alerts, 1); /* a-4-0 was about users[4][0] */
    user_rec_t r;
    int found = 1;
    assert_int_equal(st_redis_get_user(fx->st, fx->ids[4][0], &r, &found, err, sizeof(err)), 0);
    assert_int_equal(found, 0);
    rcl_counters_t k;
    rcl_counters(fx->st, &k);
    assert_int_equal(k.moved + k.ask + k.tryagain + k.clusterdown, 0);
}

static void test_unchanged_progress_costs_nothing(void **state)
{
    fx_t *fx = *state;
    char err[512];
    if (batch(fx, fx->st, 0, err, sizeof(err)) != 0)
        fail_msg("batch: %s", err);
    /* Batch 0 committed 6 partitions and the model: 7 transactions. */
    st_redis_counters_t k0, k1;
    st_redis_counters(fx->st, &k0);
    assert_int_equal(k0.commits, NPART + 1);
    /* The daemon sends every assigned partition's progress with each batch: the same bytes
     * again cost no transaction; a changed one costs one, in its partition's slot. */
    int32_t parts[NPART];
    store_progress_t prog[NPART];
    int b = 0;
    for (int p = 0; p < NPART; p++) {
        parts[p] = p;
        memset(prog[p].b, 0, sizeof(prog[p].b));
        memcpy(prog[p].b, &b, sizeof(b));
    }
    st_commit_t c = {.n_progress = NPART, .progress_partitions = parts, .progress = prog};
    assert_int_equal(st_redis_commit(fx->st, &c, err, sizeof(err)), 0);
    st_redis_counters(fx->st, &k1);
    assert_int_equal(k1.commits, k0.commits);
    assert_int_equal(k1.round_trips, k0.round_trips);
    prog[4].b[STORE_PROGRESS_BYTES - 1] = 7;
    assert_int_equal(st_redis_commit(fx->st, &c, err, sizeof(err)), 0);
    st_redis_counters(fx->st, &k1);
    assert_int_equal(k1.commits, k0.commits + 1);
    store_progress_t got;
    int found;
    assert_int_equal(st_redis_load_progress(fx->st, 4, &got, &found, err, sizeof(err)), 0);
    assert_true(found);
    assert_memory_equal(got.b, prog[4].b, STORE_PROGRESS_BYTES);
}

typedef struct mig_s {
    int src_port, dst_port, slot;
    char src_id[64], dst_id[64];
    const char *prefix;
} mig_t;

/* Moves the keys left in the slot and hands the slot to the destination on both masters. */
static void *finish_migration(void *arg)
{
    mig_t *m = arg;
    usleep(300 * 1000); /* the store meanwhile meets ASK and TRYAGAIN */
    redisContext *s = connect_port(m->src_port), *d = connect_port(m->dst_port);
    for (;;) {
        redisReply *ks = cmd(s, "CLUSTER GETKEYSINSLOT %d 100", m->slot);
        size_t n = ks->elements;
        for (size_t i = 0; i < n; i++)
            freeReplyObject(cmd(s, "MIGRATE 127.0.0.1 %d %b 0 5000", m->dst_port,
                                ks->element[i]->str, ks->element[i]->len));
        freeReplyObject(ks);
        if (n == 0)
            break;
    }
    freeReplyObject(cmd(d, "CLUSTER SETSLOT %d NODE %s", m->slot, m->dst_id));
    freeReplyObject(cmd(s, "CLUSTER SETSLOT %d NODE %s", m->slot, m->dst_id));
    redisFree(s);
    redisFree(d);
    return NULL;
}

static void test_manual_migration_ask_tryagain_moved(void **state)
{
    fx_t *fx = *state;
    char err[512];
    if (batch(fx, fx->st, 0, err, sizeof(err)) != 0)
        fail_msg("batch: %s", err);
    mig_t m = {.prefix = fx->prefix};
    m.slot = rcl_keyslot("{p3}", 4);
    int through;
    slot_owner(m.slot, &m.src_port, m.src_id, sizeof(m.src_id));
    other_master(m.src_id, m.slot, &m.dst_port, m.dst_id, sizeof(m.dst_id), &through);
    redisContext *s = connect_port(m.src_port), *d = connect_port(m.dst_port);
    freeReplyObject(cmd(d, "CLUSTER SETSLOT %d IMPORTING %s", m.slot, m.src_id));
    freeReplyObject(cmd(s, "CLUSTER SETSLOT %d MIGRATING %s", m.slot, m.dst_id));
    /* Half the users' records move first: reads of them are answered with ASK. */
    for (int u = 0; u < NUSER / 2; u++) {
        char key[256];
        int kl = snprintf(key, sizeof(key), "%s{p3}:u:%s", fx->prefix, fx->ids[3][u]);
        redisReply *r = cmd(s, "MIGRATE 127.0.0.1 %d %b 0 5000", m.dst_port, key, (size_t)kl);
        assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
        freeReplyObject(r);
    }
    redisFree(s);
    redisFree(d);
    user_rec_t rec;
    int found = 0;
    if (st_redis_get_user(fx->st, fx->ids[3][0], &rec, &found, err, sizeof(err)) != 0)
        fail_msg("get_user during migration: %s", err);
    assert_true(found);
    rcl_counters_t k;
    rcl_counters(fx->st, &k);
    assert_true(k.ask >= 1);
    /* A batch now touches moved and unmoved keys of the slot: TRYAGAIN until the thread
     * finishes the migration, then MOVED to the new master. */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, finish_migration, &m), 0);
    int rc = batch(fx, fx->st, 1, err, sizeof(err));
    pthread_join(th, NULL);
    if (rc != 0)
        fail_msg("batch during migration: %s", err);
    rcl_counters(fx->st, &k);
    assert_true(k.tryagain + k.ask >= 1);
    if (batch(fx, fx->st, 2, err, sizeof(err)) != 0)
        fail_msg("batch after migration: %s", err);
    rcl_counters(fx->st, &k);
    assert_true(k.moved >= 1);
    check_state(fx, 2, 3 * NPART);
    int port;
    char owner[64];
    slot_owner(m.slot, &port, owner, sizeof(owner));
    assert_int_equal(port, m.dst_port);
    printf("# manual migration of slot %d: moved %" PRIu64 " ask %" PRIu64 " tryagain %" PRIu64
           "\n",
           m.slot, k.moved, k.ask, k.tryagain);
}

static void test_reshard_during_batches(void **state)
{
    fx_t *fx = *state;
    char err[512];
    int slot = rcl_keyslot("{p1}", 4), src_port, dst_port, through;
    char src[64], dst[64];
    slot_owner(slot, &src_port, src, sizeof(src));
    other_master(src, slot, &dst_port, dst, sizeof(dst), &through);
    char from_arg[80], seed[64], nslots[16];
    snprintf(seed, sizeof(seed), "127.0.0.1:%d", src_port);
    snprintf(from_arg, sizeof(from_arg), "%s", src);
    snprintf(nslots, sizeof(nslots), "%d", through);
    int b = 0;
    if (batch(fx, fx->st, b, err, sizeof(err)) != 0)
        fail_msg("batch: %s", err);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(126);
        execlp("redis-cli", "redis-cli", "--cluster", "reshard", seed, "--cluster-from", from_arg,
               "--cluster-to", dst, "--cluster-slots", nslots, "--cluster-yes",
               "--cluster-pipeline", "10", (char *)NULL);
        _exit(127);
    }
    int64_t t0 = testenv_now_ms();
    int status = 0, done = 0;
    /* Batches keep committing while the tool moves the slots, and a few after. */
    for (int after = 0; after < 3;) {
        b++;
        if (batch(fx, fx->st, b, err, sizeof(err)) != 0)
            fail_msg("batch %d during reshard: %s", b, err);
        if (!done && waitpid(pid, &status, WNOHANG) == pid)
            done = 1;
        if (done)
            after++;
        assert_true(testenv_now_ms() - t0 < 60000);
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    int port;
    char owner[64];
    slot_owner(slot, &port, owner, sizeof(owner));
    assert_int_equal(port, dst_port);
    check_state(fx, b, NPART * (b + 1));
    rcl_counters_t k;
    rcl_counters(fx->st, &k);
    printf("# reshard of %d slots (through {p1}'s %d) in %lld ms under %d batches: moved %" PRIu64
           " ask %" PRIu64 " tryagain %" PRIu64 "\n",
           through, slot, (long long)(testenv_now_ms() - t0), b, k.moved, k.ask, k.tryagain);
    assert_true(k.moved >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_partitions_commit_in_their_slots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unchanged_progress_costs_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manual_migration_ask_tryagain_moved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reshard_during_batches, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
