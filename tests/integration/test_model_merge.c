/* Model journals and their merge (store_redis.h, "Model journals") against the real
 * redis-server of a test run: entries commit with their partition's batch, a merge hands
 * the pending ones to the caller in (partition, sequence) order, writes the model and the
 * marks together and trims what is merged; a second merge finds nothing; a merge that loses
 * a race to another instance's merge reruns on the new model, and in the end every entry is
 * in the model exactly once; a partition known only from the marks is merged too; a corrupt
 * journal field is an error that names it. The "model" here is a text log of the entries it
 * has absorbed, so exactly-once is visible in its bytes. */
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
#include "store_redis.h"
#include "testenv.h"

typedef struct fx_s {
    char prefix[128];
    cfg_t *cfg;
    st_redis_t *st, *other; /* two instances' stores */
    redisContext *admin;
} fx_t;

static void cfg_put(cfg_t *cfg, const char *key, const char *value)
{
    char err[256];
    if (cfg_set(cfg, key, value, "test", err, sizeof err) != 0)
        fail_msg("cfg_set %s=%s: %s", key, value, err);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    char name[96], err[256], port[16];
    testenv_unique_name("mm", name, sizeof name);
    snprintf(fx->prefix, sizeof fx->prefix, "%s:", name);
    snprintf(port, sizeof port, "%d", testenv_get_port("CS_REDIS_PORT"));
    fx->cfg = cfg_new();
    cfg_put(fx->cfg, "redis.host", testenv_get("CS_REDIS_HOST"));
    cfg_put(fx->cfg, "redis.port", port);
    cfg_put(fx->cfg, "state.prefix", fx->prefix);
    fx->st = st_redis_new(fx->cfg, err, sizeof err);
    fx->other = st_redis_new(fx->cfg, err, sizeof err);
    if (!fx->st || !fx->other)
        fail_msg("st_redis_new: %s", err);
    fx->admin = redisConnect(testenv_get("CS_REDIS_HOST"), testenv_get_port("CS_REDIS_PORT"));
    assert_true(fx->admin && !fx->admin->err);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    redisReply *r = redisCommand(fx->admin, "EVAL %s 0 %s",
                                 "for _, k in ipairs(redis.call('KEYS', ARGV[1] .. '*')) do "
                                 "redis.call('DEL', k) end return 0",
                                 fx->prefix);
    freeReplyObject(r);
    redisFree(fx->admin);
    st_redis_destroy(fx->st);
    st_redis_destroy(fx->other);
    cfg_destroy(fx->cfg);
    free(fx);
    return 0;
}

/* Commits one journal entry "p/seq" for partition p at the partition's next sequence. */
static void commit_entry(st_redis_t *st, int32_t p)
{
    char err[256], body[32];
    uint64_t seq;
    assert_int_equal(st_redis_journal_next(st, p, &seq, err, sizeof err), 0);
    snprintf(body, sizeof body, "%d/%llu;", (int)p, (unsigned long long)seq);
    const uint8_t *bytes = (const uint8_t *)body;
    size_t len = strlen(body);
    st_commit_t c = {.n_journals = 1,
                     .journal_partitions = &p,
                     .journal_seqs = &seq,
                     .journal_bytes = &bytes,
                     .journal_lens = &len};
    if (st_redis_commit(st, &c, err, sizeof err) != 0)
        fail_msg("commit: %s", err);
}

typedef struct ctx_s {
    fx_t *fx;
    int calls;
    int race; /* on the first call: another instance commits and merges first */
} ctx_t;

static int merge_text(void *opaque, const uint8_t *model, size_t len, const st_journal_entry_t *e,
                      size_t n, uint8_t **out, size_t *out_len, int64_t *mark, char *err,
                      size_t errsz);

static void merge_in(st_redis_t *st, ctx_t *ctx, const int32_t *parts, size_t np,
                     st_merge_result_t *res)
{
    char err[256];
    if (st_redis_model_merge(st, parts, np, merge_text, ctx, res, err, sizeof err) != 0)
        fail_msg("merge: %s", err);
    free(res->model); /* checked through stored_model() */
    res->model = NULL;
}

static int merge_text(void *opaque, const uint8_t *model, size_t len, const st_journal_entry_t *e,
                      size_t n, uint8_t **out, size_t *out_len, int64_t *mark, char *err,
                      size_t errsz)
{
    ctx_t *ctx = opaque;
    (void)err;
    (void)errsz;
    if (ctx->calls++ == 0 && ctx->race) {
        ctx_t other = {.fx = ctx->fx};
        st_merge_result_t r;
        int32_t p0 = 0;
        commit_entry(ctx->fx->other, 0);
        merge_in(ctx->fx->other, &other, &p0, 1, &r);
        assert_int_equal(r.entries, 2);
    }
    size_t total = len;
    for (size_t i = 0; i < n; i++) {
        if (i > 0) /* handed in (partition, seq) order */
            assert_true(e[i - 1].partition < e[i].partition ||
                        (e[i - 1].partition == e[i].partition && e[i - 1].seq < e[i].seq));
        total += e[i].len;
    }
    *mark = (*mark == INT64_MIN ? 0 : *mark) + (int64_t)n; /* kept with the model */
    *out = malloc(total + 1);
    memcpy(*out, model, len);
    *out_len = len;
    for (size_t i = 0; i < n; i++) {
        memcpy(*out + *out_len, e[i].bytes, e[i].len);
        *out_len += e[i].len;
    }
    return 0;
}

static char *stored_model(fx_t *fx)
{
    uint8_t *b;
    size_t len;
    char err[256];
    assert_int_equal(st_redis_load_model(fx->st, &b, &len, err, sizeof err), 0);
    if (!b)
        return strdup("");
    char *s = malloc(len + 1);
    memcpy(s, b, len);
    s[len] = '\0';
    free(b);
    return s;
}

static long long hlen(fx_t *fx, const char *key)
{
    redisReply *r = redisCommand(fx->admin, "HLEN %s%s", fx->prefix, key);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static void test_merge_once_in_order(void **state)
{
    fx_t *fx = *state;
    commit_entry(fx->st, 1);
    commit_entry(fx->st, 0);
    commit_entry(fx->st, 0);
    int32_t parts[] = {1, 0};
    ctx_t ctx = {.fx = fx};
    st_merge_result_t res;
    merge_in(fx->st, &ctx, parts, 2, &res);
    assert_int_equal(res.entries, 3);
    assert_int_equal(res.trimmed, 3);
    char *m = stored_model(fx);
    assert_string_equal(m, "0/0;0/1;1/0;");
    free(m);
    assert_int_equal(hlen(fx, "journal:0"), 1); /* only "next" is left */
    assert_int_equal(hlen(fx, "journal:1"), 1);
    assert_int_equal(res.mark, 3); /* the callback's mark, kept with the model */
    char err[256];
    assert_int_equal(
        st_redis_model_merge(fx->st, parts, 2, merge_text, &ctx, &res, err, sizeof err),
        0); /* nothing pending: the stored model and mark come back */
    assert_int_equal(res.entries, 0);
    assert_int_equal(res.mark, 3);
    assert_int_equal(res.model_len, strlen("0/0;0/1;1/0;"));
    assert_memory_equal(res.model, "0/0;0/1;1/0;", res.model_len);
    free(res.model);
    /* The next entries continue the sequences; partition 1 is found from the marks alone. */
    commit_entry(fx->st, 1);
    merge_in(fx->st, &ctx, NULL, 0, &res);
    assert_int_equal(res.entries, 1);
    assert_int_equal(res.mark, 4);
    m = stored_model(fx);
    assert_string_equal(m, "0/0;0/1;1/0;1/1;");
    free(m);
}

static void test_lost_race_reruns(void **state)
{
    fx_t *fx = *state;
    commit_entry(fx->st, 0);
    commit_entry(fx->st, 2);
    int32_t parts[] = {0, 2};
    ctx_t ctx = {.fx = fx, .race = 1};
    st_merge_result_t res;
    merge_in(fx->st, &ctx, parts, 2, &res);
    assert_int_equal(res.conflicts, 1); /* the other merge wrote between WATCH and EXEC */
    assert_int_equal(ctx.calls, 2);
    char *m = stored_model(fx);
    /* The other instance merged partition 0 (0/0 and its new 0/1) first; the rerun, on that
     * model, skipped them and added 2/0: each entry once. */
    assert_string_equal(m, "0/0;0/1;2/0;");
    free(m);
    assert_int_equal(hlen(fx, "journal:0"), 1);
    assert_int_equal(hlen(fx, "journal:2"), 1);
}

static void test_corrupt_field_named(void **state)
{
    fx_t *fx = *state;
    commit_entry(fx->st, 3);
    redisReply *r = redisCommand(fx->admin, "HSET %sjournal:3 x1 junk", fx->prefix);
    freeReplyObject(r);
    int32_t p = 3;
    ctx_t ctx = {.fx = fx};
    st_merge_result_t res;
    char err[256] = "";
    assert_int_equal(st_redis_model_merge(fx->st, &p, 1, merge_text, &ctx, &res, err, sizeof err),
                     -1);
    assert_null(res.model);
    assert_non_null(strstr(err, "journal of partition 3: bad field \"x1\""));
    char *m = stored_model(fx);
    assert_string_equal(m, ""); /* nothing written */
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_merge_once_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_race_reruns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_field_named, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
