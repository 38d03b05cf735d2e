/* BG/NBD: the reference table of /work/shared/notes/bgnbd.md (paper parameters), the
 * days-vs-weeks rescaling, digamma/trigamma and eq. 10 (expected) against mpmath, the
 * collapsed table, stationarity of the fit and its Hessian against finite differences,
 * recovery of planted parameters from seeded simulations (sparse, medium, frequent), warm
 * start, determinism, degenerate tables and extreme inputs. */
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
#include "rng.h"

/* Fader, Hardie & Lee (2005), CDNOW fit in weeks. */
static const bgnbd_params_t PAPER = {0.243, 4.414, 0.793, 2.426};
/* The two fits of bgnbd.md (weeks), converted to days (alpha * 7). */
static const bgnbd_params_t RETAIL_DAYS = {0.7195, 9.4310 * 7, 0.000485, 124.45};
static const bgnbd_params_t JOURNEY_DAYS = {1.3989, 1.3640 * 7, 0.02395, 18.950};

/* bgnbd.md: per-customer values at PAPER, h = 13 weeks. */
static const struct {
    double x, t_x, T, ll, p_alive, p_none13;
} REF[] = {
    {0, 0.0, 38.86, -0.554713, 1.000000, 0.938163},
    {1, 1.0, 38.86, -4.346507, 0.187631, 0.947733},
    {2, 30.43, 38.86, -9.458606, 0.726579, 0.676509},
    {5, 36.0, 38.86, -17.906027, 0.849897, 0.364511},
    {10, 10.0, 38.86, -18.924371, 0.000185, 0.999827},
    {2, 2.0, 10.0, -6.427102, 0.412687, 0.684903},
    {0, 0.0, 1.0, -0.049622, 1.000000, 0.742701},
    {20, 37.0, 38.0, -38.488280, 0.943404, 0.060806},
};
#define NREF (sizeof(REF) / sizeof(REF[0]))

static void test_reference_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NREF; i++) {
        double ll = bgnbd_loglik(&PAPER, REF[i].x, REF[i].t_x, REF[i].T);
        double pa = bgnbd_p_alive(&PAPER, REF[i].x, REF[i].t_x, REF[i].T);
        double pn = bgnbd_p_none(&PAPER, REF[i].x, REF[i].t_x, REF[i].T, 13);
        if (fabs(ll - REF[i].ll) > 1e-5 || fabs(pa - REF[i].p_alive) > 1e-5 ||
            fabs(pn - REF[i].p_none13) > 1e-5)
            fail_msg("row %zu: ll %.6f p_alive %.6f p_none %.6f, want %.6f %.6f %.6f", i, ll, pa,
                     pn, REF[i].ll, REF[i].p_alive, REF[i].p_none13);
    }
}

/* Days vs weeks: alpha * 7, times * 7; LL shifts by -x ln 7, probabilities and the expected
 * count do not change. */
static void test_days_weeks_rescaling(void **state)
{
    (void)state;
    bgnbd_params_t days = PAPER;
    days.alpha *= 7;
    for (size_t i = 0; i < NREF; i++) {
        double x = REF[i].x, tx = REF[i].t_x, T = REF[i].T;
        double llw = bgnbd_loglik(&PAPER, x, tx, T), lld = bgnbd_loglik(&days, x, 7 * tx, 7 * T);
        assert_float_equal(lld, llw - x * log(7), 1e-10);
        assert_float_equal(bgnbd_p_alive(&days, x, 7 * tx, 7 * T), bgnbd_p_alive(&PAPER, x, tx, T),
                           1e-12);
        assert_float_equal(bgnbd_p_none(&days, x, 7 * tx, 7 * T, 91),
                           bgnbd_p_none(&PAPER, x, tx, T, 13), 1e-12);
        double ed = bgnbd_expected(&days, x, 7 * tx, 7 * T, 91);
        double ew = bgnbd_expected(&PAPER, x, tx, T, 13);
        assert_float_equal(ed, ew, 1e-10 * (1 + ew));
    }
    /* bgnbd.md's worked example, third row */
    assert_float_equal(bgnbd_loglik(&days, 2, 7 * 30.43, 7 * 38.86), -13.350427, 1e-6);
}

static void test_digamma_trigamma(void **state)
{
    (void)state;
    /* mpmath 1.3 at 40 digits: digamma(x), psi(1, x). */
    static const double V[][3] = {
        {1e-8, -100000000.57721564845, 10000000000000001.645},
        {1e-3, -1000.5755719318103005, 1000001.642533195869},
        {0.243, -4.351093864423210616, 18.141779787095828626},
        {0.5, -1.9635100260214234794, 4.9348022005446793094},
        {1, -0.57721566490153286061, 1.6449340668482264365},
        {2.426, 0.66620791496879617878, 0.50847184848025801516},
        {9.999, 2.2516474172057352559, 0.10517738667672886828},
        {10, 2.2517525890667211076, 0.10516633568168574612},
        {10.5, 2.3030010342976863753, 0.099916956059126733204},
        {124.45, 4.819880970487844852, 0.0080677255026098291027},
        {1e4, 9.2102903711428494036, 0.00010000500016666666633},
        {1e12, 27.631021115928048208, 1.0000000000005e-12},
    };
    for (size_t i = 0; i < sizeof(V) / sizeof(V[0]); i++) {
        double d = bgnbd_digamma(V[i][0]), t = bgnbd_trigamma(V[i][0]);
        if (fabs(d - V[i][1]) > 1e-14 * fmax(1, fabs(V[i][1])) ||
            fabs(t - V[i][2]) > 1e-13 * fabs(V[i][2]))
            fail_msg("x=%g: digamma %.17g (want %.17g), trigamma %.17g (want %.17g)", V[i][0], d,
                     V[i][1], t, V[i][2]);
    }
    assert_true(isnan(bgnbd_digamma(0)) && isnan(bgnbd_trigamma(-1)));
}

/* Eq. 10 with mpmath 1.3 at 60 digits, straight from the paper's formula:
 *   (a+b+x-1)/(a-1) [1 - ((al+T)/(al+T+t))^(r+x) hyp2f1(r+x, b+x, a+b+x-1, t/(al+T+t))]
 *   / (1 + [x>0] a/(b+x-1) ((al+T)/(al+tx))^(r+x)),
 * a = 1 evaluated at a = 1 + 1e-40. Columns: r, alpha, a, b, x, t_x, T, h, E[Y]. */
static const double EXPECTED_REF[][9] = {
    {0.243, 4.414, 0.793, 2.426, 0, 0, 38.86, 13, 6.992659460176553e-02},
    {0.243, 4.414, 0.793, 2.426, 2, 30.43, 38.86, 39, 1.226028174767144e+00},
    {0.243, 4.414, 0.793, 2.426, 5, 36, 38.86, 13, 1.232167192261914e+00},
    {0.243, 4.414, 0.793, 2.426, 20, 37, 38, 52, 1.699523279531819e+01},
    {0.7195, 66.017, 0.000485, 124.45, 0, 0, 1, 91, 9.769790498581985e-01},
    {0.7195, 66.017, 0.000485, 124.45, 12, 200, 250, 91, 3.662554219738287e+00},
    {1.3989, 9.548, 0.02395, 18.95, 60, 270, 271, 91, 1.985170580597554e+01},
    {1.3989, 9.548, 0.02395, 18.95, 150, 265, 271, 91, 4.876797123588788e+01},
    {0.5, 3, 1.0, 3, 3, 10, 20, 30, 1.348449740696129e+00},
    {0.5, 3, 1.000000001, 3, 3, 10, 20, 30, 1.348449739542323e+00},
    {0.5, 3, 0.9999999, 3, 3, 10, 20, 30, 1.348449856076751e+00},
    {0.5, 3, 0.3, 0.4, 0, 0, 5, 10, 4.796554516597255e-01},
    {2.0, 1.0, 1e-05, 2.0, 1, 0.5, 1.0, 300, 4.499749893228590e+02},
};

static void test_expected_vs_mpmath(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(EXPECTED_REF) / sizeof(EXPECTED_REF[0]); i++) {
        const double *c = EXPECTED_REF[i];
        bgnbd_params_t p = {c[0], c[1], c[2], c[3]};
        double e = bgnbd_expected(&p, c[4], c[5], c[6], c[7]);
        if (fabs(e - c[8]) > 1e-11 * c[8])
            fail_msg("case %zu: expected %.17g, mpmath %.17g", i, e, c[8]);
    }
    /* h -> 0: nothing expected; growing h: more expected */
    assert_true(bgnbd_expected(&PAPER, 2, 30, 38, 0) == 0);
    double prev = 0;
    for (double h = 1; h < 5000; h *= 2) {
        double e = bgnbd_expected(&PAPER, 2, 30, 38, h);
        assert_true(e > prev);
        prev = e;
    }
}

/* ---- table ---- */

static void test_table_collapses_and_validates(void **state)
{
    (void)state;
    bgnbd_table_destroy(NULL);
    bgnbd_table_t *t = bgnbd_table_new();
    assert_non_null(t);
    assert_int_equal(bgnbd_table_add(t, 2, 10, 30, 1), 0);
    assert_int_equal(bgnbd_table_add(t, 2, 10, 30, 2.5), 0);
    assert_int_equal(bgnbd_table_add(t, 0, 0, 30, 1), 0);
    assert_int_equal(bgnbd_table_add(t, 0, 7, 30, 1), 0); /* t_x ignored for x = 0 */
    assert_int_equal(bgnbd_table_add(t, -0.0, -0.0, 30, 1), 0);
    assert_int_equal(bgnbd_table_add(t, 2, 11, 30, 1), 0);
    assert_int_equal(bgnbd_table_add(t, 2, 10, 30, 1), 0); /* not the newest row: by hash */
    assert_int_equal(bgnbd_table_rows(t), 3);
    assert_float_equal(bgnbd_table_weight(t), 8.5, 0);
    /* invalid rows change nothing */
    assert_int_equal(bgnbd_table_add(t, 0.5, 0, 30, 1), -1);
    assert_int_equal(bgnbd_table_add(t, -1, 0, 30, 1), -1);
    assert_int_equal(bgnbd_table_add(t, 2, 31, 30, 1), -1);
    assert_int_equal(bgnbd_table_add(t, 2, -1, 30, 1), -1);
    assert_int_equal(bgnbd_table_add(t, 0, 0, 0, 1), -1);
    assert_int_equal(bgnbd_table_add(t, 2, 10, 30, 0), -1);
    assert_int_equal(bgnbd_table_add(t, 2, 10, 30, -1), -1);
    assert_int_equal(bgnbd_table_add(t, NAN, 10, 30, 1), -1);
    assert_int_equal(bgnbd_table_add(t, 2, 10, INFINITY, 1), -1);
    assert_int_equal(bgnbd_table_add(t, 2, 10, 30, NAN), -1);
    assert_int_equal(bgnbd_table_rows(t), 3);
    assert_float_equal(bgnbd_table_weight(t), 8.5, 0);
    /* total LL = the weighted per-customer LLs */
    double want = 4.5 * bgnbd_loglik(&PAPER, 2, 10, 30) + 3 * bgnbd_loglik(&PAPER, 0, 0, 30) +
                  bgnbd_loglik(&PAPER, 2, 11, 30);
    assert_float_equal(bgnbd_table_loglik(t, &PAPER), want, 1e-12 * fabs(want));
    bgnbd_table_clear(t);
    assert_int_equal(bgnbd_table_rows(t), 0);
    assert_float_equal(bgnbd_table_weight(t), 0, 0);
    assert_int_equal(bgnbd_table_add(t, 2, 10, 30, 1), 0);
    assert_int_equal(bgnbd_table_rows(t), 1);
    bgnbd_table_destroy(t);
}

/* Many rows (forces rehashing of all three indexes) agree with the per-customer sum. */
static void test_table_large(void **state)
{
    (void)state;
    bgnbd_table_t *t = bgnbd_table_new();
    double want = 0;
    for (int T = 1; T <= 400; T++)
        for (int x = 0; x <= 30; x += 3)
            for (int tx = x ? 1 : 0; tx <= (x ? T : 0); tx += 7) {
                assert_int_equal(bgnbd_table_add(t, x, tx, T, 1), 0);
                assert_int_equal(bgnbd_table_add(t, x, tx, T, 1), 0);
                want += 2 * bgnbd_loglik(&RETAIL_DAYS, x, tx, T);
            }
    double got = bgnbd_table_loglik(t, &RETAIL_DAYS);
    assert_float_equal(got, want, 1e-11 * fabs(want));
    assert_true(bgnbd_table_rows(t) > 50000);
    bgnbd_table_destroy(t);
}

/* ---- simulation ---- */

/* Gamma(shape k, scale 1): Marsaglia-Tsang, boosted by U^(1/k) for k < 1. */
static double gamma_draw(rng_t *r, double k)
{
    double boost = 1;
    if (k < 1) {
        boost = pow(rng_uniform(r), 1 / k);
        k += 1;
    }
    double d = k - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double z = rng_normal(r), v = 1 + c * z;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = rng_uniform(r);
        if (log(u) < 0.5 * z * z + d - d * v + d * log(v))
            return boost * d * v;
    }
}

/* An exponential gap by inversion (the draw these tests' seeded data were made with). */
static double exp_gap(rng_t *rg, double lambda, void *opaque)
{
    (void)opaque;
    return -log(1 - rng_uniform(rg)) / lambda;
}

/* n BG/NBD customers (continuous time), T uniform in [t_min, t_max]: Poisson rate
 * lambda ~ Gamma(r, alpha), drop-out after each repeat with p ~ Beta(a, b). Rows (x, t_x, T)
 * go to out[n][3]. */
static void simulate_rows(const bgnbd_params_t *p, int n, double t_min, double t_max, uint64_t seed,
                          double (*out)[3])
{
    rng_t rg;
    rng_seed(&rg, seed);
    for (int i = 0; i < n; i++) {
        double lambda = gamma_draw(&rg, p->r) / p->alpha;
        double ga = gamma_draw(&rg, p->a), gb = gamma_draw(&rg, p->b);
        double drop = ga + gb > 0 ? ga / (ga + gb) : 0;
        double T = t_min + (t_max - t_min) * rng_uniform(&rg);
        btyd_customer(&rg, lambda, drop, T, exp_gap, NULL, &out[i][0], &out[i][1]);
        out[i][2] = T;
    }
}

static void simulate(bgnbd_table_t *t, const bgnbd_params_t *p, int n, double t_min, double t_max,
                     uint64_t seed)
{
    double(*rows)[3] = malloc((size_t)n * sizeof(*rows));
    assert_non_null(rows);
    simulate_rows(p, n, t_min, t_max, seed, rows);
    for (int i = 0; i < n; i++)
        assert_int_equal(bgnbd_table_add(t, rows[i][0], rows[i][1], rows[i][2], 1), 0);
    free(rows);
}

static const struct {
    const char *name;
    const bgnbd_params_t *truth;
    double t_min, t_max;
    int n;
} SETS[] = {
    {"paper (sparse, weeks)", &PAPER, 27, 39, 5000},
    {"online retail (medium, days)", &RETAIL_DAYS, 1, 280, 5000},
    {"completejourney2 (frequent, days)", &JOURNEY_DAYS, 1, 270, 3000},
};
#define NSETS (sizeof(SETS) / sizeof(SETS[0]))

static void theta_of(const bgnbd_params_t *p, double th[4])
{
    th[0] = p->r;
    th[1] = p->alpha;
    th[2] = p->a;
    th[3] = p->b;
}

static void test_fit_recovers_planted(void **state)
{
    (void)state;
    for (size_t s = 0; s < NSETS; s++) {
        bgnbd_table_t *t = bgnbd_table_new();
        simulate(t, SETS[s].truth, SETS[s].n, SETS[s].t_min, SETS[s].t_max, 1000 + s);
        bgnbd_params_t p;
        bgnbd_params_default(&p);
        bgnbd_fit_info_t info;
        assert_int_equal(bgnbd_fit(t, &p, 100, &info), 0);
        assert_true(info.converged);
        double fit[4], want[4];
        theta_of(&p, fit);
        theta_of(SETS[s].truth, want);
        for (int k = 0; k < 4; k++) {
            /* within 3 SEs, compared on the log scale where the SE is symmetric */
            double z = fabs(log(fit[k]) - log(want[k])) / (info.se[k] / fit[k]);
            if (!(z <= 3))
                fail_msg("%s: param %d fitted %.5g (se %.3g), planted %.5g: %.2f se", SETS[s].name,
                         k, fit[k], info.se[k], want[k], z);
        }
        /* the fit beats the truth on its own data (up to the prior's tiny pull) */
        assert_true(info.loglik >= bgnbd_table_loglik(t, SETS[s].truth) - 0.05);
        assert_float_equal(info.loglik, bgnbd_table_loglik(t, &p), 1e-9 * fabs(info.loglik));
        bgnbd_table_destroy(t);
    }
}

/* Objective the fit minimizes, by finite differences of bgnbd_table_loglik. */
static double penalized(const bgnbd_table_t *t, const double q[4])
{
    bgnbd_params_t p = {exp(q[0]), exp(q[1]), exp(q[2]), exp(q[3])};
    double pen = 0;
    for (int k = 0; k < 4; k++)
        pen += 0.5 * BGNBD_PRIOR_PRECISION * q[k] * q[k];
    return -bgnbd_table_loglik(t, &p) + pen;
}

/* At the returned optimum the numerical gradient vanishes (checks the analytic gradient)
 * and the SEs match the inverse of a finite-difference Hessian (checks the analytic
 * Hessian). */
static void test_fit_stationary_and_se(void **state)
{
    (void)state;
    for (size_t s = 0; s < NSETS; s++) {
        bgnbd_table_t *t = bgnbd_table_new();
        simulate(t, SETS[s].truth, 2000, SETS[s].t_min, SETS[s].t_max, 77 + s);
        bgnbd_params_t p;
        bgnbd_params_default(&p);
        bgnbd_fit_info_t info;
        assert_int_equal(bgnbd_fit(t, &p, 100, &info), 0);
        /* eps: the weakly identified (a, b) of the Online Retail set have little curvature,
         * so smaller steps drown the second differences in the rounding of a ~1e4 LL. */
        double q[4] = {log(p.r), log(p.alpha), log(p.a), log(p.b)}, H[4][4], eps = 3e-3;
        for (int i = 0; i < 4; i++) {
            double qp[4], qm[4];
            memcpy(qp, q, sizeof(q));
            memcpy(qm, q, sizeof(q));
            qp[i] += eps;
            qm[i] -= eps;
            double g = (penalized(t, qp) - penalized(t, qm)) / (2 * eps);
            if (fabs(g) > 1e-6 * (1 + fabs(info.loglik)))
                fail_msg("%s: d objective / d q%d = %g at the fit", SETS[s].name, i, g);
            for (int j = 0; j < 4; j++) {
                double a[4], b[4], c[4], d[4];
                memcpy(a, q, sizeof(q));
                memcpy(b, q, sizeof(q));
                memcpy(c, q, sizeof(q));
                memcpy(d, q, sizeof(q));
                a[i] += eps, a[j] += eps;
                b[i] += eps, b[j] -= eps;
                c[i] -= eps, c[j] += eps;
                d[i] -= eps, d[j] -= eps;
                H[i][j] = (penalized(t, a) - penalized(t, b) - penalized(t, c) + penalized(t, d)) /
                          (4 * eps * eps);
            }
        }
        /* invert the 4x4 by Gauss-Jordan */
        double M[4][8];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 8; j++)
                M[i][j] = j < 4 ? H[i][j] : (j - 4 == i);
        for (int c = 0; c < 4; c++) {
            int piv = c;
            for (int i = c + 1; i < 4; i++)
                if (fabs(M[i][c]) > fabs(M[piv][c]))
                    piv = i;
            for (int j = 0; j < 8; j++) {
                double tmp = M[c][j];
                M[c][j] = M[piv][j];
                M[piv][j] = tmp;
            }
            double d = M[c][c];
            for (int j = 0; j < 8; j++)
                M[c][j] /= d;
            for (int i = 0; i < 4; i++)
                if (i != c) {
                    double f = M[i][c];
                    for (int j = 0; j < 8; j++)
                        M[i][j] -= f * M[c][j];
                }
        }
        double th[4];
        theta_of(&p, th);
        for (int k = 0; k < 4; k++) {
            double se = th[k] * sqrt(M[k][k + 4]);
            if (fabs(se - info.se[k]) > 2e-3 * se)
                fail_msg("%s: se[%d] %.6g, finite differences %.6g", SETS[s].name, k, info.se[k],
                         se);
        }
        bgnbd_table_destroy(t);
    }
}

static void test_fit_warm_start(void **state)
{
    (void)state;
    bgnbd_table_t *t = bgnbd_table_new();
    simulate(t, &RETAIL_DAYS, 5000, 1, 280, 5);
    bgnbd_params_t p;
    bgnbd_params_default(&p);
    bgnbd_fit_info_t cold, warm;
    assert_int_equal(bgnbd_fit(t, &p, 100, &cold), 0);
    assert_true(cold.converged && cold.iterations >= 3);
    /* same data: already converged */
    bgnbd_params_t again = p;
    assert_int_equal(bgnbd_fit(t, &again, 100, &warm), 0);
    assert_true(warm.converged);
    assert_int_equal(warm.iterations, 0);
    assert_memory_equal(&again, &p, sizeof(p));
    /* 2% more customers (the next tick's change): a few steps */
    simulate(t, &RETAIL_DAYS, 100, 1, 280, 6);
    assert_int_equal(bgnbd_fit(t, &again, 100, &warm), 0);
    assert_true(warm.converged);
    assert_in_range(warm.iterations, 1, 4);
    /* max_iter bounds the work; the result is still finite and usable */
    bgnbd_params_default(&p);
    assert_int_equal(bgnbd_fit(t, &p, 1, &cold), 0);
    assert_int_equal(cold.iterations, 1);
    assert_false(cold.converged);
    assert_true(isfinite(p.r) && isfinite(p.alpha) && isfinite(p.a) && isfinite(p.b));
    bgnbd_table_destroy(t);
}

static void test_fit_deterministic(void **state)
{
    (void)state;
    bgnbd_params_t p[2];
    bgnbd_fit_info_t info[2];
    for (int k = 0; k < 2; k++) {
        bgnbd_table_t *t = bgnbd_table_new();
        simulate(t, &JOURNEY_DAYS, 2000, 1, 270, 9);
        bgnbd_params_default(&p[k]);
        assert_int_equal(bgnbd_fit(t, &p[k], 100, &info[k]), 0);
        bgnbd_table_destroy(t);
    }
    assert_memory_equal(&p[0], &p[1], sizeof(p[0]));
    assert_memory_equal(&info[0], &info[1], sizeof(info[0]));
}

/* The same customers added in reverse order: the same fit up to summation rounding. */
static void test_fit_order_independent(void **state)
{
    (void)state;
    enum { N = 3000 };
    double(*rows)[3] = malloc(N * sizeof(*rows));
    assert_non_null(rows);
    simulate_rows(&PAPER, N, 27, 39, 21, rows);
    bgnbd_table_t *fwd = bgnbd_table_new(), *rev = bgnbd_table_new();
    for (int i = 0; i < N; i++) {
        assert_int_equal(bgnbd_table_add(fwd, rows[i][0], rows[i][1], rows[i][2], 1), 0);
        int j = N - 1 - i;
        assert_int_equal(bgnbd_table_add(rev, rows[j][0], rows[j][1], rows[j][2], 1), 0);
    }
    bgnbd_params_t pf, pr;
    bgnbd_params_default(&pf);
    bgnbd_params_default(&pr);
    assert_int_equal(bgnbd_fit(fwd, &pf, 100, NULL), 0);
    assert_int_equal(bgnbd_fit(rev, &pr, 100, NULL), 0);
    assert_float_equal(pf.r, pr.r, 1e-7 * pf.r);
    assert_float_equal(pf.alpha, pr.alpha, 1e-7 * pf.alpha);
    assert_float_equal(pf.a, pr.a, 1e-6 * pf.a);
    assert_float_equal(pf.b, pr.b, 1e-6 * pf.b);
    bgnbd_table_destroy(fwd);
    bgnbd_table_destroy(rev);
    free(rows);
}

static void test_fit_degenerate(void **state)
{
    (void)state;
    bgnbd_table_t *t = bgnbd_table_new();
    bgnbd_params_t p = PAPER;
    bgnbd_fit_info_t info;
    assert_int_equal(bgnbd_fit(t, &p, 50, &info), -1); /* empty */
    assert_memory_equal(&p, &PAPER, sizeof(p));
    assert_int_equal(bgnbd_table_add(t, 0, 0, 10, 5), 0);
    assert_int_equal(bgnbd_table_add(t, 0, 0, 20, 3), 0);
    assert_int_equal(bgnbd_fit(t, &p, 50, &info), -1); /* nobody came back */
    assert_memory_equal(&p, &PAPER, sizeof(p));
    /* one returning customer: identified only through the prior, but finite */
    assert_int_equal(bgnbd_table_add(t, 1, 3, 20, 1), 0);
    assert_int_equal(bgnbd_fit(t, &p, 50, &info), 0);
    assert_true(isfinite(p.r) && isfinite(p.alpha) && isfinite(p.a) && isfinite(p.b));
    for (int k = 0; k < 4; k++)
        assert_false(isnan(info.se[k]));
    /* everyone buys every day up to the tick: no drop-out, a runs into the box */
    bgnbd_table_clear(t);
    for (int T = 2; T < 100; T++)
        assert_int_equal(bgnbd_table_add(t, T - 1, T - 1, T, 10), 0);
    bgnbd_params_default(&p);
    assert_int_equal(bgnbd_fit(t, &p, 200, &info), 0);
    double th[4];
    theta_of(&p, th);
    for (int k = 0; k < 4; k++) {
        assert_true(isfinite(th[k]) && th[k] > 0);
        assert_true(fabs(log(th[k])) <= BGNBD_LOG_MAX + 1e-12);
        assert_false(isnan(info.se[k]));
    }
    assert_true(isfinite(info.loglik));
    /* an invalid start is replaced by the default */
    p = (bgnbd_params_t){NAN, -1, 0, INFINITY};
    assert_int_equal(bgnbd_fit(t, &p, 200, &info), 0);
    assert_true(isfinite(p.r) && isfinite(p.alpha) && isfinite(p.a) && isfinite(p.b));
    bgnbd_table_destroy(t);
}

static void test_extreme_inputs_never_nan(void **state)
{
    (void)state;
    const bgnbd_params_t ps[] = {PAPER,
                                 RETAIL_DAYS,
                                 JOURNEY_DAYS,
                                 {1e-5, 1e-5, 1e-5, 1e-5},
                                 {1e5, 1e5, 1e5, 1e5},
                                 {6e-6, 1.6e5, 6e-6, 1.6e5},
                                 {1.6e5, 6e-6, 1.6e5, 6e-6}};
    const double xs[] = {0, 1, 1.5, 2, 40, 1e4, 1e7, -3, 0.2, NAN};
    const double Ts[] = {0, 1e-300, 1e-9, 1, 365, 1e6, 1e12};
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
        for (size_t j = 0; j < sizeof(xs) / sizeof(xs[0]); j++)
            for (size_t k = 0; k < sizeof(Ts) / sizeof(Ts[0]); k++)
                for (int f = 0; f < 3; f++) {
                    double T = Ts[k], tx = f == 0 ? 0 : f == 1 ? T / 2 : T * 2;
                    double ll = bgnbd_loglik(&ps[i], xs[j], tx, T);
                    double pa = bgnbd_p_alive(&ps[i], xs[j], tx, T);
                    double pn = bgnbd_p_none(&ps[i], xs[j], tx, T, 91);
                    double ey = bgnbd_expected(&ps[i], xs[j], tx, T, 91);
                    if (isnan(ll) || ll == INFINITY || !(pa >= 0 && pa <= 1) ||
                        !(pn >= 0 && pn <= 1) || !(ey >= 0 && isfinite(ey)))
                        fail_msg("params %zu x=%g t_x=%g T=%g: ll %g p_alive %g p_none %g E %g", i,
                                 xs[j], tx, T, ll, pa, pn, ey);
                }
    /* Infinite x or T read as 0, as in bgcnbd.c (one clamp for both models) */
    const double inf_xs[] = {INFINITY, -INFINITY};
    for (size_t i = 0; i < 2; i++) {
        assert_true(bgnbd_p_none(&PAPER, inf_xs[i], 30, 38, 91) ==
                    bgnbd_p_none(&PAPER, 0, 30, 38, 91));
        assert_true(bgnbd_p_alive(&PAPER, 2, 30, inf_xs[i]) == bgnbd_p_alive(&PAPER, 2, 30, 0));
        assert_true(bgnbd_loglik(&PAPER, 2, INFINITY, inf_xs[i]) == bgnbd_loglik(&PAPER, 2, 0, 0));
        assert_true(fabs(bgnbd_p_none(&PAPER, 2, 30, inf_xs[i], 91) -
                         bgcnbd_p_none(&PAPER, 1, 2, 30, inf_xs[i], 91)) < 1e-12);
    }
    /* h: none, negative, huge */
    assert_true(bgnbd_p_none(&PAPER, 2, 30, 38, -1) == 1);
    assert_true(bgnbd_expected(&PAPER, 2, 30, 38, NAN) == 0);
    double pn = bgnbd_p_none(&PAPER, 2, 30, 38, 1e300);
    double ey = bgnbd_expected(&PAPER, 2, 30, 38, 1e12);
    assert_true(pn >= 0 && pn <= 1 && isfinite(ey) && ey >= 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_table),
        cmocka_unit_test(test_days_weeks_rescaling),
        cmocka_unit_test(test_digamma_trigamma),
        cmocka_unit_test(test_expected_vs_mpmath),
        cmocka_unit_test(test_table_collapses_and_validates),
        cmocka_unit_test(test_table_large),
        cmocka_unit_test(test_fit_recovers_planted),
        cmocka_unit_test(test_fit_stationary_and_se),
        cmocka_unit_test(test_fit_warm_start),
        cmocka_unit_test(test_fit_deterministic),
        cmocka_unit_test(test_fit_order_independent),
        cmocka_unit_test(test_fit_degenerate),
        cmocka_unit_test(test_extreme_inputs_never_nan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
