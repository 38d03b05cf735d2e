/* The feature transform's log1p (processor/core/fastlog.h) against libm's: within 2 double
 * ulps everywhere in its domain, and the same float as (float)log1p(x) on every value of a
 * seeded sample of each kind of input the features produce (integers, decayed float counters,
 * money, days, any positive double), in blocks and one value at a time, through the code this
 * CPU runs and through the baseline x86-64 build; exact at 0; libm's own result outside the
 * domain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <string.h>

#include "fastlog.h"

/* The same source built for the baseline x86-64 (no AVX2/FMA clone), as a CPU without AVX2
 * runs it, under other names. */
#define FASTLOG_BASELINE
#define fl_log1p       base_log1p
#define fl_log1p_block base_log1p_block
#include "../../processor/core/fastlog.c"
#undef fl_log1p
#undef fl_log1p_block

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double unit(uint64_t *s)
{
    return (double)(next_rand(s) >> 11) * 0x1p-53;
}

/* One input of kind k (0..4). */
static double sample(uint64_t *s, int k)
{
    switch (k) {
    case 0: /* counts and days: small integers */
        return (double)(next_rand(s) % 4000);
    case 1: /* decayed counters, stored as float */
        return (double)(float)(unit(s) * 60.0 * exp2(-unit(s) * 12.0));
    case 2: /* log-uniform over 1e-17 .. 1e17 */
        return exp(unit(s) * 78.3 - 39.1);
    case 3: /* money: cents */
        return (double)(next_rand(s) % 100000000) / 100.0;
    default: {                                             /* any positive double below 2^1000 */
        uint64_t b = next_rand(s) & 0x7fefffffffffffffULL; /* finite */
        double x;
        memcpy(&x, &b, sizeof x);
        return x < 0x1p1000 ? x : x * 0x1p-1000;
    }
    }
}

static double ulps(double a, double b)
{
    if (a == b)
        return 0.0;
    double ub = nextafter(fabs(b), INFINITY) - fabs(b);
    return fabs(a - b) / ub;
}

static void test_matches_libm(void **state)
{
    (void)state;
    enum { BLOCK = 22, ROUNDS = 100000 };
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    double in[BLOCK], worst = 0.0;
    float out[BLOCK];
    long float_diffs = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < BLOCK; i++)
            in[i] = sample(&seed, (r + i) % 5);
        fl_log1p_block(in, out, BLOCK);
        for (int i = 0; i < BLOCK; i++) {
            double want = log1p(in[i]), got = fl_log1p(in[i]);
            double u = ulps(got, want);
            if (u > worst)
                worst = u;
            float one, base;
            fl_log1p_block(&in[i], &one, 1);
            base_log1p_block(&in[i], &base, 1);
            float_diffs += out[i] != (float)want;
            float_diffs += one != out[i];
            float_diffs += base != out[i];
            u = ulps(base_log1p(in[i]), want);
            if (u > worst)
                worst = u;
        }
    }
    assert_true(worst <= 2.0);
    assert_int_equal(float_diffs, 0);
}

static void test_edges(void **state)
{
    (void)state;
    /* exact where the value is: 0, and x below 2^-54 (log1p(x) rounds to x) */
    static const double exact[] = {0.0, 0x1p-60, 1e-300, DBL_MIN, 0x1p-1074};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        assert_true(fl_log1p(exact[i]) == exact[i]);
    /* near the reduction's boundaries: sqrt(2) - 1 and powers of two */
    static const double near[] = {0x1.6a09e667f3bccp-2,
                                  0x1.6a09e667f3bcdp-2,
                                  0x1.6a09e667f3bcep-2,
                                  1.0,
                                  0x1.fffffffffffffp-1,
                                  0x1.0000000000001p+0,
                                  0x1p52,
                                  0x1p53,
                                  0x1p53 + 2,
                                  0x1.fffffffffffffp+999,
                                  FLT_MAX};
    for (size_t i = 0; i < sizeof near / sizeof near[0]; i++) {
        assert_true(ulps(fl_log1p(near[i]), log1p(near[i])) <= 2.0);
        float f;
        fl_log1p_block(&near[i], &f, 1);
        assert_true(f == (float)log1p(near[i]));
    }
    /* outside the domain: libm's answer, through the block path too */
    static const double outside[] = {-0.5, -1.0, -2.0, 0x1p1000, DBL_MAX, INFINITY};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        double want = log1p(outside[i]);
        double got = fl_log1p(outside[i]);
        assert_true(got == want || (isnan(got) && isnan(want)));
        double blk[3] = {1.0, outside[i], 2.0};
        float f[3];
        fl_log1p_block(blk, f, 3);
        assert_true(f[1] == (float)want || (isnan(f[1]) && isnan(want)));
        assert_true(f[0] == (float)log1p(1.0) && f[2] == (float)log1p(2.0));
    }
    assert_true(isnan(fl_log1p(NAN)));
    fl_log1p_block(NULL, NULL, 0); /* an empty block touches nothing */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_libm),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
