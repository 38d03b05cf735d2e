/* Unit tests of mini-batch k-means: exact assignment tables, BLAS vs scalar kernels, planted
 * blob recovery, forgetting, starved-centre reassignment, labels and determinism. */
#include <cblas.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kmeans.h"
#include "model_wire.h"
#include "rng.h"

/* A batch of exactly k distinct rows seeds the centres onto those rows: k-means++ never
 * samples a chosen row again (its D^2 is 0), and the learning step then leaves each centre
 * on its own row with count 1. */
static km_t *km_with_centres(int k, int dim, const float *c, double half_life, double ratio)
{
    km_t *km = km_new(k, dim, 7, half_life, ratio);
    assert_non_null(km);
    assert_int_equal(km_partial_fit(km, c, (size_t)k), 0);
    assert_true(km_is_seeded(km));
    return km;
}

static int centre_index_of(const km_t *km, const float *row)
{
    for (int j = 0; j < km_k(km); j++) {
        const double *c = km_centre(km, j);
        int same = 1;
        for (int i = 0; i < km_dim(km); i++)
            same &= c[i] == row[i];
        if (same)
            return j;
    }
    return -1;
}

static void test_assign_table(void **state)
{
    (void)state;
    const float centres[6] = {0, 0, 10, 0, 0, 10};
    km_t *km = km_with_centres(3, 2, centres, 0, 0);
    int map[3];
    for (int j = 0; j < 3; j++) {
        map[j] = centre_index_of(km, centres + 2 * j);
        assert_true(map[j] >= 0);
        assert_true(km_count(km, map[j]) == 1);
    }
    struct {
        float x[2];
        int nearest; /* index into centres[] */
        float dist2;
    } rows[] = {
        {{0, 0}, 0, 0},   {{1, 1}, 0, 2}, {{9, 0}, 1, 1},   {{6, 0}, 1, 16},
        {{-3, 4}, 0, 25}, {{0, 7}, 2, 9}, {{12, -1}, 1, 5}, {{4, 4}, 0, 32},
    };
    size_t n = sizeof(rows) / sizeof(rows[0]);
    float x[16], d_blas[8], d_scalar[8];
    int s_blas[8], s_scalar[8];
    for (size_t i = 0; i < n; i++)
        memcpy(x + 2 * i, rows[i].x, sizeof(rows[i].x));
    assert_int_equal(km_assign(km, x, n, s_blas, d_blas), 0);
    assert_int_equal(km_assign_scalar(km, x, n, s_scalar, d_scalar), 0);
    double inertia = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(s_blas[i], map[rows[i].nearest]);
        assert_int_equal(s_scalar[i], map[rows[i].nearest]);
        assert_float_equal(d_blas[i], rows[i].dist2, 1e-4);
        assert_float_equal(d_scalar[i], rows[i].dist2, 0);
        inertia += rows[i].dist2;
    }
    assert_float_equal(km_inertia(km, x, n), inertia, 1e-3);
    /* dist2 may be NULL */
    assert_int_equal(km_assign(km, x, 1, s_blas, NULL), 0);
    km_destroy(km);
}

static void test_unseeded(void **state)
{
    (void)state;
    km_t *km = km_new(4, 3, 1, 0, 0.01);
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    int seg[3] = {5, 5, 5};
    assert_int_equal(km_assign(km, x, 3, seg, NULL), -1);
    assert_int_equal(seg[0], -1);
    assert_int_equal(km_assign_scalar(km, x, 3, seg, NULL), -1);
    assert_true(isnan(km_inertia(km, x, 3)));
    /* fewer than k rows before seeding: ignored */
    assert_int_equal(km_partial_fit(km, x, 3), 0);
    assert_false(km_is_seeded(km));
    assert_int_equal((int)km_segment_version(km), 0);
    char label[32];
    assert_int_equal(km_label(km, 0, NULL, label, sizeof(label)), -1);
    km_destroy(km);
    km_destroy(NULL);
    assert_null(km_new(0, 3, 1, 0, 0));
    assert_null(km_new(2, 0, 1, 0, 0));
    assert_null(km_new(2, 3, 1, -1, 0));
    assert_null(km_new(2, 3, 1, 0, 1.0));
    assert_null(km_new(2, 3, 1, 0, -0.1));
}

static float *gaussian(size_t n, int dim, uint64_t seed)
{
    rng_t r;
    rng_seed(&r, seed);
    float *x = malloc(n * dim * sizeof(float));
    for (size_t i = 0; i < n * dim; i++)
        x[i] = (float)rng_normal(&r);
    return x;
}

static void test_blas_and_scalar_agree(void **state)
{
    (void)state;
    const int k = 7, dim = 20;
    const size_t n = 3000; /* > one 1024-row chunk, with a partial last chunk */
    float *x = gaussian(n, dim, 99);
    km_t *km = km_new(k, dim, 3, 0, 0.01);
    assert_int_equal(km_partial_fit(km, x, 500), 0);
    int *sb = malloc(n * sizeof(int)), *ss = malloc(n * sizeof(int));
    float *db = malloc(n * sizeof(float)), *ds = malloc(n * sizeof(float));
    assert_int_equal(km_assign(km, x, n, sb, db), 0);
    assert_int_equal(km_assign_scalar(km, x, n, ss, ds), 0);
    for (size_t i = 0; i < n; i++) {
        if (sb[i] != ss[i])
            fail_msg("row %zu: blas segment %d, scalar %d", i, sb[i], ss[i]);
        if (fabsf(db[i] - ds[i]) > 1e-4f * (1 + ds[i]))
            fail_msg("row %zu: blas dist2 %g, scalar %g", i, db[i], ds[i]);
    }
    free(sb);
    free(ss);
    free(db);
    free(ds);
    free(x);
    km_destroy(km);
}

/* A row scored alone (the direct path) gets exactly what a plain loop per centre gives:
 * float dot products summed in coordinate order, then |x|^2 + (-2 x.c) + |c|^2, for k below,
 * at and past one vector block of centres. */
static void test_direct_path_bit_exact(void **state)
{
    (void)state;
    const int ks[] = {1, 7, 8, 9, 17};
    const int dim = 22;
    const size_t n = 400;
    float *x = gaussian(n, dim, 5);
    for (size_t q = 0; q < sizeof(ks) / sizeof(ks[0]); q++) {
        const int k = ks[q];
        km_t *km = km_new(k, dim, 11, 0, 0.01);
        assert_int_equal(km_partial_fit(km, x, n), 0);
        for (size_t i = 0; i < n; i++) {
            const float *xi = x + i * dim;
            int seg;
            float dist2;
            assert_int_equal(km_assign(km, xi, 1, &seg, &dist2), 0);
            float xx = 0;
            for (int t = 0; t < dim; t++)
                xx += xi[t] * xi[t];
            int best = 0;
            float best_v = INFINITY;
            for (int j = 0; j < k; j++) {
                const double *c = km_centre(km, j);
                float dot = 0, nrm = 0;
                for (int t = 0; t < dim; t++) {
                    dot += xi[t] * (float)c[t];
                    nrm += (float)c[t] * (float)c[t];
                }
                float v = xx + -2.0f * dot + nrm;
                if (v < best_v) {
                    best_v = v;
                    best = j;
                }
            }
            if (seg != best || dist2 != (best_v > 0 ? best_v : 0))
                fail_msg("k %d row %zu: segment %d dist2 %.9g, plain loop %d %.9g", k, i, seg,
                         dist2, best, best_v);
        }
        km_destroy(km);
    }
    free(x);
}

/* 5 blobs in 8 dims, centres 6 apart on distinct axes pairs, noise sd 0.3. */
static void test_recovers_planted_blobs(void **state)
{
    (void)state;
    const int k = 5, dim = 8;
    const size_t n = 6000, batch = 100;
    float planted[5][8] = {{0}};
    for (int b = 0; b < k; b++) {
        planted[b][b] = 6;
        planted[b][(b + 3) % dim] = b % 2 ? -6 : 3;
    }
    rng_t r;
    rng_seed(&r, 2024);
    float *x = malloc(n * dim * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        int b = (int)rng_below(&r, (uint64_t)k);
        for (int t = 0; t < dim; t++)
            x[i * dim + t] = planted[b][t] + 0.3f * (float)rng_normal(&r);
    }
    km_t *km = km_new(k, dim, 11, 0, 0.01);
    for (size_t off = 0; off < n; off += batch)
        assert_int_equal(km_partial_fit(km, x + off * dim, batch), 0);
    int used[5] = {0};
    for (int b = 0; b < k; b++) {
        int best = -1;
        double best_d = INFINITY;
        for (int j = 0; j < k; j++) {
            const double *c = km_centre(km, j);
            double d = 0;
            for (int t = 0; t < dim; t++)
                d += (c[t] - planted[b][t]) * (c[t] - planted[b][t]);
            if (d < best_d) {
                best_d = d;
                best = j;
            }
        }
        if (sqrt(best_d) >= 0.1)
            fail_msg("blob %d: nearest centre %d is %.4f away", b, best, sqrt(best_d));
        assert_int_equal(used[best], 0);
        used[best] = 1;
    }
    /* inertia ~ n * dim * 0.09 */
    double inertia = km_inertia(km, x, n);
    assert_true(inertia > 0.9 * n * dim * 0.09 && inertia < 1.1 * n * dim * 0.09);
    free(x);
    km_destroy(km);
}

static void test_forgetting_decays_counts(void **state)
{
    (void)state;
    const float centres[4] = {0, 0, 10, 10};
    km_t *km = km_with_centres(2, 2, centres, 8, 0);
    int c0 = centre_index_of(km, centres), c1 = centre_index_of(km, centres + 2);
    float batch[8] = {1, 0, 1, 0, 1, 0, 1, 0}; /* 4 rows at (1, 0), all nearest centre 0 */
    assert_int_equal(km_partial_fit(km, batch, 4), 0);
    double f = exp2(-4.0 / 8);
    assert_float_equal(km_count(km, c1), f, 1e-15);
    assert_float_equal(km_count(km, c0), f + 4, 1e-12);
    /* centre 0 = (f * (0,0) + 4 * (1,0)) / (f + 4) */
    assert_float_equal(km_centre(km, c0)[0], 4 / (f + 4), 1e-12);
    assert_float_equal(km_centre(km, c0)[1], 0, 0);
    assert_float_equal(km_centre(km, c1)[0], 10, 0);
    km_destroy(km);
}

static void test_starved_centre_reassigned(void **state)
{
    (void)state;
    const float centres[6] = {0, 0, 10, 0, 100, 100};
    for (int with_ratio = 0; with_ratio < 2; with_ratio++) {
        km_t *km = km_with_centres(3, 2, centres, 0, with_ratio ? 0.2 : 0);
        int far = centre_index_of(km, centres + 4);
        int near0 = centre_index_of(km, centres), near10 = centre_index_of(km, centres + 2);
        assert_int_equal((int)km_segment_version(km), 1);
        /* 30 rows alternating near (0,0) and (10,0): the far centre gets nothing */
        float batch[60];
        for (int i = 0; i < 30; i++) {
            batch[2 * i] = (i % 2 ? 10.0f : 0.0f) + 0.01f * (float)i;
            batch[2 * i + 1] = 0.02f * (float)(i % 5);
        }
        assert_int_equal(km_partial_fit(km, batch, 30), 0);
        const double *c = km_centre(km, far);
        if (!with_ratio) {
            assert_int_equal((int)km_segment_version(km), 1);
            assert_float_equal(c[0], 100, 0);
            assert_float_equal(km_count(km, far), 1, 0);
        } else {
            /* counts 16, 16, 1: 1 < 0.2 * 16, checked since 30 >= 10 k */
            assert_int_equal((int)km_segment_version(km), 2);
            int on_a_row = 0;
            for (int i = 0; i < 30; i++)
                on_a_row |= c[0] == batch[2 * i] && c[1] == batch[2 * i + 1];
            assert_true(on_a_row);
            assert_float_equal(km_count(km, far), 16, 0);
            /* the other segment ids still name the same clusters */
            assert_true(km_centre(km, near0)[0] < 1 && km_centre(km, near10)[0] > 9);
        }
        km_destroy(km);
    }
}

static void encode(const km_t *km, mw_buf_t *b)
{
    memset(b, 0, sizeof(*b));
    km_encode(km, b);
    assert_false(b->failed);
}

static void test_deterministic_and_roundtrip(void **state)
{
    (void)state;
    const int k = 6, dim = 20;
    const size_t n = 4000;
    float *x = gaussian(n, dim, 5);
    mw_buf_t b[3];
    for (int run = 0; run < 3; run++) {
        km_t *km = km_new(k, dim, run < 2 ? 42 : 43, 500, 0.05);
        size_t sizes[] = {3, 200, 17, 1000, 1, 780, 1999}; /* 4000 rows; the 3 is ignored (< k) */
        size_t off = 0;
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            assert_int_equal(km_partial_fit(km, x + off * dim, sizes[s]), 0);
            off += sizes[s];
        }
        encode(km, &b[run]);
        km_destroy(km);
    }
    assert_int_equal(b[0].len, b[1].len);
    assert_memory_equal(b[0].data, b[1].data, b[0].len);
    assert_true(b[0].len != b[2].len || memcmp(b[0].data, b[2].data, b[0].len) != 0);
    /* decode -> encode is byte-identical and the decoded model keeps learning identically */
    char err[200];
    mw_reader_t r = {.p = b[0].data, .len = b[0].len};
    km_t *back = km_decode(&r, err, sizeof(err));
    assert_non_null(back);
    assert_int_equal(r.off, r.len);
    mw_buf_t again;
    encode(back, &again);
    assert_int_equal(again.len, b[0].len);
    assert_memory_equal(again.data, b[0].data, again.len);
    km_destroy(back);
    for (int i = 0; i < 3; i++)
        free(b[i].data);
    free(again.data);
    free(x);
}

static void test_labels(void **state)
{
    (void)state;
    const float centres[6] = {2.0f, -1.0f, 0.1f, 0.1f, 0.2f, -0.8f};
    km_t *km = km_with_centres(2, 3, centres, 0, 0);
    int a = centre_index_of(km, centres), b = centre_index_of(km, centres + 3);
    const char *const names[3] = {"revenue_90d", "active_days_30d", "sessions_trend_7d"};
    char buf[96];
    assert_int_equal(km_label(km, a, names, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "high revenue_90d, low active_days_30d");
    assert_int_equal(km_label(km, b, names, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "falling sessions_trend_7d");
    assert_int_equal(km_label(km, a, NULL, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "high f0, low f1");
    assert_int_equal(km_label(km, a, names, buf, 8), 0);
    assert_string_equal(buf, "high re");
    assert_int_equal(km_label(km, 2, names, buf, sizeof(buf)), -1);
    assert_int_equal(km_label(km, -1, names, buf, sizeof(buf)), -1);
    km_destroy(km);
    const float flat[4] = {0.1f, 0.2f, -0.3f, 0.4f};
    km = km_with_centres(2, 2, flat, 0, 0);
    assert_int_equal(km_label(km, 0, NULL, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "average");
    km_destroy(km);
}

int main(void)
{
    openblas_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assign_table),
        cmocka_unit_test(test_unseeded),
        cmocka_unit_test(test_blas_and_scalar_agree),
        cmocka_unit_test(test_direct_path_bit_exact),
        cmocka_unit_test(test_recovers_planted_blobs),
        cmocka_unit_test(test_forgetting_decays_counts),
        cmocka_unit_test(test_starved_centre_reassigned),
        cmocka_unit_test(test_deterministic_and_roundtrip),
        cmocka_unit_test(test_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
