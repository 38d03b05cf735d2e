/* Unit tests for the Redis store's command formatting (state/redis_args.c): the RESP that
 * rc_args_resp writes is byte for byte what hiredis's own redisFormatCommandArgv writes, for
 * copied, borrowed, composed, empty, binary and large arguments, and integers at the ends of
 * their range; the buffer is reused across commands; no argument or out of memory gives 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_internal.h"

/* hiredis's formatting of a's arguments; the caller frees it with redisFreeCommand. */
static long long reference(const rc_args_t *a, char **out)
{
    const char **argv = malloc(a->n * sizeof(*argv));
    assert_non_null(argv);
    for (size_t i = 0; i < a->n; i++)
        argv[i] = a->ptr[i] ? a->ptr[i] : a->buf + a->off[i];
    long long len = redisFormatCommandArgv(out, (int)a->n, argv, a->len);
    free(argv);
    return len;
}

static void expect_same_as_hiredis(rc_args_t *a)
{
    char *ref = NULL;
    long long ref_len = reference(a, &ref);
    assert_true(ref_len > 0);
    size_t len = rc_args_resp(a);
    assert_int_equal(len, (size_t)ref_len);
    assert_memory_equal(a->resp, ref, len);
    redisFreeCommand(ref);
    rc_args_reset(a);
}

static void test_resp_matches_hiredis(void **state)
{
    (void)state;
    rc_args_t a = {0};
    rc_args_str(&a, "PING");
    expect_same_as_hiredis(&a);

    static const char binary[] = {'a', '\0', '\r', '\n', (char)0xff, ' ', '"'};
    rc_args_str(&a, "HSET");
    rc_args_cat(&a, "cs:", 3, "score:", 6, "user with spaces", 16);
    rc_args_add(&a, "", 0);
    rc_args_add(&a, binary, sizeof binary);
    rc_args_ref(&a, "borrowed", 8);
    rc_args_i64(&a, 0);
    rc_args_i64(&a, -1);
    rc_args_i64(&a, INT64_MAX);
    rc_args_i64(&a, INT64_MIN);
    expect_same_as_hiredis(&a);

    /* a large argument and many arguments: the buffer grows, then is reused */
    size_t big = 100000;
    char *blob = malloc(big);
    assert_non_null(blob);
    for (size_t i = 0; i < big; i++)
        blob[i] = (char)(i * 7);
    rc_args_str(&a, "SET");
    rc_args_str(&a, "k");
    rc_args_add(&a, blob, big);
    expect_same_as_hiredis(&a);
    char *kept = a.resp;
    rc_args_str(&a, "MSET");
    for (int i = 0; i < 1000; i++) {
        rc_args_i64(&a, i);
        rc_args_add(&a, blob, (size_t)(i % 50)); /* ~75 KB in all: fits */
    }
    expect_same_as_hiredis(&a);
    assert_ptr_equal(a.resp, kept);
    free(blob);

    /* random commands */
    srand(7);
    for (int round = 0; round < 200; round++) {
        int n = 1 + rand() % 12;
        for (int i = 0; i < n; i++) {
            char b[64];
            size_t l = (size_t)(rand() % 64);
            for (size_t j = 0; j < l; j++)
                b[j] = (char)rand();
            if (rand() % 3 == 0)
                rc_args_i64(&a, (int64_t)rand() - RAND_MAX / 2);
            else
                rc_args_add(&a, b, l);
        }
        expect_same_as_hiredis(&a);
    }
    rc_args_free(&a);
}

static void test_resp_nothing_or_oom(void **state)
{
    (void)state;
    rc_args_t a = {0};
    assert_int_equal(rc_args_resp(&a), 0);
    rc_args_str(&a, "GET");
    a.oom = 1;
    assert_int_equal(rc_args_resp(&a), 0);
    rc_args_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resp_matches_hiredis),
        cmocka_unit_test(test_resp_nothing_or_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
