/* The inlined merge sort (core/msort.h): against a plain stable insertion sort, on lengths
 * around the run size and its powers of two, with heavy ties (stability: rows that compare
 * equal keep their input order) and keys on two fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msort.h"

typedef struct row_s {
    int major;
    double minor;
    size_t input_pos;
} row_t;

#define ROW_LESS(x, y)                                                                             \
    ((x)->major != (y)->major ? (x)->major < (y)->major : (x)->minor < (y)->minor)

static void reference_sort(row_t *r, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        row_t v = r[i];
        size_t j = i;
        while (j > 0 && ROW_LESS(&v, &r[j - 1])) {
            r[j] = r[j - 1];
            j--;
        }
        r[j] = v;
    }
}

static void check(size_t n, int distinct, uint64_t seed)
{
    row_t *a = malloc((n + 1) * sizeof(*a)), *b = malloc((n + 1) * sizeof(*b));
    row_t *tmp = malloc((n + 1) * sizeof(*tmp));
    assert_true(a && b && tmp);
    for (size_t i = 0; i < n; i++) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        a[i].major = (int)(seed % (uint64_t)distinct) - distinct / 2;
        a[i].minor = (double)((seed >> 20) % 3) * 0.5 - ((seed >> 30) & 1 ? 0.0 : -0.0);
        a[i].input_pos = i;
    }
    memcpy(b, a, n * sizeof(*a));
    CS_MERGE_SORT(row_t, a, tmp, n, ROW_LESS);
    reference_sort(b, n);
    for (size_t i = 0; i < n; i++) {
        if (a[i].major != b[i].major || a[i].minor != b[i].minor ||
            a[i].input_pos != b[i].input_pos)
            fail_msg("n %zu, distinct %d: row %zu is input row %zu, want %zu", n, distinct, i,
                     a[i].input_pos, b[i].input_pos);
    }
    free(a);
    free(b);
    free(tmp);
}

static void test_against_insertion_sort(void **state)
{
    (void)state;
    static const size_t lens[] = {0,  1,  2,  3,  15,  16,  17,  31,  32,   33,  47,
                                  48, 63, 64, 65, 100, 255, 256, 257, 1000, 2049};
    static const int distinct[] = {1, 2, 7, 1000000};
    for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
        for (size_t d = 0; d < sizeof(distinct) / sizeof(distinct[0]); d++)
            check(lens[l], distinct[d], 0x9e3779b97f4a7c15ULL + lens[l] * 31 + (uint64_t)d);
}

/* Sorted and reversed inputs: the runs and merges on their edges. */
static void test_sorted_and_reversed(void **state)
{
    (void)state;
    enum { N = 300 };
    row_t a[N], tmp[N];
    for (int rev = 0; rev <= 1; rev++) {
        for (size_t i = 0; i < N; i++)
            a[i] = (row_t){.major = rev ? (int)(N - i) : (int)i, .minor = 0, .input_pos = i};
        CS_MERGE_SORT(row_t, a, tmp, N, ROW_LESS);
        for (size_t i = 0; i < N; i++)
            assert_int_equal(a[i].major, rev ? (int)(i + 1) : (int)i);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_insertion_sort),
        cmocka_unit_test(test_sorted_and_reversed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
