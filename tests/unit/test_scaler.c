/* Unit tests of the online standardizer: running (optionally decayed) moments against the
 * closed-form weighted mean and variance, transform, sd floor, identity before data. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "model_wire.h"
#include "scaler.h"

#define MAX_ROWS 16

typedef struct {
    const char *name;
    double half_life;
    int dim;
    int rows;
    float x[MAX_ROWS * 3];
} moment_case_t;

static const moment_case_t cases[] = {
    {"single row", 0, 2, 1, {3, -4}},
    {"plain two dims", 0, 2, 5, {1, 10, 2, 20, 3, 30, 4, 40, 10, -5}},
    {"constant column", 0, 3, 4, {7, 1, -1, 7, 2, 1, 7, 3, -1, 7, 4, 1}},
    {"large offset", 0, 1, 6, {1e6f + 1, 1e6f + 2, 1e6f + 3, 1e6f + 4, 1e6f + 5, 1e6f + 6}},
    {"decay h=3", 3, 2, 6, {1, 0, 2, 0, 3, 1, 4, 1, 5, 0, 6, 1}},
    {"decay h=0.5", 0.5, 1, 5, {10, -10, 10, -10, 10}},
    {"decay h=100 negatives", 100, 3, 4, {-1, -2, -3, 0.5f, 0.25f, 0.125f, 8, 8, 8, -3, 4, 1}},
};

/* Two-pass weighted moments in long double: weight of row j is a^(rows-1-j). */
static void closed_form(const moment_case_t *c, int dimi, long double *mean, long double *var,
                        long double *wsum)
{
    long double a = c->half_life > 0 ? exp2l(-1.0L / c->half_life) : 1.0L;
    long double sw = 0, sx = 0;
    for (int j = 0; j < c->rows; j++) {
        long double w = powl(a, c->rows - 1 - j);
        sw += w;
        sx += w * c->x[j * c->dim + dimi];
    }
    *mean = sx / sw;
    long double ss = 0;
    for (int j = 0; j < c->rows; j++) {
        long double w = powl(a, c->rows - 1 - j);
        long double d = c->x[j * c->dim + dimi] - *mean;
        ss += w * d * d;
    }
    *var = ss / sw;
    *wsum = sw;
}

static void test_moments_match_closed_form(void **state)
{
    (void)state;
    for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
        const moment_case_t *c = &cases[t];
        /* Fed all at once and row by row: batching must not change the result. */
        for (int mode = 0; mode < 2; mode++) {
            sc_t *sc = sc_new(c->dim, c->half_life);
            assert_non_null(sc);
            if (mode == 0)
                sc_update(sc, c->x, (size_t)c->rows);
            else
                for (int j = 0; j < c->rows; j++)
                    sc_update(sc, c->x + j * c->dim, 1);
            for (int i = 0; i < c->dim; i++) {
                long double mean, var, wsum;
                closed_form(c, i, &mean, &var, &wsum);
                double scale = fabs((double)mean) + 1;
                if (fabs(sc_mean(sc, i) - (double)mean) > 1e-12 * scale)
                    fail_msg("%s dim %d: mean %.17g want %.17Lg", c->name, i, sc_mean(sc, i), mean);
                double sd = sqrt((double)var);
                if (fabs(sc_sd(sc, i) - sd) > 1e-9 * (sd + 1))
                    fail_msg("%s dim %d: sd %.17g want %.17g", c->name, i, sc_sd(sc, i), sd);
                if (fabs(sc_weight(sc) - (double)wsum) > 1e-12 * (double)wsum)
                    fail_msg("%s: weight %.17g want %.17Lg", c->name, sc_weight(sc), wsum);
            }
            sc_destroy(sc);
        }
    }
}

static void test_identity_before_data(void **state)
{
    (void)state;
    sc_t *sc = sc_new(3, 0);
    assert_non_null(sc);
    const float x[6] = {1.5f, -2, 0, 1e9f, -1e-9f, 42};
    float z[6];
    sc_transform(sc, x, z, 2);
    for (int i = 0; i < 6; i++)
        assert_true(z[i] == x[i]);
    assert_true(sc_mean(sc, 0) == 0);
    assert_true(sc_sd(sc, 2) == 0);
    assert_true(sc_weight(sc) == 0);
    sc_destroy(sc);
}

static void test_transform_values_and_floor(void **state)
{
    (void)state;
    /* dim 0: 1,2,3,4 -> mean 2.5, population sd sqrt(1.25); dim 1 constant 5 -> sd floor */
    const float x[8] = {1, 5, 2, 5, 3, 5, 4, 5};
    sc_t *sc = sc_new(2, 0);
    sc_update(sc, x, 4);
    const float q[4] = {2.5f, 5, 4, 5.000001f};
    float z[4];
    sc_transform(sc, q, z, 2);
    assert_float_equal(z[0], 0.0f, 1e-7);
    assert_float_equal(z[1], 0.0f, 1e-7);
    assert_float_equal(z[2], (float)(1.5 / sqrt(1.25)), 1e-6);
    /* (5.000001f - 5) / 1e-6: the floor, not a division by zero */
    assert_float_equal(z[3], (float)((double)5.000001f - 5.0) / 1e-6f, 1e-3);
    /* in place */
    float inplace[2] = {1, 5};
    sc_transform(sc, inplace, inplace, 1);
    assert_float_equal(inplace[0], (float)(-1.5 / sqrt(1.25)), 1e-6);
    assert_float_equal(inplace[1], 0.0f, 1e-7);
    sc_destroy(sc);
}

/* Learning, at every width around the vector blocks and with forgetting: the moments are the
 * scalar update's (West 1979 with decay), bit for bit. */
static void test_update_bit_exact(void **state)
{
    (void)state;
    const int dims[] = {1, 3, 4, 5, 8, 22, 23};
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        const int dim = dims[d];
        enum { N = 60 };
        float x[N * 23];
        for (int i = 0; i < N * dim; i++)
            x[i] = (float)(cos(i * 0.61 + d) * (2 + i % 5) + (i % dim == 1 ? 9 : 0));
        sc_t *sc = sc_new(dim, 25);
        sc_update(sc, x, N / 2);
        sc_update(sc, x + (N / 2) * dim, N - N / 2);
        const double a = exp2(-1.0 / 25);
        double w = 0, mean[23] = {0}, m2[23] = {0};
        for (int r = 0; r < N; r++) {
            w = a * w + 1.0;
            const double inv_w = 1.0 / w;
            for (int i = 0; i < dim; i++) {
                double v = x[r * dim + i], delta = v - mean[i];
                mean[i] += delta * inv_w;
                m2[i] = a * m2[i] + delta * (v - mean[i]);
            }
        }
        assert_true(sc_weight(sc) == w);
        for (int i = 0; i < dim; i++) {
            double var = m2[i] / w;
            if (sc_mean(sc, i) != mean[i] || sc_sd(sc, i) != (var > 0 ? sqrt(var) : 0))
                fail_msg("dim %d value %d: mean %.17g sd %.17g, scalar %.17g %.17g", dim, i,
                         sc_mean(sc, i), sc_sd(sc, i), mean[i], var > 0 ? sqrt(var) : 0);
        }
        sc_destroy(sc);
    }
}

/* Rows of every width around the vector blocks: each value is the scalar formula's, bit for
 * bit, (x - mean) * (1 / max(sd, floor)) in double, rounded to float. */
static void test_transform_bit_exact(void **state)
{
    (void)state;
    const int dims[] = {1, 3, 4, 5, 8, 22, 23};
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        const int dim = dims[d];
        enum { N = 50 };
        float x[N * 23], z[N * 23];
        for (int i = 0; i < N * dim; i++)
            x[i] = (float)(sin(i * 0.37 + d) * (1 + i % 7) + (i % dim == 2 ? 5 : 0));
        sc_t *sc = sc_new(dim, 0);
        sc_update(sc, x, N);
        sc_transform(sc, x, z, N);
        for (int r = 0; r < N; r++)
            for (int i = 0; i < dim; i++) {
                double sd = sc_sd(sc, i);
                double inv = 1.0 / (sd > SC_SD_FLOOR ? sd : SC_SD_FLOOR);
                float want = (float)((x[r * dim + i] - sc_mean(sc, i)) * inv);
                if (z[r * dim + i] != want)
                    fail_msg("dim %d row %d value %d: %.9g, scalar %.9g", dim, r, i, z[r * dim + i],
                             want);
            }
        sc_destroy(sc);
    }
}

/* The transform after learning more rows, and after a snapshot round trip, is the one the
 * moments give (the per-dimension 1/sd is cached and must follow every change). */
static void test_transform_follows_updates_and_decode(void **state)
{
    (void)state;
    sc_t *sc = sc_new(2, 0);
    const float a[4] = {1, 10, 3, 30};
    sc_update(sc, a, 2);
    const float q[2] = {4, 40};
    float z1[2], z2[2], z3[2];
    sc_transform(sc, q, z1, 1);
    assert_float_equal(z1[0], (float)((4 - 2) / 1.0), 1e-6);
    const float b[2] = {8, 80};
    sc_update(sc, b, 1); /* mean 4, sd sqrt(26/3) */
    sc_transform(sc, q, z2, 1);
    assert_float_equal(z2[0], 0.0f, 1e-6);
    assert_float_equal(z2[1], 0.0f, 1e-6);
    const float far[2] = {4 + (float)sqrt(26.0 / 3), 40};
    sc_transform(sc, far, z2, 1);
    assert_float_equal(z2[0], 1.0f, 1e-6);
    mw_buf_t buf = {0};
    sc_encode(sc, &buf);
    assert_false(buf.failed);
    mw_reader_t r = {.p = buf.data, .len = buf.len};
    char err[128];
    sc_t *back = sc_decode(&r, err, sizeof err);
    assert_non_null(back);
    sc_transform(back, far, z3, 1);
    assert_memory_equal(z2, z3, sizeof z2);
    sc_destroy(back);
    free(buf.data);
    sc_destroy(sc);
}

static void test_decay_forgets(void **state)
{
    (void)state;
    /* 1000 rows of 0 then 1000 rows of 10 with half-life 50: the mean is within 2^-20 of 10. */
    sc_t *sc = sc_new(1, 50);
    float v = 0;
    for (int i = 0; i < 1000; i++)
        sc_update(sc, &v, 1);
    v = 10;
    for (int i = 0; i < 1000; i++)
        sc_update(sc, &v, 1);
    assert_true(fabs(sc_mean(sc, 0) - 10) < 10 * exp2(-19));
    /* effective weight -> 1 / (1 - 2^(-1/50)) */
    assert_true(fabs(sc_weight(sc) - 1 / (1 - exp2(-1.0 / 50))) < 1e-6);
    sc_destroy(sc);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    assert_null(sc_new(0, 0));
    assert_null(sc_new(-1, 0));
    assert_null(sc_new(2, -1));
    assert_null(sc_new(2, NAN));
    assert_null(sc_new(2, INFINITY));
    sc_destroy(NULL);
    sc_t *sc = sc_new(2, 0);
    assert_int_equal(sc_dim(sc), 2);
    assert_true(sc_mean(sc, 5) == 0 && sc_sd(sc, -1) == 0);
    sc_destroy(sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moments_match_closed_form),
        cmocka_unit_test(test_identity_before_data),
        cmocka_unit_test(test_transform_values_and_floor),
        cmocka_unit_test(test_transform_bit_exact),
        cmocka_unit_test(test_update_bit_exact),
        cmocka_unit_test(test_transform_follows_updates_and_decode),
        cmocka_unit_test(test_decay_forgets),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
