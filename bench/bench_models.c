/* Model update throughput on random standardized data (dim = FEAT_DIM, k = 8): k-means
 * (km_partial_fit + km_assign through BLAS; km_assign beside km_assign_scalar) and logistic
 * regression (lr_predict + lr_update, fixed-order loops since 2026-12-07 and sgemv before,
 * beside a plain scalar loop of the same maths, checked to land on the same weights). One JSON
 * object on stdout; see bench/README.md. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "feat.h"
#include "kmeans.h"
#include "logreg.h"
#include "rng.h"

#define K         8
#define POOL_ROWS 65536 /* distinct rows cycled through; 6 MB of floats, beyond L2 */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_models: %s\n", what);
    exit(1);
}

/* ---- the scalar logistic regression: lr_update/lr_predict's maths with plain loops ---- */

/* Same state and step as logreg.c (AdaGrad per coordinate, L2 on weights, no class
 * weights, steps of minibatch_rows), dot products in float like logreg.c's. */
typedef struct scalar_lr_s {
    int dim, minibatch_rows;
    double eta, l2;
    double w[FEAT_DIM], g2[FEAT_DIM];
    float w_f[FEAT_DIM];
    double bias, bias_g2;
} scalar_lr_t;

static double sigmoid(double t)
{
    if (t >= 0)
        return 1.0 / (1.0 + exp(-t));
    double e = exp(t);
    return e / (1.0 + e);
}

static void scalar_predict(const scalar_lr_t *m, const float *z, size_t n, float *p)
{
    for (size_t i = 0; i < n; i++) {
        float s = 0;
        for (int j = 0; j < m->dim; j++)
            s += z[i * m->dim + j] * m->w_f[j];
        p[i] = (float)sigmoid((double)s + m->bias);
    }
}

static void scalar_update(scalar_lr_t *m, const float *z, const float *y, size_t n, float *r)
{
    const int dim = m->dim;
    for (size_t off = 0; off < n; off += (size_t)m->minibatch_rows) {
        size_t rows = n - off < (size_t)m->minibatch_rows ? n - off : (size_t)m->minibatch_rows;
        const float *zb = z + off * dim;
        scalar_predict(m, zb, rows, r);
        double bias_grad = 0;
        for (size_t i = 0; i < rows; i++) {
            double ri = ((double)r[i] - y[off + i]) / (double)rows;
            r[i] = (float)ri;
            bias_grad += ri;
        }
        for (int j = 0; j < dim; j++) {
            float g = 0;
            for (size_t i = 0; i < rows; i++)
                g += zb[i * dim + j] * r[i];
            double gj = (double)g + m->l2 * m->w[j];
            m->g2[j] += gj * gj;
            m->w[j] -= m->eta * gj / (sqrt(m->g2[j]) + 1e-8);
            m->w_f[j] = (float)m->w[j];
        }
        m->bias_g2 += bias_grad * bias_grad;
        m->bias -= m->eta * bias_grad / (sqrt(m->bias_g2) + 1e-8);
    }
}

/* ---- data ---- */

typedef struct data_s {
    float *z; /* POOL_ROWS * FEAT_DIM, standard normal */
    float *y; /* labels from a planted logistic model */
} data_t;

static void make_data(data_t *d)
{
    rng_t rng;
    rng_seed(&rng, 7);
    d->z = malloc((size_t)POOL_ROWS * FEAT_DIM * sizeof(float));
    d->y = malloc((size_t)POOL_ROWS * sizeof(float));
    if (!d->z || !d->y)
        die("out of memory");
    double w[FEAT_DIM];
    for (int j = 0; j < FEAT_DIM; j++)
        w[j] = rng_normal(&rng) * 0.5;
    for (size_t i = 0; i < POOL_ROWS; i++) {
        double s = -1.0;
        for (int j = 0; j < FEAT_DIM; j++) {
            d->z[i * FEAT_DIM + j] = (float)rng_normal(&rng);
            s += w[j] * d->z[i * FEAT_DIM + j];
        }
        d->y[i] = rng_uniform(&rng) < sigmoid(s) ? 1.0f : 0.0f;
    }
}

/* ---- timed loops: batches cycle through the pool until min_s has elapsed ---- */

typedef enum { KM_UPDATE, KM_ASSIGN_BLAS, KM_ASSIGN_SCALAR, LR_LIB, LR_SCALAR } work_t;

typedef struct ctx_s {
    const data_t *d;
    size_t batch;
    km_t *km;
    lr_t *lr;
    scalar_lr_t *slr;
    int *seg;
    float *p, *r;
} ctx_t;

static void do_batch(ctx_t *c, work_t w, size_t off)
{
    const float *z = c->d->z + off * FEAT_DIM;
    const float *y = c->d->y + off;
    switch (w) {
    case KM_UPDATE:
        if (km_partial_fit(c->km, z, c->batch) != 0 ||
            km_assign(c->km, z, c->batch, c->seg, NULL) != 0)
            die("k-means update failed");
        break;
    case KM_ASSIGN_BLAS:
        if (km_assign(c->km, z, c->batch, c->seg, NULL) != 0)
            die("km_assign failed");
        break;
    case KM_ASSIGN_SCALAR:
        if (km_assign_scalar(c->km, z, c->batch, c->seg, NULL) != 0)
            die("km_assign_scalar failed");
        break;
    case LR_LIB: /* prequential: predict the batch, then learn from it */
        lr_predict(c->lr, z, c->batch, c->p);
        if (lr_update(c->lr, z, y, c->batch, NULL) != 0)
            die("lr_update failed");
        break;
    case LR_SCALAR:
        scalar_predict(c->slr, z, c->batch, c->p);
        scalar_update(c->slr, z, y, c->batch, c->r);
        break;
    }
}

/* Runs batches from the start of the pool for at least min_s; examples/s. The batch
 * sequence is the same for every work kind, so both learners see the same rows. */
static double time_work(ctx_t *c, work_t w, double min_s, size_t *rows_out)
{
    size_t rows = 0, off = 0;
    double t0 = now_s(), el;
    do {
        for (int rep = 0; rep < 16; rep++) {
            if (off + c->batch > POOL_ROWS)
                off = 0;
            do_batch(c, w, off);
            off += c->batch;
            rows += c->batch;
        }
        el = now_s() - t0;
    } while (el < min_s);
    if (rows_out)
        *rows_out = rows;
    return (double)rows / el;
}

static void usage(FILE *out)
{
    fputs("usage: bench_models [--runs R] [--min-seconds S]\n"
          "Per run and batch size (256, 4096): k-means update+assign, assign (BLAS),\n"
          "assign (scalar); logistic regression predict+update (logreg.c) and the scalar loop.\n"
          "Each measurement lasts at least S seconds (default 1). JSON on stdout.\n",
          out);
}

int main(int argc, char **argv)
{
    int runs = 3;
    double min_s = 1.0;
    static const struct option longopts[] = {{"runs", required_argument, 0, 'r'},
                                             {"min-seconds", required_argument, 0, 's'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            runs = atoi(optarg);
            break;
        case 's':
            min_s = atof(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (runs < 1 || optind != argc) {
        usage(stderr);
        return 2;
    }
    data_t d;
    make_data(&d);
    static const size_t batches[] = {256, 4096};
    lr_params_t lp;
    lr_params_default(&lp);

    printf("{\"dim\":%d,\"k\":%d,\"lr_minibatch_rows\":%d,\"min_seconds\":%.2f,\"runs\":[",
           FEAT_DIM, K, lp.minibatch_rows, min_s);
    for (int r = 0; r < runs; r++) {
        printf("%s{", r ? "," : "");
        for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
            ctx_t cx = {.d = &d, .batch = batches[b]};
            cx.seg = malloc(cx.batch * sizeof(int));
            cx.p = malloc(cx.batch * sizeof(float));
            cx.r = malloc(cx.batch * sizeof(float));
            cx.km = km_new(K, FEAT_DIM, 42, 100000, 0.01);
            cx.lr = lr_new(FEAT_DIM, &lp);
            cx.slr = calloc(1, sizeof(*cx.slr));
            if (!cx.seg || !cx.p || !cx.r || !cx.km || !cx.lr || !cx.slr)
                die("out of memory");
            *cx.slr = (scalar_lr_t){.dim = FEAT_DIM,
                                    .minibatch_rows = lp.minibatch_rows,
                                    .eta = lp.learning_rate,
                                    .l2 = lp.l2};

            double km_update = time_work(&cx, KM_UPDATE, min_s, NULL);
            double km_blas = time_work(&cx, KM_ASSIGN_BLAS, min_s, NULL);
            double km_scalar = time_work(&cx, KM_ASSIGN_SCALAR, min_s, NULL);
            /* Agreement of the two assignments on one batch (near-exact ties may differ). */
            int *seg2 = malloc(cx.batch * sizeof(int));
            if (!seg2)
                die("out of memory");
            km_assign(cx.km, d.z, cx.batch, cx.seg, NULL);
            km_assign_scalar(cx.km, d.z, cx.batch, seg2, NULL);
            size_t same = 0;
            for (size_t i = 0; i < cx.batch; i++)
                same += cx.seg[i] == seg2[i];
            free(seg2);

            size_t rows_lib, rows_scalar;
            double lr_lib = time_work(&cx, LR_LIB, min_s, &rows_lib);
            double lr_scalar = time_work(&cx, LR_SCALAR, min_s, &rows_scalar);
            /* The scalar learner saw a different number of rows: replay logreg.c's on
             * exactly as many fresh rows to compare weights. */
            lr_t *check = lr_new(FEAT_DIM, &lp);
            if (!check)
                die("out of memory");
            size_t off = 0;
            for (size_t done = 0; done < rows_scalar; done += cx.batch) {
                if (off + cx.batch > POOL_ROWS)
                    off = 0;
                lr_update(check, d.z + off * FEAT_DIM, d.y + off, cx.batch, NULL);
                off += cx.batch;
            }
            double max_dw = fabs(lr_bias(check) - cx.slr->bias);
            for (int j = 0; j < FEAT_DIM; j++)
                max_dw = fmax(max_dw, fabs(lr_weight(check, j) - cx.slr->w[j]));
            lr_destroy(check);

            fprintf(stderr,
                    "bench_models: run %d/%d batch %zu: kmeans update+assign %.0f/s, assign blas "
                    "%.0f/s scalar %.0f/s (agree %zu/%zu); logreg lr_* %.0f/s scalar %.0f/s "
                    "(max |dw| %.2g)\n",
                    r + 1, runs, cx.batch, km_update, km_blas, km_scalar, same, cx.batch, lr_lib,
                    lr_scalar, max_dw);
            printf("%s\"%zu\":{\"kmeans_update_assign_eps\":%.1f,\"kmeans_assign_blas_eps\":%.1f,"
                   "\"kmeans_assign_scalar_eps\":%.1f,\"kmeans_assign_agree\":%.6f,"
                   "\"logreg_lib_eps\":%.1f,\"logreg_scalar_eps\":%.1f,"
                   "\"logreg_max_weight_diff\":%.3g}",
                   b ? "," : "", cx.batch, km_update, km_blas, km_scalar,
                   (double)same / (double)cx.batch, lr_lib, lr_scalar, max_dw);
            fflush(stdout);
            km_destroy(cx.km);
            lr_destroy(cx.lr);
            free(cx.slr);
            free(cx.seg);
            free(cx.p);
            free(cx.r);
        }
        printf("}");
    }
    printf("]}\n");
    free(d.z);
    free(d.y);
    return 0;
}
