/* BG/CNBD-k (bgnbd.h): log-likelihood, P(alive) and P(none in h) against direct numerical
 * integration over lambda and p (mpmath, no closed form), k = 1 against BG/NBD on a grid, the
 * fit on seeded simulations of Erlang-k buyers (planted parameters within 3 SEs, the
 * table's log-likelihood equal to the sum of the per-customer one, a maximum of it), k = 1
 * fitting exactly as bgnbd_fit, and the refusals (k outside 1..BGCNBD_K_MAX, bad inputs). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bgnbd.h"
#include "btyd_sim.h"
#include "gen.h"
#include "rng.h"

/* mpmath (30 digits) double integrals of the individual likelihood over Gamma(r, alpha) x
 * Beta(a, b), without the gaps' constant: A = alive and silent through T (T + h for
 * P(none)), B = dropped right after t_x (tests/tools/bgcnbd_reference.py);
 * LL = ln(A + B), P(alive) = A / (A + B), P(none) = (A_h + B) / (A + B). */
static const struct {
    int k;
    bgnbd_params_t p;
    double x, t_x, T, h, ll, p_alive, p_none;
} REF[] = {
    {2,
     {1.3, 9.5, 0.8, 3.0},
     4,
     30,
     50,
     90,
     -22.0879161950334,
     0.406667318820066,
     0.593479580941181},
    {3,
     {0.7, 20.0, 0.5, 2.0},
     2,
     10,
     60,
     90,
     -16.9758913991175,
     0.113616505120559,
     0.887528751668702},
    {1,
     {1.3, 9.5, 0.8, 3.0},
     4,
     30,
     50,
     90,
     -14.8990879592408,
     0.460985005082704,
     0.542506626363393},
};

static void test_reference_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(REF) / sizeof(REF[0]); i++) {
        const bgnbd_params_t *p = &REF[i].p;
        int k = REF[i].k;
        assert_float_equal(bgcnbd_loglik(p, k, REF[i].x, REF[i].t_x, REF[i].T), REF[i].ll, 1e-11);
        assert_float_equal(bgcnbd_p_alive(p, k, REF[i].x, REF[i].t_x, REF[i].T), REF[i].p_alive,
                           1e-12);
        assert_float_equal(bgcnbd_p_none(p, k, REF[i].x, REF[i].t_x, REF[i].T, REF[i].h),
                           REF[i].p_none, 1e-12);
    }
}

/* k = 1 is BG/NBD: the same three functions on a grid of summaries and parameters. */
static void test_k1_is_bgnbd(void **state)
{
    (void)state;
    const bgnbd_params_t ps[] = {{0.243, 4.414, 0.793, 2.426},
                                 {0.7195, 66.0, 0.000485, 124.45},
                                 {1.3989, 9.548, 0.02395, 18.95}};
    const double xs[] = {0, 1, 3, 40}, gaps[] = {0, 0.5, 20, 300};
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 4; j++)
            for (size_t g = 0; g < 4; g++) {
                double x = xs[j], t_x = x > 0 ? 10 * x : 0, T = t_x + gaps[g];
                if (T == 0)
                    T = 1;
                double want = bgnbd_loglik(&ps[i], x, t_x, T);
                assert_float_equal(bgcnbd_loglik(&ps[i], 1, x, t_x, T), want,
                                   1e-12 * (1 + fabs(want)));
                assert_float_equal(bgcnbd_p_alive(&ps[i], 1, x, t_x, T),
                                   bgnbd_p_alive(&ps[i], x, t_x, T), 1e-12);
                assert_float_equal(bgcnbd_p_none(&ps[i], 1, x, t_x, T, 90),
                                   bgnbd_p_none(&ps[i], x, t_x, T, 90), 1e-12);
            }
}

/* An Erlang-k gap (k = *(int *)opaque) of rate lambda. */
static double erlang_gap(rng_t *rg, double lambda, void *opaque)
{
    return gen_gamma(rg, *(const int *)opaque, 1 / lambda);
}

/* n BG/CNBD-k customers (continuous time), T uniform in [t_min, t_max]: Erlang-k gaps of
 * rate lambda ~ Gamma(r, alpha), drop-out after each repeat with p ~ Beta(a, b). */
static void simulate(bgnbd_table_t *t, double (*rows)[3], const bgnbd_params_t *p, int k, int n,
                     double t_min, double t_max, uint64_t seed)
{
    rng_t rg;
    rng_seed(&rg, seed);
    for (int i = 0; i < n; i++) {
        double lambda = gen_gamma(&rg, p->r, 1 / p->alpha);
        double drop = gen_beta(&rg, p->a, p->b);
        double T = t_min + (t_max - t_min) * rng_uniform(&rg);
        double x, tx;
        btyd_customer(&rg, lambda, drop, T, erlang_gap, &k, &x, &tx);
        rows[i][0] = x;
        rows[i][1] = tx;
        rows[i][2] = T;
        assert_int_equal(bgnbd_table_add(t, x, tx, T, 1), 0);
    }
}

static double sum_ll(double (*rows)[3], int n, const bgnbd_params_t *p, int k)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += bgcnbd_loglik(p, k, rows[i][0], rows[i][1], rows[i][2]);
    return s;
}

static void test_fit_recovers_planted(void **state)
{
    (void)state;
    /* regular buyers: mean gap k / lambda of about 30 days, 10% drop-out per repeat */
    const bgnbd_params_t truth = {2.0, 15.0, 1.0, 9.0};
    const int ks[] = {2, 4, 8};
    enum { N = 3000 };
    double(*rows)[3] = malloc(N * sizeof(*rows));
    assert_non_null(rows);
    for (size_t s = 0; s < 3; s++) {
        int k = ks[s];
        bgnbd_params_t planted = truth;
        planted.alpha = truth.alpha / k; /* the same mean gap for every k */
        bgnbd_table_t *t = bgnbd_table_new();
        simulate(t, rows, &planted, k, N, 200, 400, 77 + s);
        bgnbd_params_t p;
        bgnbd_params_default(&p);
        bgnbd_fit_info_t info;
        assert_int_equal(bgcnbd_fit(t, k, &p, 100, &info), 0);
        assert_true(info.converged);
        double fit[4] = {p.r, p.alpha, p.a, p.b},
               want[4] = {planted.r, planted.alpha, planted.a, planted.b};
        for (int j = 0; j < 4; j++) {
            double z = fabs(log(fit[j]) - log(want[j])) / (info.se[j] / fit[j]);
            if (!(z <= 3))
                fail_msg("k=%d: param %d fitted %.5g (se %.3g), planted %.5g: %.2f se", k, j,
                         fit[j], info.se[j], want[j], z);
        }
        /* the table's LL is the customers' LL summed, and the fit is a maximum of it */
        double ll = sum_ll(rows, N, &p, k);
        assert_float_equal(info.loglik, ll, 1e-9 * fabs(ll));
        for (int j = 0; j < 4; j++)
            for (int sign = -1; sign <= 1; sign += 2) {
                bgnbd_params_t q = p;
                double *th[4] = {&q.r, &q.alpha, &q.a, &q.b};
                *th[j] *= exp(sign * 0.01);
                assert_true(sum_ll(rows, N, &q, k) < ll);
            }
        bgnbd_table_destroy(t);
    }
    free(rows);
}

/* The shared driver at k = 1 is bgnbd_fit: the same parameters bit for bit. */
static void test_k1_fit_is_bgnbd_fit(void **state)
{
    (void)state;
    enum { N = 2000 };
    double(*rows)[3] = malloc(N * sizeof(*rows));
    assert_non_null(rows);
    bgnbd_table_t *t = bgnbd_table_new();
    const bgnbd_params_t truth = {0.7, 60, 0.5, 5};
    simulate(t, rows, &truth, 1, N, 30, 300, 5);
    bgnbd_params_t p1, p2;
    bgnbd_params_default(&p1);
    bgnbd_params_default(&p2);
    assert_int_equal(bgnbd_fit(t, &p1, 30, NULL), 0);
    assert_int_equal(bgcnbd_fit(t, 1, &p2, 30, NULL), 0);
    assert_memory_equal(&p1, &p2, sizeof(p1));
    /* and k out of range is refused, *p untouched */
    bgnbd_params_t p3 = p1;
    assert_int_equal(bgcnbd_fit(t, 0, &p3, 30, NULL), -1);
    assert_int_equal(bgcnbd_fit(t, BGCNBD_K_MAX + 1, &p3, 30, NULL), -1);
    assert_memory_equal(&p1, &p3, sizeof(p1));
    bgnbd_table_destroy(t);
    free(rows);
}

/* A thinned table keeps every stride-th row with its weight times the stride: at most
 * max_rows rows, about the same total weight, a copy when small enough; a fit on it lands
 * near the full table's. */
static void test_thin(void **state)
{
    (void)state;
    enum { N = 3000 };
    double(*rows)[3] = malloc(N * sizeof(*rows));
    assert_non_null(rows);
    bgnbd_table_t *t = bgnbd_table_new(), *thin = bgnbd_table_new();
    const bgnbd_params_t truth = {2.0, 15.0 / 4, 1.0, 9.0};
    simulate(t, rows, &truth, 4, N, 200, 400, 9);
    size_t n = bgnbd_table_rows(t);
    assert_true(n > 1000);
    assert_int_equal(bgnbd_table_thin(t, n, thin), 0);
    assert_int_equal(bgnbd_table_rows(thin), n);
    assert_true(bgnbd_table_weight(thin) == bgnbd_table_weight(t));
    assert_int_equal(bgnbd_table_thin(t, 500, thin), 0);
    size_t stride = (n + 499) / 500;
    assert_true(bgnbd_table_rows(thin) <= 500 && bgnbd_table_rows(thin) >= n / stride);
    assert_true(fabs(bgnbd_table_weight(thin) - bgnbd_table_weight(t)) <= (double)stride);
    bgnbd_params_t full, part;
    bgnbd_params_default(&full);
    bgnbd_params_default(&part);
    bgnbd_fit_info_t fi;
    assert_int_equal(bgcnbd_fit(t, 4, &full, 100, &fi), 0);
    assert_int_equal(bgcnbd_fit(thin, 4, &part, 100, NULL), 0);
    double a[4] = {full.r, full.alpha, full.a, full.b}, b[4] = {part.r, part.alpha, part.a, part.b};
    for (int j = 0; j < 4;
         j++) /* a sample of a sixth of the rows: within 3 full-table SEs x sqrt(6) */
        assert_true(fabs(log(a[j]) - log(b[j])) <= 3 * sqrt((double)stride) * fi.se[j] / a[j]);
    bgnbd_table_destroy(t);
    bgnbd_table_destroy(thin);
    free(rows);
}

static void test_refusals_and_extremes(void **state)
{
    (void)state;
    const bgnbd_params_t p = {1.3, 9.5, 0.8, 3.0};
    assert_true(isnan(bgcnbd_p_none(&p, 0, 1, 1, 2, 90)));
    assert_true(isnan(bgcnbd_p_alive(&p, BGCNBD_K_MAX + 1, 1, 1, 2)));
    assert_true(isnan(bgcnbd_loglik(&p, -3, 1, 1, 2)));
    const double vals[] = {-1, 0, 0.5, 1, 7, 1e4, 1e7, NAN, INFINITY};
    for (int k = 1; k <= BGCNBD_K_MAX; k++)
        for (size_t i = 0; i < 9; i++)
            for (size_t j = 0; j < 9; j++)
                for (size_t l = 0; l < 9; l++) {
                    double x = vals[i], t_x = vals[j], T = vals[l];
                    double pn = bgcnbd_p_none(&p, k, x, t_x, T, 90);
                    double pa = bgcnbd_p_alive(&p, k, x, t_x, T);
                    assert_false(isnan(pn) || isnan(pa));
                    assert_true(pn >= 0 && pn <= 1 && pa >= 0 && pa <= 1);
                    assert_false(isnan(bgcnbd_loglik(&p, k, x, t_x, T)));
                }
    /* h <= 0: nothing can happen */
    assert_true(bgcnbd_p_none(&p, 4, 3, 10, 20, 0) == 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_values),
        cmocka_unit_test(test_k1_is_bgnbd),
        cmocka_unit_test(test_fit_recovers_planted),
        cmocka_unit_test(test_k1_fit_is_bgnbd_fit),
        cmocka_unit_test(test_thin),
        cmocka_unit_test(test_refusals_and_extremes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
