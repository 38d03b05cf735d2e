/* CS_UPPER_BOUND (core/upper_bound.h) against a linear count, on sorted arrays with runs of
 * equal keys, for keys below, between, on and above the rows' keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "upper_bound.h"

typedef struct row_s {
    int64_t tick_ms;
    int payload;
} row_t;

static void test_against_linear_count(void **state)
{
    (void)state;
    enum { MAXN = 40 };
    row_t a[MAXN];
    for (size_t n = 0; n <= MAXN; n++) {
        for (size_t i = 0; i < n; i++) /* runs of three: 0, 0, 0, 2, 2, 2, 4, ... */
            a[i] = (row_t){.tick_ms = (int64_t)(i / 3) * 2, .payload = (int)i};
        for (size_t i = 1; i < n; i++)
            assert_true(a[i - 1].tick_ms <= a[i].tick_ms);
        for (int64_t key = -3; key <= MAXN + 2; key++) {
            size_t want = 0, got;
            for (size_t i = 0; i < n; i++)
                want += a[i].tick_ms <= key;
            CS_UPPER_BOUND(a, n, tick_ms, key, got);
            if (got != want)
                fail_msg("n %zu, key %lld: %zu, want %zu", n, (long long)key, got, want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_linear_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
