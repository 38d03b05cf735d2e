/* Unit tests for the Redis Cluster arithmetic of state/redis_slot.c: CRC16 against the
 * specification's vector, key -> slot against slots a real Redis 7.0 cluster returned for
 * CLUSTER KEYSLOT (recorded 2026-12-06), the hash tag edge cases, and the parsing of the
 * redirection errors (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, malformed ones). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "redis_cluster.h"

static void test_crc16_spec_vector(void **state)
{
    (void)state;
    /* Redis Cluster specification, appendix A: CRC16 of "123456789" is 0x31C3. */
    assert_int_equal(rcl_crc16("123456789", 9), 0x31C3);
    assert_int_equal(rcl_crc16("", 0), 0);
}

static void test_keyslot_matches_cluster_keyslot(void **state)
{
    (void)state;
    /* Each slot is what `redis-cli -p <node> CLUSTER KEYSLOT <key>` printed. */
    static const struct {
        const char *key;
        int slot;
    } cases[] = {
        {"123456789", 12739},
        {"foo", 12182},
        {"bar", 5061},
        {"zap", 6469},
        {"c", 7365},
        {"", 0},
        {"user:1000", 1649},
        {"{user1000}.following", 3443},
        {"{p0}", 15882},
        {"{p1}", 11819},
        {"{p3}", 3689},
        {"{p11}", 2270},
        {"{model}", 11204},
        {"cs:{p3}:u:alice", 3689},
        {"cs:{p5}:seen:5", 11951},
        {"cs:{model}:model", 11204},
        {"{}abc", 5980},         /* empty tag: the whole key */
        {"foo{}{bar}", 8363},    /* the first '{' opens an empty tag: the whole key */
        {"foo{{bar}}zap", 4015}, /* tag "{bar" */
        {"{bar", 4015},
        {"foo{bar}{zap}", 5061}, /* only the first tag counts: "bar" */
        {"a{b", 13340},          /* no closing brace: the whole key */
        {"a}b{c}", 7365},        /* a '}' before the first '{' does not count: tag "c" */
        {"h{\xc3\xa9}", 10180},  /* UTF-8 bytes in the tag */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = rcl_keyslot(cases[i].key, strlen(cases[i].key));
        if (got != cases[i].slot)
            fail_msg("key \"%s\": slot %d, want %d", cases[i].key, got, cases[i].slot);
    }
}

static void test_hash_part(void **state)
{
    (void)state;
    const char *p;
    size_t n;
    rcl_hash_part("cs:{p12}:u:{x}", 14, &p, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "p12", 3);
    rcl_hash_part("{}", 2, &p, &n);
    assert_int_equal(n, 2);
    rcl_hash_part("{", 1, &p, &n);
    assert_int_equal(n, 1);
    rcl_hash_part("x{y}", 3, &p, &n); /* the length bounds the search: "x{y" has no tag */
    assert_int_equal(n, 3);
    /* Binary keys: a NUL inside the tag is part of it. */
    rcl_hash_part("k{a\0b}z", 7, &p, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "a\0b", 3);
}

static void test_parse_moved_ask(void **state)
{
    (void)state;
    rcl_redir_t r;
    const char *m = "MOVED 3999 127.0.0.1:6381";
    assert_int_equal(rcl_parse_redirect(m, strlen(m), &r), RCL_REDIR_MOVED);
    assert_int_equal(r.slot, 3999);
    assert_string_equal(r.host, "127.0.0.1");
    assert_int_equal(r.port, 6381);
    const char *a = "ASK 3689 10.0.0.7:40443";
    assert_int_equal(rcl_parse_redirect(a, strlen(a), &r), RCL_REDIR_ASK);
    assert_int_equal(r.slot, 3689);
    assert_string_equal(r.host, "10.0.0.7");
    assert_int_equal(r.port, 40443);
    const char *v6 = "MOVED 0 [::1]:7000";
    assert_int_equal(rcl_parse_redirect(v6, strlen(v6), &r), RCL_REDIR_MOVED);
    assert_string_equal(r.host, "::1");
    assert_int_equal(r.port, 7000);
    const char *v6b = "MOVED 16383 fe80::1:7001";
    assert_int_equal(rcl_parse_redirect(v6b, strlen(v6b), &r), RCL_REDIR_MOVED);
    assert_string_equal(r.host, "fe80::1");
    assert_int_equal(r.slot, 16383);
    const char *name = "ASK 1 redis-2.internal:6379";
    assert_int_equal(rcl_parse_redirect(name, strlen(name), &r), RCL_REDIR_ASK);
    assert_string_equal(r.host, "redis-2.internal");
}

static void test_parse_others(void **state)
{
    (void)state;
    rcl_redir_t r;
    static const struct {
        const char *err;
        rcl_redir_kind_t kind;
    } cases[] = {
        {"TRYAGAIN Multiple keys request during rehashing of slot", RCL_REDIR_TRYAGAIN},
        {"CLUSTERDOWN The cluster is down", RCL_REDIR_CLUSTERDOWN},
        {"CLUSTERDOWN Hash slot not served", RCL_REDIR_CLUSTERDOWN},
        {"TRYAGAIN", RCL_REDIR_TRYAGAIN},
        {"CROSSSLOT Keys in request don't hash to the same slot", RCL_REDIR_NONE},
        {"EXECABORT Transaction discarded because of previous errors.", RCL_REDIR_NONE},
        {"ERR unknown command", RCL_REDIR_NONE},
        {"MOVEDX 1 h:1", RCL_REDIR_NONE},
        {"MOVED", RCL_REDIR_NONE},
        {"MOVED 16384 h:1", RCL_REDIR_NONE}, /* slot out of range */
        {"MOVED -1 h:1", RCL_REDIR_NONE},
        {"MOVED 12 h", RCL_REDIR_NONE}, /* no port */
        {"MOVED 12 h:0", RCL_REDIR_NONE},
        {"MOVED 12 h:70000", RCL_REDIR_NONE},
        {"MOVED 12 :6379", RCL_REDIR_NONE}, /* no host */
        {"ASK x h:1", RCL_REDIR_NONE},
        {"ASKING", RCL_REDIR_NONE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rcl_redir_kind_t k = rcl_parse_redirect(cases[i].err, strlen(cases[i].err), &r);
        if (k != cases[i].kind)
            fail_msg("\"%s\": kind %d, want %d", cases[i].err, (int)k, (int)cases[i].kind);
        assert_int_equal(r.kind, k);
    }
    assert_int_equal(rcl_parse_redirect(NULL, 0, &r), RCL_REDIR_NONE);
    /* The length bounds the text: "MOVED 1 h:12" cut before the port. */
    assert_int_equal(rcl_parse_redirect("MOVED 1 h:12", 10, &r), RCL_REDIR_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16_spec_vector),
        cmocka_unit_test(test_keyslot_matches_cluster_keyslot),
        cmocka_unit_test(test_hash_part),
        cmocka_unit_test(test_parse_moved_ask),
        cmocka_unit_test(test_parse_others),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
