/* Test driver for tests/python/test_models_vs_sklearn.py: runs the C standardizer, k-means or
 * logistic regression over a little-endian binary file and writes the fitted parameters.
 * Input: int32 n, int32 dim, float32 x[n*dim], then (logreg only) float32 y[n].
 * Built by the Python test itself; it has its own main, so it is not in tests/support/. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmeans.h"
#include "logreg.h"
#include "scaler.h"

static int read_input(const char *path, int with_y, int *n, int *dim, float **x, float **y)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    int32_t hdr[2];
    if (fread(hdr, 4, 2, f) != 2 || hdr[0] < 1 || hdr[1] < 1) {
        fclose(f);
        return -1;
    }
    *n = hdr[0];
    *dim = hdr[1];
    size_t nx = (size_t)*n * (size_t)*dim;
    *x = malloc(nx * sizeof(float));
    *y = with_y ? malloc((size_t)*n * sizeof(float)) : NULL;
    int ok = *x && fread(*x, 4, nx, f) == nx;
    if (with_y)
        ok = ok && *y && fread(*y, 4, (size_t)*n, f) == (size_t)*n;
    fclose(f);
    return ok ? 0 : -1;
}

static int write_out(const char *path, const void *data, size_t bytes)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(data, 1, bytes, f) == bytes;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int usage(void)
{
    fprintf(stderr, "usage: model_driver scaler HALF_LIFE IN OUT   (OUT: f64 mean[d], sd[d])\n"
                    "       model_driver kmeans K SEED PASSES BATCH IN OUT  (OUT: f32 centres)\n"
                    "       model_driver logreg PASSES BATCH LR L2 IN OUT  (OUT: f64 w[d], b)\n");
    return 2;
}

int main(int argc, char **argv)
{
    openblas_set_num_threads(1);
    int n, dim;
    float *x = NULL, *y = NULL;
    if (argc == 5 && strcmp(argv[1], "scaler") == 0) {
        if (read_input(argv[3], 0, &n, &dim, &x, &y) < 0)
            return 1;
        sc_t *sc = sc_new(dim, atof(argv[2]));
        sc_update(sc, x, (size_t)n);
        double *out = malloc(2 * (size_t)dim * sizeof(double));
        for (int i = 0; i < dim; i++) {
            out[i] = sc_mean(sc, i);
            out[dim + i] = sc_sd(sc, i);
        }
        int rc = write_out(argv[4], out, 2 * (size_t)dim * sizeof(double));
        sc_destroy(sc);
        free(out);
        free(x);
        return rc ? 1 : 0;
    }
    if (argc == 8 && strcmp(argv[1], "kmeans") == 0) {
        int k = atoi(argv[2]), passes = atoi(argv[4]), batch = atoi(argv[5]);
        if (read_input(argv[6], 0, &n, &dim, &x, &y) < 0 || batch < 1)
            return 1;
        km_t *km = km_new(k, dim, strtoull(argv[3], NULL, 10), 0, 0.01);
        if (!km)
            return 1;
        for (int p = 0; p < passes; p++)
            for (int off = 0; off < n; off += batch)
                km_partial_fit(km, x + (size_t)off * dim,
                               (size_t)(n - off < batch ? n - off : batch));
        float *c = malloc((size_t)k * dim * sizeof(float));
        for (int j = 0; j < k; j++)
            for (int i = 0; i < dim; i++)
                c[(size_t)j * dim + i] = (float)km_centre(km, j)[i];
        printf("inertia=%.6f segment_version=%llu\n", km_inertia(km, x, (size_t)n),
               (unsigned long long)km_segment_version(km));
        int rc = write_out(argv[7], c, (size_t)k * dim * sizeof(float));
        km_destroy(km);
        free(c);
        free(x);
        return rc ? 1 : 0;
    }
    if (argc == 8 && strcmp(argv[1], "logreg") == 0) {
        int passes = atoi(argv[2]), batch = atoi(argv[3]);
        if (read_input(argv[6], 1, &n, &dim, &x, &y) < 0 || batch < 1)
            return 1;
        lr_params_t p;
        lr_params_default(&p);
        p.learning_rate = atof(argv[4]);
        p.l2 = atof(argv[5]);
        lr_t *lr = lr_new(dim, &p);
        if (!lr)
            return 1;
        for (int pass = 0; pass < passes; pass++)
            for (int off = 0; off < n; off += batch)
                lr_update(lr, x + (size_t)off * dim, y + off,
                          (size_t)(n - off < batch ? n - off : batch), NULL);
        double *out = malloc(((size_t)dim + 1) * sizeof(double));
        for (int i = 0; i < dim; i++)
            out[i] = lr_weight(lr, i);
        out[dim] = lr_bias(lr);
        int rc = write_out(argv[7], out, ((size_t)dim + 1) * sizeof(double));
        lr_destroy(lr);
        free(out);
        free(x);
        free(y);
        return rc ? 1 : 0;
    }
    return usage();
}
