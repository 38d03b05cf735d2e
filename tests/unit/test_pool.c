/* The thread team (core/pool.h): every iteration of [0, n) runs exactly once, whatever the
 * team size, loop length and grain; loops run back to back reuse the team; more than one
 * thread takes part in long loops. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pool.h"

typedef struct loop_s {
    _Atomic int *hits;
    pthread_t owner;
    _Atomic int by_others; /* ranges run off the owner's thread */
} loop_t;

static void visit(void *ctx, size_t lo, size_t hi)
{
    loop_t *l = ctx;
    assert_true(lo < hi);
    for (size_t i = lo; i < hi; i++)
        l->hits[i]++;
    if (!pthread_equal(pthread_self(), l->owner))
        l->by_others++;
}

static void visit_slowly(void *ctx, size_t lo, size_t hi)
{
    usleep(1000);
    visit(ctx, lo, hi);
}

static void test_every_iteration_once(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 2, 7, 63, 64, 128, 129, 1000, 4096, 100003};
    static const size_t grains[] = {1, 16, 64, 5000};
    enum { MAXN = 100003 };
    _Atomic int *hits = calloc(MAXN, sizeof(*hits));
    assert_non_null(hits);
    for (int threads = 1; threads <= 4; threads++) {
        cs_pool_t *p = cs_pool_new(threads);
        assert_non_null(p);
        assert_int_equal(cs_pool_threads(p), threads);
        int others = 0;
        for (size_t a = 0; a < sizeof(lens) / sizeof(lens[0]); a++)
            for (size_t g = 0; g < sizeof(grains) / sizeof(grains[0]); g++) {
                size_t n = lens[a];
                memset(hits, 0, MAXN * sizeof(*hits));
                loop_t l = {.hits = hits, .owner = pthread_self()};
                cs_pool_for(p, n, grains[g], visit, &l);
                for (size_t i = 0; i < n; i++)
                    if (hits[i] != 1)
                        fail_msg("threads %d, n %zu, grain %zu: iteration %zu ran %d times",
                                 threads, n, grains[g], i, (int)hits[i]);
                for (size_t i = n; i < MAXN; i++)
                    assert_int_equal(hits[i], 0);
                others += l.by_others;
            }
        if (threads == 1)
            assert_int_equal(others, 0);
        /* ranges that take a while (1 ms each) cannot all be run by the owner before the
         * others wake */
        memset(hits, 0, MAXN * sizeof(*hits));
        loop_t slow = {.hits = hits, .owner = pthread_self()};
        cs_pool_for(p, 64, 1, visit_slowly, &slow);
        for (size_t i = 0; i < 64; i++)
            assert_int_equal(hits[i], 1);
        if (threads > 1)
            assert_true(slow.by_others > 0);
        cs_pool_destroy(p);
    }
    free(hits);
    cs_pool_for(NULL, 0, 1, visit, NULL); /* no pool, nothing to do: no call */
}

static void test_default_threads(void **state)
{
    (void)state;
    int n = cs_pool_default_threads(4);
    assert_true(n >= 1 && n <= 4);
    assert_int_equal(cs_pool_default_threads(1), 1);
    cs_pool_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_iteration_once),
        cmocka_unit_test(test_default_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
