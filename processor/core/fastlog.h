/* log1p for the feature transform: every scored and learnt row takes 22 of them (a sixth of a
 * daily-tick replay's time went to libm's log1p). Branch-free and table-free, so a block of
 * values goes through it without a call per value; accurate to about 1 ulp of a double, so its
 * result rounded to float is libm's (float)log1p(x) except when the true value lies within a
 * few double ulps of a float rounding boundary (tests/unit/test_fastlog.c counts them). */
#ifndef CS_FASTLOG_H
#define CS_FASTLOG_H

/* log(1 + x) for x in [0, 2^1000); outside (negative, huge, inf, NaN) libm's log1p(x). */
double fl_log1p(double x);

/* out[i] = (float)fl_log1p(in[i]) for i < n; in and out may not overlap. */
void fl_log1p_block(const double *in, float *out, int n);

#endif
