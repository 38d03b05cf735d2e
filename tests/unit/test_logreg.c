/* Unit tests of the online logistic regression: sigmoid table, the AdaGrad step against a
 * scalar double reference (mini-batching, L2, sample and class weights), learning a
 * sigmoid-generated and a separable dataset, balanced class weights, contributions; the
 * logit's fixed summation order. */
#include <cblas.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "logreg.h"
#include "model_wire.h"
#include "pmetrics.h"
#include "rng.h"

static void test_sigmoid_table(void **state)
{
    (void)state;
    struct {
        double x, want, tol;
    } rows[] = {
        {0, 0.5, 0},
        {2, 0.8807970779778823, 1e-15},
        {-2, 0.11920292202211755, 1e-15},
        {-30, 9.357622968839299e-14, 1e-26}, /* tail kept, not rounded to 0 */
        {40, 1.0, 1e-16},
        {800, 1.0, 0},  /* no overflow */
        {-800, 0.0, 0}, /* no NaN */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        double s = lr_sigmoid(rows[i].x);
        if (!(fabs(s - rows[i].want) <= rows[i].tol))
            fail_msg("sigmoid(%g) = %.17g want %.17g", rows[i].x, s, rows[i].want);
    }
}

/* Independent scalar reference of lr_update in double. */
typedef struct {
    int dim;
    lr_params_t p;
    double w[16], g2[16], b, bg2, n[2];
} ref_t;

static void ref_update(ref_t *r, const float *z, const float *y, const float *sw, size_t n)
{
    for (size_t off = 0; off < n; off += (size_t)r->p.minibatch_rows) {
        size_t m = n - off < (size_t)r->p.minibatch_rows ? n - off : (size_t)r->p.minibatch_rows;
        for (size_t i = off; i < off + m; i++)
            r->n[y[i] >= 0.5f]++;
        double cw[2] = {1, 1};
        if (r->p.class_weight_balanced)
            for (int c = 0; c < 2; c++)
                cw[c] = r->n[c] > 0 ? (r->n[0] + r->n[1]) / (2 * r->n[c]) : 1;
        double g[16] = {0}, gb = 0;
        for (size_t i = off; i < off + m; i++) {
            double logit = r->b;
            for (int j = 0; j < r->dim; j++)
                logit += r->w[j] * z[i * r->dim + j];
            double resid = (1 / (1 + exp(-logit)) - y[i]) * cw[y[i] >= 0.5f] * (sw ? sw[i] : 1) / m;
            for (int j = 0; j < r->dim; j++)
                g[j] += resid * z[i * r->dim + j];
            gb += resid;
        }
        for (int j = 0; j < r->dim; j++) {
            double gj = g[j] + r->p.l2 * r->w[j];
            r->g2[j] += gj * gj;
            r->w[j] -= r->p.learning_rate * gj / (sqrt(r->g2[j]) + 1e-8);
        }
        r->bg2 += gb * gb;
        r->b -= r->p.learning_rate * gb / (sqrt(r->bg2) + 1e-8);
    }
}

static void test_matches_scalar_reference(void **state)
{
    (void)state;
    const int dim = 5;
    const size_t n = 700;
    rng_t r;
    rng_seed(&r, 8);
    float *z = malloc(n * dim * sizeof(float)), *y = malloc(n * sizeof(float));
    float *sw = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        double logit = -1;
        for (int j = 0; j < dim; j++) {
            z[i * dim + j] = (float)rng_normal(&r);
            logit += (j - 2) * z[i * dim + j];
        }
        y[i] = rng_uniform(&r) < 1 / (1 + exp(-logit)) ? 1.0f : 0.0f;
        sw[i] = (float)(0.5 + rng_uniform(&r));
    }
    struct {
        double eta, l2;
        int balanced, mb, weighted;
    } cfg[] = {
        {0.1, 0, 0, 32, 0}, {0.5, 1e-2, 0, 7, 1}, {0.05, 1e-3, 1, 1, 0}, {0.2, 0, 1, 1000, 1}};
    for (size_t c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++) {
        lr_params_t p = {cfg[c].eta, cfg[c].l2, cfg[c].balanced, cfg[c].mb};
        lr_t *lr = lr_new(dim, &p);
        ref_t ref = {.dim = dim, .p = p};
        /* uneven call sizes: each call restarts the mini-batch cut */
        size_t sizes[] = {1, 99, 300, 300};
        size_t off = 0;
        for (size_t s = 0; s < 4; s++) {
            const float *swp = cfg[c].weighted ? sw + off : NULL;
            assert_int_equal(lr_update(lr, z + off * dim, y + off, sizes[s], swp), 0);
            ref_update(&ref, z + off * dim, y + off, swp, sizes[s]);
            off += sizes[s];
        }
        for (int j = 0; j < dim; j++)
            if (fabs(lr_weight(lr, j) - ref.w[j]) > 1e-4 * (1 + fabs(ref.w[j])))
                fail_msg("cfg %zu w[%d] = %.8f, reference %.8f", c, j, lr_weight(lr, j), ref.w[j]);
        assert_float_equal(lr_bias(lr), ref.b, 1e-4 * (1 + fabs(ref.b)));
        assert_float_equal(lr_class_count(lr, 0) + lr_class_count(lr, 1), (double)n, 0);
        lr_destroy(lr);
    }
    free(z);
    free(y);
    free(sw);
}

/* The logit is one fixed-order sum (8 float lanes over j mod 8, then the lanes pairwise),
 * whatever the number of rows in the call and whatever the CPU: a block of rows gives the
 * bits each row gives alone, and the bits of the documented order. (cblas_sgemv failed
 * both: its kernels sum in orders that depend on the rows in the call and on the CPU.) */
static float lanes_reference(const lr_t *lr, const float *z, int dim)
{
    float acc[8] = {0};
    for (int j = 0; j < dim; j++)
        acc[j % 8] += (float)lr_weight(lr, j) * z[j];
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

static void test_logit_fixed_order(void **state)
{
    (void)state;
    rng_t r;
    rng_seed(&r, 21);
    enum { ROWS = 37, MAX_DIM = 41 };
    float z[ROWS * MAX_DIM], y[ROWS], block[ROWS], one, p[ROWS];
    for (int dim = 1; dim <= MAX_DIM; dim++) {
        lr_t *lr = lr_new(dim, NULL);
        for (int i = 0; i < ROWS * dim; i++)
            z[i] = (float)(rng_normal(&r) * 3);
        for (int i = 0; i < ROWS; i++)
            y[i] = rng_uniform(&r) < 0.5 ? 1.0f : 0.0f;
        assert_int_equal(lr_update(lr, z, y, ROWS, NULL), 0); /* weights of every sign */
        for (int i = 0; i < ROWS * dim; i++)
            z[i] = (float)(rng_normal(&r) * 3);
        lr_logit(lr, z, ROWS, block);
        lr_predict(lr, z, ROWS, p);
        for (int i = 0; i < ROWS; i++) {
            lr_logit(lr, z + i * dim, 1, &one);
            float want = (float)((double)lanes_reference(lr, z + i * dim, dim) + lr_bias(lr));
            if (memcmp(&one, &block[i], sizeof one) != 0 || memcmp(&one, &want, sizeof one) != 0)
                fail_msg("dim %d row %d: alone %a, in a block %a, lane order %a", dim, i,
                         (double)one, (double)block[i], (double)want);
            assert_float_equal(p[i], lr_sigmoid((double)one), 1e-6);
        }
        lr_destroy(lr);
    }
}

static void test_first_step_by_hand(void **state)
{
    (void)state;
    lr_params_t p;
    lr_params_default(&p);
    p.l2 = 0;
    lr_t *lr = lr_new(2, &p);
    const float z[2] = {1, -2}, y[1] = {1};
    float prob;
    lr_predict(lr, z, 1, &prob);
    assert_float_equal(prob, 0.5f, 0);
    /* gradient (p - y) z = (-0.5, 1); AdaGrad's first step is eta * sign(g) */
    assert_int_equal(lr_update(lr, z, y, 1, NULL), 0);
    assert_float_equal(lr_weight(lr, 0), 0.1, 1e-8);
    assert_float_equal(lr_weight(lr, 1), -0.1, 1e-8);
    assert_float_equal(lr_bias(lr), 0.1, 1e-8);
    assert_int_equal(lr_steps(lr), 1);
    lr_predict(lr, z, 1, &prob);
    assert_float_equal(prob, lr_sigmoid(0.1 + 0.2 + 0.1), 1e-6);
    float contrib[2];
    lr_contributions(lr, z, contrib);
    assert_float_equal(contrib[0], 0.1f, 1e-7);
    assert_float_equal(contrib[1], 0.2f, 1e-7);
    lr_destroy(lr);
}

/* n rows from y ~ Bernoulli(sigmoid(w_true . z + b_true)), z standard normal. */
static void make_data(size_t n, int dim, const double *w_true, double b_true, uint64_t seed,
                      float *z, float *y)
{
    rng_t r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        double logit = b_true;
        for (int j = 0; j < dim; j++) {
            z[i * dim + j] = (float)rng_normal(&r);
            logit += w_true[j] * z[i * dim + j];
        }
        y[i] = rng_uniform(&r) < lr_sigmoid(logit) ? 1.0f : 0.0f;
    }
}

static double holdout_auc(const lr_t *lr, const float *z, const float *y, size_t n)
{
    float *p = malloc(n * sizeof(float));
    lr_predict(lr, z, n, p);
    pm_t *pm = pm_new(16);
    pm_add(pm, p, y, n);
    double auc = pm_auc(pm);
    pm_destroy(pm);
    free(p);
    return auc;
}

static void test_learns_sigmoid_data(void **state)
{
    (void)state;
    const int dim = 8;
    const size_t n = 20000, nt = 5000;
    const double w_true[8] = {3, -2.5, 0, 2, -1.5, 0, 1, 0};
    float *z = malloc(n * dim * sizeof(float)), *y = malloc(n * sizeof(float));
    float *zt = malloc(nt * dim * sizeof(float)), *yt = malloc(nt * sizeof(float));
    make_data(n, dim, w_true, -0.5, 1, z, y);
    make_data(nt, dim, w_true, -0.5, 2, zt, yt);
    lr_t *lr = lr_new(dim, NULL);
    for (size_t off = 0; off < n; off += 500)
        assert_int_equal(lr_update(lr, z + off * dim, y + off, 500, NULL), 0);
    double auc = holdout_auc(lr, zt, yt, nt);
    if (!(auc > 0.9))
        fail_msg("holdout AUC %.4f", auc);
    for (int j = 0; j < dim; j++) {
        double w = lr_weight(lr, j);
        if (w_true[j] != 0 && w * w_true[j] <= 0)
            fail_msg("w[%d] = %.3f has the wrong sign (true %.1f)", j, w, w_true[j]);
        if (w_true[j] == 0 && fabs(w) > 0.25)
            fail_msg("w[%d] = %.3f should be near 0", j, w);
        if (w_true[j] != 0 && fabs(w - w_true[j]) > 0.35 * fabs(w_true[j]))
            fail_msg("w[%d] = %.3f far from %.1f", j, w, w_true[j]);
    }
    assert_true(lr_bias(lr) < 0);
    lr_destroy(lr);

    /* linearly separable: y = [z0 + z1 > 0] */
    for (size_t i = 0; i < n; i++)
        y[i] = z[i * dim] + z[i * dim + 1] > 0 ? 1.0f : 0.0f;
    for (size_t i = 0; i < nt; i++)
        yt[i] = zt[i * dim] + zt[i * dim + 1] > 0 ? 1.0f : 0.0f;
    lr = lr_new(dim, NULL);
    assert_int_equal(lr_update(lr, z, y, n, NULL), 0);
    auc = holdout_auc(lr, zt, yt, nt);
    if (!(auc > 0.99))
        fail_msg("separable holdout AUC %.4f", auc);
    assert_true(lr_weight(lr, 0) > 0 && lr_weight(lr, 1) > 0);
    lr_destroy(lr);
    free(z);
    free(y);
    free(zt);
    free(yt);
}

/* Mean p over all rows, over negatives, and mean (1 - p) over positives. */
static void mean_p(const lr_t *lr, const float *z, const float *y, size_t n, double *all,
                   double *neg_p, double *pos_miss)
{
    float *p = malloc(n * sizeof(float));
    lr_predict(lr, z, n, p);
    double s = 0, sn = 0, sp = 0, nn = 0, np = 0;
    for (size_t i = 0; i < n; i++) {
        s += p[i];
        if (y[i] > 0.5f) {
            sp += 1 - p[i];
            np++;
        } else {
            sn += p[i];
            nn++;
        }
    }
    free(p);
    *all = s / (double)n;
    *neg_p = sn / nn;
    *pos_miss = sp / np;
}

static void test_balanced_class_weights(void **state)
{
    (void)state;
    const int dim = 4;
    const size_t n = 20000;
    const double w_true[4] = {1, -1, 0.5, 0};
    float *z = malloc(n * dim * sizeof(float)), *y = malloc(n * sizeof(float));
    make_data(n, dim, w_true, -4, 3, z, y); /* ~3% positives */
    double pos = 0;
    for (size_t i = 0; i < n; i++)
        pos += y[i];
    lr_params_t p;
    lr_params_default(&p);
    p.learning_rate = 0.5; /* the bias has to travel to about -4: converge within 3 passes */
    lr_t *plain = lr_new(dim, &p);
    p.class_weight_balanced = 1;
    lr_t *bal = lr_new(dim, &p);
    for (int pass = 0; pass < 3; pass++) {
        assert_int_equal(lr_update(plain, z, y, n, NULL), 0);
        assert_int_equal(lr_update(bal, z, y, n, NULL), 0);
    }
    assert_float_equal(lr_class_count(bal, 1), 3 * pos, 0);
    assert_float_equal(lr_class_count(bal, 0), 3 * ((double)n - pos), 0);
    double mp, mp_neg, mp_miss, mb, mb_neg, mb_miss;
    mean_p(plain, z, y, n, &mp, &mp_neg, &mp_miss);
    mean_p(bal, z, y, n, &mb, &mb_neg, &mb_miss);
    /* Unweighted optimum: mean p = base rate. Balanced optimum (zero bias gradient with
     * weights N / (2 n_c)): mean p over negatives = mean (1 - p) over positives. */
    if (!(fabs(mp - pos / n) < 0.01))
        fail_msg("plain mean p %.4f vs base rate %.4f", mp, pos / n);
    if (!(fabs(mb_neg - mb_miss) < 0.02))
        fail_msg("balanced: mean p of negatives %.4f, mean 1-p of positives %.4f", mb_neg, mb_miss);
    if (!(mp_miss - mp_neg > 0.3))
        fail_msg("plain: mean p of negatives %.4f, mean 1-p of positives %.4f", mp_neg, mp_miss);
    assert_true(mb > 0.2);
    assert_true(lr_bias(bal) > lr_bias(plain) + 1);
    lr_destroy(plain);
    lr_destroy(bal);
    free(z);
    free(y);
}

static void test_params_and_roundtrip(void **state)
{
    (void)state;
    lr_params_t p;
    lr_params_default(&p);
    assert_float_equal(p.learning_rate, 0.1, 0);
    assert_int_equal(p.minibatch_rows, 32);
    assert_null(lr_new(0, NULL));
    lr_params_t bad = p;
    bad.learning_rate = 0;
    assert_null(lr_new(3, &bad));
    bad = p;
    bad.l2 = -1;
    assert_null(lr_new(3, &bad));
    bad = p;
    bad.minibatch_rows = 0;
    assert_null(lr_new(3, &bad));
    lr_destroy(NULL);

    const double w_true[3] = {1, 2, -1};
    float z[300], y[100];
    make_data(100, 3, w_true, 0, 4, z, y);
    p.class_weight_balanced = 1;
    lr_t *lr = lr_new(3, &p);
    lr_update(lr, z, y, 100, NULL);
    mw_buf_t b = {0};
    lr_encode(lr, &b);
    char err[200];
    mw_reader_t r = {.p = b.data, .len = b.len};
    lr_t *back = lr_decode(&r, err, sizeof(err));
    assert_non_null(back);
    mw_buf_t b2 = {0};
    lr_encode(back, &b2);
    assert_int_equal(b.len, b2.len);
    assert_memory_equal(b.data, b2.data, b.len);
    /* the copy predicts and keeps learning exactly like the original */
    lr_update(lr, z, y, 50, NULL);
    lr_update(back, z, y, 50, NULL);
    float p1[100], p2[100];
    lr_predict(lr, z, 100, p1);
    lr_predict(back, z, 100, p2);
    assert_memory_equal(p1, p2, sizeof(p1));
    lr_destroy(lr);
    lr_destroy(back);
    free(b.data);
    free(b2.data);
}

int main(void)
{
    openblas_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigmoid_table),
        cmocka_unit_test(test_first_step_by_hand),
        cmocka_unit_test(test_matches_scalar_reference),
        cmocka_unit_test(test_logit_fixed_order),
        cmocka_unit_test(test_learns_sigmoid_data),
        cmocka_unit_test(test_balanced_class_weights),
        cmocka_unit_test(test_params_and_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
