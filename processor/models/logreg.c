/* Online logistic regression (logreg.h). Weights and AdaGrad accumulators are double (they
 * accumulate over millions of steps); a float mirror of the weights feeds the dot products. */
#include "logreg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "model_wire.h"

#define LR_EPS     1e-8 /* AdaGrad denominator floor: the first step is ~learning_rate */
#define LR_MAX_DIM 65536

struct lr_s {
    int dim;
    lr_params_t params;
    double *w;  /* [dim] */
    double *g2; /* [dim] AdaGrad sums of squared gradients */
    float *w_f; /* [dim] float mirror of w for the dot products */
    double bias;
    double bias_g2;
    double n_class[2];
    uint64_t steps;
};

void lr_params_default(lr_params_t *p)
{
    p->learning_rate = 0.1;
    p->l2 = 1e-4;
    p->class_weight_balanced = 0;
    p->minibatch_rows = 32;
}

static int params_ok(const lr_params_t *p)
{
    return p->learning_rate > 0 && isfinite(p->learning_rate) && p->l2 >= 0 && isfinite(p->l2) &&
           (p->class_weight_balanced == 0 || p->class_weight_balanced == 1) &&
           p->minibatch_rows >= 1 && p->minibatch_rows <= 1 << 20;
}

lr_t *lr_new(int dim, const lr_params_t *params)
{
    lr_params_t def;
    if (!params) {
        lr_params_default(&def);
        params = &def;
    }
    if (dim < 1 || dim > LR_MAX_DIM || !params_ok(params))
        return NULL;
    lr_t *lr = calloc(1, sizeof(*lr));
    if (!lr)
        return NULL;
    lr->dim = dim;
    lr->params = *params;
    lr->w = calloc((size_t)dim, sizeof(double));
    lr->g2 = calloc((size_t)dim, sizeof(double));
    lr->w_f = calloc((size_t)dim, sizeof(float));
    if (!lr->w || !lr->g2 || !lr->w_f) {
        lr_destroy(lr);
        return NULL;
    }
    return lr;
}

void lr_destroy(lr_t *lr)
{
    if (!lr)
        return;
    free(lr->w);
    free(lr->g2);
    free(lr->w_f);
    free(lr);
}

double lr_sigmoid(double logit)
{
    if (logit >= 0)
        return 1.0 / (1.0 + exp(-logit));
    double e = exp(logit);
    return e / (1.0 + e);
}

/* w . z in a fixed order: 8 float lanes (lane k sums the products j = k mod 8 in increasing
 * j), then the lanes pairwise. No BLAS: OpenBLAS picks its sgemv kernel by CPU, and its kernels
 * sum in different orders (scores differed in the last digit between CPUs), and a call per
 * row cost ~170 instructions; this loop gives the same bits on every x86-64 (ISO C: no
 * contraction into FMA) and gcc vectorizes the lanes. */
static float dot(const float *w, const float *z, int dim)
{
    float acc[8] = {0};
    int j = 0;
    for (; j + 8 <= dim; j += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += w[j + k] * z[j + k];
    for (int k = 0; j < dim; j++, k++)
        acc[k] += w[j] * z[j];
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

/* w . z_i + b for row i of z, in double. */
static double row_logit(const lr_t *lr, const float *z, size_t i)
{
    return (double)dot(lr->w_f, z + i * (size_t)lr->dim, lr->dim) + lr->bias;
}

void lr_logit(const lr_t *lr, const float *z, size_t n, float *logit)
{
    for (size_t i = 0; i < n; i++)
        logit[i] = (float)row_logit(lr, z, i);
}

void lr_predict(const lr_t *lr, const float *z, size_t n, float *p)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)lr_sigmoid(row_logit(lr, z, i));
}

/* One AdaGrad step on m rows; r is scratch of m floats, g of dim floats. */
static void step(lr_t *lr, const float *z, const float *y, const float *sw, size_t m, float *r,
                 float *g)
{
    const int dim = lr->dim;
    for (size_t i = 0; i < m; i++)
        lr->n_class[y[i] >= 0.5f] += 1;
    double cw[2] = {1, 1};
    if (lr->params.class_weight_balanced) {
        double total = lr->n_class[0] + lr->n_class[1];
        for (int c = 0; c < 2; c++)
            cw[c] = lr->n_class[c] > 0 ? total / (2 * lr->n_class[c]) : 1;
    }
    lr_predict(lr, z, m, r);
    double bias_grad = 0;
    for (size_t i = 0; i < m; i++) {
        double wi = cw[y[i] >= 0.5f] * (sw ? sw[i] : 1.0) / (double)m;
        double ri = wi * ((double)r[i] - y[i]);
        r[i] = (float)ri;
        bias_grad += ri;
    }
    /* g = X^T r, the batch's log-loss gradient: rows added in order (the same bits on every
     * CPU; the loop over j vectorizes) */
    for (int j = 0; j < dim; j++)
        g[j] = 0.0f;
    for (size_t i = 0; i < m; i++) {
        const float *zi = z + i * (size_t)dim;
        for (int j = 0; j < dim; j++)
            g[j] += zi[j] * r[i];
    }
    const double eta = lr->params.learning_rate, l2 = lr->params.l2;
    for (int j = 0; j < dim; j++) {
        double gj = (double)g[j] + l2 * lr->w[j];
        lr->g2[j] += gj * gj;
        lr->w[j] -= eta * gj / (sqrt(lr->g2[j]) + LR_EPS);
        lr->w_f[j] = (float)lr->w[j];
    }
    lr->bias_g2 += bias_grad * bias_grad;
    lr->bias -= eta * bias_grad / (sqrt(lr->bias_g2) + LR_EPS);
    lr->steps++;
}

int lr_update(lr_t *lr, const float *z, const float *y, size_t n, const float *sample_weight)
{
    if (n == 0)
        return 0;
    size_t mb = (size_t)lr->params.minibatch_rows;
    size_t rows = n < mb ? n : mb;
    float *r = malloc(rows * sizeof(float));
    float *g = malloc((size_t)lr->dim * sizeof(float));
    if (!r || !g) {
        free(r);
        free(g);
        return -1;
    }
    for (size_t off = 0; off < n; off += mb) {
        size_t m = n - off < mb ? n - off : mb;
        step(lr, z + off * lr->dim, y + off, sample_weight ? sample_weight + off : NULL, m, r, g);
    }
    free(r);
    free(g);
    return 0;
}

void lr_contributions(const lr_t *lr, const float *z, float *out)
{
    for (int i = 0; i < lr->dim; i++)
        out[i] = (float)(lr->w[i] * z[i]);
}

int lr_dim(const lr_t *lr)
{
    return lr->dim;
}

double lr_weight(const lr_t *lr, int i)
{
    return (i >= 0 && i < lr->dim) ? lr->w[i] : 0;
}

double lr_bias(const lr_t *lr)
{
    return lr->bias;
}

double lr_class_count(const lr_t *lr, int cls)
{
    return (cls == 0 || cls == 1) ? lr->n_class[cls] : 0;
}

uint64_t lr_steps(const lr_t *lr)
{
    return lr->steps;
}

/* Section layout: u32 dim, f64 learning_rate, f64 l2, u8 balanced, u32 minibatch_rows,
 * u64 steps, f64 n_class[2], f64 bias, f64 bias_g2, f64 w[dim], f64 g2[dim]. */
void lr_encode(const lr_t *lr, mw_buf_t *b)
{
    mw_put_u32(b, (uint32_t)lr->dim);
    mw_put_f64(b, lr->params.learning_rate);
    mw_put_f64(b, lr->params.l2);
    mw_put_u8(b, (uint8_t)lr->params.class_weight_balanced);
    mw_put_u32(b, (uint32_t)lr->params.minibatch_rows);
    mw_put_u64(b, lr->steps);
    mw_put_f64(b, lr->n_class[0]);
    mw_put_f64(b, lr->n_class[1]);
    mw_put_f64(b, lr->bias);
    mw_put_f64(b, lr->bias_g2);
    for (int j = 0; j < lr->dim; j++)
        mw_put_f64(b, lr->w[j]);
    for (int j = 0; j < lr->dim; j++)
        mw_put_f64(b, lr->g2[j]);
}

lr_t *lr_decode(mw_reader_t *r, char *errstr, size_t errstr_size)
{
    uint32_t dim = mw_get_u32(r);
    lr_params_t p;
    p.learning_rate = mw_get_f64(r);
    p.l2 = mw_get_f64(r);
    p.class_weight_balanced = mw_get_u8(r);
    uint32_t mb = mw_get_u32(r);
    uint64_t steps = mw_get_u64(r);
    double n0 = mw_get_f64(r), n1 = mw_get_f64(r);
    double bias = mw_get_f64(r), bias_g2 = mw_get_f64(r);
    if (r->failed) {
        snprintf(errstr, errstr_size, "logreg: truncated header");
        return NULL;
    }
    p.minibatch_rows = mb > (1u << 20) ? 0 : (int)mb;
    if (dim < 1 || dim > LR_MAX_DIM || !params_ok(&p)) {
        snprintf(errstr, errstr_size,
                 "logreg: invalid header (dim %u, learning_rate %g, l2 %g, minibatch %u)", dim,
                 p.learning_rate, p.l2, mb);
        return NULL;
    }
    if (!(n0 >= 0) || !isfinite(n0) || !(n1 >= 0) || !isfinite(n1) || !isfinite(bias) ||
        !(bias_g2 >= 0) || !isfinite(bias_g2)) {
        snprintf(errstr, errstr_size, "logreg: invalid class counts or bias");
        return NULL;
    }
    if (r->len - r->off < (size_t)dim * 16) {
        snprintf(errstr, errstr_size, "logreg: truncated weights (need %zu bytes, have %zu)",
                 (size_t)dim * 16, r->len - r->off);
        return NULL;
    }
    lr_t *lr = lr_new((int)dim, &p);
    if (!lr) {
        snprintf(errstr, errstr_size, "logreg: out of memory");
        return NULL;
    }
    lr->steps = steps;
    lr->n_class[0] = n0;
    lr->n_class[1] = n1;
    lr->bias = bias;
    lr->bias_g2 = bias_g2;
    for (uint32_t j = 0; j < dim; j++) {
        lr->w[j] = mw_get_f64(r);
        lr->w_f[j] = (float)lr->w[j];
    }
    for (uint32_t j = 0; j < dim; j++)
        lr->g2[j] = mw_get_f64(r);
    for (uint32_t j = 0; j < dim; j++) {
        if (!isfinite(lr->w[j]) || !(lr->g2[j] >= 0) || !isfinite(lr->g2[j])) {
            snprintf(errstr, errstr_size, "logreg: non-finite weight or accumulator %u", j);
            lr_destroy(lr);
            return NULL;
        }
    }
    return lr;
}
