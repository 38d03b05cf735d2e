/* Unit tests for the growable arrays (core/grow.h): capacity doubling, parallel arrays kept
 * in step, items preserved, overflow refused with nothing changed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "grow.h"

static void test_single_array_doubles(void **state)
{
    (void)state;
    int64_t *a = NULL;
    size_t cap = 0;
    for (size_t n = 0; n < 1000; n++) {
        assert_int_equal(CS_GROW(a, cap, n + 1, 16), 0);
        assert_true(cap >= n + 1);
        a[n] = (int64_t)n * 7;
    }
    assert_int_equal(cap, 1024); /* 16 doubled six times */
    for (size_t n = 0; n < 1000; n++)
        assert_int_equal(a[n], (int64_t)n * 7);
    assert_int_equal(CS_GROW(a, cap, 10, 16), 0); /* already large enough: untouched */
    assert_int_equal(cap, 1024);
    free(a);
}

static void test_parallel_arrays_share_capacity(void **state)
{
    (void)state;
    int32_t *p = NULL;
    double *q = NULL;
    char **r = NULL;
    size_t cap = 0;
    for (size_t n = 0; n < 300; n++) {
        assert_int_equal(CS_GROW3(p, q, r, cap, n + 1, 4), 0);
        p[n] = (int32_t)n;
        q[n] = (double)n / 2;
        r[n] = NULL;
    }
    assert_int_equal(cap, 512);
    for (size_t n = 0; n < 300; n++) {
        assert_int_equal(p[n], (int32_t)n);
        assert_true(q[n] == (double)n / 2);
        assert_null(r[n]);
    }
    free(p);
    free(q);
    free(r);
}

static void test_overflow_is_refused(void **state)
{
    (void)state;
    int64_t *a = NULL;
    size_t cap = 0;
    assert_int_equal(CS_GROW(a, cap, 8, 8), 0);
    a[7] = 42;
    int64_t *before = a;
    assert_int_equal(CS_GROW(a, cap, SIZE_MAX / 2, 8), -1); /* bytes would overflow */
    assert_int_equal(cap, 8);
    assert_ptr_equal(a, before);
    assert_int_equal(a[7], 42);
    assert_int_equal(CS_GROW(a, cap, SIZE_MAX, 8), -1); /* the count itself */
    assert_int_equal(cap, 8);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_array_doubles),
        cmocka_unit_test(test_parallel_arrays_share_capacity),
        cmocka_unit_test(test_overflow_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
