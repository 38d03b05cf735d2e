/* Online standardizer (scaler.h). West's weighted incremental update: shrinking every old
 * weight by a = 2^(-1/half_life) leaves the mean unchanged and scales the sum of squared
 * deviations by a, so decay is one multiply per example; a = 1 gives plain Welford. */
#include "scaler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_wire.h"

struct sc_s {
    int dim;
    double half_life; /* examples; 0 = no decay */
    double decay;     /* per-example weight factor, 1 without decay */
    double weight;    /* sum of (decayed) example weights */
    double *mean;     /* [dim] */
    double *m2;       /* [dim] weighted sum of squared deviations from the mean */
    double *inv_sd;   /* [dim] 1 / max(sd, SC_SD_FLOOR) of the moments above (refresh_inv_sd
                       * after every change): sc_transform runs per scored row, the moments
                       * change only when the model learns */
};

static double sd_of(const sc_t *sc, int i)
{
    if (sc->weight <= 0)
        return 0;
    double var = sc->m2[i] / sc->weight;
    return var > 0 ? sqrt(var) : 0;
}

static void refresh_inv_sd(sc_t *sc)
{
    for (int i = 0; i < sc->dim; i++) {
        double sd = sd_of(sc, i);
        sc->inv_sd[i] = 1.0 / (sd > SC_SD_FLOOR ? sd : SC_SD_FLOOR);
    }
}

sc_t *sc_new(int dim, double half_life_examples)
{
    if (dim < 1 || !(half_life_examples >= 0) || !isfinite(half_life_examples))
        return NULL;
    sc_t *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return NULL;
    sc->dim = dim;
    sc->half_life = half_life_examples;
    sc->decay = half_life_examples > 0 ? exp2(-1.0 / half_life_examples) : 1.0;
    sc->mean = calloc((size_t)dim, sizeof(double));
    sc->m2 = calloc((size_t)dim, sizeof(double));
    sc->inv_sd = calloc((size_t)dim, sizeof(double));
    if (!sc->mean || !sc->m2 || !sc->inv_sd) {
        sc_destroy(sc);
        return NULL;
    }
    return sc;
}

void sc_destroy(sc_t *sc)
{
    if (!sc)
        return;
    free(sc->mean);
    free(sc->m2);
    free(sc->inv_sd);
    free(sc);
}

/* sc_update's and sc_transform's vectors (GCC and clang vector extension). */
#define SC_LANES 4
typedef float sc_fvec_t __attribute__((vector_size(SC_LANES * sizeof(float))));
typedef double sc_dvec_t __attribute__((vector_size(SC_LANES * sizeof(double))));

void sc_update(sc_t *sc, const float *x, size_t n)
{
    const int dim = sc->dim;
    const double a = sc->decay;
    for (size_t r = 0; r < n; r++) {
        const float *row = x + r * (size_t)dim;
        sc->weight = a * sc->weight + 1.0;
        const double inv_w = 1.0 / sc->weight;
        int i = 0;
        /* SC_LANES dimensions at a time, each lane the scalar loop's arithmetic below */
        for (; i + SC_LANES <= dim; i += SC_LANES) {
            sc_fvec_t vf;
            sc_dvec_t mean, m2;
            memcpy(&vf, row + i, sizeof vf);
            memcpy(&mean, sc->mean + i, sizeof mean);
            memcpy(&m2, sc->m2 + i, sizeof m2);
            sc_dvec_t v = __builtin_convertvector(vf, sc_dvec_t);
            sc_dvec_t delta = v - mean;
            mean += delta * inv_w;
            m2 = a * m2 + delta * (v - mean);
            memcpy(sc->mean + i, &mean, sizeof mean);
            memcpy(sc->m2 + i, &m2, sizeof m2);
        }
        for (; i < dim; i++) {
            double v = row[i];
            double delta = v - sc->mean[i];
            sc->mean[i] += delta * inv_w;
            /* (v - old mean) * (v - new mean): West (1979), stays >= 0 up to rounding */
            sc->m2[i] = a * sc->m2[i] + delta * (v - sc->mean[i]);
        }
    }
    if (n > 0)
        refresh_inv_sd(sc);
}

void sc_transform(const sc_t *sc, const float *x, float *z, size_t n)
{
    const int dim = sc->dim;
    if (sc->weight <= 0) {
        if (z != x)
            for (size_t j = 0; j < n * (size_t)dim; j++)
                z[j] = x[j];
        return;
    }
    const double *mean = sc->mean, *inv_sd = sc->inv_sd;
    for (size_t r = 0; r < n; r++) {
        const float *xr = x + r * (size_t)dim;
        float *zr = z + r * (size_t)dim;
        int i = 0;
        /* SC_LANES values at a time, each lane the scalar loop's own arithmetic (to double,
         * subtract, multiply, round to float): the same bits, a few times fewer instructions */
        for (; i + SC_LANES <= dim; i += SC_LANES) {
            sc_fvec_t xf, zf;
            sc_dvec_t m, s;
            memcpy(&xf, xr + i, sizeof xf);
            memcpy(&m, mean + i, sizeof m);
            memcpy(&s, inv_sd + i, sizeof s);
            zf = __builtin_convertvector((__builtin_convertvector(xf, sc_dvec_t) - m) * s,
                                         sc_fvec_t);
            memcpy(zr + i, &zf, sizeof zf);
        }
        for (; i < dim; i++)
            zr[i] = (float)((xr[i] - mean[i]) * inv_sd[i]);
    }
}

int sc_dim(const sc_t *sc)
{
    return sc->dim;
}

double sc_weight(const sc_t *sc)
{
    return sc->weight;
}

double sc_mean(const sc_t *sc, int i)
{
    return (i >= 0 && i < sc->dim) ? sc->mean[i] : 0;
}

double sc_sd(const sc_t *sc, int i)
{
    return (i >= 0 && i < sc->dim) ? sd_of(sc, i) : 0;
}

/* Section layout: u32 dim, f64 half_life, f64 weight, f64 mean[dim], f64 m2[dim]. */
void sc_encode(const sc_t *sc, mw_buf_t *b)
{
    mw_put_u32(b, (uint32_t)sc->dim);
    mw_put_f64(b, sc->half_life);
    mw_put_f64(b, sc->weight);
    for (int i = 0; i < sc->dim; i++)
        mw_put_f64(b, sc->mean[i]);
    for (int i = 0; i < sc->dim; i++)
        mw_put_f64(b, sc->m2[i]);
}

sc_t *sc_decode(mw_reader_t *r, char *errstr, size_t errstr_size)
{
    uint32_t dim = mw_get_u32(r);
    double half_life = mw_get_f64(r);
    double weight = mw_get_f64(r);
    if (r->failed) {
        snprintf(errstr, errstr_size, "scaler: truncated header");
        return NULL;
    }
    if (dim < 1 || dim > 65536 || !(half_life >= 0) || !isfinite(half_life) || !(weight >= 0) ||
        !isfinite(weight)) {
        snprintf(errstr, errstr_size, "scaler: invalid header (dim %u, half_life %g, weight %g)",
                 dim, half_life, weight);
        return NULL;
    }
    if (r->len - r->off < (size_t)dim * 16) {
        snprintf(errstr, errstr_size, "scaler: truncated moments (need %zu bytes, have %zu)",
                 (size_t)dim * 16, r->len - r->off);
        return NULL;
    }
    sc_t *sc = sc_new((int)dim, half_life);
    if (!sc) {
        snprintf(errstr, errstr_size, "scaler: out of memory");
        return NULL;
    }
    sc->weight = weight;
    for (uint32_t i = 0; i < dim; i++)
        sc->mean[i] = mw_get_f64(r);
    for (uint32_t i = 0; i < dim; i++)
        sc->m2[i] = mw_get_f64(r);
    for (uint32_t i = 0; i < dim; i++) {
        if (!isfinite(sc->mean[i]) || !(sc->m2[i] >= 0) || !isfinite(sc->m2[i])) {
            snprintf(errstr, errstr_size, "scaler: non-finite or negative moment in dim %u", i);
            sc_destroy(sc);
            return NULL;
        }
    }
    refresh_inv_sd(sc);
    return sc;
}
