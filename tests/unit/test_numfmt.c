/* Unit tests for the shortest round-trip double formatting (processor/core/numfmt.h) and its use
 * in `help config --values`: 0.05 prints as 0.05, every printed value reads back exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "numfmt.h"

static void test_shortest_table(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *want;
    } cases[] = {
        {0.05, "0.05"},
        {0.1, "0.1"},
        {1e-4, "0.0001"},
        {0.7, "0.7"},
        {100000, "100000"},
        {0, "0"},
        {-2.5, "-2.5"},
        {1.0 / 3, "0.3333333333333333"},
        {10, "10"},
        {1e16, "10000000000000000"},
        {1e17, "1e+17"},
        {1.5e-7, "1.5e-07"},
        {1e300, "1e+300"},
        {5e-324, "5e-324"},
        {0.1 + 0.2, "0.30000000000000004"},
    };
    char buf[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nf_shortest(buf, sizeof buf, cases[i].v);
        if (strcmp(buf, cases[i].want) != 0)
            fail_msg("case %zu: got %s, want %s", i, buf, cases[i].want);
    }
}

/* Every output reads back as the same double, and no shorter precision would. */
static void test_shortest_round_trips(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ULL;
    char buf[64], shorter[64];
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double v;
        memcpy(&v, &x, sizeof v);
        if (!isfinite(v))
            continue;
        nf_shortest(buf, sizeof buf, v);
        if (strtod(buf, NULL) != v)
            fail_msg("%s does not read back as %.17g", buf, v);
        int prec = 0;
        for (int p = 1; p <= 17 && !prec; p++) {
            snprintf(shorter, sizeof shorter, "%.*g", p, v);
            if (strtod(shorter, NULL) == v)
                prec = p;
        }
        /* as short in significant digits as possible (integers below 1e17 spelled out) */
        double back = strtod(buf, NULL);
        assert_true(back == v);
        if (!strchr(buf, 'e') && fabs(v) >= 1 && fabs(v) < 1e17)
            continue;
        snprintf(shorter, sizeof shorter, "%.*g", prec, v);
        assert_string_equal(buf, shorter);
    }
}

/* Issue 11: `help config --values` printed model.learning_rate = 0.050000000000000003. */
static void test_config_values_shortest(void **state)
{
    (void)state;
    cfg_t *c = cfg_new();
    assert_non_null(c);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cfg_print_values(f, c);
    fclose(f);
    assert_non_null(strstr(text, "model.learning_rate = 0.05\n"));
    assert_non_null(strstr(text, "model.l2 = 0.0001\n"));
    assert_non_null(strstr(text, "alert.threshold = 0.7\n"));
    free(text);
    cfg_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shortest_table),
        cmocka_unit_test(test_shortest_round_trips),
        cmocka_unit_test(test_config_values_shortest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
