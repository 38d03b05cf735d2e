/* log1p without libm's branches (fastlog.h). With u = 1 + x rounded and c = (1 + x) - u its
 * exact rounding error, log1p(x) = log(u) + log(1 + c/u) = log(u) + c/u to well below an
 * ulp (|c/u| <= 2^-53). log(u) = k ln2 + log(m), u = 2^k m with m in [sqrt(2)/2, sqrt(2)),
 * and with f = m - 1 (exact) and s = f / (2 + f), log(m) = 2 atanh(s) = f - f^2/2 + s (f^2/2 +
 * R), R = sum_{n>=1} 2 s^(2n) / (2n + 1): |s| <= 0.1716, so ten terms leave less than 0.3 ulp.
 * ln2 is split so that k * LN2_HI is exact for every exponent. */
#include "fastlog.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define LN2_HI       0x1.62e42fee00000p-1
#define LN2_LO       0x1.a39ef35793c76p-33
#define SQRT1_2_BITS 0x3fe6a09e667f3bcdULL /* sqrt(2)/2 */

/* The core for x in [0, 2^1000): no branch and no table, so a loop over it vectorizes. */
static inline double core(double x)
{
    double u = 1.0 + x;
    /* TwoSum (Knuth): exact for either order of magnitude, without a branch. */
    double xv = u - 1.0;
    double c = (1.0 - (u - xv)) + (x - xv);
    uint64_t iu;
    memcpy(&iu, &u, sizeof iu);
    /* Shift by sqrt(2)/2 so that the exponent field counts from there: e is the exponent of u
     * in [sqrt(2)/2, sqrt(2)) units (biased), m its mantissa in that range. */
    iu += 0x3ff0000000000000ULL - SQRT1_2_BITS;
    uint64_t e = iu >> 52;
    uint64_t ie = e | 0x4330000000000000ULL; /* 2^52 + e as a double's bits */
    double k;
    memcpy(&k, &ie, sizeof k);
    k -= 0x1p52 + 0x3ff; /* exact: an integer conversion that vectorizes */
    iu = (iu & 0x000fffffffffffffULL) + SQRT1_2_BITS;
    double m;
    memcpy(&m, &iu, sizeof m);
    double f = m - 1.0;
    /* One division for s = f / (2 + f) and c / u = c 2^-k / (1 + f). */
    double q = 1.0 / ((2.0 + f) * m);
    double s = f * m * q;
    uint64_t iscale = (0x7feULL - e) << 52; /* 2^-k: e - 0x3ff = k < 1000 */
    double scale;
    memcpy(&scale, &iscale, sizeof scale);
    double cu = c * scale * (2.0 + f) * q;
    double hfsq = 0.5 * f * f;
    double z = s * s;
    double R =
        z * (2.0 / 3 +
             z * (2.0 / 5 +
                  z * (2.0 / 7 +
                       z * (2.0 / 9 +
                            z * (2.0 / 11 +
                                 z * (2.0 / 13 +
                                      z * (2.0 / 15 +
                                           z * (2.0 / 17 + z * (2.0 / 19 + z * (2.0 / 21))))))))));
    return k * LN2_HI + (f - (hfsq - (s * (hfsq + R) + (k * LN2_LO + cu))));
}

static int in_domain(double x)
{
    return (x >= 0.0) & (x < 0x1p1000); /* 2^-k stays a normal double */
}

double fl_log1p(double x)
{
    return in_domain(x) ? core(x) : log1p(x);
}

/* Cloned for x86-64-v3 (AVX2, FMA) where the CPU has it: four values a step instead of two.
 * FASTLOG_BASELINE builds the baseline x86-64 code only (tests/unit/test_fastlog.c checks
 * that one too, since this machine's CPU picks the clone). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(FASTLOG_BASELINE)
__attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
void fl_log1p_block(const double *in, float *out, int n)
{
    int all = 1;
    for (int i = 0; i < n; i++)
        all &= in_domain(in[i]);
    if (!all) {
        for (int i = 0; i < n; i++)
            out[i] = (float)fl_log1p(in[i]);
        return;
    }
    for (int i = 0; i < n; i++)
        out[i] = (float)core(in[i]);
}
